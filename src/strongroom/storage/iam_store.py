"""IAM and STS queries: roles, inline and managed policies, attachments, session credentials.

Functions take the connection of an open transaction (`Tx.conn`), so callers choose
the transaction's extent. Owners of inline policies and attachments are a `kind`:
"user" or "role".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from strongroom.storage import tables as t
from strongroom.storage.records import AccessKeyRecord, UserRecord

Kind = Literal["user", "role"]


class Conflict(Exception):
    """A row with the same key already exists (for example, a concurrent create won)."""


@contextmanager
def conflicts() -> Iterator[None]:
    """Turn the database's unique-key violations into Conflict (wrap the whole transaction)."""
    try:
        yield
    except IntegrityError:
        raise Conflict() from None


def _locked(conn: Connection, query: Any) -> Any:
    """`query` locking its rows when it runs in a PostgreSQL write transaction (read-modify-write)."""
    if conn.dialect.name != "sqlite" and conn.get_execution_options().get("strongroom_write"):
        return query.with_for_update()
    return query


def _tags(text: str | None) -> list[dict[str, str]]:
    return list(json.loads(text or "[]"))


@dataclass(slots=True)
class RoleRecord:
    account_id: str
    role_name: str
    role_id: str
    path: str
    assume_role_policy: str
    created_date: float
    description: str | None = None
    max_session_duration: int = 3600
    tags: list[dict[str, str]] = field(default_factory=list)
    last_used_date: float | None = None
    last_used_region: str | None = None

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:role{self.path}{self.role_name}"


@dataclass(slots=True)
class ManagedPolicyRecord:
    policy_id: str
    arn: str
    account_id: str
    policy_name: str
    path: str
    default_version_id: str
    created_date: float
    update_date: float
    description: str | None = None
    next_version: int = 2
    tags: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PolicyVersionRecord:
    policy_id: str
    version_id: str
    document: str
    created_date: float


@dataclass(frozen=True, slots=True)
class SessionRecord:
    access_key_id: str
    account_id: str
    secret_wrapped: bytes
    token_hash: str
    expiration: float
    role_name: str
    role_id: str
    session_name: str
    source_arn: str
    created_date: float
    session_tags: list[dict[str, str]] = field(default_factory=list)
    transitive_tag_keys: list[str] = field(default_factory=list)
    session_policy: str | None = None
    policy_arns: list[str] = field(default_factory=list)
    source_identity: str | None = None


def _row(record: Any, json_fields: tuple[str, ...] = ()) -> dict[str, Any]:
    out = {n: getattr(record, n) for n in record.__slots__}
    for n in json_fields:
        out[n] = json.dumps(out[n])
    return out


# -- users and access keys (tables of revision 0001) ----------------------------------------
def list_users(conn: Connection, account_id: str) -> list[UserRecord]:
    q = select(t.users).where(t.users.c.account_id == account_id).order_by(t.users.c.user_name)
    return [UserRecord(**r._mapping) for r in conn.execute(q)]


def delete_user(conn: Connection, account_id: str, user_name: str) -> None:
    conn.execute(delete(t.users).where(t.users.c.account_id == account_id, t.users.c.user_name == user_name))


def set_user_tags(conn: Connection, account_id: str, user_name: str, tags: list[dict[str, str]]) -> None:
    conn.execute(update(t.users).where(t.users.c.account_id == account_id, t.users.c.user_name == user_name)
                 .values(tags=json.dumps(tags)))


def list_access_keys(conn: Connection, account_id: str, user_name: str) -> list[AccessKeyRecord]:
    c = t.access_keys.c
    q = select(t.access_keys).where(c.account_id == account_id, c.user_name == user_name).order_by(c.created_date)
    return [AccessKeyRecord(**r._mapping) for r in conn.execute(q)]


def set_access_key_status(conn: Connection, access_key_id: str, status: str) -> None:
    conn.execute(update(t.access_keys).where(t.access_keys.c.access_key_id == access_key_id).values(status=status))


def delete_access_key(conn: Connection, access_key_id: str) -> None:
    conn.execute(delete(t.access_keys).where(t.access_keys.c.access_key_id == access_key_id))
    conn.execute(delete(t.access_key_last_used).where(t.access_key_last_used.c.access_key_id == access_key_id))


def get_last_used(conn: Connection, access_key_id: str) -> dict[str, Any] | None:
    q = select(t.access_key_last_used).where(t.access_key_last_used.c.access_key_id == access_key_id)
    row = conn.execute(q).first()
    return dict(row._mapping) if row else None


def record_last_used(conn: Connection, access_key_id: str, when: float, service: str, region: str) -> None:
    c = t.access_key_last_used.c
    values = {"last_used_date": when, "service_name": service, "region": region}
    where = c.access_key_id == access_key_id
    if conn.execute(update(t.access_key_last_used).where(where).values(**values)).rowcount:
        return
    try:
        with conn.begin_nested():  # two nodes may record a key's first use at once
            conn.execute(insert(t.access_key_last_used).values(access_key_id=access_key_id, **values))
    except IntegrityError:
        conn.execute(update(t.access_key_last_used).where(where).values(**values))


# -- roles -----------------------------------------------------------------------------------
def _role(row: Any) -> RoleRecord:
    data = dict(row._mapping)
    data["tags"] = _tags(data["tags"])
    return RoleRecord(**data)


def insert_role(conn: Connection, role: RoleRecord) -> None:
    conn.execute(insert(t.roles).values(**_row(role, ("tags",))))


def get_role(conn: Connection, account_id: str, role_name: str) -> RoleRecord | None:
    q = select(t.roles).where(t.roles.c.account_id == account_id, t.roles.c.role_name == role_name)
    row = conn.execute(_locked(conn, q)).first()  # AssumeRole and UpdateRole both rewrite the row
    return _role(row) if row else None


def list_roles(conn: Connection, account_id: str) -> list[RoleRecord]:
    q = select(t.roles).where(t.roles.c.account_id == account_id).order_by(t.roles.c.role_name)
    return [_role(r) for r in conn.execute(q)]


def update_role(conn: Connection, role: RoleRecord) -> None:
    values = _row(role, ("tags",))
    conn.execute(update(t.roles).where(t.roles.c.account_id == role.account_id,
                                       t.roles.c.role_name == role.role_name).values(**values))


def delete_role(conn: Connection, account_id: str, role_name: str) -> None:
    conn.execute(delete(t.roles).where(t.roles.c.account_id == account_id, t.roles.c.role_name == role_name))


# -- inline policies -------------------------------------------------------------------------
def _inline(kind: Kind) -> tuple[Table, Any]:
    table = t.user_policies if kind == "user" else t.role_policies
    return table, table.c.user_name if kind == "user" else table.c.role_name


def put_inline_policy(conn: Connection, kind: Kind, account_id: str, owner: str, name: str, document: str) -> None:
    table, col = _inline(kind)
    where = (table.c.account_id == account_id, col == owner, table.c.policy_name == name)
    if conn.execute(update(table).where(*where).values(document=document)).rowcount:
        return
    conn.execute(insert(table).values({table.c.account_id: account_id, col: owner, table.c.policy_name: name,
                                       table.c.document: document}))


def get_inline_policy(conn: Connection, kind: Kind, account_id: str, owner: str, name: str) -> str | None:
    table, col = _inline(kind)
    q = select(table.c.document).where(table.c.account_id == account_id, col == owner, table.c.policy_name == name)
    row = conn.execute(q).first()
    return str(row.document) if row else None


def list_inline_policies(conn: Connection, kind: Kind, account_id: str, owner: str) -> list[tuple[str, str]]:
    table, col = _inline(kind)
    q = (select(table.c.policy_name, table.c.document).where(table.c.account_id == account_id, col == owner)
         .order_by(table.c.policy_name))
    return [(r.policy_name, r.document) for r in conn.execute(q)]


def delete_inline_policy(conn: Connection, kind: Kind, account_id: str, owner: str, name: str) -> bool:
    table, col = _inline(kind)
    q = delete(table).where(table.c.account_id == account_id, col == owner, table.c.policy_name == name)
    return bool(conn.execute(q).rowcount)


# -- managed policies and their versions -----------------------------------------------------
def _policy(row: Any) -> ManagedPolicyRecord:
    data = dict(row._mapping)
    data["tags"] = _tags(data["tags"])
    return ManagedPolicyRecord(**data)


def insert_managed_policy(conn: Connection, policy: ManagedPolicyRecord, document: str) -> None:
    conn.execute(insert(t.managed_policies).values(**_row(policy, ("tags",))))
    insert_policy_version(conn, PolicyVersionRecord(policy.policy_id, policy.default_version_id, document,
                                                    policy.created_date))


def get_managed_policy(conn: Connection, arn: str) -> ManagedPolicyRecord | None:
    row = conn.execute(_locked(conn, select(t.managed_policies).where(t.managed_policies.c.arn == arn))).first()
    return _policy(row) if row else None


def list_managed_policies(conn: Connection, account_id: str) -> list[ManagedPolicyRecord]:
    c = t.managed_policies.c
    q = select(t.managed_policies).where(c.account_id == account_id).order_by(c.policy_name)
    return [_policy(r) for r in conn.execute(q)]


def update_managed_policy(conn: Connection, policy: ManagedPolicyRecord) -> None:
    conn.execute(update(t.managed_policies).where(t.managed_policies.c.policy_id == policy.policy_id)
                 .values(**_row(policy, ("tags",))))


def delete_managed_policy(conn: Connection, policy_id: str) -> None:
    conn.execute(delete(t.policy_versions).where(t.policy_versions.c.policy_id == policy_id))
    conn.execute(delete(t.managed_policies).where(t.managed_policies.c.policy_id == policy_id))


def insert_policy_version(conn: Connection, version: PolicyVersionRecord) -> None:
    conn.execute(insert(t.policy_versions).values(**_row(version)))


def get_policy_version(conn: Connection, policy_id: str, version_id: str) -> PolicyVersionRecord | None:
    c = t.policy_versions.c
    row = conn.execute(select(t.policy_versions).where(c.policy_id == policy_id, c.version_id == version_id)).first()
    return PolicyVersionRecord(**row._mapping) if row else None


def list_policy_versions(conn: Connection, policy_id: str) -> list[PolicyVersionRecord]:
    c = t.policy_versions.c
    q = select(t.policy_versions).where(c.policy_id == policy_id).order_by(c.created_date.desc())
    return [PolicyVersionRecord(**r._mapping) for r in conn.execute(q)]


def delete_policy_version(conn: Connection, policy_id: str, version_id: str) -> None:
    c = t.policy_versions.c
    conn.execute(delete(t.policy_versions).where(c.policy_id == policy_id, c.version_id == version_id))


# -- attachments -----------------------------------------------------------------------------
def _attachments(kind: Kind) -> tuple[Table, Any]:
    table = t.user_policy_attachments if kind == "user" else t.role_policy_attachments
    return table, table.c.user_name if kind == "user" else table.c.role_name


def attach_policy(conn: Connection, kind: Kind, account_id: str, owner: str, policy_id: str) -> None:
    table, col = _attachments(kind)
    exists = select(table.c.policy_id).where(table.c.account_id == account_id, col == owner,
                                             table.c.policy_id == policy_id)
    if conn.execute(exists).first() is None:
        conn.execute(insert(table).values({table.c.account_id: account_id, col: owner, table.c.policy_id: policy_id}))


def detach_policy(conn: Connection, kind: Kind, account_id: str, owner: str, policy_id: str) -> bool:
    table, col = _attachments(kind)
    q = delete(table).where(table.c.account_id == account_id, col == owner, table.c.policy_id == policy_id)
    return bool(conn.execute(q).rowcount)


def attached_policies(conn: Connection, kind: Kind, account_id: str, owner: str) -> list[ManagedPolicyRecord]:
    table, col = _attachments(kind)
    mp = t.managed_policies
    q = (select(mp).join(table, table.c.policy_id == mp.c.policy_id)
         .where(table.c.account_id == account_id, col == owner).order_by(mp.c.policy_name))
    return [_policy(r) for r in conn.execute(q)]


def attachment_count(conn: Connection, policy_id: str) -> int:
    total = 0
    for table in (t.user_policy_attachments, t.role_policy_attachments):
        q = select(func.count()).select_from(table).where(table.c.policy_id == policy_id)
        total += int(conn.execute(q).scalar_one())
    return total


def default_documents(conn: Connection, policy_ids: list[str]) -> dict[str, str]:
    """policy id -> the document of its default version."""
    if not policy_ids:
        return {}
    mp, pv = t.managed_policies, t.policy_versions
    q = (select(mp.c.policy_id, pv.c.document)
         .join(pv, (pv.c.policy_id == mp.c.policy_id) & (pv.c.version_id == mp.c.default_version_id))
         .where(mp.c.policy_id.in_(policy_ids)))
    return {r.policy_id: r.document for r in conn.execute(q)}


# -- session credentials ---------------------------------------------------------------------
def insert_session(conn: Connection, session: SessionRecord) -> None:
    conn.execute(insert(t.session_credentials).values(
        **_row(session, ("session_tags", "transitive_tag_keys", "policy_arns"))))


def get_session(conn: Connection, access_key_id: str) -> SessionRecord | None:
    q = select(t.session_credentials).where(t.session_credentials.c.access_key_id == access_key_id)
    row = conn.execute(q).first()
    if row is None:
        return None
    data = dict(row._mapping)
    for name in ("session_tags", "transitive_tag_keys", "policy_arns"):
        data[name] = json.loads(data[name] or "[]")
    return SessionRecord(**data)


def purge_expired_sessions(conn: Connection, expired_before: float) -> int:
    q = delete(t.session_credentials).where(t.session_credentials.c.expiration < expired_before)
    return int(conn.execute(q).rowcount)
