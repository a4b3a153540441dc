"""`strongroom backup FILE` and `strongroom restore FILE`: encrypted snapshots of the whole database.

A backup is one read transaction over every table (a REPEATABLE READ snapshot
on PostgreSQL, a WAL read transaction on SQLite), so it is consistent while
the server keeps serving. It is written as a backend-neutral stream
(storage/snapshot.py) sealed under a fresh key wrapped by the root key
(crypto/backupfile.py): restoring needs the same root key, and the file's
header names that key so a restore can say which one is missing.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError

from strongroom import __version__
from strongroom.cli.options import data_dir_option, database_option, initialized_store
from strongroom.cli.output import console, fail
from strongroom.config import Settings, load_settings
from strongroom.crypto.backupfile import BackupError, BackupWriter, WrongRootKey, read_header, read_plaintext
from strongroom.crypto.rootkey import RootKey, RootKeyError
from strongroom.storage import open_store, snapshot
from strongroom.storage.migrate import head_revision, upgrade


def _root_key(settings: Settings, *, needed_for: str) -> RootKey:
    from strongroom.server import load_root_key

    try:
        return load_root_key(settings)
    except RootKeyError as exc:
        fail(f"{needed_for} needs the root key: {exc}")


@click.command()
@data_dir_option
@database_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def backup(data_dir: str | None, database_url: str | None, file: Path) -> None:
    """Write a consistent, encrypted snapshot of the database to FILE (the server may keep running).

    Restoring it needs the root key this deployment uses now: keep the two apart.
    """
    settings = load_settings(data_dir, database_url)
    root = _root_key(settings, needed_for="a backup")
    if file.exists():
        fail(f"{file} exists; choose a new file name")
    if not file.absolute().parent.is_dir():
        fail(f"{file.absolute().parent} is not a directory; create it first")
    store = initialized_store(settings, pool_size=1)
    writer = None
    try:
        with store.snapshot() as tx:
            revision = MigrationContext.configure(tx.conn).get_current_revision()
            if revision is None:
                fail("the database holds no strongroom schema (run `strongroom init` or `strongroom migrate`)")
            writer = BackupWriter(file, root, schema_revision=revision, source_backend=store.engine.dialect.name,
                                  created=time.time(), strongroom_version=__version__)
            for line in snapshot.dump(tx, revision):
                writer.write(line)
        writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        store.close()
    console.print(f"backup written to {file} (schema {revision}, root key {root.key_id})")


@click.command()
@data_dir_option
@database_option
@click.option("--force", is_flag=True, help="Replace whatever the database holds (every table is dropped).")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def restore(data_dir: str | None, database_url: str | None, force: bool, file: Path) -> None:
    """Restore a backup into an empty database (of either kind: SQLite and PostgreSQL mix freely).

    Stop every node first (or restore into a new database and point them at it).
    The configured root key must be the one the backup was made under.
    """
    settings = load_settings(data_dir, database_url)
    try:
        header = read_header(file)
    except (BackupError, OSError) as exc:
        fail(f"cannot read {file}: {exc}")
    root = _root_key(settings, needed_for=f"restoring (the backup was made under root key {header.root_key_id})")
    store = open_store(settings.database_url, pool_size=1)
    try:
        chunks = read_plaintext(file, root)
        revision, lines = snapshot.read_revision(chunks)  # decrypts the first segment: checks the key now
        if not snapshot.is_empty(store):
            if not force:
                fail("the database is not empty; restore into an empty one, or pass --force to replace it")
            snapshot.drop_everything(store)
        try:
            upgrade(store, revision or "head")
        except CommandError:
            fail(f"the backup's schema revision {revision} is unknown to this strongroom {__version__} "
                  f"(its latest is {head_revision(store)}): restore with the release that made it, or a newer one")
        counts = snapshot.load(store, lines)
        upgrade(store)  # a backup of an older release: bring its data up to this release's schema
    except WrongRootKey as exc:
        fail(f"wrong root key: {exc}. Configure the root key the backup was made under "
              f"({header.root_key_id}) and try again")
    except (BackupError, snapshot.SnapshotError) as exc:
        fail(f"cannot restore {file}: {exc}")
    finally:
        store.close()
    console.print(f"restored {sum(counts.values())} rows in {len(counts)} tables from {file} "
                  f"(backup of {header.source_backend}, schema {revision})")
