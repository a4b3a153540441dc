"""Root-key queries: the rekey progress marker, and every column wrapped by the root key.

`WRAPPED` lists each table whose column holds a value wrapped directly by the
root key, with the primary key the rekey walks it in. A new root-wrapped
column must be added here, or a rekey would leave it behind (the rekey's
final verification pass reads only what is listed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (Column, Float, Integer, LargeBinary, MetaData, String, Table, and_, delete, insert, not_,
                        select, tuple_, update)
from sqlalchemy.sql.elements import ColumnElement

from strongroom.storage import tables as t
from strongroom.storage.records import SecretRecord
from strongroom.storage.store import Tx


@dataclass(frozen=True)
class WrappedColumn:
    phase: str  # the name the progress marker records
    table: Table
    pk: tuple[str, ...]
    column: str
    extra: tuple[str, ...] = ()  # further columns the purpose is made of

    def where(self) -> ColumnElement[bool] | None:
        if self.table is t.secret_versions:
            # Only versions sealed directly by the root keyring; KMS-sealed ones hold KMS blobs.
            c = t.secret_versions.c
            return and_(c.wrapped_key.is_not(None), c.key_id.is_not(None), c.key_id != "DefaultEncryptionKey",
                        not_(c.key_id.like("arn:%")))
        if self.table.c[self.column].nullable:
            return self.table.c[self.column].is_not(None)
        return None


WRAPPED: tuple[WrappedColumn, ...] = (
    WrappedColumn("access_keys", t.access_keys, ("access_key_id",), "secret_wrapped"),
    WrappedColumn("sts_session_credentials", t.session_credentials, ("access_key_id",), "secret_wrapped"),
    WrappedColumn("kms_key_materials", t.kms_key_materials, ("key_id", "version"), "material_wrapped"),
    WrappedColumn("secret_versions", t.secret_versions, ("secret_id", "version_id"), "wrapped_key", ("key_id",)),
    WrappedColumn("function_code", t.functions, ("account_id", "region", "name"), "code_wrapped", ("arn",)),
    WrappedColumn("function_environment", t.functions, ("account_id", "region", "name"), "environment_wrapped",
                  ("arn",)),
)


def batch(tx: Tx, target: WrappedColumn, after: list[Any] | None, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` rows of `target` past the cursor `after`, in primary-key order."""
    pk = [target.table.c[name] for name in target.pk]
    cols = [*pk, target.table.c[target.column], *(target.table.c[name] for name in target.extra)]
    q = select(*cols)
    cond = target.where()
    if cond is not None:
        q = q.where(cond)
    if after is not None:
        q = q.where(tuple_(*pk) > tuple_(*after)) if len(pk) > 1 else q.where(pk[0] > after[0])
    q = q.order_by(*pk).limit(limit)
    if tx.write and not tx.is_sqlite:
        q = q.with_for_update()
    return [dict(r._mapping) for r in tx.conn.execute(q)]


def set_wrapped(tx: Tx, target: WrappedColumn, row: dict[str, Any], blob: bytes, **extra: Any) -> None:
    pk = [target.table.c[name] == row[name] for name in target.pk]
    tx.conn.execute(update(target.table).where(*pk).values({target.column: blob, **extra}))


def secret_by_id(tx: Tx, secret_id: int) -> SecretRecord | None:
    row = tx.conn.execute(select(t.secrets).where(t.secrets.c.id == secret_id)).first()
    return SecretRecord.from_row(row) if row else None


# -- the progress marker --------------------------------------------------------
@dataclass
class RekeyRecord:
    state: str  # running, done
    old_key_id: str
    new_key_id: str
    old_source: dict[str, Any]
    new_source: dict[str, Any]
    phase: str
    cursor: list[Any] | None
    rewrapped: int
    started_date: float
    updated_date: float
    finished_date: float | None = None
    id: int | None = None

    def to_row(self) -> dict[str, Any]:
        return {
            "state": self.state, "old_key_id": self.old_key_id, "new_key_id": self.new_key_id,
            "old_source": json.dumps(self.old_source), "new_source": json.dumps(self.new_source),
            "phase": self.phase, "cursor": None if self.cursor is None else json.dumps(self.cursor),
            "rewrapped": self.rewrapped, "started_date": self.started_date, "updated_date": self.updated_date,
            "finished_date": self.finished_date,
        }

    @classmethod
    def from_row(cls, row: Any) -> "RekeyRecord":
        d = dict(row._mapping)
        d["old_source"], d["new_source"] = json.loads(d["old_source"]), json.loads(d["new_source"])
        d["cursor"] = None if d["cursor"] is None else json.loads(d["cursor"])
        return cls(**d)


def latest_rekey(tx: Tx) -> RekeyRecord | None:
    q = select(t.root_key_rekeys).order_by(t.root_key_rekeys.c.id.desc()).limit(1)
    if tx.write and not tx.is_sqlite:
        q = q.with_for_update()
    row = tx.conn.execute(q).first()
    return RekeyRecord.from_row(row) if row else None


def insert_rekey(tx: Tx, record: RekeyRecord) -> int:
    result = tx.conn.execute(insert(t.root_key_rekeys).values(**record.to_row()))
    pk = result.inserted_primary_key
    assert pk is not None
    record.id = int(pk[0])
    return record.id


def update_rekey(tx: Tx, record: RekeyRecord) -> None:
    tx.conn.execute(update(t.root_key_rekeys).where(t.root_key_rekeys.c.id == record.id).values(**record.to_row()))


# -- the hand-off of a rekey's new key to the other nodes (revision 0008_rekey_handoff) ---------
# Its own MetaData: only this module reads the table, and tables.metadata stays as the schema
# owners keep it. `wrapped` is the new key (or what loads it) wrapped by the OLD root key, so
# only a node that already holds the old key learns the new one.
root_key_handoffs = Table(
    "root_key_handoffs",
    MetaData(),
    Column("rekey_id", Integer, primary_key=True, autoincrement=False),
    Column("old_key_id", String(256), nullable=False),
    Column("new_key_id", String(256), nullable=False),
    Column("wrapped", LargeBinary, nullable=False),
    Column("created_date", Float, nullable=False),
)


def insert_handoff(tx: Tx, rekey_id: int, old_key_id: str, new_key_id: str, wrapped: bytes, now: float) -> None:
    tx.conn.execute(insert(root_key_handoffs).values(rekey_id=rekey_id, old_key_id=old_key_id,
                                                     new_key_id=new_key_id, wrapped=wrapped, created_date=now))


def handoff(tx: Tx, rekey_id: int) -> bytes | None:
    """The wrapped hand-off of rekey `rekey_id`, if the database still holds it."""
    row = tx.conn.execute(select(root_key_handoffs.c.wrapped)
                          .where(root_key_handoffs.c.rekey_id == rekey_id)).first()
    return bytes(row[0]) if row else None


def drop_handoffs(tx: Tx, *, except_rekey: int | None = None) -> int:
    """Delete every hand-off (but the one of `except_rekey`); how many there were."""
    q = delete(root_key_handoffs)
    if except_rekey is not None:
        q = q.where(root_key_handoffs.c.rekey_id != except_rekey)
    return int(tx.conn.execute(q).rowcount or 0)
