"""Audit queries: the event chain, digests, consumer positions and the alert outbox.

Functions take the connection of an open transaction (`Tx.conn`), so the caller decides
the transaction's extent: the audit writer appends a whole batch, moves the chain head and
may add a digest in one commit.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Row

from strongroom.storage import tables as t

E = t.audit_events.c
_EVENT_COLUMNS = [c.name for c in t.audit_events.columns]


def _driver_sql(named: str) -> dict[str, str]:
    """One statement in both drivers' named-parameter styles (sqlite3 `:x`, psycopg `%(x)s`)."""
    return {"sqlite": named, "postgresql": re.sub(r":(\w+)", r"%(\1)s", named)}


# The writer's statements, in the drivers' own SQL, run on the transaction's DBAPI cursor: each
# group commit runs them, and SQLAlchemy's per-execution work was a fifth of the CPU of a read
# that waits for its audit record.
_LOCK_HEAD = {"sqlite": "SELECT seq, hash FROM audit_chain_head WHERE id = 1",
              "postgresql": "SELECT seq, hash FROM audit_chain_head WHERE id = 1 FOR UPDATE"}
_INSERT_INTO = f"INSERT INTO audit_events ({', '.join(_EVENT_COLUMNS)}) VALUES "
_INSERT_EVENTS = _driver_sql(_INSERT_INTO + f"({', '.join(':' + c for c in _EVENT_COLUMNS)})")
_MOVE_HEAD = _driver_sql("UPDATE audit_chain_head SET seq = :new_seq, hash = :new_hash WHERE id = 1")


# SQLite, on the audit writer's own connection: a batch is one INSERT in autocommit (one
# statement is one transaction), and this connection-local trigger moves the chain head in it.
# Each statement lets go of the interpreter lock and must win it back from the busy event loop;
# one statement per batch instead of five was most of the writer's cost under load.
SQLITE_HEAD_TRIGGER = (
    "CREATE TEMP TRIGGER IF NOT EXISTS strongroom_audit_head AFTER INSERT ON main.audit_events "
    "BEGIN UPDATE audit_chain_head SET seq = NEW.seq, hash = NEW.hash WHERE id = 1; END")
SQLITE_ONE_STATEMENT_MAX = 256  # rows in one statement (16 parameters each, far below SQLite's limit)
_ROW = "(" + ", ".join("?" for _ in _EVENT_COLUMNS) + ")"


def append_sqlite_statement(cur: Any, rows: list[dict[str, Any]]) -> None:
    """`rows` in one autocommit INSERT (the head trigger installed: each row also moves the
    head, so the connection's total_changes grows by two per row). Rows carry their seq: if
    another process extended the chain since our head was read, the first seq is taken and the
    whole statement fails with an IntegrityError, writing nothing."""
    cur.execute(_INSERT_INTO + ", ".join([_ROW] * len(rows)),
                [row[c] for row in rows for c in _EVENT_COLUMNS])


def _cursor(conn: Connection) -> Any:
    return conn.connection.cursor()


def lock_head(conn: Connection) -> tuple[int, str]:
    """The chain's last (seq, hash), locked until the transaction ends (row lock on PostgreSQL;
    SQLite's write transactions are already exclusive)."""
    cur = _cursor(conn)
    try:
        return lock_head_on(cur, conn.dialect.name)
    finally:
        cur.close()


def lock_head_on(cur: Any, dialect: str) -> tuple[int, str]:
    """`lock_head` on a DBAPI cursor in an open transaction."""
    cur.execute(_LOCK_HEAD[dialect])
    row = cur.fetchone()
    if row is None:
        raise RuntimeError("audit chain head row is missing (schema not migrated?)")
    return int(row[0]), str(row[1])


def head(conn: Connection) -> tuple[int, str]:
    row = conn.execute(select(t.audit_chain_head.c.seq, t.audit_chain_head.c.hash)
                       .where(t.audit_chain_head.c.id == 1)).first()
    return (int(row.seq), str(row.hash)) if row else (0, "0" * 64)


def append(conn: Connection, rows: list[dict[str, Any]], last_seq: int, last_hash: str) -> None:
    """Rows carry every column of audit_events."""
    cur = _cursor(conn)
    try:
        append_on(cur, conn.dialect.name, rows, last_seq, last_hash)
    finally:
        cur.close()


def append_on(cur: Any, dialect: str, rows: list[dict[str, Any]], last_seq: int, last_hash: str) -> None:
    """`append` on a DBAPI cursor in an open transaction."""
    cur.executemany(_INSERT_EVENTS[dialect], rows)
    move_head_on(cur, dialect, last_seq, last_hash)


def move_head_on(cur: Any, dialect: str, last_seq: int, last_hash: str) -> None:
    cur.execute(_MOVE_HEAD[dialect], {"new_seq": last_seq, "new_hash": last_hash})


def probe(conn: Connection) -> None:
    """Write a throw-away event row (the caller rolls back): fails as a real append would."""
    conn.execute(insert(t.audit_events).values(
        seq=-1, event_id="probe", event_time=0.0, event_source="probe", event_name="probe", read_only=True,
        resource_names="", resource_types="", record="{}", prev_hash="0" * 64, hash="0" * 64))


def event_time_range(conn: Connection, first_seq: int, last_seq: int) -> tuple[float, float]:
    row = conn.execute(select(func.min(E.event_time), func.max(E.event_time))
                       .where(E.seq >= first_seq, E.seq <= last_seq)).first()
    return (float(row[0] or 0.0), float(row[1] or 0.0)) if row else (0.0, 0.0)


# -- digests --------------------------------------------------------------------------------------
def last_digest(conn: Connection) -> Row[Any] | None:
    return conn.execute(select(t.audit_digests).order_by(t.audit_digests.c.id.desc()).limit(1)).first()


def insert_digest(conn: Connection, *, created: float, first_seq: int, last_seq: int, last_hash: str, text: str,
                  signature: str, key_fingerprint: str) -> None:
    conn.execute(insert(t.audit_digests).values(created=created, first_seq=first_seq, last_seq=last_seq,
                                                last_hash=last_hash, digest=text, signature=signature,
                                                key_fingerprint=key_fingerprint))


def digests(conn: Connection) -> list[Row[Any]]:
    return list(conn.execute(select(t.audit_digests).order_by(t.audit_digests.c.id)))


# -- reading events ------------------------------------------------------------------------------
@dataclass
class EventFilter:
    """Conditions on indexed copies of record fields; every one given must hold."""

    start: float | None = None
    end: float | None = None
    account_id: str | None = None
    event_id: str | None = None
    event_name: str | None = None
    event_source: str | None = None
    principal: str | None = None  # a principal ARN or a user/session name
    access_key_id: str | None = None
    resource: str | None = None  # an ARN or a secret name
    resource_type: str | None = None
    error_code: str | None = None  # "*" for any error
    read_only: bool | None = None


def _where(f: EventFilter) -> list[Any]:
    cond: list[Any] = []
    if f.start is not None:
        cond.append(E.event_time >= f.start)
    if f.end is not None:
        cond.append(E.event_time <= f.end)
    for column, value in ((E.account_id, f.account_id), (E.event_id, f.event_id), (E.event_name, f.event_name),
                          (E.event_source, f.event_source), (E.access_key_id, f.access_key_id),
                          (E.read_only, f.read_only)):
        if value is not None:
            cond.append(column == value)
    if f.principal is not None:
        cond.append(or_(E.principal_arn == f.principal, E.username == f.principal))
    if f.resource is not None:
        cond.append(E.resource_names.contains(f"|{f.resource}|", autoescape=True))
    if f.resource_type is not None:
        cond.append(E.resource_types.contains(f"|{f.resource_type}|", autoescape=True))
    if f.error_code == "*":
        cond.append(E.error_code.is_not(None))
    elif f.error_code is not None:
        cond.append(E.error_code == f.error_code)
    return cond


def find_events(conn: Connection, f: EventFilter, *, limit: int, before_seq: int | None = None) -> list[Row[Any]]:
    """Matching events, newest first; `before_seq` continues a previous page."""
    cond = _where(f)
    if before_seq is not None:
        cond.append(E.seq < before_seq)
    q = select(t.audit_events).where(*cond).order_by(E.seq.desc()).limit(limit)
    return list(conn.execute(q))


def events_after(conn: Connection, seq: int, limit: int) -> list[Row[Any]]:
    q = select(E.seq, E.record).where(E.seq > seq).order_by(E.seq).limit(limit)
    return list(conn.execute(q))


def iter_chain(conn: Connection, batch: int = 2000) -> Iterator[Row[Any]]:
    """Every event in seq order, for verification."""
    last = None
    while True:
        q = select(t.audit_events).order_by(E.seq).limit(batch)
        if last is not None:
            q = q.where(E.seq > last)
        rows = list(conn.execute(q))
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def calls_by(conn: Connection, column: str, since: float, source: str | None = None) -> list[tuple[str, int]]:
    """Call counts since `since` grouped by an event column (principal_arn, resource_names...)."""
    col = getattr(E, column)
    q = select(col, func.count()).where(E.event_time >= since)
    if source is not None:
        q = q.where(E.event_source == source)
    return [(r[0], int(r[1])) for r in conn.execute(q.group_by(col).order_by(func.count().desc()))]


def count_events(conn: Connection, since: float | None = None) -> int:
    q = select(func.count()).select_from(t.audit_events)
    if since is not None:
        q = q.where(E.event_time >= since)
    return int(conn.execute(q).scalar_one())


# -- consumer positions (sinks, alert detector) ----------------------------------------------------
def claim(conn: Connection, consumer: str, owner: str, now: float, lease: float) -> int | None:
    """Take or renew `consumer`'s lease; its position, or None while another process holds it."""
    P = t.audit_positions.c
    row = conn.execute(select(t.audit_positions).where(P.consumer == consumer).with_for_update()).first()
    if row is None:
        conn.execute(insert(t.audit_positions).values(consumer=consumer, seq=0, owner=owner,
                                                      lease_until=now + lease, updated=now))
        return 0
    if row.owner not in (None, owner) and (row.lease_until or 0) > now:
        return None
    conn.execute(update(t.audit_positions).where(P.consumer == consumer)
                 .values(owner=owner, lease_until=now + lease))
    return int(row.seq)


def advance(conn: Connection, consumer: str, owner: str, seq: int, now: float) -> bool:
    P = t.audit_positions.c
    result = conn.execute(update(t.audit_positions).where(P.consumer == consumer, P.owner == owner)
                          .values(seq=seq, updated=now))
    return bool(result.rowcount)


def position(conn: Connection, consumer: str) -> int | None:
    P = t.audit_positions.c
    return conn.execute(select(P.seq).where(P.consumer == consumer)).scalar_one_or_none()


# -- alert outbox ----------------------------------------------------------------------------------
O = t.alert_outbox.c


def enqueue(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(t.alert_outbox), rows)


def due(conn: Connection, now: float, limit: int) -> list[Row[Any]]:
    q = (select(t.alert_outbox).where(O.status == "pending", O.next_attempt <= now)
         .order_by(O.next_attempt, O.id).limit(limit))
    return list(conn.execute(q))


def reschedule(conn: Connection, row_id: int, expected_next: float, next_attempt: float) -> bool:
    """Claim a due delivery by moving its next attempt (a second process finds it no longer due)."""
    result = conn.execute(update(t.alert_outbox).where(O.id == row_id, O.status == "pending",
                                                       O.next_attempt == expected_next)
                          .values(next_attempt=next_attempt))
    return bool(result.rowcount)


def finish_delivery(conn: Connection, row_id: int, *, status: str, attempts: int, next_attempt: float,
                    delivered: float | None, error: str | None) -> None:
    conn.execute(update(t.alert_outbox).where(O.id == row_id).values(
        status=status, attempts=attempts, next_attempt=next_attempt, delivered=delivered,
        last_error=error[:256] if error else None))


def pending_deliveries(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(t.alert_outbox)
                            .where(O.status == "pending")).scalar_one())


def outbox(conn: Connection, limit: int = 100) -> list[Row[Any]]:
    return list(conn.execute(select(t.alert_outbox).order_by(O.id.desc()).limit(limit)))


def prune_outbox(conn: Connection, before: float) -> int:
    result = conn.execute(delete(t.alert_outbox).where(O.status != "pending", O.created < before))
    return int(result.rowcount or 0)
