"""The Store: transactions over the schema, the same queries on every backend.

Writes run in a transaction that takes the write lock up front (SQLite's
BEGIN IMMEDIATE, row locks on PostgreSQL), so read-modify-write sequences such
as moving staging labels never interleave.

PostgreSQL runs writes at READ COMMITTED and serializes each read-modify-write
on the row that owns the data (the secret row for its versions and labels, the
KMS key row for its material, the account row for IAM entities), taken with
SELECT ... FOR UPDATE before anything is read: a writer that waited for the
lock then reads what its predecessor committed, so it neither aborts nor loses
that write. Reads run at REPEATABLE READ: one snapshot per transaction, the
same view SQLite's WAL gives a read transaction. docs/deployment.md explains
the choice; storage/retry.py re-runs the rare transaction a deadlock or a
concurrent insert of the same key ends.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Engine, and_, bindparam, create_engine, delete, event, func, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select

from strongroom.storage import notify
from strongroom.storage import tables as t
from strongroom.storage.stamp import ChangeStamp, stamp_for
from strongroom.storage.records import AccessKeyRecord, SecretRecord, UserRecord, VersionRecord

if TYPE_CHECKING:
    from strongroom.storage.notify import ChangeFeed

Q = TypeVar("Q", bound=Select[Any])

# Change-event topics the database's triggers publish (migration 0008): any change to a secret,
# its versions or its labels (key: the secret's id), and any change to a KMS key row (key: "*").
SECRET_CHANGED = "secret"
KMS_KEYS_CHANGED = "kms-keys"


class WouldBlock(BaseException):
    """Raised instead of touching the database while `no_blocking` is set.

    The gateway runs requests it can usually serve from memory on the event loop with
    `no_blocking` set, and re-runs one that raised this in a worker thread. A BaseException,
    so that no `except Exception` on the way turns it into an error answer.
    """


BUSY_TIMEOUT_S = 30  # how long a SQLite writer waits for the write lock before it gives up
no_blocking: ContextVar[bool] = ContextVar("strongroom_no_blocking", default=False)


def _guard() -> None:
    if no_blocking.get():
        raise WouldBlock()


class Store:
    """A database holding strongroom's state; every node of a deployment shares one."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        # The running server's change feed: committed events reach this process's caches
        # through it at once; other processes hear them from the database (storage/notify.py).
        self.feed: ChangeFeed | None = None
        # SQLite takes one writer at a time; the others sleep in its busy handler, backing off
        # up to 100 ms, in no order. Writers of this process queue on this lock instead, in
        # turn and awake (re-entrant: a nested write fails in SQLite, not here). PostgreSQL
        # locks rows, and writers run side by side.
        self._write_lock = threading.RLock() if self.is_sqlite else None
        # SQLite: tells the other processes on this file that a write committed (storage/stamp.py).
        self.stamp: ChangeStamp | None = None
        if self.is_sqlite:
            try:
                self.stamp = stamp_for(engine.url.database)
            except OSError:  # a directory we cannot create files in: SQLite cannot write here either
                self.stamp = None

    @contextmanager
    def write(self, announce: bool = True) -> Iterator["Tx"]:
        """A write transaction. `announce=False` for one that changes nothing any process
        caches (the audit trail, leases): other processes are then not sent to look."""
        _guard()
        with self.writer_turn(), self.engine.connect() as conn:
            conn = conn.execution_options(strongroom_write=True)
            tx = Tx(conn, self.is_sqlite, write=True)
            with conn.begin():
                yield tx
            if announce and self.stamp is not None:
                self.stamp.bump()
            # Committed: only now may caches forget, or they could reload the old row.
            for topic, key in tx.events:
                if self.feed is not None:
                    self.feed.deliver(topic, key)

    @contextmanager
    def writer_turn(self) -> Iterator[None]:
        """This process's turn to write (SQLite), given up after as long as SQLite would wait."""
        lock = self._write_lock
        if lock is None:
            yield
            return
        if not lock.acquire(timeout=BUSY_TIMEOUT_S):
            raise TimeoutError("timed out waiting for this process's other writers")
        try:
            yield
        finally:
            lock.release()

    @contextmanager
    def read(self) -> Iterator["Tx"]:
        _guard()
        with self.engine.connect() as conn:
            if not self.is_sqlite:
                # One snapshot per transaction, as a SQLite read transaction sees: a reader
                # never pairs a label read before a concurrent move with versions read after.
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield Tx(conn, self.is_sqlite, write=False)

    @contextmanager
    def snapshot(self) -> Iterator["Tx"]:
        """A read-only transaction over one consistent snapshot of every table (for backups)."""
        _guard()
        with self.engine.connect() as conn:
            if not self.is_sqlite:
                conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            with conn.begin():
                yield Tx(conn, self.is_sqlite, write=False)

    def close(self) -> None:
        self.engine.dispose()
        if self.stamp is not None:
            self.stamp.close()
            self.stamp = None


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
        engine = create_engine(
            postgresql_url(url),
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,  # a connection the server or a failover closed is replaced, not used
            # TCP keepalives: a vanished database is noticed in seconds, not hours.
            connect_args={"application_name": "strongroom", "keepalives": 1, "keepalives_idle": 10,
                          "keepalives_interval": 5, "keepalives_count": 3},
        )
    return Store(engine)


def postgresql_url(url: str) -> str:
    """postgresql://... as SQLAlchemy's psycopg 3 URL (the form operators write works as is)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so BEGIN IMMEDIATE is ours to emit.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("strongroom_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class Tx:
    """Queries inside one transaction."""

    def __init__(self, conn: Connection, is_sqlite: bool, write: bool, *, share: bool = False,
                 events: list[tuple[str, str]] | None = None):
        self.conn = conn
        self.is_sqlite = is_sqlite
        self.write = write
        self.share = share
        self.events: list[tuple[str, str]] = [] if events is None else events

    def ping(self) -> None:
        self.conn.exec_driver_sql("SELECT 1")

    # -- locking and change events -----------------------------------------
    def locked(self, query: Q) -> Q:
        """`query` taking the row locks of this transaction: FOR UPDATE in a write, FOR SHARE
        in a sharing() view, none in a read or on SQLite (whose writers already run one at a time)."""
        if self.is_sqlite or not self.write:
            return query
        return query.with_for_update(read=self.share)

    def sharing(self) -> "Tx":
        """This transaction, but its lookups take share locks: for rows it uses without changing
        (a KMS key sealing a secret's value), so concurrent users of the row don't queue."""
        return Tx(self.conn, self.is_sqlite, self.write, share=True, events=self.events)

    def lock_account(self, account_id: str) -> None:
        """Serialize this write with every other write that locks the same account (IAM changes)."""
        if self.write and not self.is_sqlite:
            q = select(t.accounts.c.account_id).where(t.accounts.c.account_id == account_id)
            self.conn.execute(q.with_for_update())

    def publish(self, topic: str, key: str = "*") -> None:
        """Announce a change to every node's caches once (and only if) this transaction commits."""
        notify.send(self.conn, self.is_sqlite, topic, key)
        self.events.append((topic, key))

    def _secret_changed(self, secret_id: int | None) -> None:
        """This process's caches forget the secret at commit. Other processes hear of it from
        the database's own triggers (migration 0008), which no writer can bypass."""
        event = (SECRET_CHANGED, str(secret_id) if secret_id is not None else "*")
        if event not in self.events:
            self.events.append(event)

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
    def _secrets_query(self) -> Select[Any]:
        # In a write, every read of a secret locks its row: the secret row guards its versions
        # and labels, so two writers of one secret take turns (and never deadlock on children).
        return self.locked(select(t.secrets))

    def secret_by_arn(self, arn: str) -> SecretRecord | None:
        q = _SECRET_BY_ARN if self.is_sqlite or not self.write else self.locked(_SECRET_BY_ARN)
        row = self.conn.execute(q, {"arn": arn}).first()
        return SecretRecord.from_row(row) if row else None

    def secret_by_partial_arn(self, partial_arn: str) -> SecretRecord | None:
        """An ARN without its 6-character suffix."""
        prefix = partial_arn + "-"
        # substr, not LIKE: SQLite's LIKE ignores case, PostgreSQL's does not; ARNs are case-sensitive.
        q = self._secrets_query().where(
            func.substr(t.secrets.c.arn, 1, len(prefix)) == prefix,
            func.length(t.secrets.c.arn) == len(prefix) + 6,
        )
        row = self.conn.execute(q).first()
        return SecretRecord.from_row(row) if row else None

    def secret_by_name(self, account_id: str, region: str, name: str) -> SecretRecord | None:
        q = _SECRET_BY_NAME if self.is_sqlite or not self.write else self.locked(_SECRET_BY_NAME)
        row = self.conn.execute(q, {"a": account_id, "r": region, "n": name}).first()
        return SecretRecord.from_row(row) if row else None

    def secrets_in_order(self, account_id: str, region: str, *, sort_by: str, descending: bool,
                         after: tuple[Any, int] | None = None, include_deleted: bool = False,
                         name_prefixes: list[str] | None = None, tag_key_prefixes: list[str] | None = None,
                         tag_value_prefixes: list[str] | None = None, batch: int = 200) -> Iterator[SecretRecord]:
        """An account's secrets in ListSecrets order (`sort_by` column, then id), from `after` on.

        Read in keyset batches, so a page costs what it returns (plus what the caller's
        filters skip), not the size of the account. The prefixes narrow in SQL to names, tag
        keys or tag values starting with any of them; they may let through more than they
        should (the caller's filters decide), never less.
        """
        s = t.secrets.c
        key = {"created-date": s.created_date, "last-changed-date": s.last_changed_date,
               "last-accessed-date": func.coalesce(s.last_accessed_date, 0.0), "name": s.name}[sort_by]
        q = select(t.secrets).where(s.account_id == account_id, s.region == region)
        if not include_deleted:
            q = q.where(s.deleted_date.is_(None))
        if name_prefixes:
            if self.is_sqlite and self._few_named(account_id, region, name_prefixes):
                # Few names match: read them through the name index and sort them, instead of
                # walking the whole account in order to find them.
                q = q.where(or_(*[_name_range(s.name, p) for p in name_prefixes])) \
                     .with_hint(t.secrets, "INDEXED BY ix_secrets_account_region", "sqlite")
            else:
                q = q.where(or_(*[func.substr(s.name, 1, len(p)) == p for p in name_prefixes]))
        for member, prefixes in (("Key", tag_key_prefixes), ("Value", tag_value_prefixes)):
            if prefixes:  # tags are stored as JSON (records.py): match the member's text as written
                q = q.where(or_(*[s.tags.contains(f'"{member}": {json.dumps(p)[:-1]}', autoescape=True)
                                  for p in prefixes]))
        q = q.order_by(key.desc(), s.id.desc()) if descending else q.order_by(key.asc(), s.id.asc())
        while True:
            page = q
            if after is not None:
                value, last_id = after
                beyond = (key < value) | ((key == value) & (s.id < last_id)) if descending else \
                    (key > value) | ((key == value) & (s.id > last_id))
                page = q.where(beyond)
            rows = [SecretRecord.from_row(r) for r in self.conn.execute(page.limit(batch))]
            yield from rows
            if len(rows) < batch:
                return
            last = rows[-1]
            after = (_sort_value(last, sort_by), int(last.id))  # type: ignore[arg-type]

    def _few_named(self, account_id: str, region: str, prefixes: list[str], few: int = 2000) -> bool:
        """Whether at most `few` secrets have a name starting with one of `prefixes` (counted
        in the name index, stopping past `few`)."""
        s = t.secrets.c
        inner = select(s.id).where(s.account_id == account_id, s.region == region,
                                   or_(*[_name_range(s.name, p) for p in prefixes])).limit(few + 1)
        return int(self.conn.execute(select(func.count()).select_from(inner.subquery())).scalar_one()) <= few

    def list_secrets(self, account_id: str, region: str) -> list[SecretRecord]:
        q = select(t.secrets).where(t.secrets.c.account_id == account_id, t.secrets.c.region == region)
        return [SecretRecord.from_row(r) for r in self.conn.execute(q)]

    def insert_secret(self, secret: SecretRecord) -> int:
        result = self.conn.execute(insert(t.secrets).values(**secret.to_row()))
        secret.id = int(result.inserted_primary_key[0])
        self._secret_changed(secret.id)
        return secret.id

    def update_secret(self, secret: SecretRecord) -> None:
        row = secret.to_row()
        row.pop("id", None)
        self.conn.execute(update(t.secrets).where(t.secrets.c.id == secret.id).values(**row))
        self._secret_changed(secret.id)

    def delete_secret(self, secret_id: int) -> None:
        self._secret_changed(secret_id)
        self.conn.execute(delete(t.version_stages).where(t.version_stages.c.secret_id == secret_id))
        self.conn.execute(delete(t.secret_versions).where(t.secret_versions.c.secret_id == secret_id))
        self.conn.execute(delete(t.secrets).where(t.secrets.c.id == secret_id))

    def secrets_due_for_purge(self, deleted_before: float) -> list[SecretRecord]:
        # Locked, and PostgreSQL re-checks the condition after waiting: a secret restored
        # meanwhile by another node is skipped, not purged.
        q = self.locked(select(t.secrets).where(
            t.secrets.c.deletion_date.is_not(None), t.secrets.c.deletion_date <= deleted_before
        ).order_by(t.secrets.c.id))  # one lock order for every locker of many rows: no deadlock
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

    def version(self, secret_id: int, version_id: str, stages: dict[str, str] | None = None) -> VersionRecord | None:
        """One version with its labels; `stages`, the secret's label map if the caller just read it."""
        row = self.conn.execute(_VERSION, {"s": secret_id, "v": version_id}).first()
        if row is None:
            return None
        v = VersionRecord.from_row(row)
        stages = self.stages(secret_id) if stages is None else stages
        v.stages = sorted(s for s, vid in stages.items() if vid == version_id)
        return v

    def stages(self, secret_id: int) -> dict[str, str]:
        return {r.stage: r.version_id for r in self.conn.execute(_STAGES, {"s": secret_id})}

    def stages_of(self, secret_ids: list[int]) -> dict[int, dict[str, str]]:
        """`stages` of many secrets in one query (a ListSecrets page)."""
        out: dict[int, dict[str, str]] = {i: {} for i in secret_ids}
        if secret_ids:
            st = t.version_stages.c
            q = select(st.secret_id, st.stage, st.version_id).where(st.secret_id.in_(secret_ids))
            for r in self.conn.execute(q):
                out[r.secret_id][r.stage] = r.version_id
        return out

    def insert_version(self, version: VersionRecord) -> None:
        self.conn.execute(insert(t.secret_versions).values(**version.to_row()))
        self._secret_changed(version.secret_id)

    def set_version_value(self, version: VersionRecord) -> None:
        self._secret_changed(version.secret_id)
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
            self._secret_changed(secret_id)
            self.conn.execute(
                delete(t.secret_versions).where(
                    t.secret_versions.c.secret_id == secret_id, t.secret_versions.c.version_id.in_(ids)
                )
            )

    def replace_stages(self, secret_id: int, stages: dict[str, str]) -> None:
        """Make the secret's label → version map exactly `stages`."""
        current = self.stages(secret_id)
        gone = [s for s in current if s not in stages or stages[s] != current[s]]
        new = [
            {"secret_id": secret_id, "stage": s, "version_id": v}
            for s, v in stages.items()
            if current.get(s) != v
        ]
        if gone or new:
            self._secret_changed(secret_id)
        if gone:
            self.conn.execute(
                delete(t.version_stages).where(
                    t.version_stages.c.secret_id == secret_id, t.version_stages.c.stage.in_(gone)
                )
            )
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


# Built once: building a statement per call (coercing every operand) cost more than running it.
_SECRET_BY_NAME = select(t.secrets).where(t.secrets.c.account_id == bindparam("a"),
                                          t.secrets.c.region == bindparam("r"), t.secrets.c.name == bindparam("n"))
_SECRET_BY_ARN = select(t.secrets).where(t.secrets.c.arn == bindparam("arn"))
_STAGES = select(t.version_stages.c.stage, t.version_stages.c.version_id).where(
    t.version_stages.c.secret_id == bindparam("s"))
_VERSION = select(t.secret_versions).where(t.secret_versions.c.secret_id == bindparam("s"),
                                           t.secret_versions.c.version_id == bindparam("v"))


def _asdict(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__slots__}


def _name_range(column: Any, prefix: str) -> Any:
    """Names starting with `prefix`, as an index range (SQLite compares text by code point)."""
    lower = column >= prefix
    last = ord(prefix[-1]) if prefix else 0x10FFFF
    if last >= 0x10FFFF:
        return lower
    return and_(lower, column < prefix[:-1] + chr(last + 1))


def _sort_value(secret: SecretRecord, sort_by: str) -> Any:
    """The value ListSecrets sorts `secret` by (what `secrets_in_order` compares in SQL)."""
    if sort_by == "name":
        return secret.name
    if sort_by == "last-accessed-date":
        return secret.last_accessed_date or 0.0
    return secret.created_date if sort_by == "created-date" else secret.last_changed_date
