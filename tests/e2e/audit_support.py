"""Helpers for audit tests: find the records of a call, run calls and keep their request ids."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import Server

NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"})


def records(server: Server, request_id: str) -> list[dict[str, Any]]:
    """Every audit record of one request, read straight from the database."""
    rows = server.sql("SELECT record FROM audit_events WHERE record LIKE :p", p=f'%"requestID":"{request_id}"%')
    return [json.loads(str(r[0])) for r in rows]


def the_record(server: Server, request_id: str) -> dict[str, Any]:
    found = records(server, request_id)
    assert len(found) == 1, f"{len(found)} audit records for request {request_id}"
    return found[0]


def audit_text(server: Server) -> str:
    """The whole audit table (every column), as one string to search."""
    return "\n".join(" ".join(map(str, row)) for row in server.sql("SELECT * FROM audit_events"))


def invoke(client: Any, operation: str, **params: Any) -> tuple[str, dict[str, Any] | None, str | None]:
    """(request id, response or None, error code or None) of one call through boto3."""
    try:
        resp = getattr(client, xform_name(operation))(**params)
    except ClientError as err:
        return err.response["ResponseMetadata"]["RequestId"], None, err.response["Error"]["Code"]
    return resp["ResponseMetadata"]["RequestId"], resp, None


class Receiver:
    """A tiny webhook receiver on 127.0.0.1 that fails the first `fail` deliveries."""

    def __init__(self, fail: int = 0):
        self.fail = fail
        self.received: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if outer.fail > 0:
                    outer.fail -= 1
                    self.send_response(503)
                else:
                    outer.received.append((dict(self.headers), body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class SyslogReceiver:
    """Collects syslog messages sent over TCP (NUL- or newline-framed) on 127.0.0.1:`port`."""

    def __init__(self, port: int):
        self.messages: list[str] = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            while chunk := conn.recv(65536):
                buf += chunk
                *done, buf = buf.replace(b"\n", b"\0").split(b"\0")
                self.messages.extend(m.decode() for m in done if m)

    def close(self) -> None:
        self.sock.close()


def wait_for(check: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def start_configured(tmp: Any, backend: Any, config: str) -> Server:
    """A server whose config.toml has `config` appended to what `strongroom init` wrote."""
    import os

    from tests.conftest import _remember_profile_keys, start_server, strongroom

    database_url = backend.new_database() if backend is not None else None
    env = {**os.environ, "STRONGROOM_DATA_DIR": str(tmp / "data"), "AWS_CONFIG_FILE": str(tmp / "aws" / "config"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "aws" / "credentials")}
    for var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                "STRONGROOM_DATABASE_URL"):
        env.pop(var, None)
    if database_url:
        env["STRONGROOM_DATABASE_URL"] = database_url
    strongroom("init", env=env)
    _remember_profile_keys(env)
    path = tmp / "data" / "config.toml"
    path.write_text(path.read_text() + "\n" + config)
    return start_server(tmp, init=False, database_url=database_url)


def scrape(server: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics as {(sample name, sorted labels): value}."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def metric(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def admin_keys(server: Server) -> tuple[str, str]:
    """The admin access key `strongroom init` wrote for this server (its own profile files)."""
    import configparser

    creds = configparser.ConfigParser()
    creds.read(server.env["AWS_SHARED_CREDENTIALS_FILE"])
    section = creds[server.profile]
    return section["aws_access_key_id"], section["aws_secret_access_key"]


def client(server: Server, service: str = "secretsmanager", **kw: Any) -> Any:
    """A client of this server signed with its admin key, whatever profile files the process uses."""
    import boto3

    key_id, secret = admin_keys(server)
    return boto3.Session(aws_access_key_id=key_id, aws_secret_access_key=secret, region_name="us-east-1").client(
        service, endpoint_url=server.url, **kw)
