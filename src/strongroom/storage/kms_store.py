"""KMS queries: keys, wrapped key material and aliases, as functions over a Tx.

Kept apart from store.py so the KMS schema can grow without touching the
Secrets Manager queries; every function takes the transaction it runs in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from strongroom.storage import tables as t
from strongroom.storage.store import Tx


@dataclass(slots=True)
class KmsKeyRecord:
    key_id: str
    account_id: str
    region: str
    arn: str
    key_usage: str
    key_spec: str
    origin: str
    key_manager: str
    key_state: str
    creation_date: float
    current_material: int
    policy: str
    description: str = ""
    deletion_date: float | None = None
    pending_window_days: int | None = None
    rotation_enabled: bool = False
    rotation_period_days: int | None = None
    next_rotation_date: float | None = None
    tags: list[dict[str, str]] = field(default_factory=list)

    def to_row(self) -> dict[str, Any]:
        row = {f.name: getattr(self, f.name) for f in fields(self)}
        row["tags"] = json.dumps(self.tags)
        return row

    @classmethod
    def from_row(cls, row: Any) -> "KmsKeyRecord":
        data = dict(row._mapping)
        data["tags"] = json.loads(data["tags"] or "[]")
        data["rotation_enabled"] = bool(data["rotation_enabled"])
        return cls(**data)


@dataclass(frozen=True, slots=True)
class KmsMaterialRecord:
    key_id: str
    version: int
    created_date: float
    rotation_type: str | None
    material_wrapped: bytes


@dataclass(frozen=True, slots=True)
class KmsAliasRecord:
    account_id: str
    region: str
    alias_name: str
    key_id: str
    creation_date: float
    last_updated_date: float


# -- keys -----------------------------------------------------------------------
def insert_key(tx: Tx, key: KmsKeyRecord) -> None:
    tx.conn.execute(insert(t.kms_keys).values(**key.to_row()))


def update_key(tx: Tx, key: KmsKeyRecord) -> None:
    row = key.to_row()
    row.pop("key_id")
    tx.conn.execute(update(t.kms_keys).where(t.kms_keys.c.key_id == key.key_id).values(**row))


def get_key(tx: Tx, key_id: str) -> KmsKeyRecord | None:
    q = select(t.kms_keys).where(t.kms_keys.c.key_id == key_id)
    row = tx.conn.execute(tx.locked(q)).first()  # state changes are read-modify-write
    return KmsKeyRecord.from_row(row) if row else None


def list_keys(tx: Tx, account_id: str, region: str) -> list[KmsKeyRecord]:
    c = t.kms_keys.c
    q = select(t.kms_keys).where(c.account_id == account_id, c.region == region)
    return [KmsKeyRecord.from_row(r) for r in tx.conn.execute(q.order_by(c.creation_date, c.key_id))]


def delete_key(tx: Tx, key_id: str) -> None:
    """Remove a key with its aliases and material (explicitly: SQLite may run without FK cascades)."""
    tx.conn.execute(delete(t.kms_aliases).where(t.kms_aliases.c.key_id == key_id))
    tx.conn.execute(delete(t.kms_key_materials).where(t.kms_key_materials.c.key_id == key_id))
    tx.conn.execute(delete(t.kms_keys).where(t.kms_keys.c.key_id == key_id))


def keys_due_for_deletion(tx: Tx, now: float) -> list[KmsKeyRecord]:
    c = t.kms_keys.c
    # Locked; after waiting, PostgreSQL re-checks: a deletion canceled meanwhile is skipped.
    q = tx.locked(select(t.kms_keys).where(c.key_state == "PendingDeletion", c.deletion_date <= now)
                  .order_by(c.key_id))
    return [KmsKeyRecord.from_row(r) for r in tx.conn.execute(q)]


def keys_due_for_rotation(tx: Tx, now: float) -> list[KmsKeyRecord]:
    c = t.kms_keys.c
    q = tx.locked(select(t.kms_keys).where(  # locked and re-checked: a key is rotated once per due date
        c.rotation_enabled.is_(True), c.key_state == "Enabled",
        c.next_rotation_date.is_not(None), c.next_rotation_date <= now,
    ).order_by(c.key_id))
    return [KmsKeyRecord.from_row(r) for r in tx.conn.execute(q)]


# -- key material ---------------------------------------------------------------
def insert_material(tx: Tx, material: KmsMaterialRecord) -> None:
    tx.conn.execute(insert(t.kms_key_materials).values(
        key_id=material.key_id, version=material.version, created_date=material.created_date,
        rotation_type=material.rotation_type, material_wrapped=material.material_wrapped,
    ))


def get_material(tx: Tx, key_id: str, version: int) -> KmsMaterialRecord | None:
    c = t.kms_key_materials.c
    row = tx.conn.execute(select(t.kms_key_materials).where(c.key_id == key_id, c.version == version)).first()
    return KmsMaterialRecord(**row._mapping) if row else None


def list_materials(tx: Tx, key_id: str) -> list[KmsMaterialRecord]:
    """Every material version of a key, oldest first (wrapped bytes included)."""
    c = t.kms_key_materials.c
    q = select(t.kms_key_materials).where(c.key_id == key_id).order_by(c.version)
    return [KmsMaterialRecord(**r._mapping) for r in tx.conn.execute(q)]


def count_rotations(tx: Tx, key_id: str, rotation_type: str) -> int:
    c = t.kms_key_materials.c
    q = select(func.count()).select_from(t.kms_key_materials).where(
        c.key_id == key_id, c.rotation_type == rotation_type)
    return int(tx.conn.execute(q).scalar_one())


# -- aliases --------------------------------------------------------------------
def get_alias(tx: Tx, account_id: str, region: str, alias_name: str) -> KmsAliasRecord | None:
    c = t.kms_aliases.c
    q = select(t.kms_aliases).where(c.account_id == account_id, c.region == region, c.alias_name == alias_name)
    row = tx.conn.execute(q).first()
    return KmsAliasRecord(**row._mapping) if row else None


def insert_alias(tx: Tx, alias: KmsAliasRecord) -> None:
    tx.conn.execute(insert(t.kms_aliases).values(
        account_id=alias.account_id, region=alias.region, alias_name=alias.alias_name,
        key_id=alias.key_id, creation_date=alias.creation_date, last_updated_date=alias.last_updated_date,
    ))


def retarget_alias(tx: Tx, alias: KmsAliasRecord, key_id: str, now: float) -> None:
    c = t.kms_aliases.c
    tx.conn.execute(
        update(t.kms_aliases)
        .where(c.account_id == alias.account_id, c.region == alias.region, c.alias_name == alias.alias_name)
        .values(key_id=key_id, last_updated_date=now)
    )


def delete_alias(tx: Tx, alias: KmsAliasRecord) -> None:
    c = t.kms_aliases.c
    tx.conn.execute(delete(t.kms_aliases).where(
        c.account_id == alias.account_id, c.region == alias.region, c.alias_name == alias.alias_name))


def list_aliases(tx: Tx, account_id: str, region: str, key_id: str | None = None) -> list[KmsAliasRecord]:
    c = t.kms_aliases.c
    q = select(t.kms_aliases).where(c.account_id == account_id, c.region == region)
    if key_id is not None:
        q = q.where(c.key_id == key_id)
    return [KmsAliasRecord(**r._mapping) for r in tx.conn.execute(q.order_by(c.alias_name))]


# -- what depends on a key ------------------------------------------------------
def secrets_sealed_with(tx: Tx, key_arn: str) -> int:
    """How many secrets still hold a version whose data key this KMS key protects."""
    c = t.secret_versions.c
    q = select(func.count(func.distinct(c.secret_id))).where(c.key_id == key_arn)
    return int(tx.conn.execute(q).scalar_one())
