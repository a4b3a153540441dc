"""Lambda operations on rotation functions: Create/Get/List/Delete, code and configuration
updates, Invoke, and the resource policy (AddPermission, GetPolicy, RemovePermission). Requests and responses follow botocore's lambda model."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import time
from typing import Any

from strongroom.auth import policy
from strongroom.auth.authorize import decide
from strongroom.context import RequestContext
from strongroom.errors import AwsError
from strongroom.rotation.dispatch import FunctionInvoker
from strongroom.rotation.functions import (
    ARN,
    NAME,
    RUNTIMES,
    WEBHOOK_URL,
    FunctionRecord,
    FunctionRegistry,
    code_sha256_b64,
    function_arn,
)
from strongroom.rotation.invoke import ROLE_ARN, log_result, webhook_url_problem
from strongroom.services.sts import trust
from strongroom.storage import iam_store

HANDLER = re.compile(r"^[^\s]+\.[^\s]+$")
ENV_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9_]+")


def _err(code: str, status: int, message: str) -> AwsError:
    return AwsError(message, code=code, status=status)


def invalid(message: str) -> AwsError:
    return _err("InvalidParameterValueException", 400, message)


def not_found(arn: str) -> AwsError:
    return _err("ResourceNotFoundException", 404, f"Function not found: {arn}")


class Functions:
    signing_name = "lambda"

    def __init__(self, registry: FunctionRegistry, invoker: FunctionInvoker):
        self.registry, self.invoker = registry, invoker

    # -- helpers ---------------------------------------------------------------------------------
    def _authorize(self, ctx: RequestContext, action: str, resource: str) -> None:
        request, result = decide(ctx, "lambda:" + action, resource, policy.global_condition_keys(ctx))
        if not result.allowed:
            raise _err("AccessDeniedException", 403, policy.access_denied_message(request, result))

    def _arn(self, ctx: RequestContext, name: str) -> str:
        if name.startswith("arn:"):
            m = ARN.match(name)
            if m is None:  # a version or alias qualifier: only $LATEST exists here
                raise invalid(f"Only the $LATEST version is supported: {name}")
            if (m[1], m[2]) != (ctx.region, ctx.account_id):  # another account's or region's function
                raise not_found(name)
            return function_arn(*m.groups())
        if not NAME.match(name):
            raise invalid(f"1 validation error detected: Value '{name}' at 'functionName' failed to satisfy "
                          "constraint: Member must satisfy regular expression pattern")
        return function_arn(ctx.region, ctx.account_id, name)

    def _load(self, ctx: RequestContext, name: str, action: str, *, with_code: bool = False) -> FunctionRecord:
        arn = self._arn(ctx, name)
        self._authorize(ctx, action, arn)
        fn = self.registry.get(arn, with_code=with_code)
        if fn is None or fn.account_id != ctx.account_id:
            raise not_found(arn)
        return fn

    @staticmethod
    def configuration(fn: FunctionRecord) -> dict[str, Any]:
        return {
            "FunctionName": fn.name, "FunctionArn": fn.arn, "Runtime": fn.runtime, "Role": fn.role,
            "Handler": fn.handler, "CodeSize": fn.code_size, "Description": fn.description,
            "Timeout": fn.timeout, "MemorySize": fn.memory_size,
            "LastModified": dt.datetime.fromtimestamp(fn.last_modified, dt.timezone.utc)
            .strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000",
            "CodeSha256": code_sha256_b64(fn.code_sha256), "Version": "$LATEST",
            "Environment": {"Variables": dict(fn.environment)}, "RevisionId": fn.revision_id,
            "State": "Active", "LastUpdateStatus": "Successful", "PackageType": "Zip",
            "Architectures": ["x86_64"],
        }

    def _apply_config(self, fn: FunctionRecord, req: dict[str, Any]) -> None:
        if "Runtime" in req:
            if req["Runtime"] not in RUNTIMES:
                raise invalid(f"The runtime parameter of {req['Runtime']} is not supported here; "
                              f"use one of {', '.join(RUNTIMES)}")
            fn.runtime = req["Runtime"]
        if "Handler" in req:
            if not HANDLER.match(req["Handler"]):
                raise invalid("Handler must be module.function")
            fn.handler = req["Handler"]
        if "Role" in req:
            if not self._lambda_may_assume(fn.account_id, str(req["Role"])):
                raise invalid("The role defined for the function cannot be assumed by Lambda.")
            fn.role = req["Role"]
        if "Timeout" in req:
            if not 1 <= int(req["Timeout"]) <= 900:
                raise invalid("Timeout must be between 1 and 900 seconds")
            fn.timeout = int(req["Timeout"])
        if "MemorySize" in req:
            if not 128 <= int(req["MemorySize"]) <= 10240:
                raise invalid("MemorySize must be between 128 and 10240 MB")
            fn.memory_size = int(req["MemorySize"])
        if "Description" in req:
            fn.description = req["Description"]
        if "Environment" in req:
            variables = dict((req["Environment"] or {}).get("Variables") or {})
            for key, value in variables.items():
                # What a process environment can hold: Lambda's name pattern, no NUL in a value.
                if not ENV_NAME.fullmatch(key) or "\0" in value:
                    raise invalid(f"Environment variable {key!r} is not a valid name and value")
            problem = webhook_url_problem(variables.get(WEBHOOK_URL))
            if problem:
                raise invalid(problem)
            fn.environment = variables
        fn.last_modified = time.time()

    def _lambda_may_assume(self, account_id: str, role_arn: str) -> bool:
        """As Lambda checks at CreateFunction and UpdateFunctionConfiguration: the role exists in
        the function's account and its trust policy lets lambda.amazonaws.com assume it."""
        m = ROLE_ARN.fullmatch(role_arn)
        if m is None or m[1] != account_id:
            return False
        with self.registry.store.read() as tx:
            role = iam_store.get_role(tx.conn, account_id, m[3])
        return role is not None and trust.service_may_assume(json.loads(role.assume_role_policy),  # stored valid
                                                             "lambda.amazonaws.com", role.arn, account_id)

    def _set_code(self, fn: FunctionRecord, zipped: Any) -> None:
        code = base64.b64decode(zipped) if isinstance(zipped, str) else bytes(zipped)
        try:
            fn.code_sha256, fn.code_size = self.registry.check_zip(code)
        except ValueError as err:
            raise invalid(str(err)) from None
        fn.code = code

    # -- operations --------------------------------------------------------------------------------
    def create_function(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        for key in ("FunctionName", "Role", "Code"):
            if key not in req:
                raise invalid(f"{key} is required")
        arn = self._arn(ctx, req["FunctionName"])
        self._authorize(ctx, "CreateFunction", arn)
        if "ZipFile" not in req["Code"]:
            raise invalid("Only Code.ZipFile is supported: upload the zip in the request")
        fn = FunctionRecord(ctx.account_id, ctx.region, arn.rsplit(":", 1)[1], arn, "python3.11",
                            "lambda_function.lambda_handler", "")
        self._apply_config(fn, {"Runtime": "python3.11", **req})
        self._set_code(fn, req["Code"]["ZipFile"])
        self._prepare(fn)
        if not self.registry.insert(fn):
            raise _err("ResourceConflictException", 409, f"Function already exist: {fn.name}")
        return self.configuration(fn)

    def _prepare(self, fn: FunctionRecord) -> None:
        """Unpack and install requirements now, so the first rotation need not wait for pip."""
        if fn.webhook_url:
            return
        try:
            self.registry.prepare(fn)
        except (RuntimeError, OSError) as err:
            raise invalid(f"The function's code could not be prepared: {err}") from None

    def get_function(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        fn = self._load(ctx, name, "GetFunction")
        return {"Configuration": self.configuration(fn),
                "Code": {"RepositoryType": "S3", "Location": ""}}

    def list_functions(self, ctx: RequestContext) -> dict[str, Any]:
        self._authorize(ctx, "ListFunctions", "*")
        return {"Functions": [self.configuration(f) for f in self.registry.list(ctx.account_id, ctx.region)]}

    def delete_function(self, ctx: RequestContext, name: str) -> None:
        fn = self._load(ctx, name, "DeleteFunction")
        self.registry.delete(fn.arn)

    def update_function_code(self, ctx: RequestContext, name: str, req: dict[str, Any]) -> dict[str, Any]:
        fn = self._load(ctx, name, "UpdateFunctionCode")
        if "ZipFile" not in req:
            raise invalid("Only ZipFile is supported: upload the zip in the request")
        self._set_code(fn, req["ZipFile"])
        fn.last_modified = time.time()
        self._prepare(fn)
        self.registry.update(fn)
        return self.configuration(fn)

    def update_function_configuration(self, ctx: RequestContext, name: str, req: dict[str, Any]) -> dict[str, Any]:
        fn = self._load(ctx, name, "UpdateFunctionConfiguration")
        self._apply_config(fn, req)
        self.registry.update(fn)
        return self.configuration(fn)

    def add_permission(self, ctx: RequestContext, name: str, req: dict[str, Any]) -> dict[str, Any]:
        fn = self._load(ctx, name, "AddPermission")
        for key in ("StatementId", "Action", "Principal"):
            if key not in req:
                raise invalid(f"{key} is required")
        doc: dict[str, Any] = json.loads(fn.policy) if fn.policy else {"Version": "2012-10-17", "Id": "default",
                                                                       "Statement": []}
        if any(s.get("Sid") == req["StatementId"] for s in doc["Statement"]):
            raise _err("ResourceConflictException", 409, f"The statement id ({req['StatementId']}) provided "
                                                         "already exists. Please provide a new statement id.")
        principal = str(req["Principal"])
        statement: dict[str, Any] = {
            "Sid": req["StatementId"], "Effect": "Allow", "Action": req["Action"], "Resource": fn.arn,
            "Principal": {"Service": principal} if principal.endswith(".amazonaws.com") else {"AWS": principal},
        }
        condition: dict[str, Any] = {}
        if "SourceArn" in req:
            condition["ArnLike"] = {"AWS:SourceArn": req["SourceArn"]}
        if "SourceAccount" in req:
            condition["StringEquals"] = {"AWS:SourceAccount": req["SourceAccount"]}
        if condition:
            statement["Condition"] = condition
        doc["Statement"].append(statement)
        fn.policy = json.dumps(doc)
        self.registry.update(fn)
        return {"Statement": json.dumps(statement)}

    def get_policy(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        fn = self._load(ctx, name, "GetPolicy")
        if not fn.policy or not json.loads(fn.policy).get("Statement"):
            raise _err("ResourceNotFoundException", 404, "The resource you requested does not exist.")
        return {"Policy": fn.policy, "RevisionId": fn.revision_id}

    def remove_permission(self, ctx: RequestContext, name: str, statement_id: str) -> None:
        fn = self._load(ctx, name, "RemovePermission")
        doc: dict[str, Any] = json.loads(fn.policy) if fn.policy else {"Statement": []}
        kept = [s for s in doc.get("Statement", []) if s.get("Sid") != statement_id]
        if len(kept) == len(doc.get("Statement", [])):
            raise _err("ResourceNotFoundException", 404, "Statement not found: " + statement_id)
        doc["Statement"] = kept
        # Lambda drops the policy with its last statement (GetPolicy then answers not found).
        fn.policy = json.dumps(doc) if kept else None
        self.registry.update(fn)

    def invoke(self, ctx: RequestContext, name: str, payload: bytes, invocation_type: str,
               log_type: str) -> tuple[int, dict[str, str], bytes]:
        fn = self._load(ctx, name, "InvokeFunction", with_code=True)
        try:
            event = json.loads(payload or b"{}")
        except (ValueError, RecursionError):
            raise _err("InvalidRequestContentException", 400, "Could not parse request body into json") from None
        if invocation_type == "DryRun":
            return 204, {}, b""
        outcome = self.invoker.invoke(fn, event)
        headers = {"X-Amz-Executed-Version": "$LATEST"}
        if log_type == "Tail":
            headers["X-Amz-Log-Result"] = log_result(outcome)
        if outcome.failed:
            headers["X-Amz-Function-Error"] = "Unhandled"
            return 200, headers, json.dumps(outcome.error).encode()
        if invocation_type == "Event":
            return 202, headers, b""
        return 200, headers, json.dumps(outcome.payload).encode()
