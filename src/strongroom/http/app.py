"""The ASGI application: one POST endpoint for the AWS JSON 1.1 services, health probes.

A request travels: size limit -> X-Amz-Target -> SigV4 -> JSON decode -> model
validation -> service operation (in a worker thread) -> JSON response. Every
failure leaves as an AWS-shaped error; nothing leaks a traceback.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from strongroom.auth.credentials import CredentialResolver
from strongroom.auth.sigv4 import SigV4Verifier, WireRequest
from strongroom.context import RequestContext
from strongroom.crypto.rootchain import SEALED_MESSAGE
from strongroom.errors import (
    AwsError,
    InternalServiceError,
    InvalidSignatureException,
    RequestEntityTooLargeException,
    SerializationException,
    ServiceUnavailableException,
    UnknownOperationException,
)
from strongroom.http import query
from strongroom.http.exchange import Exchange
from strongroom.http.shapes import parse_input, service_model, to_wire
from strongroom.storage.store import WouldBlock, no_blocking

log = logging.getLogger("strongroom.http")
JSON_TYPE = "application/x-amz-json-1.1"
MAX_BODY = 1024 * 1024


class JsonService(Protocol):
    signing_name: str
    target_prefix: str
    model_name: str

    def operation(self, name: str) -> Any: ...

    def call(self, name: str, ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]: ...


@dataclass
class Gateway:
    services: dict[str, Any]  # target prefix -> service
    resolver: CredentialResolver
    verifier: SigV4Verifier = field(default_factory=SigV4Verifier)
    ready: Any = None  # () -> (bool, reason)
    policies: Any = None  # principal -> (identity policies, session policies or None)
    query_services: dict[str, Any] = field(default_factory=dict)  # SigV4 service name -> query service
    sealed: Any = None  # () -> bool: True while the root key is sealed (every API request is refused)
    observer: Any = None  # http.observe.Observer: each call's audit record and metrics
    # Operations tried on the event loop first (no database access allowed there: WouldBlock):
    # reads the caches usually answer, where a thread hop would cost more than the work.
    inline_operations: frozenset[str] = frozenset({"GetSecretValue"})


def _error_response(err: AwsError, request_id: str) -> Response:
    return JSONResponse(
        {"__type": err.code, "message": err.message},
        status_code=err.status,
        media_type=JSON_TYPE,
        headers={"x-amzn-RequestId": request_id, "x-amzn-ErrorType": err.code},
    )


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise RequestEntityTooLargeException(f"Request body is larger than {MAX_BODY} bytes.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise RequestEntityTooLargeException(f"Request body is larger than {MAX_BODY} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def build_app(gateway: Gateway) -> "JsonFirst":
    async def handle(request: Request) -> Response:
        ex = Exchange.begin(request)
        response = await answer(request, ex)
        # The response leaves only once its audit record is durable (or fails in its place).
        return response if gateway.observer is None else await gateway.observer.finish(ex, response)

    async def answer(request: Request, ex: Exchange) -> Response:
        request_id = ex.request_id
        started = ex.started
        op_name, principal_arn, outcome = "-", "-", "ok"
        try:
            if "x-amz-target" not in request.headers and query.is_query_request(request):  # IAM, STS
                response, op_name, principal_arn, outcome = await query.handle(gateway, request, request_id,
                                                                               _read_body, ex)
                return response
            body = await _read_body(request)
            target = request.headers.get("x-amz-target", "")
            # The operation follows the last dot: CloudTrail's prefix is com.amazonaws.cloudtrail.v20131101.X
            prefix, _, op_name = target.rpartition(".")
            service = gateway.services.get(prefix)
            ex.op_name = op_name or "-"
            if service is None or not op_name:
                op_name = op_name or "-"
                raise UnknownOperationException("")
            ex.service = service.signing_name
            wire = _wire(request, body)
            result = None
            if op_name in gateway.inline_operations:
                # Usually answered from memory: try on the event loop, where anything that would
                # touch the database raises WouldBlock instead, and then go to a thread after all.
                blocking = no_blocking.set(True)
                try:
                    result = _pipeline(gateway, request, wire, service, ex, op_name)
                except WouldBlock:
                    result = None
                finally:
                    no_blocking.reset(blocking)
            if result is None:  # one thread hop for authentication, decoding and the operation
                result = await anyio.to_thread.run_sync(_pipeline, gateway, request, wire, service, ex, op_name)
            principal_arn = ex.principal_arn
            return Response(
                json.dumps(to_wire(result), separators=(",", ":")),
                media_type=JSON_TYPE,
                headers={"x-amzn-RequestId": request_id},
            )
        except AwsError as err:
            outcome = err.code
            ex.error = err
            return _error_response(err, request_id)
        except Exception as exc:  # noqa: BLE001 - the one place unexpected faults become InternalServiceError
            outcome = "InternalServiceError"
            # Only the exception type and location: messages of driver errors may echo bound parameters.
            tb = exc.__traceback__
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else "?"
            log.error("unexpected fault request_id=%s operation=%s error=%s at=%s",
                      request_id, op_name, type(exc).__name__, where)
            ex.error = InternalServiceError(f"An internal error occurred. Request ID: {request_id}")
            return _error_response(ex.error, request_id)
        finally:
            # The audit trail records every call; this line is for debugging, and costs a
            # tenth of a read's time when written, so only at --log-level debug.
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "request",
                    extra={"request_id": request_id, "operation": op_name, "principal": principal_arn,
                           "outcome": outcome, "duration_ms": round((time.perf_counter() - started) * 1000, 2)},
                )

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(_: Request) -> Response:
        ok, reason = (True, "ready") if gateway.ready is None else gateway.ready()
        return JSONResponse({"status": "ready" if ok else "unavailable", "reason": reason},
                            status_code=200 if ok else 503)

    return JsonFirst(Starlette(
        routes=[
            Route("/", handle, methods=["POST", "GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/ready", ready, methods=["GET"]),
        ]
    ), handle)


class JsonFirst:
    """The ASGI entry: AWS JSON calls (POST / with X-Amz-Target) go straight to the handler,
    everything else (the query protocol, Lambda's REST routes, probes, lifespan) to Starlette.

    The handler answers every failure itself; Starlette's router and error middleware
    would only add a tenth to the cost of the most frequent request, GetSecretValue.
    """

    def __init__(self, app: Starlette, handle: Any):
        self.app, self.handle = app, handle
        self.router = app.router  # routes and lifespan are added on the Starlette app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/":
            for name, _ in scope["headers"]:
                if name == b"x-amz-target":
                    await self._json(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _json(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["app"] = self.app
        try:
            response = await self.handle(Request(scope, receive))
        except Exception as exc:  # noqa: BLE001 - never a traceback to the client
            log.error("unexpected fault outside a request's handling: %s", type(exc).__name__)
            err = InternalServiceError("An internal error occurred.")
            response = _error_response(err, "")
        await response(scope, receive, send)


def _not_json(constant: str) -> Any:
    """Python's json accepts NaN and Infinity; JSON (and AWS) do not."""
    raise ValueError(f"{constant} is not JSON")


def _pipeline(gateway: Gateway, request: Request, wire: WireRequest, service: Any, ex: Exchange,
              op_name: str) -> dict[str, Any]:
    """Authenticate, decode, validate and run the operation: in one worker thread, or inline.

    A request tried inline that must go to a thread after all keeps what it established
    (the caller, the parameters): the thread picks up from the operation."""
    if ex.ctx is None or ex.params is None:
        ctx = ex.ctx = _authenticate(gateway, request, wire, service, ex.request_id)
        ex.principal_arn = ctx.principal.arn
        if service.operation(op_name) is None:
            raise UnknownOperationException("")
        try:
            raw = json.loads(wire.body or b"{}", parse_constant=_not_json)
        except (ValueError, UnicodeDecodeError, RecursionError):  # NaN/Infinity and deep nesting too
            raise SerializationException("The request body is not valid JSON.") from None
        ex.params = parse_input(service_model(service.model_name).operation_model(op_name), raw)
    ex.result = _invoke(gateway, service, ex, op_name, ex.ctx, ex.params)
    return ex.result


def _wire(request: Request, body: bytes) -> WireRequest:
    scope = request.scope
    return WireRequest(
        method=request.method,
        path=request.url.path,
        query_string=scope.get("query_string", b"").decode("latin-1"),
        headers=[(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]],
        body=body,
    )


def _invoke(gateway: Gateway, service: Any, ex: Exchange, op_name: str, ctx: RequestContext,
            params: dict[str, Any]) -> dict[str, Any]:
    """Run the operation, after the observer's check that a write may proceed (the audit trail
    is writable): both protocols' last step."""
    if gateway.observer is not None:
        gateway.observer.before_call(ex)
    result: dict[str, Any] = service.call(op_name, ctx, params)
    return result


def _authenticate(gateway: Gateway, request: Request, wire: WireRequest | bytes, service: Any,
                  request_id: str) -> RequestContext:
    """`wire` is the request as SigV4 sees it, or just its body (the other protocols)."""
    if gateway.sealed is not None and gateway.sealed():  # both protocols pass here, each answers in its shape
        raise ServiceUnavailableException(SEALED_MESSAGE)
    if isinstance(wire, bytes):
        wire = _wire(request, wire)
    now = dt.datetime.now(dt.timezone.utc)
    claim, parts = gateway.verifier.parse(wire, now)
    if claim.service != service.signing_name:
        raise InvalidSignatureException(f"Credential should be scoped to correct service: '{service.signing_name}'. ")
    cred = gateway.resolver.resolve(claim.access_key_id, claim.security_token)
    gateway.verifier.verify(wire, claim, parts, cred.secret)
    gateway.resolver.note_used(claim.access_key_id, claim.service, claim.region)
    client = request.client
    identity, session = gateway.policies.get(cred.principal) if gateway.policies else ((), None)
    return RequestContext(
        principal=cred.principal,
        identity_policies=identity,
        session_policies=session,
        region=claim.region,
        request_id=request_id,
        source_ip=client.host if client else "",
        user_agent=request.headers.get("user-agent", ""),
        secure_transport=request.url.scheme == "https",
        time=now,
    )
