"""Resource policies: Put/Get/Delete/List/Validate, BlockPublicPolicy, malformed documents, PolicyName."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.e2e.support import call, code, snapshot


def policy(principal: object = None, **extra: object) -> str:
    statement = {"Effect": "Allow", "Principal": principal or {"AWS": "arn:aws:iam::123456789012:root"},
                 "Action": "secretsmanager:GetSecretValue", "Resource": "*", **extra}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


PUBLIC = policy("*")


@pytest.fixture
def secret(sm, name):  # type: ignore[no-untyped-def]
    sm.create_secret(Name=name, SecretString="v")
    return name


def test_put_get_list_delete(sm, secret):
    assert sm.get_resource_policy(SecretId=secret).get("ResourcePolicy") is None
    assert sm.list_resource_policies(SecretId=secret)["ResourcePolicies"] == []
    put = sm.put_resource_policy(SecretId=secret, ResourcePolicy=policy())
    assert put["Name"] == secret and put["ARN"].startswith("arn:aws:secretsmanager:")
    got = sm.get_resource_policy(SecretId=secret)
    assert json.loads(got["ResourcePolicy"]) == json.loads(policy())
    assert got["Name"] == secret and got["ARN"] == put["ARN"]
    assert sm.list_resource_policies(SecretId=secret)["ResourcePolicies"] == [{"PolicyName": "default"}]
    deleted = sm.delete_resource_policy(SecretId=secret)
    assert deleted["Name"] == secret
    assert sm.get_resource_policy(SecretId=secret).get("ResourcePolicy") is None
    sm.delete_resource_policy(SecretId=secret)  # deleting nothing is not an error


def test_put_replaces_and_changes_last_changed_date(sm, secret):
    sm.put_resource_policy(SecretId=secret, ResourcePolicy=policy())
    first = sm.describe_secret(SecretId=secret)["LastChangedDate"]
    replacement = policy({"AWS": "arn:aws:iam::123456789012:user/bob"})
    sm.put_resource_policy(SecretId=secret, ResourcePolicy=replacement)
    assert sm.get_resource_policy(SecretId=secret)["ResourcePolicy"] == replacement
    assert sm.describe_secret(SecretId=secret)["LastChangedDate"] >= first


def test_public_policy_is_accepted_unless_blocked(sm, secret):
    sm.put_resource_policy(SecretId=secret, ResourcePolicy=policy())
    before = snapshot(sm, secret)
    with pytest.raises(ClientError) as exc:
        sm.put_resource_policy(SecretId=secret, ResourcePolicy=PUBLIC, BlockPublicPolicy=True)
    assert code(exc) == "PublicPolicyException"
    assert snapshot(sm, secret) == before
    # By default public policies aren't blocked (AWS's documented default).
    sm.put_resource_policy(SecretId=secret, ResourcePolicy=PUBLIC)
    assert sm.get_resource_policy(SecretId=secret)["ResourcePolicy"] == PUBLIC


def test_a_pinned_wildcard_principal_is_not_public(sm, secret):
    pinned = policy("*", Condition={"StringEquals": {"aws:PrincipalAccount": "123456789012"}})
    sm.put_resource_policy(SecretId=secret, ResourcePolicy=pinned, BlockPublicPolicy=True)
    assert sm.get_resource_policy(SecretId=secret)["ResourcePolicy"] == pinned


@pytest.mark.parametrize(
    "document",
    [
        "not json",
        "[]",
        json.dumps({"Version": "2012-10-17", "Statement": []}),
        json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "x:y", "Resource": "*"}]}),
        policy(Effect="Maybe"),
        policy(Action="GetSecretValue"),
        policy("arn:aws:iam::123456789012:root"),  # a principal must be "*" or an object
    ],
)
def test_malformed_policies_are_refused_and_change_nothing(sm, secret, document):
    sm.put_resource_policy(SecretId=secret, ResourcePolicy=policy())
    before = snapshot(sm, secret)
    with pytest.raises(ClientError) as exc:
        sm.put_resource_policy(SecretId=secret, ResourcePolicy=document)
    assert code(exc) == "MalformedPolicyDocumentException"
    assert snapshot(sm, secret) == before


def test_only_the_default_policy_name_exists(sm, secret):
    sm.put_resource_policy(SecretId=secret, ResourcePolicy=policy(), PolicyName="default")
    assert sm.get_resource_policy(SecretId=secret, PolicyName="default")["PolicyName"] == "default"
    before = snapshot(sm, secret)
    with pytest.raises(ClientError) as exc:
        sm.put_resource_policy(SecretId=secret, ResourcePolicy=policy(), PolicyName="second")
    assert code(exc) == "InvalidParameterException"
    with pytest.raises(ClientError) as exc:
        sm.get_resource_policy(SecretId=secret, PolicyName="second")
    assert code(exc) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        sm.delete_resource_policy(SecretId=secret, PolicyName="second")
    assert code(exc) == "InvalidParameterException"
    assert snapshot(sm, secret) == before


def test_policy_name_must_match_the_model_pattern(server, secret):
    reply = call(server, "secretsmanager.PutResourcePolicy",
                 {"SecretId": secret, "ResourcePolicy": policy(), "PolicyName": ""})
    assert (reply.status, reply.error) == (400, "ValidationException")


def test_policy_operations_on_a_missing_secret(sm):
    missing = "no/such/secret/for/policy"
    for op, kw in ((sm.put_resource_policy, {"ResourcePolicy": policy()}), (sm.get_resource_policy, {}),
                   (sm.delete_resource_policy, {}), (sm.list_resource_policies, {})):
        with pytest.raises(ClientError) as exc:
            op(SecretId=missing, **kw)
        assert code(exc) == "ResourceNotFoundException"


def test_policies_can_be_read_but_not_changed_while_deleted(sm, secret):
    sm.put_resource_policy(SecretId=secret, ResourcePolicy=policy())
    sm.delete_secret(SecretId=secret, RecoveryWindowInDays=7)
    assert sm.get_resource_policy(SecretId=secret)["ResourcePolicy"] == policy()
    for op, kw in ((sm.put_resource_policy, {"ResourcePolicy": PUBLIC}), (sm.delete_resource_policy, {})):
        with pytest.raises(ClientError) as exc:
            op(SecretId=secret, **kw)
        assert code(exc) == "InvalidRequestException"
    sm.restore_secret(SecretId=secret)
    assert sm.get_resource_policy(SecretId=secret)["ResourcePolicy"] == policy()


def test_list_resource_policies_refuses_a_foreign_token(sm, secret):
    with pytest.raises(ClientError) as exc:
        sm.list_resource_policies(SecretId=secret, NextToken="bogus")
    assert code(exc) == "InvalidNextTokenException"


def test_validate_resource_policy(sm, secret):
    ok = sm.validate_resource_policy(ResourcePolicy=policy())
    assert ok["PolicyValidationPassed"] is True and ok["ValidationErrors"] == []
    ok = sm.validate_resource_policy(SecretId=secret, ResourcePolicy=policy())
    assert ok["PolicyValidationPassed"] is True
    public = sm.validate_resource_policy(ResourcePolicy=PUBLIC)
    assert public["PolicyValidationPassed"] is False
    assert [e["CheckName"] for e in public["ValidationErrors"]] == ["Public access"]
    bad = sm.validate_resource_policy(ResourcePolicy=policy(Effect="Maybe"))
    assert bad["PolicyValidationPassed"] is False
    assert any("Effect" in e["ErrorMessage"] for e in bad["ValidationErrors"])
    garbage = sm.validate_resource_policy(ResourcePolicy="{{{")
    assert garbage["PolicyValidationPassed"] is False
    # Validating changes nothing.
    assert sm.get_resource_policy(SecretId=secret).get("ResourcePolicy") is None


def test_validate_with_a_missing_secret(sm):
    with pytest.raises(ClientError) as exc:
        sm.validate_resource_policy(SecretId="no/such/secret/for/validate", ResourcePolicy=policy())
    assert code(exc) == "ResourceNotFoundException"
