"""Explanations ("which statement decided") and AWS's AccessDenied wording."""

from __future__ import annotations

import datetime as dt

import pytest

from strongroom.auth.policy import (
    Decision,
    Policy,
    Request,
    access_denied_message,
    evaluate,
    explain,
    global_condition_keys,
)
from strongroom.context import Principal, RequestContext

ACCT, OTHER = "111111111111", "222222222222"
USER = f"arn:aws:iam::{ACCT}:user/alice"
X_USER = f"arn:aws:iam::{OTHER}:user/carol"
SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCT}:secret:prod/db-AbCdEf"
GET = "secretsmanager:GetSecretValue"
V = "2012-10-17"


def request(principal: str = USER, account: str = ACCT, **context: object) -> Request:
    return Request(principal, account, GET, SECRET, dict(context))


ALLOW_GET = Policy("ReadProd", {"Version": V, "Statement": [
    {"Sid": "Other", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"},
    {"Sid": "ReadProd", "Effect": "Allow", "Action": "secretsmanager:Get*",
     "Resource": "arn:aws:secretsmanager:*:*:secret:prod/*"},
]})
DENY_GET = Policy("Guardrail", {"Version": V, "Statement": [
    {"Sid": "NoProdFromOutside", "Effect": "Deny", "Action": "secretsmanager:*", "Resource": "*",
     "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
]})


def test_allow_names_the_deciding_statement() -> None:
    result = evaluate(request(), [ALLOW_GET])
    assert result.decision is Decision.ALLOW and result.allowed
    [trace] = result.deciding
    assert (trace.policy_type, trace.policy_name, trace.index, trace.sid, trace.effect) == \
        ("identity", "ReadProd", 1, "ReadProd", "Allow")
    assert 'action matched "secretsmanager:Get*"' in trace.why
    assert 'resource matched "arn:aws:secretsmanager:*:*:secret:prod/*"' in trace.why
    assert len(result.statements) == 2 and not result.statements[0].applies


def test_explicit_deny_lists_only_denies_with_condition_reason() -> None:
    result = evaluate(request(**{"aws:SourceIp": "198.51.100.1"}), [ALLOW_GET, DENY_GET])
    assert result.decision is Decision.EXPLICIT_DENY
    assert result.policy_type == "identity"
    [trace] = result.deciding
    assert trace.sid == "NoProdFromOutside" and trace.effect == "Deny"
    assert "NotIpAddress aws:SourceIp (context: '198.51.100.1') held" in trace.why
    text = explain(result)
    assert text.splitlines()[0] == "Decision: ExplicitDeny — explicitly denied by an identity-based policy"
    assert 'identity policy "Guardrail" statement 1 (Sid "NoProdFromOutside"): Deny applies' in text


def test_failed_condition_is_named_in_verbose_explanation() -> None:
    result = evaluate(request(**{"aws:SourceIp": "10.0.0.9"}), [ALLOW_GET, DENY_GET])
    assert result.decision is Decision.ALLOW
    text = explain(result, verbose=True)
    assert "All statements:" in text
    assert "Deny does not apply — condition NotIpAddress aws:SourceIp (context: '10.0.0.9') failed" in text
    assert "Allow does not apply — action secretsmanager:GetSecretValue is not in Action" in text


def test_implicit_deny_same_account() -> None:
    result = evaluate(request(), [])
    assert result.decision is Decision.IMPLICIT_DENY and result.deciding == ()
    assert result.policy_type == "identity"
    assert "No statement allows this request." in explain(result)
    assert access_denied_message(request(), result) == (
        f"User: {USER} is not authorized to perform: {GET} on resource: {SECRET} "
        f"because no identity-based policy allows the {GET} action")


def test_explicit_deny_in_identity_policy_message() -> None:
    req = request(**{"aws:SourceIp": "198.51.100.1"})
    assert access_denied_message(req, evaluate(req, [ALLOW_GET, DENY_GET])) == (
        f"User: {USER} is not authorized to perform: {GET} on resource: {SECRET} "
        "with an explicit deny in an identity-based policy")


def test_explicit_deny_in_resource_policy_message() -> None:
    rp = {"Version": V, "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"}]}
    result = evaluate(request(), [ALLOW_GET], rp)
    assert result.policy_type == "resource"
    assert result.deciding[0].policy_name == "ResourcePolicy"
    assert access_denied_message(request(), result) == (
        f"User: {USER} is not authorized to perform: {GET} on resource: {SECRET} "
        "with an explicit deny in a resource-based policy")


def test_identity_deny_is_reported_before_resource_deny() -> None:
    rp = {"Version": V, "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"}]}
    req = request(**{"aws:SourceIp": "198.51.100.1"})
    result = evaluate(req, [DENY_GET], rp)
    assert result.policy_type == "identity"
    assert {t.policy_type for t in result.deciding} == {"identity", "resource"}


def test_cross_account_without_resource_policy_message() -> None:
    req = request(X_USER, OTHER)
    result = evaluate(req, [ALLOW_GET])
    assert result.decision is Decision.IMPLICIT_DENY and result.cross_account
    assert result.policy_type == "resource"
    assert access_denied_message(req, result) == (
        f"User: {X_USER} is not authorized to perform: {GET} on resource: {SECRET} "
        f"because no resource-based policy allows the {GET} action")
    assert "Related statements (not sufficient on their own):" in explain(result)


def test_cross_account_without_identity_policy_message() -> None:
    req = request(X_USER, OTHER)
    rp = {"Version": V, "Statement": [{"Effect": "Allow", "Principal": {"AWS": OTHER},
                                       "Action": GET, "Resource": "*"}]}
    result = evaluate(req, [], rp)
    assert result.policy_type == "identity"
    assert access_denied_message(req, result).endswith(
        f"because no identity-based policy allows the {GET} action")
    [related] = result.deciding
    assert related.via_account and related.why == "action matched \"secretsmanager:GetSecretValue\"; " \
        "resource matched \"*\"; Principal names the caller's account"


def test_account_grant_same_account_explains_delegation() -> None:
    rp = {"Version": V, "Statement": [{"Effect": "Allow", "Principal": {"AWS": ACCT},
                                       "Action": GET, "Resource": "*"}]}
    result = evaluate(request(), [], rp)
    assert result.decision is Decision.IMPLICIT_DENY
    assert "delegates to identity-based policies" in result.reason


def test_indeterminate_statement_is_flagged() -> None:
    broken = Policy("Broken", {"Version": V, "Statement": [
        {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"StringEqualz": {"k": "v"}}}]})
    result = evaluate(request(), [ALLOW_GET, broken])
    [trace] = result.deciding
    assert trace.indeterminate and trace.applies
    assert "unknown condition operator 'StringEqualz'" in trace.why
    assert "a Deny that cannot be evaluated is applied" in trace.why


def test_message_for_allowed_request_is_an_error() -> None:
    req = request()
    with pytest.raises(ValueError):
        access_denied_message(req, evaluate(req, [ALLOW_GET]))


def test_message_for_service_principal() -> None:
    req = Request("", ACCT, GET, SECRET, {}, principal_service="rotation.strongroom.internal")
    result = evaluate(req, [])
    assert access_denied_message(req, result).startswith(
        "User: rotation.strongroom.internal is not authorized to perform:")
    assert access_denied_message(req, result).endswith("because no resource-based policy allows "
                                                       f"the {GET} action")


def test_describe_uses_one_based_statement_numbers() -> None:
    result = evaluate(request(), [ALLOW_GET])
    assert result.deciding[0].describe().startswith('identity policy "ReadProd" statement 2 (Sid "ReadProd"): ')


def _ctx(principal: Principal) -> RequestContext:
    return RequestContext(principal, "us-east-1", "req-1", source_ip="10.0.0.1", user_agent="boto3",
                          secure_transport=True,
                          time=dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC))


def test_global_condition_keys_for_user() -> None:
    p = Principal(ACCT, USER, "AIDAEXAMPLE", "AKIAEXAMPLE", "IAMUser", "alice", {"team": "ops"})
    keys = global_condition_keys(_ctx(p))
    assert keys["aws:username"] == "alice"
    assert keys["aws:PrincipalType"] == "User"
    assert keys["aws:PrincipalTag/team"] == "ops"
    assert keys["aws:EpochTime"] == 1714564800
    assert keys["aws:SecureTransport"] is True and keys["aws:SourceIp"] == "10.0.0.1"
    policy = Policy("Own", {"Version": V, "Statement": [{
        "Effect": "Allow", "Action": GET, "Resource": "*",
        "Condition": {"StringEquals": {"aws:PrincipalTag/team": "ops", "aws:username": "${aws:username}"},
                      "DateLessThan": {"aws:CurrentTime": "2025-01-01T00:00:00Z"}}}]})
    assert evaluate(Request(USER, ACCT, GET, SECRET, keys), [policy]).allowed


def test_global_condition_keys_for_role_session() -> None:
    session = f"arn:aws:sts::{ACCT}:assumed-role/app/run-1"
    p = Principal(ACCT, session, "AROAEXAMPLE:run-1", "ASIAEXAMPLE", "AssumedRole", "run-1")
    keys = global_condition_keys(_ctx(p))
    assert keys["aws:PrincipalArn"] == f"arn:aws:iam::{ACCT}:role/app"
    assert keys["aws:userid"] == "AROAEXAMPLE:run-1"
    assert "aws:username" not in keys
