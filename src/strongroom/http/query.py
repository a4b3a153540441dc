"""The AWS query protocol (IAM, STS): form-encoded requests in, XML responses out.

A request is `Action=...&Version=...` plus parameters flattened the way botocore's
QuerySerializer writes them (`Tags.member.1.Key`, `Map.entry.1.key`). The service is
the one named by the SigV4 credential scope. Parameters are rebuilt into the
operation's input shape and checked by `http.shapes` (patterns match whole values, as
AWS checks them); results are written as the XML botocore's QueryParser reads.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl, quote
from xml.sax.saxutils import escape

import anyio.to_thread
from botocore.model import OperationModel, Shape
from starlette.requests import Request
from starlette.responses import Response

from strongroom.context import RequestContext
from strongroom.errors import AwsError, InvalidSignatureException
from strongroom.http.exchange import Exchange
from strongroom.http.shapes import parse_input, service_model

if TYPE_CHECKING:
    from strongroom.http.app import Gateway

log = logging.getLogger("strongroom.http")
XML_TYPE = "text/xml"
FORM_TYPE = "application/x-www-form-urlencoded"
DEFAULT_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"

# JSON-protocol codes raised by shared layers (SigV4, credentials, shapes) -> query-protocol code, status.
_QUERY_CODES: dict[str, tuple[str, int]] = {
    "UnrecognizedClientException": ("InvalidClientTokenId", 403),
    "InvalidSignatureException": ("SignatureDoesNotMatch", 403),
    "IncompleteSignatureException": ("IncompleteSignature", 400),
    "MissingAuthenticationTokenException": ("MissingAuthenticationToken", 403),
    "ExpiredTokenException": ("ExpiredToken", 403),
    "ValidationException": ("ValidationError", 400),
    "SerializationException": ("MalformedInput", 400),
    "AccessDeniedException": ("AccessDenied", 403),
    "RequestEntityTooLargeException": ("RequestEntityTooLarge", 413),
    "UnknownOperationException": ("InvalidAction", 400),
    "ThrottlingException": ("Throttling", 400),
    "ServiceUnavailableException": ("ServiceUnavailable", 503),
    "InternalServiceError": ("InternalFailure", 500),
}


class QueryService(Protocol):
    signing_name: str  # the SigV4 scope's service: "sts", "iam"
    model_name: str

    def operation(self, name: str) -> Any: ...

    def call(self, name: str, ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]: ...


def is_query_request(request: Request) -> bool:
    """A form-encoded POST, or any request with an Action query parameter."""
    if request.headers.get("content-type", "").startswith(FORM_TYPE):
        return True
    qs = request.scope.get("query_string", b"")
    return qs.startswith(b"Action=") or b"&Action=" in qs


# -- request decoding -------------------------------------------------------------------------
class _Absent:
    pass


_ABSENT = _Absent()


def _bad(message: str) -> AwsError:
    return AwsError(message, code="ValidationError", status=400)


def _indices(params: dict[str, str], base: str) -> list[int]:
    found = set()
    cut = len(base) + 1
    for key in params:
        if key.startswith(base + "."):
            head = key[cut:].split(".", 1)[0]
            if head.isdigit():
                found.add(int(head))
    return sorted(found)


def _scalar(shape: Shape, raw: str, key: str) -> Any:
    t = shape.type_name
    try:
        if t in ("integer", "long"):
            return int(raw)
        if t in ("double", "float"):
            return float(raw)
    except ValueError:
        raise _bad(f"Invalid value for parameter {key}: '{raw[:64]}' is not a number.") from None
    if t == "boolean":
        if raw.lower() not in ("true", "false"):
            raise _bad(f"Invalid value for parameter {key}: '{raw[:64]}' is not a boolean.")
        return raw.lower() == "true"
    if t == "timestamp":
        try:
            return float(raw)
        except ValueError:
            pass
        try:
            parsed = dt.datetime.fromisoformat(raw)
        except ValueError:
            raise _bad(f"Invalid value for parameter {key}: '{raw[:64]}' is not an ISO 8601 timestamp.") from None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)).timestamp()
    return raw  # strings; blobs stay base64 text for shapes to decode


def decode(shape: Shape, params: dict[str, str], prefix: str = "") -> Any:
    """Rebuild the nested value botocore's QuerySerializer flattened under `prefix`."""
    t = shape.type_name
    if t == "structure":
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            key = member.serialization.get("name", name)
            value = decode(member, params, f"{prefix}.{key}" if prefix else key)
            if value is not _ABSENT:
                out[name] = value
        return out if out or not prefix else _ABSENT
    if t == "list":
        if params.get(prefix) == "":
            return []
        if shape.serialization.get("flattened"):
            base = prefix
        else:
            base = f"{prefix}.{shape.member.serialization.get('name', 'member')}"
        items = []
        for i in _indices(params, base):
            value = decode(shape.member, params, f"{base}.{i}")
            items.append({} if value is _ABSENT and shape.member.type_name == "structure" else value)
        return [v for v in items if v is not _ABSENT] if items else _ABSENT
    if t == "map":
        base = prefix if shape.serialization.get("flattened") else f"{prefix}.entry"
        kname = shape.key.serialization.get("name", "key")
        vname = shape.value.serialization.get("name", "value")
        entries: dict[str, Any] = {}
        for i in _indices(params, base):
            k = params.get(f"{base}.{i}.{kname}")
            v = decode(shape.value, params, f"{base}.{i}.{vname}")
            if k is not None and v is not _ABSENT:
                entries[k] = v
        return entries if entries else _ABSENT
    if prefix not in params:
        return _ABSENT
    return _scalar(shape, params[prefix], prefix)


def parse_params(op: OperationModel, params: dict[str, str]) -> dict[str, Any]:
    """Validated request parameters for `op` from the flattened form fields."""
    if op.input_shape is None:
        return {}
    raw = decode(op.input_shape, params)
    return parse_input(op, raw if isinstance(raw, dict) else {}, anchored=True)


# -- response encoding ------------------------------------------------------------------------
def _timestamp(value: Any) -> str:
    if isinstance(value, (int, float)):
        value = dt.datetime.fromtimestamp(value, dt.timezone.utc)
    return str(value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))


def _xml_value(shape: Shape, value: Any) -> str:
    t = shape.type_name
    if t == "structure":
        return "".join(_xml_member(name, member, value[name]) for name, member in shape.members.items()
                       if value.get(name) is not None)
    if t == "list":
        tag = shape.member.serialization.get("name", "member")
        return "".join(f"<{tag}>{_xml_value(shape.member, v)}</{tag}>" for v in value)
    if t == "map":
        kname = shape.key.serialization.get("name", "key")
        vname = shape.value.serialization.get("name", "value")
        return "".join(f"<entry><{kname}>{escape(str(k))}</{kname}><{vname}>{_xml_value(shape.value, v)}</{vname}>"
                       "</entry>" for k, v in value.items())
    if t == "timestamp":
        return _timestamp(value)
    if t == "boolean":
        return "true" if value else "false"
    if t in ("integer", "long"):
        return str(int(value))
    if t == "blob":
        return base64.b64encode(bytes(value)).decode()
    text = str(value)
    if shape.name == "policyDocumentType":  # IAM returns policy documents URL-encoded (RFC 3986)
        text = quote(text, safe="-_.~")
    return escape(text)


def _xml_member(name: str, shape: Shape, value: Any) -> str:
    tag = shape.serialization.get("name", name)
    if shape.type_name == "list" and shape.serialization.get("flattened"):
        return "".join(f"<{tag}>{_xml_value(shape.member, v)}</{tag}>" for v in value)
    return f"<{tag}>{_xml_value(shape, value)}</{tag}>"


def serialize_result(op: OperationModel, result: dict[str, Any], request_id: str, namespace: str) -> str:
    body = ""
    out = op.output_shape
    if out is not None:
        wrapper = out.serialization.get("resultWrapper", f"{op.name}Result")
        body = f"<{wrapper}>{_xml_value(out, result)}</{wrapper}>"
    return (f'<{op.name}Response xmlns="{namespace}">{body}'
            f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{op.name}Response>")


def as_query_error(err: AwsError) -> AwsError:
    """The error as the query protocol names it (shared layers raise JSON-protocol codes)."""
    mapped = _QUERY_CODES.get(err.code)
    if mapped is None:
        return err
    return AwsError(err.message, code=mapped[0], status=mapped[1])


def serialize_error(err: AwsError, request_id: str, namespace: str) -> str:
    kind = "Receiver" if err.status >= 500 else "Sender"
    return (f'<ErrorResponse xmlns="{namespace}"><Error><Type>{kind}</Type><Code>{escape(err.code)}</Code>'
            f"<Message>{escape(err.message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>")


# -- the handler ------------------------------------------------------------------------------
def _form(request: Request, body: bytes) -> dict[str, str]:
    try:
        pairs = parse_qsl(request.scope.get("query_string", b"").decode("utf-8"), keep_blank_values=True)
        if request.method == "POST":
            pairs += parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise AwsError("The request is not valid UTF-8 form data.", code="MalformedQueryString", status=400) from None
    return dict(pairs)


def _process(gateway: Gateway, request: Request, body: bytes, state: Exchange) -> str:
    from strongroom.http.app import _authenticate, _invoke, claim_of  # shared with the JSON path (lazy: app imports us)

    params = _form(request, body)
    action = params.pop("Action", "")
    state.op_name = action[:128] or "-"  # known before authentication, so a refused call is recorded by name
    version = params.pop("Version", "")
    for key in [k for k in params if k.startswith("X-Amz-")]:
        del params[key]
    # The credential scope names the service; _authenticate then verifies the request in full.
    wire = state.wire(body)
    claimed = claim_of(gateway, wire)
    service = gateway.query_services.get(claimed[0].service)
    if service is None:
        raise InvalidSignatureException(f"Credential should be scoped to a valid service: '{claimed[0].service}'.")
    state.service = service.signing_name
    model = service_model(service.model_name)
    state.namespace = model.metadata.get("xmlNamespace", DEFAULT_NAMESPACE)
    ctx: RequestContext = _authenticate(gateway, state, wire, service, claimed)
    state.ctx = ctx
    state.principal_arn = ctx.principal.arn
    if not action:
        raise AwsError("Missing Action", code="MissingAction", status=400)
    state.op_name = action
    if service.operation(action) is None:
        raise AwsError(f"Could not find operation {action} for version {version or model.api_version}",
                       code="InvalidAction", status=400)
    op = model.operation_model(action)
    state.params = parse_params(op, params)
    state.result = _invoke(gateway, service, state, action, ctx, state.params)
    return serialize_result(op, state.result, state.request_id, state.namespace)


async def handle(gateway: Gateway, request: Request, state: Exchange,
                 read_body: Callable[[Request], Awaitable[bytes]]) -> Response:
    """Answer one query-protocol request; `state` learns what the audit record names."""
    request_id = state.request_id
    state.namespace = DEFAULT_NAMESPACE
    headers = {"x-amzn-RequestId": request_id}
    try:
        body = await read_body(request)
        xml = await anyio.to_thread.run_sync(_process, gateway, request, body, state)
        return Response(xml, media_type=XML_TYPE, headers=headers)
    except AwsError as exc:
        err = state.error = as_query_error(exc)
        return Response(serialize_error(err, request_id, state.namespace), status_code=err.status,
                        media_type=XML_TYPE, headers=headers)
    except Exception as exc:  # noqa: BLE001 - unexpected faults become InternalFailure, logged without messages
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else "?"
        log.error("unexpected fault request_id=%s operation=%s error=%s at=%s",
                  request_id, state.op_name, type(exc).__name__, where)
        err = state.error = AwsError(f"An internal error occurred. Request ID: {request_id}", code="InternalFailure",
                                     status=500)
        return Response(serialize_error(err, request_id, state.namespace), status_code=500, media_type=XML_TYPE,
                        headers=headers)
