"""Counts for gauges and usage reports: how many secrets and versions, and when last read."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from strongroom.storage import tables as t


@dataclass(frozen=True, slots=True)
class SecretCounts:
    active: int
    pending_deletion: int
    versions: int


def secret_counts(conn: Connection) -> SecretCounts:
    s = t.secrets.c
    rows = dict(conn.execute(select(s.deleted_date.is_(None), func.count()).group_by(s.deleted_date.is_(None))).all())
    versions = conn.execute(select(func.count()).select_from(t.secret_versions)).scalar_one()
    return SecretCounts(int(rows.get(True, 0)), int(rows.get(False, 0)), int(versions))


@dataclass(frozen=True, slots=True)
class SecretUse:
    account_id: str
    region: str
    name: str
    arn: str
    created_date: float
    last_accessed_date: float | None
    deleted: bool


def secret_uses(conn: Connection) -> list[SecretUse]:
    s = t.secrets.c
    q = select(s.account_id, s.region, s.name, s.arn, s.created_date, s.last_accessed_date, s.deleted_date)
    return [SecretUse(r.account_id, r.region, r.name, r.arn, r.created_date, r.last_accessed_date,
                      r.deleted_date is not None) for r in conn.execute(q.order_by(s.name))]
