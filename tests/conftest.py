"""Shared fixtures: a real strongroom server on 127.0.0.1 driven by real boto3 clients."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from pathlib import Path

import boto3
import pytest
import urllib.request

from tests.postgres import Cluster, find_bindir, start_cluster

REQUIRE_SERVICES = os.environ.get("STRONGROOM_REQUIRE_SERVICES") == "1"
BACKENDS = ["sqlite", "postgresql"]


def need_binary(*names: str) -> str:
    """Path of the first binary found, or skip (fail under STRONGROOM_REQUIRE_SERVICES=1)."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    msg = f"needs {' or '.join(names)} on PATH"
    if REQUIRE_SERVICES:
        pytest.fail(msg + " (STRONGROOM_REQUIRE_SERVICES=1)")
    pytest.skip(msg)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    data_dir: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    log_path: Path
    profile: str = "strongroom"
    database_url: str = ""  # empty: the SQLite file in data_dir
    cluster: Cluster | None = None  # the PostgreSQL cluster holding database_url, if any

    def __post_init__(self) -> None:
        self.database_url = self.database_url or f"sqlite:///{self.data_dir / 'strongroom.db'}"

    def sql(self, statement: str, **params: object) -> list[tuple[object, ...]]:
        """Run one SQL statement (named :params) directly on the server's database."""
        from sqlalchemy import text

        from strongroom.storage import open_store

        store = open_store(self.database_url, pool_size=1)
        try:
            with store.engine.begin() as conn:
                result = conn.execute(text(statement), params)
                return [tuple(r) for r in result] if result.returns_rows else []
        finally:
            store.close()

    def database_files(self) -> list[Path]:
        """Every file the database keeps this server's data in (to search them for leaks)."""
        if self.cluster is not None:
            return self.cluster.database_files(self.database_url)
        return sorted(self.data_dir.glob("strongroom.db*"))

    def session(self) -> boto3.Session:
        return boto3.Session(profile_name=self.profile)

    def client(self, service: str = "secretsmanager", **kw: object):  # type: ignore[no-untyped-def]
        return self.session().client(service, endpoint_url=self.url, **kw)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def strongroom(*args: str, env: dict[str, str], check: bool = True, input: str | None = None):  # type: ignore[no-untyped-def]
    return subprocess.run([sys.executable, "-m", "strongroom.cli.main", *args], env=env, check=check,
                          capture_output=True, text=True, input=input, timeout=120)


def start_server(tmp: Path, *, extra_env: dict[str, str] | None = None, args: tuple[str, ...] = (),
                 init: bool = True, scheme: str = "http", verify: str | None = None,
                 backend: "Backend | None" = None, database_url: str | None = None) -> Server:
    """Start `strongroom serve` on a free port; `backend` gives it a fresh database of that kind
    (default: SQLite in the data directory), `database_url` names one (to restart on the same)."""
    data_dir = tmp / "data"
    if database_url is None and backend is not None:
        database_url = backend.new_database()
    env = {
        **os.environ,
        "STRONGROOM_DATA_DIR": str(data_dir),
        "AWS_CONFIG_FILE": str(tmp / "aws" / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "aws" / "credentials"),
        **(extra_env or {}),
    }
    for var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "STRONGROOM_DATABASE_URL"):
        env.pop(var, None)
    if database_url:
        env["STRONGROOM_DATABASE_URL"] = database_url
    port = free_port()
    if init:
        strongroom("init", "--endpoint-url", f"{scheme}://127.0.0.1:{port}", env=env)
    log_path = tmp / "server.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "strongroom.cli.main", "serve", "--port", str(port), *args],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"{scheme}://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text()}")
        try:
            tls = ssl.create_default_context(cafile=verify) if verify else None
            with urllib.request.urlopen(url + "/health", timeout=1, context=tls):
                break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("server did not start in 30 s")
    cluster = backend.cluster if backend is not None else _cluster_of(database_url)
    return Server(url, data_dir, env, proc, log_path, database_url=database_url or "", cluster=cluster)


# -- storage backends: every end-to-end test runs on each ------------------------------------
@dataclass
class Backend:
    name: str
    cluster: Cluster | None = None

    def new_database(self) -> str | None:
        """URL of a fresh, empty database (None: SQLite in the server's data directory)."""
        return self.cluster.create_database() if self.cluster is not None else None


_clusters: list[Cluster] = []


def _cluster_of(url: str | None) -> Cluster | None:
    return next((c for c in _clusters if url and url.startswith(c.url(""))), None)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """A PostgreSQL cluster on 127.0.0.1 for the session (skips without the binaries)."""
    bindir = find_bindir() or Path(need_binary("initdb")).resolve().parent
    if not (bindir / "pg_ctl").exists():
        need_binary("pg_ctl")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        if REQUIRE_SERVICES:
            pytest.fail("needs psycopg (pip install -e '.[postgresql]')")
        pytest.skip("needs psycopg (pip install -e '.[postgresql]')")
    cluster = start_cluster(bindir, free_port())
    _clusters.append(cluster)
    yield cluster
    _clusters.remove(cluster)
    cluster.stop()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """The storage backend of the servers a test talks to: each test runs once per backend."""
    if request.param == "postgresql":
        return Backend("postgresql", request.getfixturevalue("postgres"))
    return Backend("sqlite")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, backend: Backend) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp(f"server-{backend.name}")
    yield from serving(start_server(tmp, backend=backend))


def serving(srv: Server) -> Iterator[Server]:
    """Yield a started server with its AWS profile files in this process's environment
    (boto3 reads them from there), then stop it and put the environment back."""
    saved = {k: os.environ.get(k) for k in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")}
    os.environ["AWS_CONFIG_FILE"] = srv.env["AWS_CONFIG_FILE"]
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = srv.env["AWS_SHARED_CREDENTIALS_FILE"]
    try:
        yield srv
    finally:
        srv.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def _sm_client(server: Server):  # type: ignore[no-untyped-def]
    return server.client("secretsmanager")


@pytest.fixture
def sm(_sm_client):  # type: ignore[no-untyped-def]
    # One client for the session: building a boto3 client costs ~0.1 s, and clients keep no state.
    return _sm_client


@pytest.fixture
def name() -> str:
    """A secret name no other test uses."""
    return f"test/{uuid.uuid4().hex[:12]}"


def policy_doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def denied(call: Any, **kw: Any) -> str:
    """Call, expect AccessDeniedException, return its message."""
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as exc:
        call(**kw)
    assert exc.value.response["Error"]["Code"] == "AccessDeniedException", exc.value.response["Error"]
    return str(exc.value.response["Error"]["Message"])
