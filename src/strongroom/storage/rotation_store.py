"""Rotation state rows: which token a secret is rotating, the next step, the last failure,
and the per-secret lease that lets one process at a time run that rotation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.engine import Connection

from strongroom.storage import tables as t

FIRST_STEP = "createSecret"
PENDING, SUCCEEDED, CANCELLED = "pending", "succeeded", "cancelled"


@dataclass(slots=True)
class RotationState:
    secret_id: int
    token: str
    status: str
    step: str
    attempts: int
    next_attempt: float
    last_error: str | None
    holder: str | None
    lease_until: float
    started_date: float
    updated_date: float


def get(conn: Connection, secret_id: int) -> RotationState | None:
    row = conn.execute(select(t.rotation_state).where(t.rotation_state.c.secret_id == secret_id)).first()
    return RotationState(**row._mapping) if row else None


def all_states(conn: Connection) -> list[RotationState]:
    return [RotationState(**r._mapping) for r in conn.execute(select(t.rotation_state))]


def request(conn: Connection, secret_id: int, token: str, now: float) -> None:
    """Record that `token` is to be rotated now (idempotent for a token already pending)."""
    current = get(conn, secret_id)
    if current is not None and current.token == token and current.status == PENDING:
        return
    conn.execute(delete(t.rotation_state).where(t.rotation_state.c.secret_id == secret_id))
    conn.execute(insert(t.rotation_state).values(
        secret_id=secret_id, token=token, status=PENDING, step=FIRST_STEP, attempts=0, next_attempt=now,
        last_error=None, holder=None, lease_until=0.0, started_date=now, updated_date=now))


def cancel(conn: Connection, secret_id: int, now: float) -> None:
    c = t.rotation_state.c
    conn.execute(update(t.rotation_state).where(c.secret_id == secret_id, c.status == PENDING)
                 .values(status=CANCELLED, updated_date=now))


def due(conn: Connection, now: float) -> list[int]:
    """Secrets whose pending rotation may run now: its retry time has come and no live lease."""
    c = t.rotation_state.c
    q = select(c.secret_id).where(c.status == PENDING, c.next_attempt <= now, c.lease_until < now)
    return [int(r[0]) for r in conn.execute(q.order_by(c.next_attempt))]


def claim(conn: Connection, secret_id: int, holder: str, now: float, ttl: float) -> bool:
    """Take (or renew) the secret's rotation lease; one atomic UPDATE, so at most one holder wins."""
    c = t.rotation_state.c
    done = conn.execute(update(t.rotation_state)
                        .where(c.secret_id == secret_id, c.status == PENDING,
                               or_(c.lease_until < now, c.holder == holder))
                        .values(holder=holder, lease_until=now + ttl)).rowcount
    return bool(done)


def _ours(secret_id: int, holder: str) -> Any:
    c = t.rotation_state.c
    return (c.secret_id == secret_id) & (c.holder == holder)


def advance(conn: Connection, secret_id: int, holder: str, step: str, now: float) -> bool:
    done = conn.execute(update(t.rotation_state).where(_ours(secret_id, holder))
                        .values(step=step, updated_date=now)).rowcount
    return bool(done)


def fail(conn: Connection, secret_id: int, holder: str, error: str, retry_at: float, now: float) -> None:
    """Record the failure and when to retry; the lease is released for whoever retries."""
    c = t.rotation_state.c
    conn.execute(update(t.rotation_state).where(_ours(secret_id, holder))
                 .values(attempts=c.attempts + 1, last_error=error[:1024], next_attempt=retry_at,
                         lease_until=0.0, holder=None, updated_date=now))


def finish(conn: Connection, secret_id: int, holder: str | None, status: str, now: float,
           error: str | None = None) -> None:
    c = t.rotation_state.c
    where = c.secret_id == secret_id if holder is None else _ours(secret_id, holder)
    conn.execute(update(t.rotation_state).where(where)
                 .values(status=status, last_error=error, lease_until=0.0, holder=None, updated_date=now))
