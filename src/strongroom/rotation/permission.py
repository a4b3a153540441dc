"""May Secrets Manager invoke this rotation function? Its resource policy (AddPermission) decides.

On AWS a rotation function runs only when its resource policy allows the service principal
secretsmanager.amazonaws.com to call lambda:InvokeFunction (optionally narrowed with
AWS:SourceArn = the secret and AWS:SourceAccount); otherwise RotateSecret answers
AccessDeniedException with MESSAGE. Built-in rotators are managed rotation: no function,
no policy. The decision uses the same pure policy engine as every other authorization.

`check_invoke_permission` needs only a connection, so it can run inside the transaction of
RotateSecret as well as before each step the engine invokes.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from strongroom.auth import policy
from strongroom.errors import AccessDeniedException
from strongroom.rotation import builtin
from strongroom.storage import tables as t

SERVICE = "secretsmanager.amazonaws.com"
MESSAGE = ("Secrets Manager cannot invoke the specified Lambda function. Ensure that the function policy "
           "grants access to the principal secretsmanager.amazonaws.com.")


def invoke_allowed(policy_text: str | None, function_arn: str, secret_arn: str) -> bool:
    """Whether the function's resource policy lets Secrets Manager invoke it for this secret."""
    if not policy_text:
        return False
    try:
        document: Any = json.loads(policy_text)
    except ValueError:
        return False
    secret_account = secret_arn.split(":")[4] if secret_arn.count(":") >= 5 else ""
    request = policy.Request(
        principal_arn="", principal_account=secret_account, action="lambda:InvokeFunction",
        resource=function_arn, principal_service=SERVICE,
        # The keys AWS sets when a service calls on behalf of a resource (confused-deputy guards).
        context={"aws:SourceArn": secret_arn, "aws:SourceAccount": secret_account})
    return policy.evaluate(request, resource_policy=document).allowed


def _canonical(lambda_arn: str) -> str:
    return lambda_arn.removesuffix(":$LATEST")


def is_builtin(lambda_arn: str) -> bool:
    """A built-in rotator's ARN (managed rotation: nothing to invoke, no policy to ask)."""
    return builtin.parse(_canonical(lambda_arn).rsplit(":", 1)[-1]) is not None


def check_invoke_permission(conn: Connection, lambda_arn: str, secret_arn: str) -> None:
    """Raise AWS's AccessDeniedException unless Secrets Manager may invoke `lambda_arn`.

    A function that does not exist cannot grant anything: AWS answers the same error, since
    Secrets Manager cannot tell a missing function from one that keeps it out.
    """
    if is_builtin(lambda_arn):
        return
    arn = _canonical(lambda_arn)
    row = conn.execute(select(t.functions.c.policy).where(t.functions.c.arn == arn)).first()
    if row is None or not invoke_allowed(row[0], arn, secret_arn):
        raise AccessDeniedException(MESSAGE)
