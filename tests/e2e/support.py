"""Helpers for end-to-end tests: error codes, state snapshots, raw signed HTTP requests."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.conftest import Server

JSON_11 = "application/x-amz-json-1.1"


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def message(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Message"]


def no_retry(server: Server) -> Any:
    """A client that does not retry: botocore retries LimitExceededException as throttling."""
    return server.client(config=Config(retries={"max_attempts": 1, "mode": "standard"}))


def snapshot(sm: Any, secret_id: str) -> dict[str, Any]:
    """Everything observable about one secret, to assert a refused request changed nothing.

    The value is read first so LastAccessedDate (day granularity) is already set; a
    secret without a readable value (none yet, or deleted) records the error instead.
    """
    try:
        value = sm.get_secret_value(SecretId=secret_id)
    except ClientError as err:
        value = {"error": err.response["Error"]["Code"]}
    described = sm.describe_secret(SecretId=secret_id)
    versions = sm.list_secret_version_ids(SecretId=secret_id, IncludeDeprecated=True)["Versions"]
    policy = sm.get_resource_policy(SecretId=secret_id).get("ResourcePolicy")
    for item in (value, described):
        item.pop("ResponseMetadata", None)
    return {"value": value, "described": described, "versions": versions, "policy": policy}


def names_with_prefix(sm: Any, prefix: str) -> list[str]:
    pages = sm.get_paginator("list_secrets").paginate(
        IncludePlannedDeletion=True, Filters=[{"Key": "name", "Values": [prefix]}])
    return sorted(s["Name"] for page in pages for s in page["SecretList"])


def credentials(server: Server) -> Credentials:
    return server.session().get_credentials().get_frozen_credentials()  # type: ignore[no-any-return]


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error(self) -> str:
        return str(self.json["__type"])


def signed_request(server: Server, target: str, body: bytes, *, creds: Credentials | None = None,
                   timestamp: str | None = None, region: str = "us-east-1",
                   headers: dict[str, str] | None = None, service: str = "secretsmanager") -> AWSRequest:
    """A request signed by botocore's SigV4 signer; `timestamp` (YYYYMMDDTHHMMSSZ) signs as of another time."""
    req = AWSRequest(method="POST", url=server.url + "/", data=body,
                     headers={"X-Amz-Target": target, "Content-Type": JSON_11, **(headers or {})})
    auth = SigV4Auth(creds or credentials(server), service, region)
    if timestamp is None:
        auth.add_auth(req)
        return req
    # SigV4Auth.add_auth always signs "now"; these are its own steps with the timestamp given.
    req.context["timestamp"] = timestamp
    auth._modify_request_before_signing(req)
    signature = auth.signature(auth.string_to_sign(req, auth.canonical_request(req)), req)
    auth._inject_signature_to_request(req, signature)
    return req


def send(server: Server, req: AWSRequest | None = None, *, url: str | None = None, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> Reply:
    """Send over a fresh connection; `body`/`headers` override what was signed (to tamper)."""
    target = urlsplit(url or (req.url if req is not None else server.url + "/"))
    data = body if body is not None else (req.body if req is not None else b"")
    if isinstance(data, str):
        data = data.encode()
    sent = dict(req.headers.items()) if req is not None else {}
    sent.update(headers or {})
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
    try:
        path = target.path or "/"
        conn.request("POST", path + (f"?{target.query}" if target.query else ""), body=data or b"", headers=sent)
        resp = conn.getresponse()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def call(server: Server, target: str, payload: Any, **kw: Any) -> Reply:
    """Sign and send a JSON body (a dict, or raw bytes sent as they are)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return send(server, signed_request(server, target, body, **kw))
