"""`strongroom backup` and `strongroom restore`: SQLite -> PostgreSQL -> SQLite, values readable.

The first backup is taken while the server keeps serving writes; every restore
is checked through the API of a server started on the restored database.
"""

from __future__ import annotations

import configparser
import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from strongroom.crypto.backupfile import read_header
from tests.conftest import Server, start_server, strongroom
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


@pytest.fixture
def source(tmp_path: Path) -> Any:
    srv = start_server(tmp_path / "a")
    parser = configparser.ConfigParser()
    parser.read(srv.env["AWS_SHARED_CREDENTIALS_FILE"])
    creds = {"aws_access_key_id": parser["strongroom"]["aws_access_key_id"],
             "aws_secret_access_key": parser["strongroom"]["aws_secret_access_key"]}
    try:
        yield srv, creds
    finally:
        srv.stop()


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


def test_restore_names_the_missing_or_wrong_root_key(tmp_path: Path, source: Any) -> None:
    a, _ = source
    backup = tmp_path / "x.backup"
    strongroom("backup", str(backup), env=a.env)
    key_id = read_header(backup).root_key_id

    missing = tmp_path / "missing"
    (missing / "data").mkdir(parents=True)
    out = strongroom("restore", str(backup), env=cli_env(missing, None), check=False)
    assert out.returncode == 1
    assert "needs the root key" in out.stderr and key_id in out.stderr

    other = tmp_path / "other"
    strongroom("init", "--no-profile", env=cli_env(other, None))
    out = strongroom("restore", "--force", str(backup), env=cli_env(other, None), check=False)
    assert out.returncode == 1
    assert "wrong root key" in out.stderr and key_id in out.stderr


def test_an_altered_or_truncated_backup_is_refused(tmp_path: Path, source: Any) -> None:
    a, _ = source
    backup = tmp_path / "x.backup"
    strongroom("backup", str(backup), env=a.env)
    data = backup.read_bytes()
    for name, broken in (("flipped", data[:-10] + bytes([data[-10] ^ 1]) + data[-9:]),
                         ("truncated", data[:-20])):
        target = tmp_path / name
        target.write_bytes(broken)
        home = node_dir(tmp_path, a, f"restore-{name}")
        out = strongroom("restore", str(target), env=cli_env(home, None), check=False)
        assert out.returncode == 1, name
        assert "cannot restore" in out.stderr, out.stderr
        # Nothing was half-restored: the intact backup restores without --force.
        assert strongroom("restore", str(backup), env=cli_env(home, None), check=False).returncode == 0
