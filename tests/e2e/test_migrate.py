"""`strongroom migrate` and the rolling-upgrade rules of docs/deployment.md, on both backends.

- A database behind this release: `migrate --check` exits 1 and says so, the admin CLI
  refuses it, `migrate` brings it to this release's head, `--check` then exits 0.
- A database a newer release expanded (an extra column and table, and a revision this
  release does not know): `serve` still serves, the admin CLI still works, both say the
  schema is newer, and `migrate` leaves it alone.
- Statically: every migration only adds, unless marked as a contract step, and the
  revisions form one linear chain with one head.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory

from strongroom.storage import migrate, open_store
from tests.conftest import Backend, Server, start_server, strongroom

VERSIONS = Path(migrate.__file__).with_name("migrations") / "versions"
FUTURE_REVISION = "9999_from_a_newer_release"  # a revision id no release of this code ships


# -- helpers ------------------------------------------------------------------------------------
def _env(home: Path) -> dict[str, str]:
    """An environment naming the data directory but no database: tests pass --database."""
    env = {k: v for k, v in os.environ.items() if k not in ("STRONGROOM_DATABASE_URL", "AWS_PROFILE")}
    env["STRONGROOM_DATA_DIR"] = str(home / "data")
    env["AWS_CONFIG_FILE"] = str(home / "aws" / "config")
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(home / "aws" / "credentials")
    return env


def _database_url(home: Path, backend: Backend) -> str:
    return backend.new_database() or f"sqlite:///{home / 'data' / 'strongroom.db'}"


def _sql(url: str, statement: str) -> list[tuple[Any, ...]]:
    from sqlalchemy import text

    store = open_store(url, pool_size=1)
    try:
        with store.engine.begin() as conn:
            result = conn.execute(text(statement))
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        store.close()


def _downgrade(url: str, revision: str) -> None:
    """Take the schema back to `revision`, as a database last migrated by an older release is."""
    store = open_store(url, pool_size=1)
    try:
        cfg = migrate._config(store)
        with store.engine.connect() as conn:
            conn = conn.execution_options(strongroom_write=True)
            with conn.begin():
                cfg.attributes["connection"] = conn
                command.downgrade(cfg, revision)
    finally:
        store.close()


def _revision(url: str) -> str | None:
    store = open_store(url, pool_size=1)
    try:
        return migrate.current_revision(store)
    finally:
        store.close()


def _older_revision() -> str:
    """The revision before this release's head: what the previous release left behind."""
    script = ScriptDirectory(str(VERSIONS.parent))
    head = script.get_revision(script.get_current_head())
    assert isinstance(head.down_revision, str)
    return head.down_revision


HEAD = ScriptDirectory(str(VERSIONS.parent)).get_current_head()


# -- a schema behind this release ----------------------------------------------------------------
def test_migrate_brings_an_older_schema_to_head(tmp_path: Path, backend: Backend) -> None:
    env = _env(tmp_path)
    url = _database_url(tmp_path, backend)
    strongroom("init", "--no-profile", "--database", url, env=env)
    strongroom("iam", "create-user", "--database", url, "kept-across-migrations", env=env)
    older = _older_revision()
    _downgrade(url, older)
    assert _revision(url) == older

    out = strongroom("migrate", "--check", "--database", url, env=env, check=False)
    assert out.returncode == 1, out.stderr
    assert f"schema revision {older}" in out.stderr and f"latest {HEAD}" in out.stderr
    assert "behind" in out.stderr and "strongroom migrate" in out.stderr

    # This release's admin CLI refuses the older schema, and says what to do.
    refused = strongroom("iam", "list-users", "--database", url, env=env, check=False)
    assert refused.returncode == 1
    assert "older than this release" in refused.stderr and "strongroom migrate" in refused.stderr

    done = strongroom("migrate", "--database", url, env=env)
    assert f"schema at revision {HEAD} (was {older})" in done.stderr
    assert _revision(url) == HEAD

    out = strongroom("migrate", "--check", "--database", url, env=env, check=False)
    assert out.returncode == 0, out.stderr
    assert "up to date" in out.stderr
    listed = strongroom("iam", "list-users", "--json", "--database", url, env=env)
    assert "kept-across-migrations" in listed.stdout  # the data came through the round trip

    again = strongroom("migrate", "--database", url, env=env)  # nothing left to do: still head
    assert f"schema at revision {HEAD} (was {HEAD})" in again.stderr


def test_check_on_an_empty_database_says_so(tmp_path: Path, backend: Backend) -> None:
    env = _env(tmp_path)
    (tmp_path / "data").mkdir(parents=True)
    url = _database_url(tmp_path, backend)
    out = strongroom("migrate", "--check", "--database", url, env=env, check=False)
    assert out.returncode == 1 and "no strongroom schema" in out.stderr


# -- a schema newer than this release (mid rolling upgrade) --------------------------------------
@pytest.fixture
def expanded(tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Server, str]]:
    """A deployment whose database a newer release has expanded, served by this release."""
    first = start_server(tmp_path, backend=backend)
    for var in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):  # boto3 here uses the server's profile
        monkeypatch.setenv(var, first.env[var])
    first.client().create_secret(Name="from-before", SecretString="written by this release")
    first.stop()
    url = first.database_url
    # What a newer release's expand migration may do: add a nullable column and a new table.
    _sql(url, "ALTER TABLE secrets ADD COLUMN future_note VARCHAR(64)")
    _sql(url, "CREATE TABLE future_things (id INTEGER PRIMARY KEY, note VARCHAR(64))")
    _sql(url, f"UPDATE alembic_version SET version_num = '{FUTURE_REVISION}'")
    server = start_server(tmp_path, init=False, database_url=url)
    try:
        yield server, url
    finally:
        server.stop()


def test_a_newer_schema_is_served_by_this_release(expanded: tuple[Server, str]) -> None:
    server, url = expanded
    assert "the database schema is newer than this release knows" in server.log_text()
    sm = server.client()
    sm.create_secret(Name="during-the-roll", SecretString="written on the expanded schema")
    assert sm.get_secret_value(SecretId="during-the-roll")["SecretString"] == "written on the expanded schema"
    assert sm.get_secret_value(SecretId="from-before")["SecretString"] == "written by this release"
    sm.put_secret_value(SecretId="from-before", SecretString="updated")
    assert sm.get_secret_value(SecretId="from-before")["SecretString"] == "updated"
    # The newer release's column is still there, untouched, and the revision was not moved back.
    assert _sql(url, "SELECT future_note FROM secrets WHERE name = 'during-the-roll'") == [(None,)]
    assert _revision(url) == FUTURE_REVISION


def test_admin_cli_and_migrate_accept_a_newer_schema(expanded: tuple[Server, str]) -> None:
    server, url = expanded
    env = {k: v for k, v in server.env.items() if k != "STRONGROOM_DATABASE_URL"}
    users = strongroom("iam", "list-users", "--json", "--database", url, env=env, check=False)
    assert users.returncode == 0, users.stderr
    assert '"UserName": "admin"' in users.stdout
    assert "newer than this release knows" in users.stderr
    created = strongroom("iam", "create-user", "--database", url, "added-mid-roll", env=env, check=False)
    assert created.returncode == 0, created.stderr

    check = strongroom("migrate", "--check", "--database", url, env=env, check=False)
    assert check.returncode == 0, check.stderr  # nothing for this (older) release to do
    assert FUTURE_REVISION in check.stderr and "newer than this release" in check.stderr
    ran = strongroom("migrate", "--database", url, env=env, check=False)
    assert ran.returncode == 0, ran.stderr
    assert f"schema at revision {FUTURE_REVISION}, newer than this release knows" in ran.stderr
    assert _revision(url) == FUTURE_REVISION


# -- static rules on the migration scripts -------------------------------------------------------
CONTRACT_MARKER = re.compile(r"^# strongroom-migration: contract \S.*$", re.MULTILINE)
ADDITIVE_OPS = {"create_table", "create_index", "add_column", "bulk_insert", "execute", "get_bind", "f",
                "create_foreign_key", "create_unique_constraint", "create_check_constraint"}
DESTRUCTIVE_SQL = re.compile(
    r"\bDROP\s+(TABLE|COLUMN|INDEX|CONSTRAINT|VIEW|TYPE|SEQUENCE)\b|\bRENAME\b|\bALTER\s+COLUMN\b"
    r"|\bALTER\s+TABLE\s+\S+\s+(?!ADD\b)\w+|\bTRUNCATE\b|\bSET\s+NOT\s+NULL\b",
    re.IGNORECASE)


def _strings(node: ast.AST, constants: dict[str, list[str]]) -> list[str]:
    """Every literal string an expression is built from (module constants followed by name)."""
    out: list[str] = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            out.append(sub.value)
        elif isinstance(sub, ast.Name) and sub.id in constants:
            out.extend(constants[sub.id])
    return out


def non_additive(source: str) -> list[str]:
    """What the upgrade() of a migration does besides adding; [] for a pure expand step."""
    tree = ast.parse(source)
    constants = {t.id: _strings(node.value, {}) for node in tree.body if isinstance(node, ast.Assign)
                 for t in node.targets if isinstance(t, ast.Name)}
    upgrade = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade"), None)
    if upgrade is None:
        return ["no upgrade()"]
    problems = []
    for call in (n for n in ast.walk(upgrade) if isinstance(n, ast.Call)):
        func = call.func
        if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "op"):
            continue
        if func.attr not in ADDITIVE_OPS:
            problems.append(f"op.{func.attr} (line {call.lineno})")
        elif func.attr == "add_column":
            column = call.args[1] if len(call.args) > 1 else None
            keywords = {k.arg: k.value for k in column.keywords} if isinstance(column, ast.Call) else {}
            nullable = keywords.get("nullable")
            required = isinstance(nullable, ast.Constant) and nullable.value is False
            if required and "server_default" not in keywords:
                problems.append(f"op.add_column of a NOT NULL column without a server default (line {call.lineno})")
        elif func.attr == "execute":
            for text in _strings(call, constants):
                for match in DESTRUCTIVE_SQL.finditer(text):
                    problems.append(f"op.execute with {match.group(0)!r} (line {call.lineno})")
    return problems


def _migration_files() -> list[Path]:
    files = sorted(p for p in VERSIONS.glob("*.py") if p.name != "__init__.py")
    assert files, "no migrations found"
    return files


def test_every_migration_only_adds_unless_marked_as_a_contract_step() -> None:
    offenders = {}
    for path in _migration_files():
        source = path.read_text()
        if CONTRACT_MARKER.search(source):
            continue  # reviewed as a contract step (docs/deployment.md, "Rolling upgrades")
        problems = non_additive(source)
        if problems:
            offenders[path.name] = problems
    assert offenders == {}, ("these migrations change what the previous release uses; make them additive, or "
                             f"mark them '# strongroom-migration: contract <why it is safe>': {offenders}")


def test_the_additivity_check_catches_destructive_steps() -> None:
    """The check above would fail on what it is meant to catch (and only on that)."""
    head = "from alembic import op\nimport sqlalchemy as sa\n"
    assert non_additive(head + "def upgrade():\n    op.drop_column('secrets', 'tags')\n") == [
        "op.drop_column (line 4)"]
    assert non_additive(head + "def upgrade():\n    with op.batch_alter_table('s') as b:\n"
                        "        b.alter_column('x', nullable=False)\n") == ["op.batch_alter_table (line 4)"]
    assert non_additive(head + "def upgrade():\n    op.add_column('s', sa.Column('x', sa.Integer, nullable=False))\n")
    assert non_additive(head + "SQL = 'ALTER TABLE secrets RENAME COLUMN a TO b'\n"
                        "def upgrade():\n    op.execute(SQL)\n")
    assert non_additive(head + "def upgrade():\n    op.execute(f'ALTER TABLE {t} DROP COLUMN x')\n")
    assert non_additive(head + "def upgrade():\n    op.add_column('s', sa.Column('x', sa.Integer))\n"
                        "    op.add_column('s', sa.Column('y', sa.Integer, nullable=False, server_default='0'))\n"
                        "    op.execute('ALTER TABLE s ADD COLUMN z INTEGER')\n"
                        "    op.create_index('ix', 's', ['x'])\n") == []
    marked = head + "# strongroom-migration: contract secrets.tags unused since 0.9\n"
    assert CONTRACT_MARKER.search(marked) and not CONTRACT_MARKER.search(head + "# strongroom-migration: contract\n")


def test_revisions_form_one_linear_chain_with_one_head() -> None:
    script = ScriptDirectory(str(VERSIONS.parent))
    heads = script.get_heads()
    assert len(heads) == 1, f"several heads {heads}: chain the newer migration after the latest"
    revisions = list(script.walk_revisions())  # head first
    assert revisions[-1].down_revision is None
    seen_parents: dict[str, str] = {}
    for rev in revisions:
        assert not rev.branch_labels and not rev.dependencies, rev.revision
        if rev.down_revision is not None:
            assert isinstance(rev.down_revision, str), f"{rev.revision} merges {rev.down_revision}"
            assert rev.down_revision not in seen_parents, (
                f"{rev.revision} and {seen_parents.get(rev.down_revision)} both follow {rev.down_revision}")
            seen_parents[rev.down_revision] = rev.revision
    # Every file is on the chain (none orphaned), and is named after its revision id (the id,
    # or the id and a description: 0008_change_triggers.py holds 0008, 0008_rekey_handoff.py
    # holds 0008_rekey_handoff), so two files cannot claim one id unnoticed.
    files = _migration_files()
    assert len(revisions) == len(files)
    for rev in revisions:
        stem = Path(rev.path).stem
        assert stem == rev.revision or stem.startswith(f"{rev.revision}_"), f"{stem}.py holds {rev.revision}"
    order = [rev.revision for rev in reversed(revisions)]
    assert order == sorted(order), f"revision ids out of order along the chain: {order}"
    assert heads[0] == order[-1] == HEAD
