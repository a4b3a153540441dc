"""Schema migrations (Alembic), run by `strongroom init`, `serve` and `migrate`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import text

from strongroom.storage.store import Store

log = logging.getLogger("strongroom.migrate")
_SCRIPTS = Path(__file__).with_name("migrations")
MIGRATION_LOCK = 0x5354524F4E47  # "STRONG": the advisory lock key migrations serialize on


def _config(store: Store) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    return cfg


def upgrade(store: Store, revision: str = "head") -> None:
    """Apply the migrations up to `revision`; safe when several nodes start at once.

    Every node's `serve` runs this at start. The migrations run in one transaction
    that first takes the database's write lock (SQLite's BEGIN IMMEDIATE, an advisory
    lock on PostgreSQL, whose DDL is transactional): a second node waits, then finds
    the schema current and changes nothing.
    """
    cfg = _config(store)
    with store.engine.connect() as conn:
        conn = conn.execution_options(strongroom_write=True)
        with conn.begin():
            if not store.is_sqlite:
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            current = MigrationContext.configure(conn).get_current_revision()
            if revision == "head" and current is not None and not _known(cfg, current):
                # A newer release migrated (expanded) the schema during a rolling upgrade: this
                # node's release still works on it (docs/deployment.md), so it starts anyway.
                log.warning("the database schema is newer than this release knows; not migrating",
                            extra={"schema_revision": current, "release_head": head_revision(store)})
                return
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)


def _known(cfg: Config, revision: str) -> bool:
    try:
        ScriptDirectory.from_config(cfg).get_revision(revision)
    except CommandError:
        return False
    return True


def current_revision(store: Store) -> str | None:
    with store.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(store: Store) -> str | None:
    return ScriptDirectory.from_config(_config(store)).get_current_head()


# How the database's schema relates to this release (schema_state).
EMPTY = "empty"  # no strongroom schema at all: `strongroom init` or `strongroom migrate` makes it
BEHIND = "behind"  # older than this release: `strongroom migrate` brings it up; this release refuses to use it
CURRENT = "current"  # exactly this release's head
NEWER = "newer"  # a revision this release does not know: a newer release expanded it (rolling upgrade)


@dataclass(frozen=True)
class SchemaState:
    current: str | None  # the revision stamped in the database (alembic_version)
    head: str | None  # the newest revision this release ships
    state: str  # EMPTY, BEHIND, CURRENT or NEWER

    @property
    def usable(self) -> bool:
        """Whether this release may run on the schema: its own, or a newer release's expansion of it.

        Migrations only add (expand) until a later release contracts (docs/deployment.md), so
        a database a newer release migrated still has everything this release reads and writes.
        """
        return self.state in (CURRENT, NEWER)


def schema_state(store: Store) -> SchemaState:
    current, head = current_revision(store), head_revision(store)
    if current is None:
        state = EMPTY
    elif current == head:
        state = CURRENT
    elif _known(_config(store), current):
        state = BEHIND
    else:
        state = NEWER
    return SchemaState(current, head, state)
