"""The ASGI application: one POST endpoint for the AWS JSON 1.1 services, health probes.

A request travels: size limit -> X-Amz-Target -> SigV4 -> JSON decode -> model
validation -> service operation (in a worker thread) -> JSON response. Every
failure leaves as an AWS-shaped error; nothing leaks a traceback.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio.to_thread
import orjson
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from strongroom.auth.credentials import CredentialResolver
from strongroom.auth.sigv4 import SignedRequest, SigV4Verifier, WireRequest
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


class Reply:
    """A finished response as ASGI messages: what the JSON path answers with, without building
    a Starlette Response for the most frequent request."""

    __slots__ = ("status", "body", "headers")

    def __init__(self, status: int, body: bytes, headers: list[tuple[bytes, bytes]]):
        self.status, self.body, self.headers = status, body, headers

    @classmethod
    def json(cls, status: int, body: bytes, request_id: str, error_code: str | None = None) -> "Reply":
        headers = [(b"content-type", _JSON_TYPE), (b"content-length", str(len(body)).encode()),
                   (b"x-amzn-requestid", request_id.encode())]
        if error_code is not None:
            headers.append((b"x-amzn-errortype", error_code.encode()))
        return cls(status, body, headers)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


_JSON_TYPE = JSON_TYPE.encode()


def json_error(err: AwsError, request_id: str) -> Reply:
    """An AWS JSON error: `{"__type", "message"}` with its status and x-amzn-ErrorType."""
    body = orjson.dumps({"__type": err.code, "message": err.message})
    return Reply.json(err.status, body, request_id, err.code)


def _too_large() -> AwsError:
    return RequestEntityTooLargeException(f"Request body is larger than {MAX_BODY} bytes.")


async def receive_body(receive: Any, declared: str | None) -> bytes:
    """The request body from ASGI `receive`, refused past MAX_BODY (declared or counted)."""
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise _too_large()
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect: nobody is left to answer
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise _too_large()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _read_body(request: Request) -> bytes:
    return await receive_body(request.receive, request.headers.get("content-length"))


def build_app(gateway: Gateway) -> "JsonFirst":
    async def handle(request: Request) -> Any:
        """POST or GET / without X-Amz-Target: the query protocol (IAM, STS), else a JSON error."""
        ex = Exchange.begin(request.scope)
        response: Any
        if query.is_query_request(request):
            response = await query.handle(gateway, request, ex, _read_body)
            _debug_line(ex)
        else:
            try:
                response = await answer(ex, request.receive)
            except ClientDisconnect:
                return Response(status_code=400)  # nobody reads it; nothing was called
        # The response leaves only once its audit record is durable (or fails in its place).
        return response if gateway.observer is None else await gateway.observer.finish(ex, response)

    async def json_call(scope: dict[str, Any], receive: Any) -> Any:
        ex = Exchange.begin(scope)
        response = await answer(ex, receive)
        return response if gateway.observer is None else await gateway.observer.finish(ex, response)

    async def answer(ex: Exchange, receive: Any) -> Reply:
        """An AWS JSON 1.1 call: every failure leaves as an AWS-shaped error."""
        request_id = ex.request_id
        header = ex.header or {}
        try:
            body = await receive_body(receive, header.get("content-length"))
            # The operation follows the last dot: CloudTrail's prefix is com.amazonaws.cloudtrail.v20131101.X
            prefix, _, op_name = header.get("x-amz-target", "").rpartition(".")
            service = gateway.services.get(prefix)
            ex.op_name = op_name or "-"
            if service is None or not op_name:
                raise UnknownOperationException("")
            ex.service = service.signing_name
            wire = ex.wire(body)
            result = None
            if op_name in gateway.inline_operations:
                # Usually answered from memory: try on the event loop, where anything that would
                # touch the database raises WouldBlock instead, and then go to a thread after all.
                blocking = no_blocking.set(True)
                try:
                    result = _pipeline(gateway, wire, service, ex, op_name)
                except WouldBlock:
                    result = None
                finally:
                    no_blocking.reset(blocking)
            if result is None:  # one thread hop for authentication, decoding and the operation
                result = await anyio.to_thread.run_sync(_pipeline, gateway, wire, service, ex, op_name)
            return Reply.json(200, orjson.dumps(to_wire(result)), request_id)
        except AwsError as err:
            ex.error = err
            return json_error(err, request_id)
        except ClientDisconnect:
            raise
        except Exception as exc:  # noqa: BLE001 - the one place unexpected faults become InternalServiceError
            # Only the exception type and location: messages of driver errors may echo bound parameters.
            tb = exc.__traceback__
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else "?"
            log.error("unexpected fault request_id=%s operation=%s error=%s at=%s",
                      request_id, ex.op_name, type(exc).__name__, where)
            ex.error = InternalServiceError(f"An internal error occurred. Request ID: {request_id}")
            return json_error(ex.error, request_id)
        finally:
            _debug_line(ex)

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
    ), json_call)


def _debug_line(ex: Exchange) -> None:
    # The audit trail records every call; this line is for debugging, and costs a tenth of a
    # read's time when written, so only at --log-level debug.
    if log.isEnabledFor(logging.DEBUG):
        log.debug("request", extra={
            "request_id": ex.request_id, "operation": ex.op_name, "principal": ex.principal_arn,
            "outcome": ex.error.code if ex.error else "ok",
            "duration_ms": round((time.perf_counter() - ex.started) * 1000, 2)})


class JsonFirst:
    """The ASGI entry: AWS JSON calls (POST / with X-Amz-Target) go straight to the handler,
    everything else (the query protocol, Lambda's REST routes, probes, lifespan) to Starlette.

    The handler answers every failure itself; Starlette's router, its request and response
    objects and its error middleware would add a fifth to the cost of the most frequent
    request, GetSecretValue.
    """

    def __init__(self, app: Starlette, json_call: Any):
        self.app, self.json_call = app, json_call
        self.router = app.router  # routes and lifespan are added on the Starlette app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/":
            for name, _ in scope["headers"]:
                if name == b"x-amz-target":
                    await self._json(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _json(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            response = await self.json_call(scope, receive)
        except ClientDisconnect:
            return
        except Exception as exc:  # noqa: BLE001 - never a traceback to the client
            log.error("unexpected fault outside a request's handling: %s", type(exc).__name__)
            response = json_error(InternalServiceError("An internal error occurred."), "")
        await response(scope, receive, send)


def _pipeline(gateway: Gateway, wire: WireRequest, service: Any, ex: Exchange, op_name: str) -> dict[str, Any]:
    """Authenticate, decode, validate and run the operation: in one worker thread, or inline.

    A request tried inline that must go to a thread after all keeps what it established
    (the caller, the parameters): the thread picks up from the operation."""
    if ex.ctx is None or ex.params is None:
        ctx = ex.ctx = _authenticate(gateway, ex, wire, service)
        ex.principal_arn = ctx.principal.arn
        if service.operation(op_name) is None:
            raise UnknownOperationException("")
        try:
            raw = orjson.loads(wire.body or b"{}")
        except orjson.JSONDecodeError:  # invalid UTF-8, NaN/Infinity and deep nesting too
            raise SerializationException("The request body is not valid JSON.") from None
        ex.params = parse_input(service_model(service.model_name).operation_model(op_name), raw)
    ex.result = _invoke(gateway, service, ex, op_name, ex.ctx, ex.params)
    return ex.result


def _invoke(gateway: Gateway, service: Any, ex: Exchange, op_name: str, ctx: RequestContext,
            params: dict[str, Any]) -> dict[str, Any]:
    """Run the operation, after the observer's check that a write may proceed (the audit trail
    is writable): both protocols' last step."""
    if gateway.observer is not None:
        gateway.observer.before_call(ex)
    result: dict[str, Any] = service.call(op_name, ctx, params)
    return result


Claim = tuple[SignedRequest, dict[str, str], dt.datetime]


def claim_of(gateway: Gateway, wire: WireRequest) -> Claim:
    """What the signature of `wire` claims (its shape and freshness checked, not yet verified)."""
    if gateway.sealed is not None and gateway.sealed():  # every protocol passes here, each answers in its shape
        raise ServiceUnavailableException(SEALED_MESSAGE)
    now = dt.datetime.now(dt.timezone.utc)
    return (*gateway.verifier.parse(wire, now), now)


def _authenticate(gateway: Gateway, ex: Exchange, wire: WireRequest, service: Any,
                  claimed: Claim | None = None) -> RequestContext:
    """The caller of the request `wire` (as SigV4 sees it), verified, as a RequestContext; `claimed`
    when the caller already read the claim (the query protocol learns the service from it)."""
    claim, parts, now = claimed or claim_of(gateway, wire)
    if claim.service != service.signing_name:
        raise InvalidSignatureException(f"Credential should be scoped to correct service: '{service.signing_name}'. ")
    cred = gateway.resolver.resolve(claim.access_key_id, claim.security_token)
    gateway.verifier.verify(wire, claim, parts, cred.secret)
    gateway.resolver.note_used(claim.access_key_id, claim.service, claim.region)
    identity, session = gateway.policies.get(cred.principal) if gateway.policies else ((), None)
    return RequestContext(cred.principal, claim.region, ex.request_id, ex.source_ip, ex.user_agent, ex.secure, now,
                          identity, session)
