"""Schema migrations (Alembic), run by `strongroom init`, `serve` and `migrate`."""

from __future__ import annotations

import logging
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
