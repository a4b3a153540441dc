"""Change events between the processes sharing one database: publish/subscribe for caches.

A writer announces a change with `Tx.publish(topic, key)` inside its transaction,
so the announcement exists exactly when the change does (a rollback takes both
back). Every process then hears it through a ChangeFeed:

- PostgreSQL: NOTIFY inside the transaction, delivered by the server at commit
  to every session that LISTENs; each node keeps one listening connection.
- SQLite: a row in change_events, inserted by the transaction; every worker
  process polls the table (one indexed range read every `interval` seconds).

The process that committed delivers its own events synchronously when the
transaction commits (Store.write), so it reads its own writes at once; the
feed skips its own events when they come back. Whenever events may have been
missed (the listening connection broke, the poller fell behind the pruning),
the feed delivers "*" on every topic: subscribers drop everything they hold.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Connection

from strongroom.storage import tables as t

if TYPE_CHECKING:
    from strongroom.storage.store import Store

log = logging.getLogger("strongroom.notify")
CHANNEL = "strongroom_changes"
EVERYTHING = "*"
KEEP_EVENTS = 600.0  # seconds a SQLite change event stays for pollers that lag behind

Handler = Callable[[str], None]  # called with the changed item's key, or "*" for everything
_node: tuple[int, str] | None = None


def node_id() -> str:
    """This process's name in events and leases: host, pid and a random tag (pids are reused)."""
    global _node
    pid = os.getpid()
    if _node is None or _node[0] != pid:  # a forked worker is a node of its own
        _node = (pid, f"{socket.gethostname()}:{pid}:{secrets.token_hex(4)}")
    return _node[1]


def send(conn: Connection, is_sqlite: bool, topic: str, key: str) -> None:
    """The database side of publishing, in the caller's transaction."""
    if is_sqlite:
        conn.execute(insert(t.change_events).values(node=node_id(), topic=topic, item=key,
                                                    created_date=time.time()))
    else:
        payload = json.dumps({"n": node_id(), "t": topic, "k": key}, separators=(",", ":"))
        conn.execute(select(func.pg_notify(CHANNEL, payload)))


class ChangeFeed:
    """Subscriptions, and delivery of events to them; subclasses listen to the database."""

    def __init__(self) -> None:
        self.node = node_id()
        self._handlers: dict[str, list[Handler]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers.setdefault(topic, []).append(handler)

    def deliver(self, topic: str, key: str) -> None:
        for handler in self._handlers.get(topic, ()):
            try:
                handler(key)
            except Exception as exc:  # noqa: BLE001 - one broken subscriber must not starve the others
                log.error("change subscriber failed: %s", type(exc).__name__, extra={"topic": topic})

    def deliver_everything(self) -> None:
        for topic in list(self._handlers):
            self.deliver(topic, EVERYTHING)

    def sync(self) -> bool:
        """Deliver every event committed (on any node) before this call began; False if that
        cannot be done now, and a cache must then not be trusted for this request."""
        return False

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _receive(self, node: str, topic: str, key: str) -> None:
        if node != self.node:  # our own events were delivered at commit
            self.deliver(topic, key)


class PostgresFeed(ChangeFeed):
    """LISTEN on a dedicated connection; reconnects with backoff and then flushes (events were lost)."""

    def __init__(self, dsn: str, poll: float = 1.0):
        super().__init__()
        self.dsn, self.poll = dsn, poll
        self.connected = threading.Event()

    def _run(self) -> None:
        import psycopg

        delay = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True, application_name="strongroom-listen",
                                     keepalives=1, keepalives_idle=10, keepalives_interval=5,
                                     keepalives_count=3) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    # Events sent before we listened (at start, or while the connection was down)
                    # are gone: whatever the caches loaded meanwhile may be stale.
                    self.deliver_everything()
                    self.connected.set()
                    delay = 0.5
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=self.poll):
                            self._on_payload(note.payload)
            except Exception as exc:  # noqa: BLE001 - the listener must outlive database restarts
                if self._stop.is_set():
                    return
                log.warning("change listener lost its connection: %s", type(exc).__name__)
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)

    def _on_payload(self, payload: str) -> None:
        try:
            event: dict[str, Any] = json.loads(payload)
            self._receive(str(event["n"]), str(event["t"]), str(event["k"]))
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed change event")


class PollingFeed(ChangeFeed):
    """Polls change_events (SQLite); prunes events older than KEEP_EVENTS now and then."""

    def __init__(self, store: "Store", interval: float = 0.25):
        super().__init__()
        self.store, self.interval = store, interval
        self._last = 0
        self._pruned = 0.0
        self._poll_lock = threading.RLock()
        self._probe_lock = threading.Lock()
        self._probe: Any = None  # a DBAPI connection of its own, for the per-request check
        self._mark: int | None = None  # the change stamp as of the last complete sync

    def start(self) -> None:
        with self.store.read() as tx:  # only what happens from now on is news
            self._last = int(tx.conn.execute(select(func.coalesce(func.max(t.change_events.c.seq), 0))).scalar_one())
        super().start()

    def close(self) -> None:
        super().close()
        with self._probe_lock:
            if self._probe is not None:
                self._probe.close()
                self._probe = None

    def poll_once(self) -> int:
        """Deliver the events committed since the last poll; returns how many were read."""
        c = t.change_events.c
        with self._poll_lock:  # the poller thread and sync() in request threads
            with self.store.read() as tx:
                rows = tx.conn.execute(select(c.seq, c.node, c.topic, c.item).where(c.seq > self._last)
                                       .order_by(c.seq).limit(1000)).all()
            if rows and self._last and rows[0].seq != self._last + 1:
                self.deliver_everything()  # pruned before we read them
            for row in rows:
                self._receive(row.node, row.topic, row.item)
                self._last = row.seq
            return len(rows)

    def sync(self) -> bool:
        """SQLite writers run one at a time, so sequence numbers are in commit order: once the
        newest committed event is delivered, so is everything before it. While the change
        stamp (storage/stamp.py) holds the word of the last complete sync, no strongroom write
        committed since, and nothing is read. Otherwise the newest sequence number is one
        autocommit lookup at the end of the table's primary key; only when it moved does the
        request poll (a few more)."""
        try:
            stamp = self.store.stamp
            mark = stamp.read() if stamp is not None else None
            if mark is not None and mark == self._mark:
                return True  # no announced write committed since the last look
            newest = self._newest()
            if newest > self._last:
                with self._poll_lock:
                    while self._last < newest and self.poll_once() == 1000:
                        pass
            if self._last < newest:
                return False
            self._mark = mark
            return True
        except Exception as exc:  # noqa: BLE001 - the caller reads the database instead
            log.warning("change sync failed: %s", type(exc).__name__)
            return False

    def _newest(self) -> int:
        with self._probe_lock:
            if self._probe is None:
                # Held for the process's lifetime (one pooled connection fewer); in autocommit
                # (storage/store.py's connect hook), so each check sees the latest commit.
                self._probe = self.store.engine.raw_connection()
            cur = self._probe.cursor()
            try:
                cur.execute("SELECT max(seq) FROM change_events")
                row = cur.fetchone()
            finally:
                cur.close()
        return int(row[0] or 0)

    def _prune(self) -> None:
        with self.store.write(announce=False) as tx:
            tx.conn.execute(delete(t.change_events).where(t.change_events.c.created_date < time.time() - KEEP_EVENTS))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll_once()
                if time.monotonic() - self._pruned > KEEP_EVENTS / 4:
                    self._pruned = time.monotonic()
                    self._prune()
            except Exception as exc:  # noqa: BLE001 - a failed poll is retried on the next tick
                log.warning("change poll failed: %s", type(exc).__name__)


def open_feed(store: "Store") -> ChangeFeed:
    """The feed for this store's backend (not yet started)."""
    if store.is_sqlite:
        return PollingFeed(store)
    return PostgresFeed(store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False))
