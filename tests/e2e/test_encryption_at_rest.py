"""No secret value, in any form, reaches the data directory or the server log.

A dedicated server (debug logging) receives distinctive values through every
path that carries one, successful or refused; then every byte of every file in
its data directory, its database's files (strongroom.db, -wal, -shm; or the
PostgreSQL database's files and write-ahead log) and its log are searched.
"""

from __future__ import annotations

import base64
import configparser
import json
import os
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.conftest import Backend, Server, start_server
from tests.e2e.support import send, signed_request

LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:strongroom-builtin-postgresql-single-user"  # managed rotation: RotateSecret needs no function permission


class Registry:
    """Every secret value written in this module, in each form it could be stored or logged in."""

    def __init__(self) -> None:
        self.forms: dict[bytes, str] = {}

    def string(self, label: str) -> str:
        value = f"SRVAL-{label}-{uuid.uuid4().hex}"
        self._add(value.encode(), label)
        return value

    def binary(self, label: str) -> bytes:
        value = b"\x00SRBIN" + secrets.token_bytes(48)
        self._add(value, label)
        return value

    def _add(self, raw: bytes, label: str) -> None:
        self.forms[raw] = label
        self.forms[base64.b64encode(raw)] = label + " (base64)"
        self.forms[raw.hex().encode()] = label + " (hex)"


@pytest.fixture(scope="module")
def dedicated(tmp_path_factory: pytest.TempPathFactory, backend: Backend) -> Iterator[tuple[Server, Credentials]]:
    tmp = tmp_path_factory.mktemp("at-rest")
    srv = start_server(tmp, args=("--log-level", "debug"), backend=backend)
    parser = configparser.ConfigParser()
    parser.read(srv.env["AWS_SHARED_CREDENTIALS_FILE"])
    section = parser[srv.profile]
    creds = Credentials(section["aws_access_key_id"], section["aws_secret_access_key"])
    try:
        yield srv, creds
    finally:
        srv.stop()


def client(srv: Server, creds: Credentials):  # type: ignore[no-untyped-def]
    return boto3.client("secretsmanager", endpoint_url=srv.url, region_name="us-east-1",
                        aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key)


def write_everything(srv: Server, creds: Credentials, reg: Registry) -> list[str]:
    """Send values along every path; returns the secret names (stored in plaintext, by design)."""
    sm = client(srv, creds)
    names = [f"atrest/{uuid.uuid4().hex[:8]}/{n}" for n in ("s", "b", "r")]
    s, b, r = names
    sm.create_secret(Name=s, SecretString=reg.string("create"), Description="metadata is plaintext")
    sm.put_secret_value(SecretId=s, SecretString=reg.string("put"))
    sm.put_secret_value(SecretId=s, SecretString=reg.string("put-labelled"), VersionStages=["CUSTOM"])
    sm.update_secret(SecretId=s, SecretString=reg.string("update"))
    sm.create_secret(Name=b, SecretBinary=reg.binary("create-binary"))
    sm.put_secret_value(SecretId=b, SecretBinary=reg.binary("put-binary"))
    sm.create_secret(Name=r, SecretString=reg.string("before-rotation"))
    pending = sm.rotate_secret(SecretId=r, RotationLambdaARN=LAMBDA,
                               RotationRules={"AutomaticallyAfterDays": 7})["VersionId"]
    sm.put_secret_value(SecretId=r, ClientRequestToken=pending, SecretString=reg.string("rotated"),
                        VersionStages=["AWSPENDING"])
    # Reads put values in responses: they must not be logged either.
    sm.get_secret_value(SecretId=s)
    sm.get_secret_value(SecretId=r, VersionStage="AWSPENDING")
    sm.batch_get_secret_value(SecretIdList=[s, b, r])
    # Refused requests carrying values.
    refused = [
        lambda: sm.put_secret_value(SecretId=s + "-missing", SecretString=reg.string("to-missing")),
        lambda: sm.create_secret(Name=s, SecretString=reg.string("duplicate-name")),
        lambda: sm.put_secret_value(SecretId=s, SecretString=reg.string("too-long") + "x" * 65536),
        lambda: sm.put_secret_value(SecretId=r, ClientRequestToken=pending, SecretString=reg.string("reused-token")),
        lambda: sm.create_secret(Name="bad name!", SecretString=reg.string("bad-name")),
    ]
    for attempt in refused:
        with pytest.raises(ClientError):
            attempt()
    body = json.dumps({"SecretId": s, "SecretString": reg.string("bad-signature")}).encode()
    tampered = signed_request(srv, "secretsmanager.PutSecretValue", body,
                              creds=Credentials(creds.access_key, "wrong-secret"))
    assert send(srv, tampered).status == 400
    malformed = signed_request(srv, "secretsmanager.PutSecretValue",
                               b'{"SecretId": "' + s.encode() + b'", "SecretString": "'
                               + reg.string("malformed-json").encode() + b'"', creds=creds)
    assert send(srv, malformed).status == 400
    # A value only the client ever sees.
    password = sm.get_random_password(PasswordLength=64)["RandomPassword"]
    reg.forms[password.encode()] = "random password"
    return names


def files_of(srv: Server) -> dict[str, bytes]:
    out = {str(p.relative_to(srv.data_dir)): p.read_bytes() for p in srv.data_dir.rglob("*") if p.is_file()}
    out.update({f"db:{p.name}": p.read_bytes() for p in srv.database_files()})
    out["server.log"] = srv.log_path.read_bytes()
    return out


def database_bytes(files: dict[str, bytes]) -> bytes:
    return b"".join(data for name, data in files.items() if name.startswith("db:"))


def leaks(files: dict[str, bytes], reg: Registry) -> list[str]:
    return [f"{label} in {name}" for name, data in files.items() for form, label in reg.forms.items()
            if form in data]


def test_no_secret_value_reaches_disk_or_log(dedicated):
    srv, creds = dedicated
    reg = Registry()
    names = write_everything(srv, creds, reg)
    # The access key's secret half is stored wrapped too.
    reg.forms[creds.secret_key.encode()] = "access key secret"

    running = files_of(srv)
    assert database_bytes(running), sorted(running)
    # Positive control: the scan does find what is stored in plaintext by design.
    assert all(any(n.encode() in data for data in running.values()) for n in names)
    assert b"metadata is plaintext" in database_bytes(running)
    assert b"PutSecretValue" in running["server.log"]  # the log records requests, so it was worth scanning
    assert leaks(running, reg) == []

    srv.stop()  # closing checkpoints the WAL into the database file (PostgreSQL: database_files checkpoints)
    stopped = files_of(srv)
    assert all(n.encode() in database_bytes(stopped) for n in names)
    assert leaks(stopped, reg) == []
    assert sum(os.path.getsize(p) for p in srv.database_files()) > 0
    assert Path(srv.log_path).stat().st_size > 0
