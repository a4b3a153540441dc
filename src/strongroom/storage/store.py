"""The Store: transactions over the schema, the same queries on every backend.

Writes run in a transaction that takes the write lock up front (SQLite's
BEGIN IMMEDIATE, row locks on PostgreSQL), so read-modify-write sequences such
as moving staging labels never interleave.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, and_, create_engine, delete, event, func, insert, select, update
from sqlalchemy.engine import Connection

from strongroom.storage import tables as t
from strongroom.storage.records import AccessKeyRecord, SecretRecord, UserRecord, VersionRecord


class Store:
    """A database holding strongroom's state; every node of a deployment shares one."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"

    @contextmanager
    def write(self) -> Iterator["Tx"]:
        with self.engine.connect() as conn:
            conn = conn.execution_options(strongroom_write=True)
            with conn.begin():
                yield Tx(conn, self.is_sqlite, write=True)

    @contextmanager
    def read(self) -> Iterator["Tx"]:
        with self.engine.connect() as conn:
            with conn.begin():
                yield Tx(conn, self.is_sqlite, write=False)

    def close(self) -> None:
        self.engine.dispose()


def open_store(url: str, *, pool_size: int = 8) -> Store:
    """Open (not migrate) the database at a SQLAlchemy URL."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=pool_size,
        )
        _configure_sqlite(engine)
    else:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
    return Store(engine)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so BEGIN IMMEDIATE is ours to emit.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("strongroom_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class Tx:
    """Queries inside one transaction."""

    def __init__(self, conn: Connection, is_sqlite: bool, write: bool):
        self.conn = conn
        self.is_sqlite = is_sqlite
        self.write = write

    def ping(self) -> None:
        self.conn.exec_driver_sql("SELECT 1")

    # -- principals -------------------------------------------------------
    def insert_account(self, account_id: str, name: str, now: float) -> None:
        self.conn.execute(insert(t.accounts).values(account_id=account_id, name=name, created_date=now))

    def account_exists(self, account_id: str) -> bool:
        q = select(t.accounts.c.account_id).where(t.accounts.c.account_id == account_id)
        return self.conn.execute(q).first() is not None

    def list_accounts(self) -> list[dict[str, Any]]:
        return [dict(r._mapping) for r in self.conn.execute(select(t.accounts))]

    def insert_user(self, user: UserRecord) -> None:
        self.conn.execute(insert(t.users).values(**_asdict(user)))

    def get_user(self, account_id: str, user_name: str) -> UserRecord | None:
        q = select(t.users).where(t.users.c.account_id == account_id, t.users.c.user_name == user_name)
        row = self.conn.execute(q).first()
        return UserRecord(**row._mapping) if row else None

    def insert_access_key(self, key: AccessKeyRecord) -> None:
        self.conn.execute(insert(t.access_keys).values(**_asdict(key)))

    def get_access_key(self, access_key_id: str) -> AccessKeyRecord | None:
        q = select(t.access_keys).where(t.access_keys.c.access_key_id == access_key_id)
        row = self.conn.execute(q).first()
        return AccessKeyRecord(**row._mapping) if row else None

    # -- secrets ----------------------------------------------------------
    def _secrets_query(self):  # type: ignore[no-untyped-def]
        q = select(t.secrets)
        if self.write and not self.is_sqlite:
            q = q.with_for_update()
        return q

    def secret_by_arn(self, arn: str) -> SecretRecord | None:
        row = self.conn.execute(self._secrets_query().where(t.secrets.c.arn == arn)).first()
        return SecretRecord.from_row(row) if row else None

    def secret_by_partial_arn(self, partial_arn: str) -> SecretRecord | None:
        """An ARN without its 6-character suffix."""
        prefix = partial_arn + "-"
        q = self._secrets_query().where(
            t.secrets.c.arn.startswith(prefix, autoescape=True),
            func.length(t.secrets.c.arn) == len(prefix) + 6,
        )
        row = self.conn.execute(q).first()
        return SecretRecord.from_row(row) if row else None

    def secret_by_name(self, account_id: str, region: str, name: str) -> SecretRecord | None:
        q = self._secrets_query().where(
            t.secrets.c.account_id == account_id,
            t.secrets.c.region == region,
            t.secrets.c.name == name,
        )
        row = self.conn.execute(q).first()
        return SecretRecord.from_row(row) if row else None

    def list_secrets(self, account_id: str, region: str) -> list[SecretRecord]:
        q = select(t.secrets).where(t.secrets.c.account_id == account_id, t.secrets.c.region == region)
        return [SecretRecord.from_row(r) for r in self.conn.execute(q)]

    def insert_secret(self, secret: SecretRecord) -> int:
        result = self.conn.execute(insert(t.secrets).values(**secret.to_row()))
        secret.id = int(result.inserted_primary_key[0])
        return secret.id

    def update_secret(self, secret: SecretRecord) -> None:
        row = secret.to_row()
        row.pop("id", None)
        self.conn.execute(update(t.secrets).where(t.secrets.c.id == secret.id).values(**row))

    def delete_secret(self, secret_id: int) -> None:
        self.conn.execute(delete(t.version_stages).where(t.version_stages.c.secret_id == secret_id))
        self.conn.execute(delete(t.secret_versions).where(t.secret_versions.c.secret_id == secret_id))
        self.conn.execute(delete(t.secrets).where(t.secrets.c.id == secret_id))

    def secrets_due_for_purge(self, deleted_before: float) -> list[SecretRecord]:
        q = select(t.secrets).where(
            t.secrets.c.deletion_date.is_not(None), t.secrets.c.deletion_date <= deleted_before
        )
        return [SecretRecord.from_row(r) for r in self.conn.execute(q)]

    def touch_secret_accessed(self, secret_id: int, day: float) -> None:
        self.conn.execute(
            update(t.secrets)
            .where(t.secrets.c.id == secret_id)
            .where((t.secrets.c.last_accessed_date.is_(None)) | (t.secrets.c.last_accessed_date < day))
            .values(last_accessed_date=day)
        )

    # -- versions and staging labels --------------------------------------
    def versions(self, secret_id: int) -> list[VersionRecord]:
        """Every version of a secret, oldest first, with its staging labels."""
        q = select(t.secret_versions).where(t.secret_versions.c.secret_id == secret_id)
        versions = [VersionRecord.from_row(r) for r in self.conn.execute(q.order_by(t.secret_versions.c.seq))]
        by_id = {v.version_id: v for v in versions}
        for stage, version_id in sorted(self.stages(secret_id).items()):
            if version_id in by_id:
                by_id[version_id].stages.append(stage)
        return versions

    def version(self, secret_id: int, version_id: str) -> VersionRecord | None:
        q = select(t.secret_versions).where(
            t.secret_versions.c.secret_id == secret_id, t.secret_versions.c.version_id == version_id
        )
        row = self.conn.execute(q).first()
        if row is None:
            return None
        v = VersionRecord.from_row(row)
        v.stages = sorted(s for s, vid in self.stages(secret_id).items() if vid == version_id)
        return v

    def stages(self, secret_id: int) -> dict[str, str]:
        q = select(t.version_stages.c.stage, t.version_stages.c.version_id).where(
            t.version_stages.c.secret_id == secret_id
        )
        return {r.stage: r.version_id for r in self.conn.execute(q)}

    def insert_version(self, version: VersionRecord) -> None:
        self.conn.execute(insert(t.secret_versions).values(**version.to_row()))

    def set_version_value(self, version: VersionRecord) -> None:
        self.conn.execute(
            update(t.secret_versions)
            .where(
                t.secret_versions.c.secret_id == version.secret_id,
                t.secret_versions.c.version_id == version.version_id,
            )
            .values(
                value_type=version.value_type,
                key_id=version.key_id,
                wrapped_key=version.wrapped_key,
                ciphertext=version.ciphertext,
            )
        )

    def delete_versions(self, secret_id: int, version_ids: Iterable[str]) -> None:
        ids = list(version_ids)
        if ids:
            self.conn.execute(
                delete(t.secret_versions).where(
                    t.secret_versions.c.secret_id == secret_id, t.secret_versions.c.version_id.in_(ids)
                )
            )

    def replace_stages(self, secret_id: int, stages: dict[str, str]) -> None:
        """Make the secret's label → version map exactly `stages`."""
        current = self.stages(secret_id)
        gone = [s for s in current if s not in stages or stages[s] != current[s]]
        if gone:
            self.conn.execute(
                delete(t.version_stages).where(
                    t.version_stages.c.secret_id == secret_id, t.version_stages.c.stage.in_(gone)
                )
            )
        new = [
            {"secret_id": secret_id, "stage": s, "version_id": v}
            for s, v in stages.items()
            if current.get(s) != v
        ]
        if new:
            self.conn.execute(insert(t.version_stages), new)

    def touch_version_accessed(self, secret_id: int, version_id: str, day: float) -> None:
        c = t.secret_versions.c
        self.conn.execute(
            update(t.secret_versions)
            .where(and_(c.secret_id == secret_id, c.version_id == version_id))
            .where((c.last_accessed_date.is_(None)) | (c.last_accessed_date < day))
            .values(last_accessed_date=day)
        )


def _asdict(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__slots__}
