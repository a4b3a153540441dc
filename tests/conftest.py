"""Shared fixtures: a real strongroom server on 127.0.0.1 driven by real boto3 clients."""

from __future__ import annotations

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
from pathlib import Path

import boto3
import pytest
import urllib.request

REQUIRE_SERVICES = os.environ.get("STRONGROOM_REQUIRE_SERVICES") == "1"


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
                 init: bool = True, scheme: str = "http", verify: str | None = None) -> Server:
    data_dir = tmp / "data"
    env = {
        **os.environ,
        "STRONGROOM_DATA_DIR": str(data_dir),
        "AWS_CONFIG_FILE": str(tmp / "aws" / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "aws" / "credentials"),
        **(extra_env or {}),
    }
    for var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER"):
        env.pop(var, None)
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
    return Server(url, data_dir, env, proc, log_path)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("server")
    srv = start_server(tmp)
    # boto3 reads the profile files from the environment of this process.
    saved = {k: os.environ.get(k) for k in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")}
    os.environ["AWS_CONFIG_FILE"] = srv.env["AWS_CONFIG_FILE"]
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = srv.env["AWS_SHARED_CREDENTIALS_FILE"]
    yield srv
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
