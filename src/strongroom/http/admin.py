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

from strongroom.crypto.passphrase import UnsealError, write_private
from strongroom.crypto.rootchain import SealedError
from strongroom.crypto.rootkey import RootKeyError
from strongroom.crypto.shamir import ShareError
from strongroom.rootkeys.manager import RekeyRefused, RootKeys

ADMIN_FILE = "admin.json"
TOKEN_HEADER = "x-strongroom-admin-token"
PREFIX = "/_strongroom"
_LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}
_FORWARDING = ("forwarded", "x-forwarded-for", "x-real-ip")
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
    if any(h in request.headers for h in _FORWARDING):
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


def admin_routes(keys: RootKeys, token: str) -> list[Route]:
    def guarded(handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            if not _allowed(request, token):
                return _error("AccessDeniedException", "the admin endpoint answers only local requests "
                              "that carry the token from the data directory's admin.json", 403)
            try:
                body = await _json(request) if request.method == "POST" else {}
                return JSONResponse(await anyio.to_thread.run_sync(handler, body))
            except ValueError as exc:  # ShareError too: a mistyped share
                return _error("ValidationException", str(exc), 400)
            except UnsealError as exc:
                return _error("UnsealFailedException", exc.args[0], 400)
            except SealedError as exc:
                return _error("ServiceUnavailableException", exc.args[0], 503)
            except (RekeyRefused, RootKeyError) as exc:
                return _error("InvalidRequestException", str(exc), 400)
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
        Route(f"{PREFIX}/status", guarded(status), methods=["GET"]),
        Route(f"{PREFIX}/unseal", guarded(unseal), methods=["POST"]),
        Route(f"{PREFIX}/seal", guarded(seal), methods=["POST"]),
        Route(f"{PREFIX}/rekey", guarded(rekey), methods=["POST"]),
    ]
