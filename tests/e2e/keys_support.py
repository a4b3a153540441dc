"""Helpers for the root-key tests: servers initialized with a chosen source, clients from their
own profile files, HTTP probes, and the search of a deployment's files for leaked key material."""

from __future__ import annotations

import base64
import configparser
import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from tests.conftest import Server, start_server, strongroom

SHARE = re.compile(r"^\d+-[0-9a-f]+-[0-9a-f]{4}$")
NO_RETRY = Config(retries={"total_max_attempts": 1})


def env_for(tmp: Path, extra: dict[str, str] | None = None, database_url: str | None = None) -> dict[str, str]:
    """The environment start_server gives a server in `tmp` (to run `init` ourselves first)."""
    env = {**os.environ, "STRONGROOM_DATA_DIR": str(tmp / "data"),
           "AWS_CONFIG_FILE": str(tmp / "aws" / "config"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "aws" / "credentials"), **(extra or {})}
    for var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "STRONGROOM_DATABASE_URL"):
        env.pop(var, None)
    if database_url:
        env["STRONGROOM_DATABASE_URL"] = database_url
    return env


def init(tmp: Path, *args: str, extra: dict[str, str] | None = None, input: str | None = None,
         check: bool = True, database_url: str | None = None) -> Any:
    return strongroom("init", "--endpoint-url", "http://127.0.0.1:1", *args,
                      env=env_for(tmp, extra, database_url), input=input, check=check)


def serve(tmp: Path, extra: dict[str, str] | None = None, database_url: str | None = None) -> Server:
    """Start (or restart) the server of `tmp` on its existing data directory."""
    return start_server(tmp, init=False, extra_env=extra, database_url=database_url)


def credentials(srv: Server, profile: str = "strongroom") -> tuple[str, str]:
    parser = configparser.ConfigParser()
    parser.read(srv.env["AWS_SHARED_CREDENTIALS_FILE"])
    return parser[profile]["aws_access_key_id"], parser[profile]["aws_secret_access_key"]


def client(srv: Server, service: str, *, keys: tuple[str, str] | None = None, token: str | None = None,
           retries: bool = True) -> Any:
    key_id, secret = keys or credentials(srv)
    return boto3.client(service, endpoint_url=srv.url, region_name="us-east-1", aws_access_key_id=key_id,
                        aws_secret_access_key=secret, aws_session_token=token,
                        config=None if retries else NO_RETRY)


def http_get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def wait_for(predicate: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def marker(srv: Server) -> dict[str, Any] | None:
    rows = srv.sql("SELECT state, phase, rewrapped, new_key_id, old_key_id FROM root_key_rekeys "
                   "ORDER BY id DESC LIMIT 1")
    return dict(zip(("state", "phase", "rewrapped", "new_key_id", "old_key_id"), rows[0])) if rows else None


def forms(secret: bytes) -> list[bytes]:
    """The ways a secret could appear in a file: raw, hex (both cases), base64 (padded or not)."""
    b64 = base64.b64encode(secret)
    return [secret, secret.hex().encode(), secret.hex().upper().encode(), b64, b64.rstrip(b"=")]


def assert_absent(secrets: Iterable[bytes], files: Iterable[Path], texts: Iterable[str] = ()) -> None:
    blobs = [(str(f), f.read_bytes()) for f in files if f.exists()] + [(f"text{i}", t.encode())
                                                                       for i, t in enumerate(texts)]
    assert blobs, "nothing to search"
    for secret in secrets:
        assert len(secret) >= 8, "too short to search for meaningfully"
        for form in forms(secret):
            for name, blob in blobs:
                assert form not in blob, f"key material found in {name}"
