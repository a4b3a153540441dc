"""`strongroom backup` and `strongroom restore`: SQLite -> PostgreSQL -> SQLite, values readable.

Backups are taken while a client keeps writing (from SQLite and from PostgreSQL);
every restore is checked through the API of a server started on the restored
database, and the restored audit trail with `strongroom audit verify`. The
refusals (wrong or missing root key, damaged file) are checked on both backends.
"""

from __future__ import annotations

import configparser
import contextlib
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from strongroom.crypto.backupfile import read_header
from tests.conftest import Backend, Server, start_server, strongroom
from tests.postgres import Cluster


def admin_clients(server: Server, creds: dict[str, str]) -> dict[str, Any]:
    return {svc: boto3.client(svc, endpoint_url=server.url, region_name="us-east-1", **creds)
            for svc in ("secretsmanager", "kms", "iam")}


def populate(c: dict[str, Any]) -> None:
    sm, kms, iam = c["secretsmanager"], c["kms"], c["iam"]
    key = kms.create_key(Description="backup key")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/backup-test", TargetKeyId=key)
    sm.create_secret(Name="app/db", SecretString='{"password": "one"}', Tags=[{"Key": "team", "Value": "a"}])
    sm.put_secret_value(SecretId="app/db", SecretString='{"password": "two"}')
    sm.put_secret_value(SecretId="app/db", SecretString="labelled", VersionStages=["BLUE"])
    sm.create_secret(Name="app/binary", SecretBinary=bytes(range(256)) * 4, Description="bytes")
    sm.create_secret(Name="app/cmk", SecretString="under a customer key", KmsKeyId="alias/backup-test")
    sm.create_secret(Name="app/gone", SecretString="scheduled")
    sm.delete_secret(SecretId="app/gone", RecoveryWindowInDays=7)
    sm.put_resource_policy(SecretId="app/db", ResourcePolicy=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": {"AWS": "*"},
                                                "Action": "secretsmanager:DeleteSecret", "Resource": "*"}]}))
    iam.create_user(UserName="reader")
    iam.put_user_policy(UserName="reader", PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}))


def state(c: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """What a client can observe of the populated data (values of every version included)."""
    sm, kms, iam = c["secretsmanager"], c["kms"], c["iam"]
    out: dict[str, Any] = {}
    for name in names:
        described = sm.describe_secret(SecretId=name)
        described.pop("ResponseMetadata")
        described.pop("LastAccessedDate", None)  # reading below sets it
        versions = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]
        values = {}
        if "DeletedDate" not in described:
            for v in versions:
                got = sm.get_secret_value(SecretId=name, VersionId=v["VersionId"])
                values[v["VersionId"]] = got.get("SecretString", got.get("SecretBinary"))
        out[name] = {"described": described, "versions": sorted(v["VersionId"] for v in versions),
                     "values": values, "policy": sm.get_resource_policy(SecretId=name).get("ResourcePolicy")}
    out["kms"] = sorted((a["AliasName"], a.get("TargetKeyId")) for a in kms.list_aliases()["Aliases"])
    out["iam"] = iam.get_user_policy(UserName="reader", PolicyName="read")["PolicyDocument"]
    return out


def node_dir(tmp: Path, source: Server, name: str) -> Path:
    """A data directory holding the same root key and configuration as `source`'s."""
    home = tmp / name
    (home / "data").mkdir(parents=True)
    for item in source.data_dir.iterdir():
        if item.is_file() and not item.name.startswith(("strongroom.db", "admin.json")):
            shutil.copy2(item, home / "data" / item.name)
    return home


def cli_env(home: Path, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "STRONGROOM_DATABASE_URL"}
    env["STRONGROOM_DATA_DIR"] = str(home / "data")
    if database_url:
        env["STRONGROOM_DATABASE_URL"] = database_url
    return env


@contextlib.contextmanager
def running(srv: Server) -> Iterator[tuple[Server, dict[str, str]]]:
    """A started server and its admin credentials; stopped on the way out."""
    parser = configparser.ConfigParser()
    parser.read(srv.env["AWS_SHARED_CREDENTIALS_FILE"])
    creds = {"aws_access_key_id": parser["strongroom"]["aws_access_key_id"],
             "aws_secret_access_key": parser["strongroom"]["aws_secret_access_key"]}
    try:
        yield srv, creds
    finally:
        srv.stop()


@pytest.fixture
def source(tmp_path: Path) -> Any:
    """A server on SQLite (the round trip starts there)."""
    with running(start_server(tmp_path / "a")) as started:
        yield started


@pytest.fixture
def backend_source(tmp_path: Path, backend: Backend) -> Any:
    """A server on a fresh database of the parametrized backend."""
    with running(start_server(tmp_path / "a", backend=backend)) as started:
        yield started


def audit_ok(env: dict[str, str], database_url: str | None = None) -> str:
    """`strongroom audit verify` on a (restored) database: the chain and digests are intact."""
    args = ("--database", database_url) if database_url else ()
    out = strongroom("audit", "verify", *args, env=env, check=False)
    assert out.returncode == 0 and out.stdout.startswith("OK: "), out.stdout + out.stderr
    return str(out.stdout)


NAMES = ["app/db", "app/binary", "app/cmk", "app/gone"]


def test_round_trip_sqlite_postgresql_sqlite(tmp_path: Path, postgres: Cluster, source: Any) -> None:
    a, creds = source
    populate(admin_clients(a, creds))
    expected = state(admin_clients(a, creds), NAMES)

    # Back up while a client keeps writing: the snapshot is one transaction.
    sm = admin_clients(a, creds)["secretsmanager"]
    sm.create_secret(Name="busy", SecretString="0")
    stop, errors = threading.Event(), []

    def write() -> None:
        i = 0
        while not stop.is_set() and i < 90:
            i += 1
            try:
                sm.put_secret_value(SecretId="busy", SecretString=str(i))
            except ClientError as exc:  # pragma: no cover - reported below
                errors.append(str(exc))

    writer = threading.Thread(target=write)
    writer.start()
    try:
        first = tmp_path / "first.backup"
        out = strongroom("backup", str(first), env=a.env)
        assert "backup written" in out.stderr
    finally:
        stop.set()
        writer.join()
    assert errors == []
    assert first.stat().st_mode & 0o077 == 0
    assert b"app/db" not in first.read_bytes() and b"password" not in first.read_bytes()

    # Into PostgreSQL.
    pg_url = postgres.create_database()
    b_home = node_dir(tmp_path, a, "b")
    restored = strongroom("restore", str(first), env=cli_env(b_home, pg_url))
    assert "restored" in restored.stderr
    audit_ok(cli_env(b_home, pg_url))
    b = start_server(b_home, init=False, database_url=pg_url)
    try:
        assert state(admin_clients(b, creds), NAMES) == expected
        busy = admin_clients(b, creds)["secretsmanager"]
        labels = busy.describe_secret(SecretId="busy")["VersionIdsToStages"]
        current = next(v for v, ls in labels.items() if "AWSCURRENT" in ls)
        value = int(busy.get_secret_value(SecretId="busy")["SecretString"])
        assert busy.get_secret_value(SecretId="busy", VersionId=current)["SecretString"] == str(value)
        if value > 0:  # AWSPREVIOUS names the version before it: labels and versions from one instant
            previous = busy.get_secret_value(SecretId="busy", VersionStage="AWSPREVIOUS")["SecretString"]
            assert int(previous) == value - 1
        second = tmp_path / "second.backup"
        strongroom("backup", str(second), env=b.env)
    finally:
        b.stop()

    # And back into SQLite.
    c_home = node_dir(tmp_path, a, "c")
    strongroom("restore", str(second), env=cli_env(c_home, None))
    audit_ok(cli_env(c_home, None))
    c = start_server(c_home, init=False)
    try:
        assert state(admin_clients(c, creds), NAMES) == expected
    finally:
        c.stop()

    # A database that holds data is refused, unless --force.
    again = strongroom("restore", str(first), env=cli_env(c_home, None), check=False)
    assert again.returncode == 1 and "not empty" in again.stderr
    forced = strongroom("restore", "--force", str(first), env=cli_env(c_home, None), check=False)
    assert forced.returncode == 0, forced.stderr


def test_restore_names_the_missing_or_wrong_root_key(tmp_path: Path, backend_source: Any, backend: Backend) -> None:
    a, _ = backend_source
    backup = tmp_path / "x.backup"
    strongroom("backup", str(backup), env=a.env)
    key_id = read_header(backup).root_key_id

    missing = tmp_path / "missing"
    (missing / "data").mkdir(parents=True)
    out = strongroom("restore", str(backup), env=cli_env(missing, backend.new_database()), check=False)
    assert out.returncode == 1
    assert "needs the root key" in out.stderr and key_id in out.stderr

    other = tmp_path / "other"
    other_url = backend.new_database()
    strongroom("init", "--no-profile", env=cli_env(other, other_url))
    out = strongroom("restore", "--force", str(backup), env=cli_env(other, other_url), check=False)
    assert out.returncode == 1
    assert "wrong root key" in out.stderr and key_id in out.stderr
    # Refused before anything was dropped: the other deployment's data is still there.
    users = strongroom("iam", "list-users", "--json", env=cli_env(other, other_url))
    assert '"UserName": "admin"' in users.stdout


def test_an_altered_or_truncated_backup_is_refused(tmp_path: Path, backend_source: Any, backend: Backend) -> None:
    a, _ = backend_source
    backup = tmp_path / "x.backup"
    strongroom("backup", str(backup), env=a.env)
    data = backup.read_bytes()
    for name, broken in (("flipped", data[:-10] + bytes([data[-10] ^ 1]) + data[-9:]),
                         ("truncated", data[:-20])):
        target = tmp_path / name
        target.write_bytes(broken)
        home = node_dir(tmp_path, a, f"restore-{name}")
        env = cli_env(home, None)  # the database is named with --database below, not the environment
        url = backend.new_database() or f"sqlite:///{home / 'data' / 'strongroom.db'}"
        out = strongroom("restore", "--database", url, str(target), env=env, check=False)
        assert out.returncode == 1, name
        assert "cannot restore" in out.stderr, out.stderr
        # Nothing was half-restored: the intact backup restores without --force.
        again = strongroom("restore", "--database", url, str(backup), env=env, check=False)
        assert again.returncode == 0, again.stderr
        audit_ok(env, url)


def test_postgresql_backup_while_writing_restores_a_consistent_copy(tmp_path: Path, postgres: Cluster,
                                                                   backend: Backend) -> None:
    """A backup of PostgreSQL taken under writes is one instant, restored into either backend."""
    with running(start_server(tmp_path / "a", database_url=postgres.create_database())) as (a, creds):
        sm = admin_clients(a, creds)["secretsmanager"]
        sm.create_secret(Name="first", SecretString="0")
        sm.create_secret(Name="second", SecretString="0")
        stop, errors = threading.Event(), []

        def write() -> None:
            # "first" is written before "second" at every step: in any one instant, first is
            # either equal to second or one ahead of it.
            for i in range(1, 90):  # under the 100 versions kept per secret
                if stop.is_set():
                    return
                # Paced so the writes outlast the start of the first backup (a CLI process) on
                # a loaded machine: about 13 s in all, and stopped once the backups are taken.
                time.sleep(0.15)
                try:
                    sm.put_secret_value(SecretId="first", SecretString=str(i))
                    sm.put_secret_value(SecretId="second", SecretString=str(i))
                except ClientError as exc:  # pragma: no cover - reported below
                    errors.append(str(exc))

        writer = threading.Thread(target=write)
        writer.start()
        try:
            backups = []
            for n in range(3):  # several snapshots, each at some instant of the writes
                path = tmp_path / f"pg-{n}.backup"
                strongroom("backup", "--database", a.database_url, str(path),
                           env={k: v for k, v in a.env.items() if k != "STRONGROOM_DATABASE_URL"})
                backups.append(path)
        finally:
            stop.set()
            writer.join()
        assert errors == []
        assert read_header(backups[0]).source_backend == "postgresql"

        seen = []
        for n, path in enumerate(backups):
            home = node_dir(tmp_path, a, f"restored-{n}")
            url = backend.new_database()
            strongroom("restore", str(path), env=cli_env(home, url))
            audit_ok(cli_env(home, url))
            restored = start_server(home, init=False, database_url=url)
            try:
                rsm = admin_clients(restored, creds)["secretsmanager"]
                first = int(rsm.get_secret_value(SecretId="first")["SecretString"])
                second = int(rsm.get_secret_value(SecretId="second")["SecretString"])
                assert first - second in (0, 1), (first, second)
                for secret, last in (("first", first), ("second", second)):
                    versions = rsm.list_secret_version_ids(SecretId=secret, IncludeDeprecated=True)["Versions"]
                    assert len(versions) == last + 1  # every version up to the instant, none after
                    if last:
                        prev = rsm.get_secret_value(SecretId=secret, VersionStage="AWSPREVIOUS")["SecretString"]
                        assert int(prev) == last - 1
                seen.append(first + second)
            finally:
                restored.stop()
        assert seen == sorted(seen)  # later backups, later instants
        assert any(0 < total < 2 * 89 for total in seen), f"no backup was taken mid-writes: {seen}"
