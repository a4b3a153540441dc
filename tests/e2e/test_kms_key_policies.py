"""Key policies are enforced, as AWS KMS enforces them: on every KMS operation on a key, and on
Secrets Manager's use of a customer managed key (GenerateDataKey on write, Decrypt on read),
with kms:ViaService, kms:CallerAccount and kms:EncryptionContext:SecretARN condition keys."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.conftest import Server, denied, strongroom
from tests.conftest import policy_doc as doc

KMS_DENIED = "Access to KMS is not allowed"
SM_ALL = {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}




def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class User:
    """A fresh IAM user with an inline policy, and its clients."""

    def __init__(self, server: Server, iam: Any, *statements: dict[str, Any]):
        self.name = unique("user")
        iam.create_user(UserName=self.name)
        if statements:
            iam.put_user_policy(UserName=self.name, PolicyName="p", PolicyDocument=doc(*statements))
        key = iam.create_access_key(UserName=self.name)["AccessKey"]
        self.arn = iam.get_user(UserName=self.name)["User"]["Arn"]
        self.session = boto3.Session(aws_access_key_id=key["AccessKeyId"], region_name="us-east-1",
                                     aws_secret_access_key=key["SecretAccessKey"])
        self.url = server.url

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.url)


@pytest.fixture
def iam(server: Server) -> Any:
    return server.client("iam")


@pytest.fixture
def kms(server: Server) -> Any:
    return server.client("kms")


@pytest.fixture
def account(server: Server) -> str:
    return str(server.client("sts").get_caller_identity()["Account"])


def root_statement(account: str) -> dict[str, Any]:
    return {"Sid": "Enable IAM policies", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
            "Action": "kms:*", "Resource": "*"}


def test_secrets_manager_needs_kms_permission_for_a_customer_managed_key(server, iam, kms, sm, name):
    cmk = kms.create_key(Description="default policy: IAM decides")["KeyMetadata"]
    sm_only = User(server, iam, SM_ALL)
    # The AWS managed key's policy admits every principal of the account through Secrets Manager.
    sm_only.client("secretsmanager").create_secret(Name=name + "/managed", SecretString="fine")
    assert denied(sm_only.client("secretsmanager").create_secret, Name=name, SecretString="x",
                  KmsKeyId=cmk["Arn"]) == KMS_DENIED
    sm.create_secret(Name=name, SecretString="under a customer managed key", KmsKeyId=cmk["Arn"])
    assert denied(sm_only.client("secretsmanager").get_secret_value, SecretId=name) == KMS_DENIED
    denied(sm_only.client("kms").describe_key, KeyId=cmk["KeyId"])
    granted = User(server, iam, SM_ALL, {"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                                         "Resource": cmk["Arn"]})
    client = granted.client("secretsmanager")
    assert client.get_secret_value(SecretId=name)["SecretString"] == "under a customer managed key"
    client.put_secret_value(SecretId=name, SecretString="rewritten by a user with kms permissions")
    denied(granted.client("kms").describe_key, KeyId=cmk["KeyId"])  # only what IAM grants
    message = denied(granted.client("kms").encrypt, KeyId=cmk["KeyId"], Plaintext=b"x")
    assert f"{granted.arn} is not authorized to perform: kms:Encrypt on resource: {cmk['Arn']}" in message
    assert "because no identity-based policy allows the kms:Encrypt action" in message


def test_a_key_policy_naming_the_user_needs_no_iam_permission(server, iam, kms, sm, account, name):
    user = User(server, iam, SM_ALL)
    cmk = kms.create_key(Policy=doc(root_statement(account), {
        "Effect": "Allow", "Principal": {"AWS": user.arn},
        "Action": ["kms:GenerateDataKey", "kms:Decrypt", "kms:DescribeKey"], "Resource": "*"}))["KeyMetadata"]
    client = user.client("secretsmanager")
    client.create_secret(Name=name, SecretString="granted by the key policy", KmsKeyId=cmk["KeyId"])
    assert client.get_secret_value(SecretId=name)["SecretString"] == "granted by the key policy"
    assert user.client("kms").describe_key(KeyId=cmk["Arn"])["KeyMetadata"]["KeyId"] == cmk["KeyId"]


def test_condition_keys_bind_use_to_secrets_manager_and_one_secret(server, iam, kms, sm, account, name):
    user = User(server, iam, SM_ALL)
    cmk = kms.create_key(Policy=doc(root_statement(account), {
        "Sid": "Through Secrets Manager, for the allowed secrets only",
        "Effect": "Allow", "Principal": {"AWS": user.arn}, "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Resource": "*",
        "Condition": {
            "StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com",
                             "kms:CallerAccount": account},
            "StringLike": {"kms:EncryptionContext:SecretARN":
                           f"arn:aws:secretsmanager:us-east-1:{account}:secret:{name}/allowed-*"}}}))["KeyMetadata"]
    allowed = sm.create_secret(Name=f"{name}/allowed", SecretString="yes", KmsKeyId=cmk["Arn"])
    sm.create_secret(Name=f"{name}/other", SecretString="no", KmsKeyId=cmk["Arn"])
    client = user.client("secretsmanager")
    assert client.get_secret_value(SecretId=f"{name}/allowed")["SecretString"] == "yes"
    client.put_secret_value(SecretId=f"{name}/allowed", SecretString="yes again")
    assert denied(client.get_secret_value, SecretId=f"{name}/other") == KMS_DENIED
    assert denied(client.put_secret_value, SecretId=f"{name}/other", SecretString="x") == KMS_DENIED
    # The same data key, asked of KMS directly (not via Secrets Manager), is refused.
    rows = server.sql("SELECT v.wrapped_key FROM secret_versions v JOIN secrets s ON s.id = v.secret_id "
                      "WHERE s.arn = :arn AND v.version_id = :vid", arn=allowed["ARN"], vid=allowed["VersionId"])
    context = {"SecretARN": allowed["ARN"], "SecretVersionId": allowed["VersionId"]}
    message = denied(user.client("kms").decrypt, CiphertextBlob=bytes(rows[0][0]), EncryptionContext=context)
    # The user's own statement needs kms:ViaService; the account statement then needs IAM, which says no.
    assert "because no identity-based policy allows the kms:Decrypt action" in message
    assert kms.decrypt(CiphertextBlob=bytes(rows[0][0]), EncryptionContext=context)["KeyId"] == cmk["Arn"]


def test_an_explicit_deny_wins(server, iam, kms, sm, name):
    cmk = kms.create_key()["KeyMetadata"]
    sm.create_secret(Name=name, SecretString="denied", KmsKeyId=cmk["Arn"])
    user = User(server, iam, SM_ALL, {"Effect": "Allow", "Action": "kms:*", "Resource": "*"},
                {"Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*",
                 "Condition": {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}})
    assert denied(user.client("secretsmanager").get_secret_value, SecretId=name) == KMS_DENIED
    blob = user.client("kms").encrypt(KeyId=cmk["KeyId"], Plaintext=b"direct use")["CiphertextBlob"]
    assert user.client("kms").decrypt(CiphertextBlob=blob)["Plaintext"] == b"direct use"


def test_a_key_policy_without_the_account_locks_out_even_the_administrator(server, iam, kms, account):
    keeper = User(server, iam)  # no IAM policy at all
    key = kms.create_key(BypassPolicyLockoutSafetyCheck=True, Policy=doc({
        "Effect": "Allow", "Principal": {"AWS": keeper.arn}, "Action": "kms:*", "Resource": "*"}))["KeyMetadata"]
    for call, kw in [(kms.describe_key, {"KeyId": key["KeyId"]}), (kms.disable_key, {"KeyId": key["KeyId"]}),
                     (kms.encrypt, {"KeyId": key["KeyId"], "Plaintext": b"x"}),
                     (kms.get_key_policy, {"KeyId": key["KeyId"]})]:
        denied(call, **kw)
    own = keeper.client("kms")
    assert own.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["Enabled"]
    own.put_key_policy(KeyId=key["KeyId"], Policy=doc(root_statement(account)))
    kms.describe_key(KeyId=key["KeyId"])  # the administrator is back, through IAM


def test_operations_on_no_key_are_decided_by_iam(server, iam):
    bare = User(server, iam).client("kms")
    for call, kw in [(bare.create_key, {}), (bare.list_keys, {}), (bare.list_aliases, {}),
                     (bare.generate_random, {"NumberOfBytes": 8})]:
        denied(call, **kw)
    creator = User(server, iam, {"Effect": "Allow", "Action": ["kms:CreateKey", "kms:DescribeKey", "kms:ListKeys"],
                                 "Resource": "*"}).client("kms")
    key = creator.create_key()["KeyMetadata"]
    assert creator.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyId"] == key["KeyId"]
    denied(creator.create_alias, AliasName=f"alias/{unique('a')}", TargetKeyId=key["KeyId"])


@pytest.fixture(scope="module")
def second(server: Server) -> Any:
    profile = unique("second")
    strongroom("account", "create", "--name", "second", "--profile", profile, "--endpoint-url", server.url,
               env=server.env)
    return boto3.Session(profile_name=profile)


def test_cross_account_use_needs_both_sides(server, kms, sm, account, second, name):
    other_id = second.client("sts", endpoint_url=server.url).get_caller_identity()["Account"]
    cmk = kms.create_key(Policy=doc(root_statement(account), {
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{other_id}:root"},
        "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
        "Resource": "*"}))["KeyMetadata"]
    closed = kms.create_key()["KeyMetadata"]  # default policy: our account only
    other_kms = second.client("kms", endpoint_url=server.url)
    blob = other_kms.encrypt(KeyId=cmk["Arn"], Plaintext=b"across accounts")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"across accounts"
    assert other_kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"across accounts"
    assert other_kms.describe_key(KeyId=cmk["Arn"])["KeyMetadata"]["AWSAccountId"] == account
    denied(other_kms.encrypt, KeyId=closed["Arn"], Plaintext=b"x")
    denied(other_kms.disable_key, KeyId=cmk["Arn"])  # management never crosses accounts
    # The other account's secrets can live under our key, when both sides allow.
    other_sm = second.client("secretsmanager", endpoint_url=server.url)
    other_sm.create_secret(Name=name, SecretString="their secret, our key", KmsKeyId=cmk["Arn"])
    assert other_sm.get_secret_value(SecretId=name)["SecretString"] == "their secret, our key"
    assert denied(other_sm.create_secret, Name=name + "-closed", SecretString="x", KmsKeyId=closed["Arn"]) == \
        KMS_DENIED
    # A user of the other account without KMS permissions is refused by its own side.
    other_iam = second.client("iam", endpoint_url=server.url)
    user = User(server, other_iam, SM_ALL)
    denied(user.client("kms").encrypt, KeyId=cmk["Arn"], Plaintext=b"x")
    assert denied(user.client("secretsmanager").get_secret_value, SecretId=name) == KMS_DENIED
