"""Shared fixtures: a real strongroom server on 127.0.0.1 driven by real boto3 clients."""

from __future__ import annotations

import base64
import json
import os
import re
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
import botocore.session
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
    leaks_checked: bool = False

    def __post_init__(self) -> None:
        self.database_url = self.database_url or f"sqlite:///{self.data_dir / 'strongroom.db'}"
        SERVERS.append(self)

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
                _kill_group(self.proc)
        # Searched now, while its database is still there (a PostgreSQL cluster stops at the
        # end of the session); the final digest and sink flushes happened on the way down.
        if not self.leaks_checked:
            self.leaks_checked = True
            found = search_for_leaks(self)
            if found:
                LEAKS.extend(found)
                raise AssertionError("secret material in audit output: " + "; ".join(found))


# -- the suite-wide secret registry ---------------------------------------------------------
# Every boto3 client the tests create reports the secret material it sends and receives
# (secret values, plaintexts, access keys, session tokens, passwords, function code) and
# the credentials it signs with. When a server stops, its audit table, audit sink files
# and log are searched for each value sent to it (and every credential): the audit trail
# must never hold one, whichever test used it. A find fails the run (see LEAKS).
SECRET_FIELDS = frozenset({"SecretString", "SecretBinary", "Plaintext", "SecretAccessKey", "SessionToken",
                           "RandomPassword", "Password", "NewPassword", "OldPassword", "PasswordHash",
                           "PrivateKey", "ZipFile"})
MIN_SECRET_LENGTH = 8  # shorter values ("x", "v1") occur in ordinary text by chance
# A lone word ("different", "scheduled") also turns up in error messages and names, so it
# says nothing about a leak; such values are only searched when long (MIN_WORD_LENGTH).
_WORD = re.compile(r"[A-Za-z]+")
MIN_WORD_LENGTH = 12
SERVERS: list[Server] = []
SECRETS_SENT: dict[str, dict[str | bytes, str]] = {}  # endpoint URL ("" for any) -> value -> origin
LEAKS: list[str] = []


def remember_secret(value: object, origin: str, endpoint: str = "") -> None:
    if isinstance(value, (bytearray, memoryview)):
        value = bytes(value)
    if not isinstance(value, (str, bytes)) or len(value) < MIN_SECRET_LENGTH:
        return
    if isinstance(value, str) and _WORD.fullmatch(value) and len(value) < MIN_WORD_LENGTH:
        return
    SECRETS_SENT.setdefault(endpoint, {}).setdefault(value, origin)


def _collect(value: object, origin: str, endpoint: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in SECRET_FIELDS:
                remember_secret(item, f"{key} of {origin}", endpoint)
            else:
                _collect(item, origin, endpoint)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect(item, origin, endpoint)


def _where() -> str:
    return os.environ.get("PYTEST_CURRENT_TEST", "setup").rsplit(" ", 1)[0]


def watch_client(client: Any) -> None:
    """Report what `client` sends and receives, and its credentials, to the registry."""
    endpoint = client.meta.endpoint_url or ""

    def sent(params: dict[str, Any], model: Any, **_: Any) -> None:
        _collect(params, f"{model.name} request in {_where()}", endpoint)

    def received(parsed: dict[str, Any], model: Any, **_: Any) -> None:
        _collect(parsed, f"{model.name} response in {_where()}", endpoint)

    client.meta.events.register("provide-client-params", sent)
    client.meta.events.register("after-call", received)
    try:
        creds = client._request_signer._credentials  # noqa: SLF001 - the only place a client keeps them
        frozen = creds.get_frozen_credentials() if creds is not None else None
    except Exception:  # noqa: BLE001 - an unsigned client, or credentials not resolvable yet
        frozen = None
    if frozen is not None:
        remember_secret(frozen.secret_key, f"secret access key a client signed with in {_where()}")
        remember_secret(frozen.token, f"session token a client signed with in {_where()}")


def _forms(value: str | bytes) -> list[str]:
    """The ways a value could appear in text: itself, JSON-escaped, base64."""
    raw = value.encode() if isinstance(value, str) else value
    out = [base64.b64encode(raw).decode()]
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return out
    out.append(text)
    escaped = json.dumps(text)[1:-1]
    if escaped != text:
        out.append(escaped)
    return out


def audit_outputs(srv: Server) -> dict[str, str]:
    """What a server wrote about its calls: the audit table, audit sink files, its log."""
    texts: dict[str, str] = {}
    try:
        rows = srv.sql("SELECT * FROM audit_events")
        texts["audit_events table"] = "\n".join(" ".join(map(str, row)) for row in rows)
    except Exception:  # noqa: BLE001 - a database a test dropped or a cluster already gone
        pass
    for path in sorted(srv.data_dir.rglob("*.jsonl*")) if srv.data_dir.is_dir() else []:
        if path.is_file():
            texts[f"sink file {path.relative_to(srv.data_dir)}"] = path.read_text(errors="replace")
    if srv.log_path.exists():
        texts["server log"] = srv.log_text()
    return texts


def _present(text: str, forms: list[str]) -> set[str]:
    """The forms that occur in `text`. One `in` per form scans the text once each (about
    1 ns a character); past ~1500 forms, one Python pass over the text (about 1.5 us a
    character) is cheaper: it looks each 8-character window up among the forms' first 8
    characters (every form is at least 8 long) and compares only those candidates in full."""
    if len(forms) < 1500:
        return {f for f in forms if f in text}
    by_anchor: dict[str, list[str]] = {}
    for form in forms:
        by_anchor.setdefault(form[:MIN_SECRET_LENGTH], []).append(form)
    found: set[str] = set()
    width = MIN_SECRET_LENGTH
    for i in range(len(text) - width + 1):
        candidates = by_anchor.get(text[i:i + width])
        if candidates:
            found.update(f for f in candidates if text.startswith(f, i))
    return found


def search_for_leaks(srv: Server) -> list[str]:
    """Each (origin, place) where a collected secret appears in the server's audit output."""
    needles = {**SECRETS_SENT.get("", {}), **SECRETS_SENT.get(srv.url, {})}
    forms = {form: value for value in needles for form in _forms(value) if len(form) >= MIN_SECRET_LENGTH}
    places: dict[str | bytes, list[str]] = {}
    for name, text in audit_outputs(srv).items():
        for form in _present(text, list(forms)):
            places.setdefault(forms[form], []).append(name)
    # The origin only: the value itself must not reach the test report either.
    return [f"{needles[value]} appears in the {', '.join(sorted(set(where)))} of the server at {srv.url}"
            for value, where in places.items()]


@pytest.fixture(scope="session", autouse=True)
def secret_registry() -> Iterator[dict[str, dict[str | bytes, str]]]:
    """Watch every botocore client made in this process (boto3 sessions included)."""
    original = botocore.session.Session.create_client

    def create_client(self: Any, *args: Any, **kw: Any) -> Any:
        client = original(self, *args, **kw)
        watch_client(client)
        return client

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
    try:
        yield SECRETS_SENT
    finally:
        botocore.session.Session.create_client = original  # type: ignore[method-assign]
        for srv in SERVERS:  # servers a test never stopped: searched while their files remain
            if not srv.leaks_checked:
                srv.leaks_checked = True
                LEAKS.extend(search_for_leaks(srv))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # A leak found while a fixture stopped its server already errored that fixture; this
    # makes sure the run fails even where the error was swallowed (or found at the very end).
    if LEAKS:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if LEAKS:
        terminalreporter.section("secret material found in audit output", red=True)
        for line in LEAKS:
            terminalreporter.write_line(line)


def strongroom(*args: str, env: dict[str, str], check: bool = True, input: str | None = None):  # type: ignore[no-untyped-def]
    return subprocess.run([sys.executable, "-m", "strongroom.cli.main", *args], env=env, check=check,
                          capture_output=True, text=True, input=input, timeout=120)


def _remember_profile_keys(env: dict[str, str]) -> None:
    """The admin key `strongroom init` wrote: a credential the audit trail must never show."""
    import configparser

    creds = configparser.ConfigParser()
    creds.read(env["AWS_SHARED_CREDENTIALS_FILE"])
    for name in creds.sections():
        remember_secret(creds[name].get("aws_secret_access_key"), f"profile {name}'s secret access key")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a server and the workers it started (they share its process group)."""
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


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
        _remember_profile_keys(env)
    log_path = tmp / "server.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "strongroom.cli.main", "serve", "--port", str(port), *args],
        env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: worker processes go with it
    )
    url = f"{scheme}://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
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
        _kill_group(proc)
        raise RuntimeError("server did not start in 60 s")
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
        try:
            srv.stop()  # raises if secret material is found in its audit output
        finally:
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
