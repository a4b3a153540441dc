"""The audit writer: group commit of events from concurrent requests, chained and signed.

Requests hand their event to one writer thread and wait on a future. The thread takes
everything queued, appends it in one transaction (one fsync for the whole batch), extends
the hash chain under the chain-head row lock (so several processes or nodes extend one
chain), adds a signed digest when due, and only then settles the futures: a response
leaves after its record is durable. A batch that cannot be committed fails every future in
it, and the gateway answers InternalServiceError (fail closed) or goes on (fail open).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from strongroom import metrics
from strongroom.audit.chain import Digest, canonical, link, make_digest
from strongroom.audit.record import Event
from strongroom.storage import Store
from strongroom.storage import audit_store as q

log = logging.getLogger("strongroom.audit")


class AuditUnavailable(Exception):
    """The event could not be made durable."""


@dataclass(eq=False, slots=True)
class _Item:
    event: Event | None  # None: a probe (can an event be written right now?)
    future: Any  # asyncio.Future, or concurrent.futures.Future for callers in threads
    loop: asyncio.AbstractEventLoop | None = None
    seq: int = 0
    text: str = field(default="", repr=False)


_STOP = object()


class AuditWriter:
    def __init__(self, store: Store, key: Ed25519PrivateKey | None, *, digest_every: int = 1000,
                 digest_interval: float = 300.0, max_batch: int = 512,
                 on_commit: Callable[[int], None] | None = None):
        self.store = store
        self.key = key
        self.digest_every = max(1, digest_every)
        self.digest_interval = max(0.05, digest_interval)
        self.max_batch = max(1, max_batch)
        self.on_commit = on_commit
        self.last_error: str | None = None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopping = False
        self._digested_seq: int | None = None  # last seq a digest covers, as last seen
        self._driver: Any = None  # SQLite: the writer thread's own DBAPI connection
        self._head: tuple[int, str] | None = None  # SQLite: the chain's end after our last batch
        self._last_digest_at = time.monotonic()

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self._thread is not None or self._stopping:
                return
            self._thread = threading.Thread(target=self._run, name="strongroom-audit-writer", daemon=True)
            self._thread.start()
            metrics.AUDIT_WRITER_UP.set(1)

    def stop(self, timeout: float = 30.0) -> None:
        """Commit what is queued, write a final digest, and end the thread."""
        with self._lock:
            self._stopping = True
            thread = self._thread
        if thread is None:
            return
        self._queue.put(_STOP)
        thread.join(timeout)
        metrics.AUDIT_WRITER_UP.set(0)

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- submitting ---------------------------------------------------------------------------
    def _submit(self, item: _Item) -> None:
        if self._thread is None:
            self.start()
        if self._stopping or not self.alive():
            raise AuditUnavailable("the audit writer is not running")
        metrics.AUDIT_QUEUE.inc()
        self._queue.put(item)

    async def append(self, event: Event) -> int:
        """Queue `event` and wait until it is committed; its sequence number."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._submit(_Item(event, future, loop))
        return await future

    def append_sync(self, event: Event, timeout: float = 30.0) -> int:
        future: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._submit(_Item(event, future))
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise AuditUnavailable("timed out waiting for the audit writer") from None

    def probe(self, timeout: float = 30.0) -> None:
        """Raise AuditUnavailable unless an event could be written now (called before a write acts)."""
        future: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._submit(_Item(None, future))
        try:
            future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise AuditUnavailable("timed out waiting for the audit writer") from None

    # -- the thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        stop = False
        while not stop:
            wait = max(0.01, self.digest_interval - (time.monotonic() - self._last_digest_at))
            try:
                first = self._queue.get(timeout=wait)
            except queue.Empty:
                self._safely(self._timed_digest)
                continue
            batch: list[_Item] = []
            if first is _STOP:
                stop = True
            else:
                batch.append(first)
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    continue
                batch.append(item)
            if batch:
                try:
                    self._process(batch)
                except Exception as exc:  # noqa: BLE001 - the thread must outlive any one batch
                    log.error("audit writer fault: %s", type(exc).__name__)
                    self._settle([i for i in batch if not i.future.done()], exc)
            if time.monotonic() - self._last_digest_at >= self.digest_interval:
                self._safely(self._timed_digest)  # steady traffic never leaves the queue idle
        self._safely(self._timed_digest, force=True)  # shutdown: sign everything written
        self._close_driver()

    def _safely(self, fn: Callable[..., None], **kw: Any) -> None:
        try:
            fn(**kw)
        except Exception as exc:  # noqa: BLE001 - a failed digest is retried later; events stay chained
            log.error("audit digest failed: %s", type(exc).__name__)

    def _process(self, batch: list[_Item]) -> None:
        metrics.AUDIT_QUEUE.dec(len(batch))
        events = []
        for item in batch:
            if item.event is None:
                continue
            try:
                item.text = canonical(item.event.record)
            except (TypeError, ValueError) as exc:  # one unserializable record fails alone
                self._settle([item], exc)
                continue
            events.append(item)
        probes = [i for i in batch if i.event is None]
        error: BaseException | None = None
        started = time.perf_counter()
        try:
            if events:
                self._commit(events)
            elif probes:
                self._probe()
        except Exception as exc:  # noqa: BLE001 - every waiting request learns of it
            error = exc
            self.last_error = type(exc).__name__
            metrics.AUDIT_WRITE_FAILURES.inc()
            log.error("audit write failed: %s (%d events)", type(exc).__name__, len(events))
        else:
            self.last_error = None
            if events:
                metrics.AUDIT_EVENTS.inc(len(events))
                metrics.AUDIT_BATCH.observe(len(events))
                metrics.AUDIT_COMMIT.observe(time.perf_counter() - started)
        self._settle(events + probes, error)
        if error is None and events and self.on_commit is not None:
            self.on_commit(events[-1].seq)

    def _commit(self, items: list[_Item]) -> None:
        if self.store.is_sqlite:
            self._commit_on_driver(items)
            return
        with self.store.write(announce=False) as tx:
            seq, prev = q.lock_head(tx.conn)
            seq, prev, rows = self._chain(items, seq, prev)
            q.append(tx.conn, rows, seq, prev)
            if self._digest_due(seq):
                self._digest(tx.conn, seq, prev, only_if_due=True)

    def _commit_on_driver(self, items: list[_Item]) -> None:
        """SQLite: the batch on the writer's own DBAPI connection, where a transaction costs a
        third of what it costs through the Store; a digest that falls due follows in a
        transaction of its own."""
        if self._driver is None:
            driver = self.store.engine.raw_connection()  # the store's pragmas, autocommit
            driver.detach()  # the writer's alone: its temp trigger must never reach the pool
            try:
                driver.cursor().execute(q.SQLITE_HEAD_TRIGGER)
            except Exception:
                driver.close()  # no connection without its trigger
                raise
            self._driver = driver
        cur = self._driver.cursor()
        try:
            with self.store.writer_turn():  # in turn with the store's other writers
                seq = self._append_batch(cur, items)
        except Exception:
            self._close_driver()  # the next batch starts on a fresh connection
            raise
        finally:
            with contextlib.suppress(Exception):
                cur.close()
        if self._digest_due(seq):
            self._safely(self._locked_digest, only_if_due=True)

    def _append_batch(self, cur: Any, items: list[_Item]) -> int:
        if self._head is not None and len(items) <= q.SQLITE_ONE_STATEMENT_MAX:
            seq, prev, rows = self._chain(items, *self._head)
            before = self._driver.dbapi_connection.total_changes
            try:
                q.append_sqlite_statement(cur, rows)
            except sqlite3.IntegrityError:
                self._head = None  # another process wrote since: read the head, link again
            else:
                if self._driver.dbapi_connection.total_changes - before != 2 * len(rows):
                    # The trigger did not move the head: it went with a table dropped or
                    # replaced under us. Move the head by hand; the next batch starts on a
                    # fresh connection, with the trigger made again.
                    q.move_head_on(cur, "sqlite", seq, prev)
                    self._close_driver()
                else:
                    self._head = (seq, prev)
                return seq
        cur.execute("BEGIN IMMEDIATE")
        try:
            seq, prev = q.lock_head_on(cur, "sqlite")
            seq, prev, rows = self._chain(items, seq, prev)
            q.append_on(cur, "sqlite", rows, seq, prev)
            cur.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                cur.execute("ROLLBACK")
            raise
        self._head = (seq, prev)
        return seq

    def _close_driver(self) -> None:
        self._head = None
        if self._driver is not None:
            with contextlib.suppress(Exception):
                self._driver.close()
            self._driver = None

    @staticmethod
    def _chain(items: list[_Item], seq: int, prev: str) -> tuple[int, str, list[dict[str, Any]]]:
        """Link `items` onto the chain ending at (seq, prev): their rows, and the new end."""
        rows = []
        for item in items:
            seq += 1
            digest = link(prev, item.text)
            ev = item.event
            assert ev is not None
            rows.append({
                "seq": seq, "event_id": ev.event_id, "event_time": ev.event_time, "account_id": ev.account_id,
                "event_source": ev.event_source, "event_name": ev.event_name[:128], "read_only": ev.read_only,
                "principal_arn": ev.principal_arn, "username": ev.username[:256] if ev.username else None,
                "access_key_id": ev.access_key_id[:32] if ev.access_key_id else None,
                "error_code": ev.error_code, "resource_names": _joined(ev.resource_names),
                "resource_types": _joined(ev.resource_types), "record": item.text,
                "prev_hash": prev, "hash": digest,
            })
            item.seq = seq
            prev = digest
        return seq, prev, rows

    def _digest_due(self, seq: int) -> bool:
        """Whether the chain, now ending at `seq`, may have outgrown the last digest seen."""
        return self._digested_seq is None or seq - self._digested_seq >= self.digest_every

    def _locked_digest(self, *, only_if_due: bool) -> None:
        """A digest of the chain's end, in a transaction of its own that holds the head."""
        with self.store.write(announce=False) as tx:
            seq, last_hash = q.lock_head(tx.conn)
            self._digest(tx.conn, seq, last_hash, only_if_due=only_if_due)

    def _probe(self) -> None:
        with self.store.engine.connect() as conn:
            conn = conn.execution_options(strongroom_write=True)
            trans = conn.begin()
            try:
                q.probe(conn)
            finally:
                trans.rollback()

    def _timed_digest(self, force: bool = False) -> None:
        self._last_digest_at = time.monotonic()
        if self.key is None:
            return
        with self.store.read() as tx:
            seq, _ = q.head(tx.conn)
            last = q.last_digest(tx.conn)
        if seq <= (last.last_seq if last is not None else 0):
            self._digested_seq = seq
            return
        self._locked_digest(only_if_due=False)

    def _digest(self, conn: Any, seq: int, last_hash: str, *, only_if_due: bool) -> None:
        if self.key is None:
            return
        last = q.last_digest(conn)
        covered = int(last.last_seq) if last is not None else 0
        self._digested_seq = covered
        if seq <= covered or (only_if_due and seq - covered < self.digest_every):
            return
        previous = (Digest(last.first_seq, last.last_seq, last.last_hash, last.digest, last.signature,
                           last.key_fingerprint) if last is not None else None)
        start, end = q.event_time_range(conn, covered + 1, seq)
        now = time.time()
        d = make_digest(self.key, first_seq=covered + 1, last_seq=seq, last_hash=last_hash, start_time=start,
                        end_time=end, now=now, previous=previous)
        q.insert_digest(conn, created=now, first_seq=d.first_seq, last_seq=d.last_seq, last_hash=d.last_hash,
                        text=d.text, signature=d.signature, key_fingerprint=d.key_fingerprint)
        self._digested_seq = seq
        self._last_digest_at = time.monotonic()
        metrics.AUDIT_DIGESTS.inc()

    @staticmethod
    def _settle(items: list[_Item], error: BaseException | None) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Item]] = defaultdict(list)
        for item in items:
            if item.loop is None:
                if item.future.done():
                    continue
                if error is None:
                    item.future.set_result(item.seq)
                else:
                    item.future.set_exception(AuditUnavailable(type(error).__name__))
            else:
                by_loop[item.loop].append(item)
        for loop, waiting in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle_async, waiting, error)
            except RuntimeError:  # the loop has closed: nobody is waiting any more
                pass


def _settle_async(items: list[_Item], error: BaseException | None) -> None:
    for item in items:
        if item.future.done():  # the request was cancelled (client went away)
            continue
        if error is None:
            item.future.set_result(item.seq)
        else:
            item.future.set_exception(AuditUnavailable(type(error).__name__))


def _joined(values: list[str]) -> str:
    return "|" + "|".join(values) + "|" if values else ""
