"""Policy documents: grammar findings and "does this policy grant public access"."""

from __future__ import annotations

import json
from typing import Any

import pytest

from strongroom.auth import policy_document

ACCOUNT = "arn:aws:iam::123456789012:root"


def statement(**kw: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "secretsmanager:GetSecretValue",
            "Resource": "*", **kw}


def doc(*statements: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements), **top}


def findings(d: Any, *, resource_policy: bool = True) -> list[str]:
    if isinstance(d, str):
        return [f.message for f in policy_document.parse(d)[1]]
    if not isinstance(d, dict):
        return [f.message for f in policy_document.parse(json.dumps(d))[1]]
    return [f.message for f in policy_document.grammar_findings(d, resource_policy=resource_policy)]


@pytest.mark.parametrize(
    "good",
    [
        doc(statement()),
        doc(statement(Sid="ReadOnly", Action=["secretsmanager:GetSecretValue", "secretsmanager:Describe*"])),
        doc(statement(Principal="*", Condition={"StringEquals": {"aws:PrincipalAccount": "123456789012"}})),
        doc({k: v for k, v in statement(NotAction="secretsmanager:DeleteSecret").items() if k != "Action"}),
        doc(statement(Effect="Deny", Principal={"AWS": [ACCOUNT, "arn:aws:iam::123456789012:user/bob"]})),
        doc(statement(Principal={"Service": "lambda.amazonaws.com"}, Action="*")),
        {"Version": "2008-10-17", "Id": "x", "Statement": statement()},  # a lone statement object
        {"Statement": [statement()]},  # Version is optional
    ],
)
def test_well_formed_resource_policies_have_no_findings(good):
    assert findings(good) == []


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ("not json {", "not valid JSON"),
        ([], "must be a JSON object"),
        (doc(), "at least one Statement"),
        ({"Version": "2012-10-17"}, "at least one Statement"),
        ({"Statement": "Allow everything"}, "at least one Statement"),
        (doc(statement(), Extra=1), "Unknown top-level field"),
        (doc(statement(), Version="2020-01-01"), "Version must be one of"),
        (doc("just text"), "must be a JSON object"),
        (doc(statement(Effect="Permit")), "Effect must be Allow or Deny"),
        (doc(statement(Effect=None)), "Effect must be Allow or Deny"),
        (doc(statement(Colour="red")), "unknown field(s): Colour"),
        (doc(statement(NotAction="x:y")), "exactly one of Action or NotAction"),
        (doc({"Effect": "Allow", "Principal": "*", "Resource": "*"}), "exactly one of Action or NotAction"),
        (doc(statement(Action="GetSecretValue")), "must have the form service:action"),
        (doc(statement(Action=[])), "Action must be a string or a list of strings"),
        (doc(statement(Action=[1, 2])), "Action must be a string or a list of strings"),
        (doc(statement(NotResource="*")), "both Resource and NotResource"),
        (doc({"Effect": "Allow", "Action": "x:y", "Resource": "*"}), "exactly one of Principal or NotPrincipal"),
        (doc(statement(NotPrincipal="*")), "exactly one of Principal or NotPrincipal"),
        (doc(statement(Principal=ACCOUNT)), "Principal is not a valid principal"),  # must be "*" or an object
        (doc(statement(Principal={"Users": ACCOUNT})), "Principal is not a valid principal"),
        (doc(statement(Principal={"AWS": []})), "Principal is not a valid principal"),
        (doc(statement(Principal={})), "Principal is not a valid principal"),
        (doc(statement(Condition="aws:SourceIp")), "Condition must map operators"),
        (doc(statement(Condition={"StringEquals": "x"})), "Condition must map operators"),
        (doc(statement(Condition={"StringEquals": {"aws:username": {"nested": 1}}})), "Condition must map"),
    ],
)
def test_malformed_resource_policies_have_findings(bad, expected):
    found = findings(bad)
    assert any(expected in f for f in found), found


def test_identity_policies_need_resources_and_refuse_principals():
    identity = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    assert findings(identity, resource_policy=False) == []
    no_resource = {"Statement": [{"Effect": "Allow", "Action": "s3:*"}]}
    assert any("Resource or NotResource" in f for f in findings(no_resource, resource_policy=False))
    assert any("can't contain Principal" in f for f in findings(doc(statement()), resource_policy=False))


def test_parse_returns_the_document_when_it_is_json():
    text = json.dumps(doc(statement()))
    parsed, found = policy_document.parse(text)
    assert parsed == json.loads(text) and found == []
    assert policy_document.parse("[1]")[0] is None


@pytest.mark.parametrize(
    ("st", "public"),
    [
        (statement(), False),
        (statement(Principal="*"), True),
        (statement(Principal={"AWS": "*"}), True),
        (statement(Principal={"AWS": [ACCOUNT, "*"]}), True),
        (statement(Principal={"Service": "lambda.amazonaws.com"}), False),
        (statement(Effect="Deny", Principal="*"), False),
        (statement(Principal="*", NotAction="secretsmanager:DeleteSecret"), True),
        (statement(NotPrincipal={"AWS": ACCOUNT}), True),  # everyone but one account
        (statement(Effect="Deny", NotPrincipal={"AWS": ACCOUNT}), False),
        # Conditions that pin the wildcard principal to known callers.
        (statement(Principal="*", Condition={"StringEquals": {"aws:PrincipalAccount": "123456789012"}}), False),
        (statement(Principal="*", Condition={"StringEquals": {"aws:PrincipalOrgID": "o-abc"}}), False),
        (statement(Principal="*", Condition={"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::1:role/x*"}}), False),
        (statement(Principal="*", Condition={"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}), False),
        (statement(Principal="*", Condition={"StringEquals": {"AWS:SourceAccount": ["1", "2"]}}), False),
        # Conditions that look restrictive but admit anyone.
        (statement(Principal="*", Condition={"StringEquals": {"aws:SecureTransport": "true"}}), True),
        (statement(Principal="*", Condition={"StringNotEquals": {"aws:PrincipalAccount": "1"}}), True),
        (statement(Principal="*", Condition={"StringEqualsIfExists": {"aws:PrincipalAccount": "1"}}), True),
        (statement(Principal="*", Condition={"Null": {"aws:PrincipalAccount": "false"}}), True),
        (statement(Principal="*", Condition={"StringLike": {"aws:PrincipalArn": "*"}}), True),
        (statement(Principal="*", Condition={"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}), True),
        (statement(Principal="*", Condition={"ForAllValues:StringEquals": {"aws:PrincipalAccount": "1"}}), True),
        (statement(Principal="*", Condition={"StringEquals": {"aws:PrincipalAccount": []}}), True),
    ],
)
def test_public_access(st, public):
    assert policy_document.grants_public_access(doc(st)) is public


def test_one_public_statement_makes_the_policy_public():
    assert policy_document.grants_public_access(doc(statement(), statement(Principal="*")))
    assert not policy_document.grants_public_access(doc(statement(), statement(Effect="Deny", Principal="*")))
