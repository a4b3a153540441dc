"""The Lambda REST-JSON routes (/2015-03-31/functions...), for rotation functions.

Requests are SigV4-signed for service "lambda", like every AWS SDK's lambda client
sends them; errors leave as Lambda shapes them (x-amzn-ErrorType and a JSON body).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio.to_thread
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from strongroom.errors import AwsError, InternalServiceError, SerializationException
from strongroom.http.app import Gateway, _authenticate, _read_body
from strongroom.http.exchange import Exchange
from strongroom.http.shapes import parse_input, service_model
from strongroom.services.functions import Functions

log = logging.getLogger("strongroom.http")
BASE = "/2015-03-31/functions"
_HIDDEN = ("ZipFile", "Code", "Environment")  # never copied into the audit trail


_WITH_BODY = frozenset({"CreateFunction", "UpdateFunctionCode", "UpdateFunctionConfiguration", "AddPermission"})


def _body(body: bytes) -> dict[str, Any]:
    """A JSON object body; strict as the JSON services are (orjson: UTF-8, no lone surrogates,
    no NaN, bounded nesting), so every value can go into the audit record."""
    try:
        parsed = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise AwsError("Could not parse request body into json", code="InvalidRequestContentException",
                       status=400)
    return parsed


def _validated(op: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters as botocore's lambda model defines them: types, lengths, patterns and enums
    checked, members the model does not name dropped."""
    try:
        return parse_input(service_model("lambda").operation_model(op), params)
    except SerializationException as err:  # Lambda names a body of the wrong shape this way
        raise AwsError(err.message, code="InvalidRequestContentException", status=400) from None


def _json(status: int, body: Any, request_id: str, extra: dict[str, str] | None = None) -> Response:
    return Response(b"" if body is None else json.dumps(body).encode(), status_code=status,
                    media_type="application/json", headers={"x-amzn-RequestId": request_id, **(extra or {})})


def lambda_routes(gateway: Gateway, functions: Functions) -> list[Route]:
    async def handle(request: Request) -> Response:
        ex = Exchange.begin(request.scope)
        ex.service = "lambda"
        response = await answer(request, ex)
        return response if gateway.observer is None else await gateway.observer.finish(ex, response)

    async def answer(request: Request, ex: Exchange) -> Response:
        name: str = request.path_params.get("name") or ""
        sub: str = request.path_params.get("sub", "")
        statement_id: str = request.path_params.get("sid", "")
        method = request.method
        op = {("POST", None, ""): "CreateFunction", ("GET", None, ""): "ListFunctions",
              ("GET", "x", ""): "GetFunction", ("DELETE", "x", ""): "DeleteFunction",
              ("PUT", "x", "code"): "UpdateFunctionCode", ("PUT", "x", "configuration"): "UpdateFunctionConfiguration",
              ("POST", "x", "invocations"): "Invoke", ("POST", "x", "policy"): "AddPermission",
              ("GET", "x", "configuration"): "GetFunctionConfiguration", ("GET", "x", "policy"): "GetPolicy",
              ("DELETE", "x", "policy/"): "RemovePermission",
              }.get((method, "x" if name else None, sub + ("/" if statement_id else "")))
        if "rest" in request.path_params:  # deeper than any Lambda path
            op = None
        ex.op_name = op or "-"
        try:
            body = await _read_body(request)
            if op is None:
                raise AwsError("The requested resource was not found.", code="ResourceNotFoundException",
                               status=404)
            ctx = await anyio.to_thread.run_sync(_authenticate, gateway, ex, ex.wire(body), functions)
            ex.ctx = ctx
            if op == "Invoke":
                params = _validated(op, {"FunctionName": name,
                                         "InvocationType": request.headers.get("x-amz-invocation-type",
                                                                               "RequestResponse"),
                                         "LogType": request.headers.get("x-amz-log-type", "None")})
                ex.params = {"FunctionName": name}
                status, headers, payload = await anyio.to_thread.run_sync(
                    functions.invoke, ctx, name, body, params["InvocationType"], params["LogType"])
                return Response(payload, status_code=status, media_type="application/json",
                                headers={"x-amzn-RequestId": ex.request_id, **headers})
            req = _validated(op, {**(_body(body) if op in _WITH_BODY else {}),
                                  **({"FunctionName": name} if name else {}),
                                  **({"StatementId": statement_id} if statement_id else {})})
            ex.params = {k: v for k, v in req.items() if k not in _HIDDEN}
            result: Any
            if op == "CreateFunction":
                result = await anyio.to_thread.run_sync(functions.create_function, ctx, req)
                return _json(201, result, ex.request_id)
            if op == "ListFunctions":
                result = await anyio.to_thread.run_sync(functions.list_functions, ctx)
            elif op == "GetFunction":
                result = await anyio.to_thread.run_sync(functions.get_function, ctx, name)
            elif op == "GetFunctionConfiguration":
                result = (await anyio.to_thread.run_sync(functions.get_function, ctx, name))["Configuration"]
            elif op == "DeleteFunction":
                await anyio.to_thread.run_sync(functions.delete_function, ctx, name)
                return _json(204, None, ex.request_id)
            elif op == "UpdateFunctionCode":
                result = await anyio.to_thread.run_sync(functions.update_function_code, ctx, name, req)
            elif op == "GetPolicy":
                result = await anyio.to_thread.run_sync(functions.get_policy, ctx, name)
            elif op == "RemovePermission":
                ex.params["StatementId"] = statement_id
                await anyio.to_thread.run_sync(functions.remove_permission, ctx, name, statement_id)
                return _json(204, None, ex.request_id)
            elif op == "UpdateFunctionConfiguration":
                result = await anyio.to_thread.run_sync(functions.update_function_configuration, ctx, name, req)
            else:  # AddPermission
                result = await anyio.to_thread.run_sync(functions.add_permission, ctx, name, req)
                return _json(201, result, ex.request_id)
            return _json(200, result, ex.request_id)
        except AwsError as err:
            ex.error = err
            if err.code == "MissingAuthenticationTokenException":
                # Lambda's front door answers an unsigned request 403, in its own words (the
                # JSON services answer 400).
                return _json(403, {"message": "Missing Authentication Token"}, ex.request_id,
                             {"x-amzn-ErrorType": err.code})
            return _json(err.status, {"Type": "User", "message": err.message}, ex.request_id,
                         {"x-amzn-ErrorType": err.code})
        except Exception as exc:  # noqa: BLE001 - one place unexpected faults become a 500
            log.error("unexpected fault request_id=%s operation=%s error=%s", ex.request_id, op,
                      type(exc).__name__)
            ex.error = InternalServiceError(f"An internal error occurred. Request ID: {ex.request_id}")
            return _json(500, {"Type": "Service", "message": ex.error.message}, ex.request_id,
                         {"x-amzn-ErrorType": "ServiceException"})

    # Every method and every deeper path too: what Lambda does not have is its 404, in its shape.
    methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
    return [Route(path, handle, methods=methods)
            for path in (BASE, BASE + "/", BASE + "/{name}", BASE + "/{name}/{sub}", BASE + "/{name}/{sub}/{sid}",
                         BASE + "/{rest:path}")]
