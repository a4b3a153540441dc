"""Invoking functions: a Python handler in its own subprocess, or a webhook POST.

A Python handler runs under the interpreter of its own virtualenv (functions.py), with the
temporary credentials of its execution role (minted as AssumeRole does, for the role's
service principal lambda.amazonaws.com), the endpoint of this server, its configured
environment, a timeout and an address-space limit.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import logging
import os
import resource
import secrets
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strongroom.auth.credentials import new_access_key_id, new_secret_access_key, session_purpose, token_hash
from strongroom.crypto.rootkey import RootKey
from strongroom.rotation.functions import WEBHOOK_URL, FunctionRecord, FunctionRegistry
from strongroom.services.sts.service import ROLE_ARN
from strongroom.storage import Store, iam_store
from strongroom.storage.iam_store import SessionRecord

log = logging.getLogger("strongroom.functions")
BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
# Address space beyond MemorySize: the interpreter, boto3 and shared libraries map far more
# virtual memory than they touch, so the limit is the configured size plus this headroom.
ADDRESS_SPACE_HEADROOM = 1024 * 1024 * 1024
SESSION_SECONDS = 900


@dataclass
class Outcome:
    """What one invocation returned: the payload, or the function's error, and its log tail."""

    payload: Any = None
    error: dict[str, Any] | None = None
    log_tail: str = ""

    @property
    def failed(self) -> bool:
        return self.error is not None


class CredentialError(Exception):
    pass


def mint_role_credentials(store: Store, root: RootKey, role_arn: str, session_name: str,
                          duration: int = SESSION_SECONDS) -> dict[str, str]:
    """Session credentials for `role_arn`, as AssumeRole issues them (the role must exist)."""
    m = ROLE_ARN.fullmatch(role_arn)
    if m is None:
        raise CredentialError(f"the execution role {role_arn} is not a role ARN")
    account, _path, name = m.groups()
    now = time.time()
    with store.read() as tx:
        role = iam_store.get_role(tx.conn, account, name)
    if role is None:
        raise CredentialError(f"the execution role {role_arn} does not exist")
    key_id, secret = new_access_key_id("ASIA"), new_secret_access_key()
    session_token = secrets.token_urlsafe(144)
    session = SessionRecord(
        access_key_id=key_id, account_id=role.account_id,
        secret_wrapped=root.wrap(secret.encode(), session_purpose(key_id)),
        token_hash=token_hash(session_token), expiration=now + duration, role_name=role.role_name,
        role_id=role.role_id, session_name=session_name[:64], source_arn="lambda.amazonaws.com", created_date=now)
    with store.write() as tx:
        iam_store.insert_session(tx.conn, session)
    return {"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": session_token}


def _limits(memory_mb: int) -> Callable[[], None]:
    def apply() -> None:
        limit = memory_mb * 1024 * 1024 + ADDRESS_SPACE_HEADROOM
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.setsid()  # its own process group, so a timeout kills whatever it started too

    return apply


def run_python(registry: FunctionRegistry, fn: FunctionRecord, event: Any, credentials: dict[str, str],
               endpoint: str) -> Outcome:
    prepared = registry.prepare(fn)
    request_id = str(uuid.uuid4())
    with tempfile.TemporaryDirectory(prefix="strongroom-fn-") as tmp:
        result = Path(tmp) / "result.json"
        env = {
            "PATH": os.pathsep.join([str(prepared.python.parent), os.environ.get("PATH", "/usr/bin:/bin")]),
            "HOME": tmp, "VIRTUAL_ENV": str(prepared.env), "TMPDIR": tmp, "LANG": "C.UTF-8",
            **fn.environment,  # the function's own variables; ours below win, as on Lambda
            **credentials,
            # The code first (Lambda's /var/task), then the virtualenv's packages, then boto3.
            "PYTHONPATH": str(prepared.code), "PYTHONDONTWRITEBYTECODE": "1",
            "AWS_REGION": fn.region, "AWS_DEFAULT_REGION": fn.region,
            "AWS_ENDPOINT_URL": endpoint, "SECRETS_MANAGER_ENDPOINT": endpoint,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint,
            "AWS_LAMBDA_FUNCTION_NAME": fn.name, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "_HANDLER": fn.handler,
            "_STRONGROOM_RESULT": str(result), "_STRONGROOM_TIMEOUT": str(fn.timeout),
            "_STRONGROOM_FUNCTION_ARN": fn.arn, "_STRONGROOM_REQUEST_ID": request_id,
        }
        for var in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            env.pop(var, None)
        # -P: the bootstrap's own directory (strongroom/rotation) stays off sys.path, so a
        # function's `import functions` or `import engine` finds its own modules, not ours.
        proc = subprocess.Popen([str(prepared.python), "-P", str(BOOTSTRAP)], cwd=str(prepared.code), env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                preexec_fn=_limits(fn.memory_size))
        try:
            out, _ = proc.communicate(json.dumps(event).encode(), timeout=fn.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            out, _ = proc.communicate()
            return Outcome(error={"errorMessage": f"Task timed out after {fn.timeout:.2f} seconds",
                                  "errorType": "Sandbox.Timedout"}, log_tail=_tail(out))
        if not result.exists():
            return Outcome(error={"errorMessage": f"the function exited with status {proc.returncode}",
                                  "errorType": "Runtime.ExitError"}, log_tail=_tail(out))
        try:  # the function's own process wrote it: it may have written anything there
            data = json.loads(result.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError
        except (ValueError, RecursionError):
            return Outcome(error={"errorMessage": "the function's result could not be read",
                                  "errorType": "Runtime.InvalidResult"}, log_tail=_tail(out))
    if not data.get("ok"):
        return Outcome(error={k: data.get(k) for k in ("errorMessage", "errorType", "stackTrace")},
                       log_tail=_tail(out))
    return Outcome(payload=data.get("payload"), log_tail=_tail(out))


def _tail(out: bytes | None) -> str:
    return (out or b"")[-4096:].decode("utf-8", "replace")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The webhook signature: HMAC-SHA256 over `timestamp.body`, hex (the timestamp blocks replays)."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def webhook_url_problem(url: str | None) -> str | None:
    """Why `url` cannot be a webhook function's address (None when it can, or is absent): only
    http(s) to a host, never a local file or inline data."""
    if url is None:
        return None
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or any(
            c in url for c in "\r\n\t "):
        return f"{WEBHOOK_URL} must be an http:// or https:// URL"
    return None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A webhook answers where it was asked: a redirect is its answer, not a new address."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def run_webhook(fn: FunctionRecord, event: Any) -> Outcome:
    url = fn.webhook_url or ""
    problem = webhook_url_problem(url)
    if problem:  # stored before this check existed
        return Outcome(error={"errorMessage": problem, "errorType": "Webhook.InvalidURL"})
    body = json.dumps(event).encode()
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-Strongroom-Timestamp": timestamp,
               "X-Strongroom-Function": fn.arn}
    secret = fn.environment.get("STRONGROOM_WEBHOOK_SECRET")
    if secret:
        headers["X-Strongroom-Signature"] = "sha256=" + sign(secret, timestamp, body)
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _OPENER.open(req, timeout=fn.timeout) as resp:  # http(s) only: webhook_url_problem
            text = resp.read(1024 * 1024).decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        detail = err.read(512).decode("utf-8", "replace")
        return Outcome(error={"errorMessage": f"webhook answered HTTP {err.code}: {detail}",
                              "errorType": "Webhook.HTTPError"})
    except (OSError, http.client.HTTPException) as err:
        return Outcome(error={"errorMessage": f"webhook unreachable: {type(err).__name__}: {err}",
                              "errorType": "Webhook.Unreachable"})
    try:
        return Outcome(payload=json.loads(text) if text.strip() else None)
    except ValueError:
        return Outcome(payload=text)


def log_result(outcome: Outcome) -> str:
    """Lambda's X-Amz-Log-Result: base64 of the log's last 4 KB."""
    return base64.b64encode(outcome.log_tail.encode()[-4096:]).decode()
