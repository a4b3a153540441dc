"""The local admin endpoint: status, unseal, seal and rekey, on the API's own port.

    GET  /_strongroom/status   POST /_strongroom/unseal   POST /_strongroom/seal   POST /_strongroom/rekey

Who may call it (all three must hold):
- the peer address is loopback (127.0.0.1 or ::1): the endpoint is not on the network;
- the request carries no proxy forwarding header (Forwarded, X-Forwarded-For,
  X-Real-IP): a reverse proxy on the same host would otherwise make remote
  requests look local;
- it presents the admin token the server wrote, with its address, to
  `<data dir>/admin.json` (mode 0600) when it started: the caller can read the
  data directory, so it is the operator (this is what `strongroom unseal` reads).
The token changes at every start. Errors have the AWS JSON shape.

Every request to it, allowed or refused, leaves an audit record (eventSource
strongroom.amazonaws.com; GetRootKeyStatus, Unseal, Seal, StartRekey) on the same chain
as the API's. Shares and passphrases are never recorded, nor the rekey target beyond its
source type. Seal, unseal and rekey first check that their record can be written and, with
fail_mode closed, are refused when it cannot.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from strongroom.audit.local import LocalTrail, local_event
from strongroom.audit.writer import AuditUnavailable
from strongroom.crypto.passphrase import UnsealError, write_private
from strongroom.crypto.rootchain import SealedError
from strongroom.crypto.rootkey import RootKeyError
from strongroom.crypto.shamir import ShareError
from strongroom.rootkeys.manager import RekeyRefused, RootKeys

ADMIN_FILE = "admin.json"
TOKEN_HEADER = "x-strongroom-admin-token"
PREFIX = "/_strongroom"
_LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}
_FORWARDED = ("forwarded", "x-real-ip", "x-forwarded-")  # names, and the prefix of every X-Forwarded-*
MAX_BODY = 64 * 1024


def new_token() -> str:
    return secrets.token_urlsafe(32)


def publish(data_dir: Path, url: str, token: str) -> None:
    """Tell local commands where the server listens and the token its admin endpoint wants."""
    write_private(data_dir / ADMIN_FILE, json.dumps({"url": url, "token": token, "pid": os.getpid()}).encode())


def withdraw(data_dir: Path, token: str) -> None:
    """Remove admin.json if it is still this server's (another may have started since)."""
    path = data_dir / ADMIN_FILE
    try:
        if json.loads(path.read_text()).get("token") == token:
            path.unlink()
    except (OSError, ValueError):
        pass


def _error(code: str, message: str, status: int) -> Response:
    return JSONResponse({"__type": code, "message": message}, status_code=status,
                        headers={"x-amzn-ErrorType": code})


def _allowed(request: Request, token: str) -> bool:
    client = request.client
    if client is None or client.host not in _LOOPBACK:
        return False
    if any(name.startswith(_FORWARDED) for name in request.headers):  # Starlette's names are lower case
        return False
    presented = request.headers.get(TOKEN_HEADER, "")
    return hmac.compare_digest(presented.encode(), token.encode())


async def _json(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise ValueError("request body too large")
    data = json.loads(body or b"{}")
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


# The one who holds the admin token: the operator who can read the data directory. It is
# no principal of any account, so its userIdentity names no account.
OPERATOR = {"type": "Root", "principalId": "strongroom-admin-token", "accountId": "",
            "invokedBy": "strongroom admin endpoint"}
UNKNOWN = {"type": "Unknown", "principalId": "", "accountId": ""}


class AdminAudit:
    """Records admin-endpoint requests: through the server's audit log when given one, else
    through a writer of this module's own appending to the same chain (audit/local.py)."""

    def __init__(self, keys: RootKeys, audit: Any = None):
        self.audit = audit  # strongroom.audit.log.AuditLog of this server, if the caller passed it
        self.region = keys.settings.region
        self.trail: LocalTrail | None = None
        if audit is None and keys.store is not None:
            from strongroom.audit.settings import audit_settings

            settings = audit_settings(keys.settings.audit, keys.settings.data_dir)
            # No key: the server's own writer signs these events with its next digest.
            self.trail = LocalTrail(keys.store, fail_closed=settings.fail_mode == "closed")

    def preflight(self, operation: str) -> bool:
        if self.audit is not None:
            return bool(self.audit.preflight(operation))
        if self.trail is None:
            return True
        try:
            self.trail.preflight()
            return True
        except AuditUnavailable:
            return False

    async def record(self, request: Request, operation: str, allowed: bool, params: dict[str, Any] | None,
                     result: dict[str, Any] | None, error: tuple[str, str] | None) -> bool:
        """False when the record could not be written and the request must fail (fail closed)."""
        client = request.client
        event = local_event(service="strongroom", operation=operation, region=self.region, principal=None,
                            params=params if allowed else None, result=result,
                            error_code=error[0] if error else None, error_message=error[1] if error else None,
                            user_agent=request.headers.get("user-agent", "")[:1024],
                            source_ip=client.host if client else "", identity=OPERATOR if allowed else UNKNOWN)
        if self.audit is not None:
            return bool(await self.audit.append(event))
        if self.trail is None:
            return True
        try:
            await anyio.to_thread.run_sync(self.trail.append, event)
            return True
        except AuditUnavailable:
            return False


def _logged_params(operation: str, body: dict[str, Any]) -> dict[str, Any]:
    """What the record may say about a request: never a share or passphrase (the deny-list
    hides them anyway), and of a rekey target only its source type."""
    if operation == "Unseal":
        return {k: body[k] for k in ("share", "passphrase", "reset") if k in body}
    if operation == "StartRekey":
        target = body.get("to")
        out: dict[str, Any] = {k: body[k] for k in ("batch_size", "pause") if k in body}
        if isinstance(target, dict):
            out["to"] = {"source": str(target.get("source", ""))}
        return out
    return {}


def admin_routes(keys: RootKeys, token: str, audit: Any = None) -> list[Route]:
    recorder = AdminAudit(keys, audit)

    def guarded(handler: Any, operation: str) -> Any:
        async def endpoint(request: Request) -> Response:
            if not _allowed(request, token):
                message = ("the admin endpoint answers only local requests "
                           "that carry the token from the data directory's admin.json")
                # Recorded as a refused call; its 403 stands even if the record can't be written.
                await recorder.record(request, operation, False, None, None, ("AccessDeniedException", message))
                return _error("AccessDeniedException", message, 403)
            unavailable = _error("InternalFailure", "the audit trail cannot be written; nothing was done", 500)
            if operation != "GetRootKeyStatus" and not await anyio.to_thread.run_sync(recorder.preflight,
                                                                                       operation):
                return unavailable
            body: dict[str, Any] = {}
            result: dict[str, Any] | None = None
            error: tuple[str, str] | None = None
            try:
                body = await _json(request) if request.method == "POST" else {}
                result = await anyio.to_thread.run_sync(handler, body)
                response: Response = JSONResponse(result)
            except ValueError as exc:  # ShareError too: a mistyped share
                error, response = ("ValidationException", str(exc)), _error("ValidationException", str(exc), 400)
            except UnsealError as exc:
                error = ("UnsealFailedException", exc.args[0])
                response = _error("UnsealFailedException", exc.args[0], 400)
            except SealedError as exc:
                error = ("ServiceUnavailableException", exc.args[0])
                response = _error("ServiceUnavailableException", exc.args[0], 503)
            except (RekeyRefused, RootKeyError) as exc:
                error = ("InvalidRequestException", str(exc))
                response = _error("InvalidRequestException", str(exc), 400)
            params = _logged_params(operation, body if isinstance(body, dict) else {})
            if not await recorder.record(request, operation, True, params, result, error):
                if error is not None or operation == "GetRootKeyStatus":
                    return unavailable
                # It acted (its pre-check passed) but the record did not commit: the caller must know.
                return _error("InternalFailure", f"{operation} was done but its audit record could not be "
                              "written", 500)
            return response
        return endpoint

    def status(_: dict[str, Any]) -> dict[str, Any]:
        return keys.status()

    def unseal(body: dict[str, Any]) -> dict[str, Any]:
        share = body.get("share")
        if share is not None and not isinstance(share, str):
            raise ShareError("share must be a string")
        text = body.get("passphrase")
        if text is not None and not isinstance(text, str):
            raise ValueError("passphrase must be a string")
        return keys.unseal(passphrase_text=text, share=share, reset=bool(body.get("reset")))

    def seal(_: dict[str, Any]) -> dict[str, Any]:
        keys.seal()
        return keys.status()

    def rekey(body: dict[str, Any]) -> dict[str, Any]:
        target = body.get("to")
        if target is not None and not isinstance(target, dict):
            raise ValueError("to must be a [root_key] table")
        batch_size, pause = int(body.get("batch_size", 100)), float(body.get("pause", 0.0))
        if not 1 <= batch_size <= 10_000 or not 0 <= pause <= 60:
            raise ValueError("batch_size must be 1..10000 and pause 0..60 seconds")
        return keys.start_rekey(target, batch_size=batch_size, pause=pause)

    return [
        Route(f"{PREFIX}/status", guarded(status, "GetRootKeyStatus"), methods=["GET"]),
        Route(f"{PREFIX}/unseal", guarded(unseal, "Unseal"), methods=["POST"]),
        Route(f"{PREFIX}/seal", guarded(seal, "Seal"), methods=["POST"]),
        Route(f"{PREFIX}/rekey", guarded(rekey, "StartRekey"), methods=["POST"]),
    ]
