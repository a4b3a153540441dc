"""IAM over the AWS query protocol, driven by boto3 and the AWS CLI."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import Server


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def status(exc: pytest.ExceptionInfo[ClientError]) -> int:
    return int(exc.value.response["ResponseMetadata"]["HTTPStatusCode"])


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def doc(action: str = "secretsmanager:GetSecretValue", **extra: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*", **extra}]}


@pytest.fixture
def iam(server: Server):  # type: ignore[no-untyped-def]
    return server.client("iam")


@pytest.fixture
def account(server: Server) -> str:
    return str(server.client("sts").get_caller_identity()["Account"])


def client_for(server: Server, key: dict[str, str], service: str = "iam"):  # type: ignore[no-untyped-def]
    return boto3.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                         region_name="us-east-1").client(service, endpoint_url=server.url)


def test_user_lifecycle(iam, account: str) -> None:  # type: ignore[no-untyped-def]
    name = unique("alice")
    user = iam.create_user(UserName=name, Path="/team/", Tags=[{"Key": "team", "Value": "blue"}])["User"]
    assert user["Arn"] == f"arn:aws:iam::{account}:user/team/{name}"
    assert user["UserId"].startswith("AIDA") and user["Path"] == "/team/"
    got = iam.get_user(UserName=name)["User"]
    assert got["UserId"] == user["UserId"] and got["Tags"] == [{"Key": "team", "Value": "blue"}]
    assert name in [u["UserName"] for u in iam.list_users(PathPrefix="/team/")["Users"]]
    iam.delete_user(UserName=name)
    with pytest.raises(ClientError) as exc:
        iam.get_user(UserName=name)
    assert (code(exc), status(exc)) == ("NoSuchEntity", 404)
    assert isinstance(exc.value, iam.exceptions.NoSuchEntityException)


def test_user_names_are_unique_regardless_of_case(iam) -> None:  # type: ignore[no-untyped-def]
    name = unique("Bob")
    iam.create_user(UserName=name)
    with pytest.raises(ClientError) as exc:
        iam.create_user(UserName=name.lower())
    assert (code(exc), status(exc)) == ("EntityAlreadyExists", 409)


def test_get_user_without_name_is_the_caller(iam) -> None:  # type: ignore[no-untyped-def]
    assert iam.get_user()["User"]["UserName"] == "admin"


def test_invalid_user_name_is_a_validation_error(server: Server) -> None:
    raw = server.client("iam", config=Config(parameter_validation=False))
    with pytest.raises(ClientError) as exc:
        raw.create_user(UserName="no spaces allowed")
    assert (code(exc), status(exc)) == ("ValidationError", 400)
    assert "userName" in exc.value.response["Error"]["Message"]


def test_iam_ignores_the_signing_region(server: Server) -> None:
    assert server.client("iam", region_name="eu-west-3").get_user()["User"]["UserName"] == "admin"


def test_access_keys_limit_status_and_deletion(server: Server, iam) -> None:  # type: ignore[no-untyped-def]
    name = unique("keys")
    iam.create_user(UserName=name)
    first = iam.create_access_key(UserName=name)["AccessKey"]
    assert first["AccessKeyId"].startswith("AKIA") and len(first["SecretAccessKey"]) == 40
    iam.create_access_key(UserName=name)
    with pytest.raises(ClientError) as exc:
        iam.create_access_key(UserName=name)
    assert (code(exc), status(exc)) == ("LimitExceeded", 409)
    listed = iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
    assert {k["Status"] for k in listed} == {"Active"} and len(listed) == 2
    assert all("SecretAccessKey" not in k for k in listed)

    user_sts = client_for(server, first, "sts")
    assert user_sts.get_caller_identity()["Arn"].endswith(f":user/{name}")
    last = iam.get_access_key_last_used(AccessKeyId=first["AccessKeyId"])
    assert last["UserName"] == name and last["AccessKeyLastUsed"]["ServiceName"] == "sts"

    iam.update_access_key(UserName=name, AccessKeyId=first["AccessKeyId"], Status="Inactive")
    with pytest.raises(ClientError) as exc:
        user_sts.get_caller_identity()
    assert (code(exc), status(exc)) == ("InvalidClientTokenId", 403)
    iam.update_access_key(UserName=name, AccessKeyId=first["AccessKeyId"], Status="Active")
    assert user_sts.get_caller_identity()["Arn"].endswith(f":user/{name}")

    with pytest.raises(ClientError) as exc:
        iam.delete_user(UserName=name)
    assert (code(exc), status(exc)) == ("DeleteConflict", 409)
    for key in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    with pytest.raises(ClientError) as exc:
        user_sts.get_caller_identity()
    assert code(exc) == "InvalidClientTokenId"
    iam.delete_user(UserName=name)


def test_unknown_access_key_is_invalid_client_token_id(server: Server) -> None:
    fake = {"AccessKeyId": "AKIAIOSFODNN7EXAMPLE", "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
    with pytest.raises(ClientError) as exc:
        client_for(server, fake, "sts").get_caller_identity()
    assert (code(exc), status(exc)) == ("InvalidClientTokenId", 403)


def test_wrong_secret_is_signature_does_not_match(server: Server, iam) -> None:  # type: ignore[no-untyped-def]
    name = unique("sig")
    iam.create_user(UserName=name)
    key = dict(iam.create_access_key(UserName=name)["AccessKey"])
    key["SecretAccessKey"] = "Wrong" + secrets.token_hex(18)  # unique: the leak check looks for it
    with pytest.raises(ClientError) as exc:
        client_for(server, key).list_users()
    assert (code(exc), status(exc)) == ("SignatureDoesNotMatch", 403)


def test_user_without_policy_is_denied_and_policy_grants_reads_only(server: Server, iam) -> None:  # type: ignore[no-untyped-def]
    bare = unique("bare")
    iam.create_user(UserName=bare)
    bare_iam = client_for(server, iam.create_access_key(UserName=bare)["AccessKey"])
    with pytest.raises(ClientError) as exc:
        bare_iam.get_user()
    assert (code(exc), status(exc)) == ("AccessDenied", 403)
    assert f"user/{bare}" in exc.value.response["Error"]["Message"]

    name = unique("reader")
    iam.create_user(UserName=name)
    reads = {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": ["iam:Get*", "iam:List*"], "Resource": "*"}]}
    iam.put_user_policy(UserName=name, PolicyName="reads", PolicyDocument=json.dumps(reads))
    user_iam = client_for(server, iam.create_access_key(UserName=name)["AccessKey"])
    assert user_iam.get_user()["User"]["UserName"] == name
    with pytest.raises(ClientError) as exc:
        user_iam.create_user(UserName=unique("sneaky"))
    assert (code(exc), status(exc)) == ("AccessDenied", 403)
    assert "iam:CreateUser" in exc.value.response["Error"]["Message"]


def test_inline_user_policies(iam) -> None:  # type: ignore[no-untyped-def]
    name = unique("inline")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="read", PolicyDocument=json.dumps(doc()))
    got = iam.get_user_policy(UserName=name, PolicyName="read")
    assert got["PolicyDocument"] == doc()  # URL-encoded on the wire, decoded by botocore
    assert iam.list_user_policies(UserName=name)["PolicyNames"] == ["read"]
    with pytest.raises(ClientError) as exc:
        iam.delete_user(UserName=name)
    assert code(exc) == "DeleteConflict"
    iam.delete_user_policy(UserName=name, PolicyName="read")
    with pytest.raises(ClientError) as exc:
        iam.get_user_policy(UserName=name, PolicyName="read")
    assert code(exc) == "NoSuchEntity"
    iam.delete_user(UserName=name)


@pytest.mark.parametrize("document", [
    "{not json",
    json.dumps(doc(Principal="*")),
    json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*"}]}),
    json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Maybe", "Action": "s3:*", "Resource": "*"}]}),
])
def test_malformed_identity_policy_is_rejected(iam, document: str) -> None:  # type: ignore[no-untyped-def]
    name = unique("badpol")
    iam.create_user(UserName=name)
    with pytest.raises(ClientError) as exc:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=document)
    assert (code(exc), status(exc)) == ("MalformedPolicyDocument", 400)


def test_managed_policy_versions_and_attachments(iam, account: str) -> None:  # type: ignore[no-untyped-def]
    user, role, pname = unique("att-user"), unique("att-role"), unique("pol")
    iam.create_user(UserName=user)
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": account}, "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
    policy = iam.create_policy(PolicyName=pname, Path="/app/", PolicyDocument=json.dumps(doc()),
                               Description="read secrets")["Policy"]
    arn = policy["Arn"]
    assert arn == f"arn:aws:iam::{account}:policy/app/{pname}"
    assert policy["PolicyId"].startswith("ANPA") and policy["DefaultVersionId"] == "v1"
    with pytest.raises(ClientError) as exc:
        iam.create_policy(PolicyName=pname, PolicyDocument=json.dumps(doc()))
    assert code(exc) == "EntityAlreadyExists"

    iam.attach_user_policy(UserName=user, PolicyArn=arn)
    iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 2
    assert iam.list_attached_user_policies(UserName=user)["AttachedPolicies"] == [
        {"PolicyName": pname, "PolicyArn": arn}]
    assert [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]] == [arn]
    assert arn in [p["Arn"] for p in iam.list_policies(Scope="Local", OnlyAttached=True)["Policies"]]
    with pytest.raises(ClientError) as exc:
        iam.delete_policy(PolicyArn=arn)
    assert (code(exc), status(exc)) == ("DeleteConflict", 409)
    with pytest.raises(ClientError) as exc:
        iam.delete_role(RoleName=role)
    assert code(exc) == "DeleteConflict"

    v2 = iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(doc("secretsmanager:*")),
                                   SetAsDefault=True)["PolicyVersion"]
    assert v2["VersionId"] == "v2" and v2["IsDefaultVersion"] is True
    assert iam.get_policy_version(PolicyArn=arn, VersionId="v2")["PolicyVersion"]["Document"] == doc("secretsmanager:*")
    assert iam.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]["IsDefaultVersion"] is False
    with pytest.raises(ClientError) as exc:
        iam.delete_policy_version(PolicyArn=arn, VersionId="v2")
    assert code(exc) == "DeleteConflict"

    iam.detach_user_policy(UserName=user, PolicyArn=arn)
    iam.detach_role_policy(RoleName=role, PolicyArn=arn)
    with pytest.raises(ClientError) as exc:
        iam.detach_role_policy(RoleName=role, PolicyArn=arn)
    assert code(exc) == "NoSuchEntity"
    with pytest.raises(ClientError) as exc:  # non-default versions go first
        iam.delete_policy(PolicyArn=arn)
    assert code(exc) == "DeleteConflict"
    iam.delete_policy_version(PolicyArn=arn, VersionId="v1")
    iam.delete_policy(PolicyArn=arn)
    with pytest.raises(ClientError) as exc:
        iam.get_policy(PolicyArn=arn)
    assert code(exc) == "NoSuchEntity"
    iam.delete_role(RoleName=role)
    iam.delete_user(UserName=user)


def test_attaching_an_unknown_policy_is_no_such_entity(iam, account: str) -> None:  # type: ignore[no-untyped-def]
    name = unique("nopol")
    iam.create_user(UserName=name)
    with pytest.raises(ClientError) as exc:
        iam.attach_user_policy(UserName=name, PolicyArn=f"arn:aws:iam::{account}:policy/{unique('ghost')}")
    assert (code(exc), status(exc)) == ("NoSuchEntity", 404)


def test_role_lifecycle_trust_policy_and_tags(iam, account: str) -> None:  # type: ignore[no-untyped-def]
    name = unique("svc")
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName=name, Path="/svc/", AssumeRolePolicyDocument=json.dumps(trust),
                           Description="service role", MaxSessionDuration=7200,
                           Tags=[{"Key": "env", "Value": "prod"}])["Role"]
    assert role["Arn"] == f"arn:aws:iam::{account}:role/svc/{name}" and role["RoleId"].startswith("AROA")
    got = iam.get_role(RoleName=name)["Role"]
    assert got["AssumeRolePolicyDocument"] == trust and got["MaxSessionDuration"] == 7200
    assert got["Description"] == "service role"
    assert name in [r["RoleName"] for r in iam.list_roles(PathPrefix="/svc/")["Roles"]]

    iam.tag_role(RoleName=name, Tags=[{"Key": "owner", "Value": "ops"}, {"Key": "env", "Value": "dev"}])
    assert sorted((t["Key"], t["Value"]) for t in iam.list_role_tags(RoleName=name)["Tags"]) == [
        ("env", "dev"), ("owner", "ops")]
    iam.untag_role(RoleName=name, TagKeys=["env"])
    assert iam.list_role_tags(RoleName=name)["Tags"] == [{"Key": "owner", "Value": "ops"}]

    narrower = dict(trust, Statement=[dict(trust["Statement"][0], Principal={"AWS": f"arn:aws:iam::{account}:user/x"})])
    iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(narrower))
    assert iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"] == narrower
    iam.put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=json.dumps(doc()))
    assert iam.get_role_policy(RoleName=name, PolicyName="inline")["PolicyDocument"] == doc()
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == ["inline"]
    iam.delete_role_policy(RoleName=name, PolicyName="inline")
    iam.delete_role(RoleName=name)
    with pytest.raises(ClientError) as exc:
        iam.get_role(RoleName=name)
    assert code(exc) == "NoSuchEntity"


def test_trust_policy_must_name_principals_and_no_resource(iam) -> None:  # type: ignore[no-untyped-def]
    bad = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole", "Resource": "*"}]}
    with pytest.raises(ClientError) as exc:
        iam.create_role(RoleName=unique("bad"), AssumeRolePolicyDocument=json.dumps(bad))
    assert code(exc) == "MalformedPolicyDocument"
    with pytest.raises(ClientError) as exc:
        iam.create_role(RoleName=unique("bad"), AssumeRolePolicyDocument=json.dumps(doc("sts:AssumeRole")))
    assert code(exc) == "MalformedPolicyDocument"


def test_user_tags(iam) -> None:  # type: ignore[no-untyped-def]
    name = unique("tagged")
    iam.create_user(UserName=name)
    iam.tag_user(UserName=name, Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    iam.untag_user(UserName=name, TagKeys=["a"])
    assert iam.list_user_tags(UserName=name)["Tags"] == [{"Key": "b", "Value": "2"}]
    with pytest.raises(ClientError) as exc:
        iam.tag_user(UserName=name, Tags=[{"Key": "c", "Value": "1"}, {"Key": "C", "Value": "2"}])
    assert code(exc) == "InvalidInput"


def test_list_users_pages_with_markers(iam) -> None:  # type: ignore[no-untyped-def]
    prefix = f"/page{uuid.uuid4().hex[:6]}/"
    names = sorted(unique("p") for _ in range(5))
    for n in names:
        iam.create_user(UserName=n, Path=prefix)
    first = iam.list_users(PathPrefix=prefix, MaxItems=2)
    assert first["IsTruncated"] is True and len(first["Users"]) == 2
    pages = iam.get_paginator("list_users").paginate(PathPrefix=prefix, PaginationConfig={"PageSize": 2})
    assert [u["UserName"] for page in pages for u in page["Users"]] == names


def test_aws_cli_reads_roles_and_policies(server: Server, iam) -> None:  # type: ignore[no-untyped-def]
    name = unique("cli")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(doc()))
    aws = Path(sys.executable).with_name("aws")
    out = subprocess.run([str(aws), "--profile", "strongroom", "iam", "get-user-policy", "--user-name", name,
                          "--policy-name", "p", "--output", "json"],
                         env=server.env, capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout)["PolicyDocument"] == doc()


def test_unknown_action_is_invalid_action(server: Server) -> None:
    import urllib.request

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    creds = server.session().get_credentials()
    req = AWSRequest(method="POST", url=server.url + "/", data=b"Action=NoSuchThing&Version=2010-05-08",
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(creds, "iam", "us-east-1").add_auth(req)
    prepared = req.prepare()
    http = urllib.request.Request(prepared.url, data=prepared.body, headers=dict(prepared.headers), method="POST")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(http, timeout=10)
    body = exc.value.read().decode()
    assert exc.value.code == 400 and "<Code>InvalidAction</Code>" in body and "<ErrorResponse" in body


def test_strongroom_iam_cli_manages_the_running_servers_users(server: Server, iam) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import strongroom

    name = unique("cli-user")
    strongroom("iam", "create-user", name, "--tag", "team=ops", env=server.env)
    assert iam.get_user(UserName=name)["User"]["Tags"] == [{"Key": "team", "Value": "ops"}]
    out = strongroom("iam", "create-access-key", name, env=server.env).stdout
    fields = dict(line.split(" = ", 1) for line in out.strip().splitlines())
    key = {"AccessKeyId": fields["aws_access_key_id"], "SecretAccessKey": fields["aws_secret_access_key"]}
    assert client_for(server, key, "sts").get_caller_identity()["Arn"].endswith(f":user/{name}")
    strongroom("iam", "put-user-policy", name, "read", json.dumps(doc()), env=server.env)
    assert iam.get_user_policy(UserName=name, PolicyName="read")["PolicyDocument"] == doc()
    listed = json.loads(strongroom("iam", "list-access-keys", name, "--json", env=server.env).stdout)
    assert [k["AccessKeyId"] for k in listed["AccessKeyMetadata"]] == [key["AccessKeyId"]]
    failed = strongroom("iam", "delete-user", name, env=server.env, check=False)
    assert failed.returncode == 1 and "DeleteConflict" in failed.stderr
