"""Which function resource policies let Secrets Manager invoke a rotation function (AddPermission)."""

from __future__ import annotations

import json

import pytest

from strongroom.rotation.permission import invoke_allowed, is_builtin

FN = "arn:aws:lambda:us-east-1:123456789012:function:rotator"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"


def doc(*statements: dict) -> str:  # type: ignore[type-arg]
    return json.dumps({"Version": "2012-10-17", "Id": "default", "Statement": list(statements)})


def allow(**extra: object) -> dict:  # type: ignore[type-arg]
    return {"Sid": "sm", "Effect": "Allow", "Principal": {"Service": "secretsmanager.amazonaws.com"},
            "Action": "lambda:InvokeFunction", "Resource": FN, **extra}


@pytest.mark.parametrize(("policy", "expected"), [
    (None, False),
    ("", False),
    ("not json", False),
    (doc(), False),
    (doc(allow()), True),
    (doc(allow(Action="lambda:*")), True),
    (doc(allow(Action="lambda:GetFunction")), False),
    (doc(allow(Principal={"Service": "events.amazonaws.com"})), False),
    (doc(allow(Resource="arn:aws:lambda:us-east-1:123456789012:function:other")), False),
    (doc(allow(Condition={"ArnLike": {"AWS:SourceArn": SECRET}})), True),
    (doc(allow(Condition={"ArnLike": {"AWS:SourceArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-*"}})),
     True),
    (doc(allow(Condition={"ArnLike": {"AWS:SourceArn": SECRET + "-other"}})), False),
    (doc(allow(Condition={"StringEquals": {"AWS:SourceAccount": "123456789012"}})), True),
    (doc(allow(Condition={"StringEquals": {"AWS:SourceAccount": "210987654321"}})), False),
    (doc(allow(), {**allow(), "Sid": "no", "Effect": "Deny"}), False),  # an explicit Deny wins
])
def test_invoke_allowed(policy: str | None, expected: bool) -> None:
    assert invoke_allowed(policy, FN, SECRET) is expected


def test_builtin_rotators_need_no_function_policy() -> None:
    assert is_builtin("arn:aws:lambda:us-east-1:123456789012:function:strongroom-builtin-postgres-single-user")
    assert not is_builtin(FN)
