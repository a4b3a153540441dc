"""Secrets Manager authorization as several principals: admin, a read-only user, a role
assumed through STS, and the administrator of a second account."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.conftest import Server, denied, strongroom
from tests.conftest import policy_doc as policy


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"




def user_client(server: Server, iam: Any, *statements: dict[str, Any], service: str = "secretsmanager") -> Any:
    """A client signed by a fresh user holding `statements` as an inline policy."""
    name = unique("user")
    iam.create_user(UserName=name)
    if statements:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=policy(*statements))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return boto3.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                         region_name="us-east-1").client(service, endpoint_url=server.url)


@pytest.fixture
def iam(server: Server) -> Any:
    return server.client("iam")


def test_user_without_policies_is_denied_everything(server, iam, sm, name):
    arn = sm.create_secret(Name=name, SecretString="nobody-reads-this")["ARN"]
    bare = user_client(server, iam)
    message = denied(bare.get_secret_value, SecretId=arn)
    assert message.startswith("User: arn:aws:iam::")
    assert f"is not authorized to perform: secretsmanager:GetSecretValue on resource: {arn}" in message
    assert "because no identity-based policy allows the secretsmanager:GetSecretValue action" in message
    denied(bare.list_secrets)
    denied(bare.get_random_password)
    denied(bare.put_secret_value, SecretId=arn, SecretString="x")
    # Denied callers learn nothing about existence: a missing secret is AccessDenied too.
    denied(bare.describe_secret, SecretId="no/such/secret")
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == "nobody-reads-this"


def test_read_only_user_reads_but_cannot_change(server, iam, sm, name):
    arn = sm.create_secret(Name=name, SecretString="readable")["ARN"]
    reader = user_client(server, iam, {
        "Effect": "Allow",
        "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret", "secretsmanager:ListSecrets"],
        "Resource": "*",
    })
    assert reader.get_secret_value(SecretId=name)["SecretString"] == "readable"
    assert reader.describe_secret(SecretId=arn)["ARN"] == arn
    assert any(s["ARN"] == arn for s in reader.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"])
    for call, kw in [
        (reader.put_secret_value, {"SecretId": arn, "SecretString": "changed"}),
        (reader.update_secret, {"SecretId": arn, "Description": "changed"}),
        (reader.delete_secret, {"SecretId": arn}),
        (reader.tag_resource, {"SecretId": arn, "Tags": [{"Key": "k", "Value": "v"}]}),
        (reader.put_resource_policy, {"SecretId": arn, "ResourcePolicy": policy(
            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "*", "Resource": "*"})}),
        (reader.create_secret, {"Name": name + "-new", "SecretString": "x"}),
        (reader.rotate_secret, {"SecretId": arn, "RotationLambdaARN": "arn:aws:lambda:us-east-1:1:function:f"}),
    ]:
        assert "secretsmanager:" in denied(call, **kw)
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == "readable"
    assert "Tags" not in sm.describe_secret(SecretId=arn)


def test_explicit_deny_beats_allow(server, iam, sm, name):
    arn = sm.create_secret(Name=name, SecretString="v")["ARN"]
    client = user_client(
        server, iam,
        {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "secretsmanager:GetSecretValue", "Resource": arn},
    )
    assert "explicit deny in an identity-based policy" in denied(client.get_secret_value, SecretId=arn)
    assert client.describe_secret(SecretId=arn)["Name"] == name


def test_resource_scoped_and_tag_conditioned_access(server, iam, sm, name):
    ops = sm.create_secret(Name=name + "/ops", SecretString="o", Tags=[{"Key": "team", "Value": "ops"}])["ARN"]
    dev = sm.create_secret(Name=name + "/dev", SecretString="d", Tags=[{"Key": "team", "Value": "dev"}])["ARN"]
    client = user_client(server, iam, {
        "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*",
        "Condition": {"StringEquals": {"secretsmanager:ResourceTag/team": "ops"}},
    })
    assert client.get_secret_value(SecretId=ops)["SecretString"] == "o"
    denied(client.get_secret_value, SecretId=dev)


def test_batch_get_reports_access_denied_per_secret(server, iam, sm, name):
    allowed = sm.create_secret(Name=name + "/a", SecretString="a")["ARN"]
    other = sm.create_secret(Name=name + "/b", SecretString="b")["ARN"]
    client = user_client(
        server, iam,
        {"Effect": "Allow", "Action": "secretsmanager:BatchGetSecretValue", "Resource": "*"},
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": allowed},
    )
    out = client.batch_get_secret_value(SecretIdList=[allowed, other])
    assert [v["ARN"] for v in out["SecretValues"]] == [allowed]
    assert [(e["SecretId"], e["ErrorCode"]) for e in out["Errors"]] == [(other, "AccessDeniedException")]


def test_resource_policy_grants_a_user_of_the_same_account(server, iam, sm, name):
    arn = sm.create_secret(Name=name, SecretString="shared")["ARN"]
    user = unique("grantee")
    iam.create_user(UserName=user)
    user_arn = iam.get_user(UserName=user)["User"]["Arn"]
    key = iam.create_access_key(UserName=user)["AccessKey"]
    client = boto3.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                           region_name="us-east-1").client("secretsmanager", endpoint_url=server.url)
    denied(client.get_secret_value, SecretId=arn)
    sm.put_resource_policy(SecretId=arn, ResourcePolicy=policy(
        {"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "secretsmanager:GetSecretValue",
         "Resource": "*"}))
    assert client.get_secret_value(SecretId=arn)["SecretString"] == "shared"


def test_resource_policy_deny_binds_the_administrator(server, sm, name):
    arn = sm.create_secret(Name=name, SecretString="locked")["ARN"]
    sm.put_resource_policy(SecretId=arn, ResourcePolicy=policy(
        {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "secretsmanager:GetSecretValue", "Resource": "*"}))
    assert "explicit deny in a resource-based policy" in denied(sm.get_secret_value, SecretId=arn)
    sm.delete_resource_policy(SecretId=arn)
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == "locked"


def test_role_assumed_through_sts(server, iam, sm, name):
    arn = sm.create_secret(Name=name, SecretString="for-the-role")["ARN"]
    account = server.client("sts").get_caller_identity()["Account"]
    role = unique("reader-role")
    trust = policy({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:user/admin"},
                    "Action": "sts:AssumeRole"})
    role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    iam.put_role_policy(RoleName=role, PolicyName="read", PolicyDocument=policy(
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}))
    creds = server.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="app")["Credentials"]
    session = boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                            aws_session_token=creds["SessionToken"], region_name="us-east-1")
    role_sm = session.client("secretsmanager", endpoint_url=server.url)
    assert role_sm.get_secret_value(SecretId=arn)["SecretString"] == "for-the-role"
    message = denied(role_sm.put_secret_value, SecretId=arn, SecretString="x")
    assert f"assumed-role/{role}/app" in message

    # A session policy narrows the role: this session may read nothing.
    narrow = server.client("sts").assume_role(
        RoleArn=role_arn, RoleSessionName="narrow",
        Policy=policy({"Effect": "Allow", "Action": "secretsmanager:DescribeSecret", "Resource": "*"}),
    )["Credentials"]
    narrow_sm = boto3.Session(aws_access_key_id=narrow["AccessKeyId"],
                              aws_secret_access_key=narrow["SecretAccessKey"],
                              aws_session_token=narrow["SessionToken"],
                              region_name="us-east-1").client("secretsmanager", endpoint_url=server.url)
    denied(narrow_sm.get_secret_value, SecretId=arn)


@pytest.fixture(scope="module")
def second_account(server: Server) -> Any:
    strongroom("account", "create", "--name", "second", "--profile", "second", "--endpoint-url", server.url,
               env=server.env)
    return boto3.Session(profile_name="second")


def test_second_account_needs_both_sides_to_allow(server, sm, name, second_account):
    other_sm = second_account.client("secretsmanager", endpoint_url=server.url)
    other_id = second_account.client("sts", endpoint_url=server.url).get_caller_identity()["Account"]
    own_id = server.client("sts").get_caller_identity()["Account"]
    # As in AWS, another account reads a secret only under a customer managed key whose policy
    # lets it decrypt: the AWS managed key's policy admits its own account alone.
    key = server.client("kms").create_key(Policy=policy(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{own_id}:root"}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{other_id}:root"}, "Action": "kms:Decrypt",
         "Resource": "*"}))["KeyMetadata"]
    arn = sm.create_secret(Name=name, SecretString="cross-account", KmsKeyId=key["Arn"])["ARN"]
    # The other account's administrator may do anything in its own account, not in ours.
    denied(other_sm.get_secret_value, SecretId=arn)
    sm.put_resource_policy(SecretId=arn, ResourcePolicy=policy(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{other_id}:root"},
         "Action": "secretsmanager:GetSecretValue", "Resource": "*"}))
    assert other_sm.get_secret_value(SecretId=arn)["SecretString"] == "cross-account"
    denied(other_sm.put_secret_value, SecretId=arn, SecretString="nope")
    # Its own secrets live apart: same name, different account.
    mine = other_sm.create_secret(Name=name, SecretString="theirs")["ARN"]
    assert f":{other_id}:" in mine and mine != arn
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "cross-account"
    # Under the AWS managed key, the resource policy alone is not enough.
    managed = sm.create_secret(Name=name + "-managed", SecretString="x")["ARN"]
    sm.put_resource_policy(SecretId=managed, ResourcePolicy=policy(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{other_id}:root"},
         "Action": "secretsmanager:GetSecretValue", "Resource": "*"}))
    assert denied(other_sm.get_secret_value, SecretId=managed) == "Access to KMS is not allowed"


def test_a_users_tags_are_its_principal_tags(server, iam, sm, name):
    """As on AWS: an IAM user's tags are the aws:PrincipalTag keys of the requests it signs."""
    arn = sm.create_secret(Name=name, SecretString="for the blue team", Tags=[{"Key": "team", "Value": "blue"}])["ARN"]
    same_team = {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*",
                 "Condition": {"StringEquals": {"secretsmanager:ResourceTag/team": "${aws:PrincipalTag/team}"}}}
    user = unique("tagged")
    iam.create_user(UserName=user, Tags=[{"Key": "team", "Value": "blue"}])
    iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=policy(same_team))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    user_sm = boto3.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                            region_name="us-east-1").client("secretsmanager", endpoint_url=server.url)
    assert user_sm.get_secret_value(SecretId=arn)["SecretString"] == "for the blue team"
    iam.tag_user(UserName=user, Tags=[{"Key": "team", "Value": "red"}])  # a tag change takes effect
    denied(user_sm.get_secret_value, SecretId=arn)
