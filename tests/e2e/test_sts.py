"""STS over the AWS query protocol: caller identity, role sessions, and what they may do."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from strongroom.cli import awsprofile
from tests.conftest import Server


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def trust_policy(*principals: str, actions: tuple[str, ...] = ("sts:AssumeRole",)) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": list(principals)}, "Action": list(actions)}]})


ALLOW_SECRETS = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}]})


@pytest.fixture(scope="module")
def admin(server: Server) -> dict[str, str]:
    return server.client("sts").get_caller_identity()  # type: ignore[no-any-return]


@pytest.fixture
def role(server: Server, admin: dict[str, str]) -> dict[str, str]:
    """A role the admin may assume (trust names the account root), allowed to use Secrets Manager."""
    iam = server.client("iam")
    name = unique("role")
    created = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust_policy(
        f"arn:aws:iam::{admin['Account']}:root", actions=("sts:AssumeRole", "sts:TagSession")),
        MaxSessionDuration=7200)["Role"]
    iam.put_role_policy(RoleName=name, PolicyName="secrets", PolicyDocument=ALLOW_SECRETS)
    return created  # type: ignore[no-any-return]


def session_for(server: Server, creds: dict[str, str]) -> boto3.Session:
    return boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"], region_name="us-east-1")


def test_get_caller_identity_names_the_admin_user(server: Server, admin: dict[str, str]) -> None:
    assert admin["Arn"] == f"arn:aws:iam::{admin['Account']}:user/admin"
    assert admin["UserId"].startswith("AIDA") and len(admin["Account"]) == 12


def test_aws_cli_get_caller_identity(server: Server, admin: dict[str, str]) -> None:
    aws = Path(sys.executable).with_name("aws")
    out = subprocess.run([str(aws), "--profile", "strongroom", "--endpoint-url", server.url, "sts",
                          "get-caller-identity", "--output", "json"],
                         env=server.env, capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout)["Arn"] == admin["Arn"]


def test_assume_role_returns_working_temporary_credentials(server: Server, role: dict[str, str]) -> None:
    out = server.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="build-42", DurationSeconds=900)
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and len(creds["AccessKeyId"]) == 20
    assert out["AssumedRoleUser"]["AssumedRoleId"] == f"{role['RoleId']}:build-42"
    account = role["Arn"].split(":")[4]
    assumed_arn = f"arn:aws:sts::{account}:assumed-role/{role['RoleName']}/build-42"
    assert out["AssumedRoleUser"]["Arn"] == assumed_arn
    remaining = creds["Expiration"].timestamp() - time.time()
    assert 850 < remaining <= 900
    session = session_for(server, creds)
    me = session.client("sts", endpoint_url=server.url).get_caller_identity()
    assert me["Arn"] == assumed_arn and me["UserId"] == f"{role['RoleId']}:build-42"
    sm = session.client("secretsmanager", endpoint_url=server.url)
    name = unique("sts/secret")
    sm.create_secret(Name=name, SecretString="from a role session")
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "from a role session"


def test_role_assumption_through_a_config_profile(server: Server, role: dict[str, str]) -> None:
    profile = unique("assumer")
    path = awsprofile.config_path()
    path.write_text(awsprofile.replace_section(path.read_text(), f"[profile {profile}]", {
        "role_arn": role["Arn"], "source_profile": "strongroom", "role_session_name": "via-profile",
        "endpoint_url": server.url, "region": "us-east-1"}))
    session = boto3.Session(profile_name=profile)
    me = session.client("sts").get_caller_identity()
    assert me["Arn"].endswith(f":assumed-role/{role['RoleName']}/via-profile")
    name = unique("profile/secret")
    session.client("secretsmanager").create_secret(Name=name, SecretString="v")
    assert session.client("secretsmanager").describe_secret(SecretId=name)["Name"] == name


def test_session_tags_and_policy_report_packed_size(server: Server, role: dict[str, str]) -> None:
    out = server.client("sts").assume_role(
        RoleArn=role["Arn"], RoleSessionName="tagged", Tags=[{"Key": "project", "Value": "blue"}],
        TransitiveTagKeys=["project"], Policy=ALLOW_SECRETS)
    assert 0 < out["PackedPolicySize"] <= 100


def test_duration_beyond_the_role_maximum_is_rejected(server: Server, role: dict[str, str]) -> None:
    with pytest.raises(ClientError) as exc:
        server.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="long", DurationSeconds=7201)
    assert code(exc) == "ValidationError"
    assert "MaxSessionDuration" in str(exc.value)


@pytest.mark.parametrize("session_name", ["a", "has space", "x" * 65])
def test_invalid_role_session_name_is_a_validation_error(server: Server, role: dict[str, str],
                                                         session_name: str) -> None:
    with pytest.raises(ClientError) as exc:
        server.client("sts", config=boto3.session.Config(parameter_validation=False)).assume_role(
            RoleArn=role["Arn"], RoleSessionName=session_name)
    assert code(exc) == "ValidationError"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_untrusted_caller_is_denied(server: Server, admin: dict[str, str]) -> None:
    iam = server.client("iam")
    name = unique("locked")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust_policy(
        f"arn:aws:iam::{admin['Account']}:user/someone-else"))["Role"]["Arn"]
    with pytest.raises(ClientError) as exc:
        server.client("sts").assume_role(RoleArn=arn, RoleSessionName="nope")
    assert code(exc) == "AccessDenied"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_missing_role_is_access_denied(server: Server, admin: dict[str, str]) -> None:
    with pytest.raises(ClientError) as exc:
        server.client("sts").assume_role(RoleArn=f"arn:aws:iam::{admin['Account']}:role/{unique('ghost')}",
                                         RoleSessionName="nope")
    assert code(exc) == "AccessDenied"


def test_trust_policy_naming_a_user_lets_that_user_assume_and_chain(server: Server, admin: dict[str, str]) -> None:
    iam = server.client("iam")
    user = unique("dev")
    user_arn = iam.create_user(UserName=user)["User"]["Arn"]
    key = iam.create_access_key(UserName=user)["AccessKey"]
    role_name = unique("for-dev")
    arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=trust_policy(user_arn),
                          MaxSessionDuration=7200)["Role"]["Arn"]
    dev = boto3.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                        region_name="us-east-1").client("sts", endpoint_url=server.url)
    creds = dev.assume_role(RoleArn=arn, RoleSessionName="dev")["Credentials"]
    chained = session_for(server, creds).client("sts", endpoint_url=server.url)
    with pytest.raises(ClientError) as exc:  # the trust policy names the user, not the role's sessions
        chained.assume_role(RoleArn=arn, RoleSessionName="again")
    assert code(exc) == "AccessDenied"
    iam.update_assume_role_policy(RoleName=role_name, PolicyDocument=trust_policy(user_arn, arn))
    with pytest.raises(ClientError) as exc:  # role chaining caps sessions at one hour
        chained.assume_role(RoleArn=arn, RoleSessionName="again", DurationSeconds=3601)
    assert code(exc) == "ValidationError" and "role chaining" in str(exc.value)
    again = chained.assume_role(RoleArn=arn, RoleSessionName="again")["AssumedRoleUser"]
    assert again["Arn"].endswith(f":assumed-role/{role_name}/again")


def test_wrong_session_token_is_rejected(server: Server, role: dict[str, str]) -> None:
    creds = dict(server.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="tok")["Credentials"])
    creds["SessionToken"] = creds["SessionToken"][:-4] + "AAAA"
    with pytest.raises(ClientError) as exc:
        session_for(server, creds).client("sts", endpoint_url=server.url).get_caller_identity()
    assert code(exc) == "InvalidClientTokenId"
    with pytest.raises(ClientError) as exc:
        session_for(server, creds).client("secretsmanager", endpoint_url=server.url).list_secrets()
    assert code(exc) == "UnrecognizedClientException"


def test_session_key_without_its_token_is_rejected(server: Server, role: dict[str, str]) -> None:
    creds = server.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="notok")["Credentials"]
    bare = boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                         region_name="us-east-1")
    with pytest.raises(ClientError) as exc:
        bare.client("sts", endpoint_url=server.url).get_caller_identity()
    assert code(exc) == "InvalidClientTokenId"


def test_token_of_another_session_is_rejected(server: Server, role: dict[str, str]) -> None:
    sts = server.client("sts")
    one = dict(sts.assume_role(RoleArn=role["Arn"], RoleSessionName="one")["Credentials"])
    two = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="two")["Credentials"]
    one["SessionToken"] = two["SessionToken"]
    with pytest.raises(ClientError) as exc:
        session_for(server, one).client("sts", endpoint_url=server.url).get_caller_identity()
    assert code(exc) == "InvalidClientTokenId"


def test_expired_session_is_expired_token(server: Server, role: dict[str, str]) -> None:
    creds = server.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="old")["Credentials"]
    # Age the session in the database: waiting out the 15-minute minimum is not an option.
    server.sql("UPDATE sts_session_credentials SET expiration = :expiration WHERE access_key_id = :key_id",
               expiration=time.time() - 1, key_id=creds["AccessKeyId"])
    time.sleep(5.5)  # the credential cache keeps an entry for 5 seconds
    session = session_for(server, creds)
    with pytest.raises(ClientError) as exc:
        session.client("secretsmanager", endpoint_url=server.url).list_secrets()
    assert code(exc) == "ExpiredTokenException"
    assert "expired" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        session.client("sts", endpoint_url=server.url).get_caller_identity()
    assert code(exc) == "ExpiredToken"


def test_deleting_the_role_ends_its_sessions(server: Server, admin: dict[str, str]) -> None:
    iam = server.client("iam")
    name = unique("shortlived")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust_policy(
        f"arn:aws:iam::{admin['Account']}:root"))["Role"]["Arn"]
    creds = server.client("sts").assume_role(RoleArn=arn, RoleSessionName="s1")["Credentials"]
    iam.delete_role(RoleName=name)
    time.sleep(5.5)
    with pytest.raises(ClientError) as exc:
        session_for(server, creds).client("sts", endpoint_url=server.url).get_caller_identity()
    assert code(exc) == "InvalidClientTokenId"


def test_no_secret_or_session_token_reaches_disk_or_log(server: Server, role: dict[str, str]) -> None:
    iam, sts = server.client("iam"), server.client("sts")
    user = unique("leak")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    issued = [key["SecretAccessKey"]]
    for i in range(3):
        creds = sts.assume_role(RoleArn=role["Arn"], RoleSessionName=f"leak-{i}")["Credentials"]
        issued += [creds["SecretAccessKey"], creds["SessionToken"]]
        session_for(server, creds).client("sts", endpoint_url=server.url).get_caller_identity()
    boto3.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                  region_name="us-east-1").client("sts", endpoint_url=server.url).get_caller_identity()
    admin_secret = server.session().get_credentials().secret_key
    issued.append(admin_secret)
    files = [p for p in server.data_dir.rglob("*") if p.is_file()] + server.database_files() + [server.log_path]
    assert server.database_files()
    for path in files:
        data = path.read_bytes()
        for value in issued:
            assert value.encode() not in data, f"{path.name} holds an issued secret"


def test_presigned_get_caller_identity_url(server: Server, admin: dict[str, str]) -> None:
    """The GET form, as Vault's AWS auth and EKS tokens use it."""
    url = server.client("sts").generate_presigned_url("get_caller_identity", ExpiresIn=60, HttpMethod="GET")
    assert "Action=GetCallerIdentity" in url and "X-Amz-Signature=" in url
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = resp.read().decode()
    assert f"<Arn>{admin['Arn']}</Arn>" in body and "<GetCallerIdentityResult>" in body


@pytest.mark.parametrize(("headers", "expected"), [
    ({}, ("MissingAuthenticationToken", 403)),
    ({"Authorization": "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20240101/us-east-1/sts/aws4_request"},
     ("IncompleteSignature", 400)),
])
def test_unsigned_or_incomplete_query_requests(server: Server, headers: dict[str, str],
                                               expected: tuple[str, int]) -> None:
    req = urllib.request.Request(server.url + "/", data=b"Action=GetCallerIdentity&Version=2011-06-15",
                                 headers={"Content-Type": "application/x-www-form-urlencoded", **headers})
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=10)
    body = exc.value.read().decode()
    assert exc.value.code == expected[1]
    assert f"<Code>{expected[0]}</Code>" in body and body.startswith("<ErrorResponse")
