"""Copies committed events from the audit table to sinks and the alert detector.

Each consumer has a durable position (the last seq it took) and a lease, so one process
feeds it at a time. A consumer that fails or is slow keeps its position and falls behind;
it catches up from the table later, never skipping an event (its lag is a metric). The
writer wakes the forwarder after each commit, so sinks trail the table by milliseconds.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy.engine import Connection

from strongroom import metrics
from strongroom.storage import Store
from strongroom.storage import audit_store as q

log = logging.getLogger("strongroom.audit")
Record = tuple[int, str]  # (seq, record JSON)


class Consumer(Protocol):
    name: str

    def deliver(self, records: list[Record]) -> Callable[[Connection], None] | None:
        """Handle records in order; may return work to commit with the new position."""
        ...


class _LostLease(Exception):
    pass


class SinkConsumer:
    """A Sink as a consumer: delivery is the sink's write; nothing joins the position update."""

    def __init__(self, sink: Any):
        self.sink = sink
        self.name = f"sink:{sink.name}"

    def deliver(self, records: list[Record]) -> None:
        self.sink.write([text for _, text in records])
        return None


class Forwarder:
    def __init__(self, store: Store, consumers: list[Consumer], *, batch: int = 500, poll: float = 1.0,
                 lease: float = 30.0, retry: float = 5.0):
        self.store = store
        self.consumers = consumers
        self.batch = batch
        self.poll = poll
        self.lease = lease
        self.retry = retry
        self.owner = uuid.uuid4().hex[:16]
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._held: dict[str, float] = {}  # consumer -> lease expiry we hold
        self._retry_at: dict[str, float] = {}

    def start(self) -> None:
        if self._thread is None and self.consumers:
            self._thread = threading.Thread(target=self._run, name="strongroom-audit-forwarder", daemon=True)
            self._thread.start()

    def wake(self, _seq: int = 0) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for c in self.consumers:
            sink = getattr(c, "sink", None)
            if sink is not None:
                sink.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll)
            self._wake.clear()
            busy = True
            while busy and not self._stop.is_set():
                busy = False
                for consumer in self.consumers:
                    try:
                        busy |= self.pump(consumer) == self.batch
                    except Exception as exc:  # noqa: BLE001 - keep the position, retry later
                        metrics.AUDIT_SINK_ERRORS.labels(consumer.name).inc()
                        self._retry_at[consumer.name] = time.monotonic() + self.retry
                        log.error("audit consumer %s failed: %s", consumer.name, type(exc).__name__)
        self.pump_all()  # deliver what the last requests wrote before shutdown

    def pump_all(self) -> None:
        for consumer in self.consumers:
            try:
                while self.pump(consumer, force=True) == self.batch:
                    pass
            except Exception as exc:  # noqa: BLE001 - stays in the table for the next start
                log.error("audit consumer %s failed: %s", consumer.name, type(exc).__name__)

    def _position(self, name: str, now: float) -> int | None:
        with self.store.write() as tx:
            pos = q.claim(tx.conn, name, self.owner, now, self.lease)
        if pos is not None:
            self._held[name] = now + self.lease
        return pos

    def pump(self, consumer: Consumer, force: bool = False) -> int:
        """Deliver the next batch to one consumer; how many records it took."""
        name = consumer.name
        if not force and time.monotonic() < self._retry_at.get(name, 0.0):
            return 0
        now = time.time()
        if self._held.get(name, 0.0) - now < self.lease / 2:
            if self._position(name, now) is None:
                return 0  # another process feeds this consumer
        with self.store.read() as tx:
            pos = q.position(tx.conn, name) or 0
            rows = q.events_after(tx.conn, pos, self.batch)
            head, _ = q.head(tx.conn)
        # Set before delivering: a consumer that keeps failing shows how far behind it is.
        metrics.AUDIT_SINK_LAG.labels(name).set(max(0, head - pos))
        if not rows:
            return 0
        extra = consumer.deliver([(int(r.seq), str(r.record)) for r in rows])
        last = int(rows[-1].seq)
        try:
            with self.store.write() as tx:
                if not q.advance(tx.conn, name, self.owner, last, time.time()):
                    raise _LostLease()  # roll back: the new holder delivers (and commits) these
                if extra is not None:
                    extra(tx.conn)
        except _LostLease:
            self._held.pop(name, None)
            return 0
        metrics.AUDIT_SINK_LAG.labels(name).set(max(0, head - last))
        return len(rows)
