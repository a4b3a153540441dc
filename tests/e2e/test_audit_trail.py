"""The audit trail over the API: one CloudTrail record per call, for every Secrets Manager
operation and a sample of KMS, IAM and STS ones, allowed, denied or failed; LookupEvents;
and no secret value or credential anywhere in what the trail exposes."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid
from typing import Any

import boto3
import pytest
from botocore.credentials import Credentials

from strongroom.services.secretsmanager.service import OPERATIONS
from tests.conftest import Server
from tests.e2e.audit_support import NO_RETRY, audit_text, invoke, records, the_record
from tests.e2e.support import call, credentials, send, signed_request

ROTATION_LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:strongroom-builtin-postgresql-single-user"  # managed rotation: RotateSecret needs no function permission
READS = {"GetSecretValue", "BatchGetSecretValue", "DescribeSecret", "ListSecrets", "ListSecretVersionIds",
         "GetResourcePolicy", "ListResourcePolicies", "ValidateResourcePolicy", "GetRandomPassword"}
NO_ARN_IN_RESPONSE = {"TagResource", "UntagResource", "ListResourcePolicies"}
# Everything secret this module sends or receives: none of it may appear in the trail.
SECRETS: list[str] = []


def secret(label: str) -> str:
    value = f"{label}-{uuid.uuid4().hex}"
    SECRETS.append(value)
    return value


def check_common(server: Server, r: dict[str, Any], op: str, source: str) -> None:
    assert r["eventVersion"] == "1.11"
    assert r["eventName"] == op and r["eventSource"] == source
    assert r["eventType"] == "AwsApiCall" and r["managementEvent"] is True and r["eventCategory"] == "Management"
    assert r["awsRegion"] == "us-east-1" and r["sourceIPAddress"] == "127.0.0.1"
    assert "Botocore" in r["userAgent"] or "botocore" in r["userAgent"].lower()
    assert r["eventTime"].endswith("Z") and len(r["eventID"]) == 36


@pytest.fixture(scope="module")
def admin_arn(server: Server) -> str:
    return str(server.client("sts").get_caller_identity()["Arn"])


def test_every_secrets_manager_operation_emits_exactly_one_record(server: Server, admin_arn: str):
    sm = server.client(config=NO_RETRY)
    name = f"audit/{uuid.uuid4().hex[:10]}"
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": admin_arn}, "Action": "secretsmanager:GetSecretValue",
        "Resource": "*"}]})
    steps: list[tuple[str, dict[str, Any]]] = [
        ("CreateSecret", {"Name": name, "SecretString": secret("create"), "Tags": [{"Key": "team", "Value": "a"}]}),
        ("GetSecretValue", {"SecretId": name}),
        ("PutSecretValue", {"SecretId": name, "SecretBinary": secret("binary").encode()}),
        ("UpdateSecret", {"SecretId": name, "SecretString": secret("update"), "Description": "audited"}),
        ("DescribeSecret", {"SecretId": name}),
        ("ListSecretVersionIds", {"SecretId": name}),
        ("UpdateSecretVersionStage", {"SecretId": name, "VersionStage": "STAGE1", "MoveToVersionId": "{version}"}),
        ("BatchGetSecretValue", {"SecretIdList": [name]}),
        ("ListSecrets", {"Filters": [{"Key": "name", "Values": [name]}]}),
        ("GetRandomPassword", {"PasswordLength": 40}),
        ("TagResource", {"SecretId": name, "Tags": [{"Key": "env", "Value": "test"}]}),
        ("UntagResource", {"SecretId": name, "TagKeys": ["team"]}),
        ("PutResourcePolicy", {"SecretId": name, "ResourcePolicy": policy}),
        ("GetResourcePolicy", {"SecretId": name}),
        ("ListResourcePolicies", {"SecretId": name}),
        ("ValidateResourcePolicy", {"ResourcePolicy": policy}),
        ("DeleteResourcePolicy", {"SecretId": name}),
        ("RotateSecret", {"SecretId": name, "RotationLambdaARN": ROTATION_LAMBDA, "RotateImmediately": False}),
        ("CancelRotateSecret", {"SecretId": name}),
        ("ReplicateSecretToRegions", {"SecretId": name, "AddReplicaRegions": [{"Region": "eu-west-1"}]}),
        ("RemoveRegionsFromReplication", {"SecretId": name, "RemoveReplicaRegions": ["eu-west-1"]}),
        ("StopReplicationToReplica", {"SecretId": name}),
        ("AssociateCrossAccountReplica", {"SecretId": name, "CrossAccountReplicaARN":
                                          "arn:aws:secretsmanager:us-east-1:210987654321:secret:x-AbCdEf"}),
        ("DisassociateCrossAccountReplica", {"SecretId": name, "CrossAccountReplicaARN":
                                             "arn:aws:secretsmanager:us-east-1:210987654321:secret:x-AbCdEf"}),
        ("DeleteSecret", {"SecretId": name, "RecoveryWindowInDays": 7}),
        ("RestoreSecret", {"SecretId": name}),
    ]
    assert {op for op, _ in steps} == set(OPERATIONS), "a Secrets Manager operation is missing from this test"
    arn, version = "", ""
    for op, params in steps:
        if params.get("MoveToVersionId") == "{version}":
            params = {**params, "MoveToVersionId": version}
        request_id, resp, error = invoke(sm, op, **params)
        r = the_record(server, request_id)  # durable before the response arrived
        check_common(server, r, op, "secretsmanager.amazonaws.com")
        assert r["requestID"] == request_id
        assert r["userIdentity"]["arn"] == admin_arn and r["userIdentity"]["type"] == "IAMUser"
        assert r["readOnly"] is (op in READS), op
        assert r.get("errorCode") == error, op
        if error:
            assert r["errorMessage"] and r["responseElements"] is None
        if op == "CreateSecret":
            arn = resp["ARN"]  # type: ignore[index]
            assert r["requestParameters"]["secretString"] == "HIDDEN_DUE_TO_SECURITY_REASONS"
            assert r["responseElements"]["arn"] == arn
        if op == "PutSecretValue":
            version = resp["VersionId"]  # type: ignore[index]
            assert r["requestParameters"]["secretBinary"] == "HIDDEN_DUE_TO_SECURITY_REASONS"
        if op in ("GetSecretValue", "BatchGetSecretValue", "GetRandomPassword"):
            assert r["responseElements"] is None
        if op == "GetRandomPassword":
            SECRETS.append(resp["RandomPassword"])  # type: ignore[index]
        elif error is None and op in NO_ARN_IN_RESPONSE:
            # Addressed by name, and answered without an ARN: the trail names the secret as asked.
            assert r["requestParameters"]["secretId"] == name and "resources" not in r
        elif error is None and op not in ("ListSecrets", "ValidateResourcePolicy"):
            assert {"ARN": arn, "accountId": arn.split(":")[4], "type": "AWS::SecretsManager::Secret"} \
                in r["resources"], op
    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)


def test_denied_calls_are_recorded_with_the_caller_and_the_secret(server: Server):
    sm = server.client(config=NO_RETRY)
    iam = server.client("iam")
    arn = sm.create_secret(Name=f"audit/{uuid.uuid4().hex[:10]}", SecretString=secret("denied"))["ARN"]
    user = f"nobody-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    SECRETS.append(key["SecretAccessKey"])
    bare = boto3.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                         region_name="us-east-1").client("secretsmanager", endpoint_url=server.url, config=NO_RETRY)
    request_id, _, error = invoke(bare, "GetSecretValue", SecretId=arn)
    assert error == "AccessDeniedException"
    r = the_record(server, request_id)
    check_common(server, r, "GetSecretValue", "secretsmanager.amazonaws.com")
    assert r["errorCode"] == "AccessDeniedException" and "is not authorized" in r["errorMessage"]
    assert r["userIdentity"]["userName"] == user and r["userIdentity"]["accessKeyId"] == key["AccessKeyId"]
    assert r["resources"][0]["ARN"] == arn and r["requestParameters"] == {"secretId": arn}
    request_id, _, error = invoke(bare, "PutSecretValue", SecretId=arn, SecretString=secret("denied-put"))
    assert error == "AccessDeniedException"
    assert the_record(server, request_id)["requestParameters"]["secretString"] == "HIDDEN_DUE_TO_SECURITY_REASONS"


def test_authentication_failures_and_malformed_requests_are_recorded(server: Server):
    creds = credentials(server)
    forged = Credentials("AKIAFORGEDFORGED0000", "not-the-secret-key-at-all-000000000000000")
    cases = [
        (signed_request(server, "secretsmanager.ListSecrets", b"{}", creds=forged), "UnrecognizedClientException"),
        (signed_request(server, "secretsmanager.ListSecrets", b"{}",
                        creds=Credentials(creds.access_key, "wrong" + creds.secret_key[5:])),
         "InvalidSignatureException"),
        (signed_request(server, "secretsmanager.GetSecretValue", b'{"SecretId": '), "SerializationException"),
        (signed_request(server, "secretsmanager.GetRandomPassword", b'{"PasswordLength": 0}'),
         "ValidationException"),
        (signed_request(server, "secretsmanager.NoSuchOperation", b"{}"), "UnknownOperationException"),
    ]
    for req, expected in cases:
        reply = send(server, req)
        assert reply.error == expected
        r = the_record(server, reply.headers["x-amzn-requestid"])
        assert r["errorCode"] == expected
        assert r["eventSource"] == "secretsmanager.amazonaws.com"
        if expected in ("UnrecognizedClientException", "InvalidSignatureException"):
            assert r["userIdentity"]["type"] == "Unknown"
            assert r["userIdentity"]["accessKeyId"] in (forged.access_key, creds.access_key)
            assert r["requestParameters"] is None
        else:
            assert r["userIdentity"]["type"] == "IAMUser"
    # Unsigned: no key at all.
    reply = send(server, body=b"{}", headers={"X-Amz-Target": "secretsmanager.ListSecrets",
                                              "Content-Type": "application/x-amz-json-1.1"})
    assert the_record(server, reply.headers["x-amzn-requestid"])["userIdentity"] == {
        "type": "Unknown", "principalId": "", "accountId": ""}


def test_kms_iam_and_sts_calls_are_recorded(server: Server, admin_arn: str):
    kms = server.client("kms", config=NO_RETRY)
    request_id, resp, _ = invoke(kms, "CreateKey", Description="audit")
    key_arn = resp["KeyMetadata"]["Arn"]  # type: ignore[index]
    r = the_record(server, request_id)
    check_common(server, r, "CreateKey", "kms.amazonaws.com")
    assert r["responseElements"]["keyMetadata"]["arn"] == key_arn and r["readOnly"] is False
    plaintext = secret("kms-plain").encode()
    request_id, resp, _ = invoke(kms, "Encrypt", KeyId=key_arn, Plaintext=plaintext)
    r = the_record(server, request_id)
    assert r["requestParameters"]["plaintext"] == "HIDDEN_DUE_TO_SECURITY_REASONS"
    assert r["responseElements"] is None and r["readOnly"] is True
    assert r["resources"] == [{"ARN": key_arn, "accountId": key_arn.split(":")[4], "type": "AWS::KMS::Key"}]
    SECRETS.append(base64.b64encode(plaintext).decode())
    request_id, resp, _ = invoke(kms, "GenerateDataKey", KeyId=key_arn, KeySpec="AES_256")
    SECRETS.append(base64.b64encode(resp["Plaintext"]).decode())  # type: ignore[index]
    assert the_record(server, request_id)["responseElements"] is None
    request_id, _, error = invoke(kms, "DescribeKey", KeyId="alias/does-not-exist")
    assert error == "NotFoundException" and the_record(server, request_id)["errorCode"] == "NotFoundException"

    iam = server.client("iam", config=NO_RETRY)
    user = f"audited-{uuid.uuid4().hex[:8]}"
    request_id, _, _ = invoke(iam, "CreateUser", UserName=user)
    r = the_record(server, request_id)
    check_common(server, r, "CreateUser", "iam.amazonaws.com")
    assert r["requestParameters"] == {"userName": user}
    request_id, resp, _ = invoke(iam, "CreateAccessKey", UserName=user)
    SECRETS.append(resp["AccessKey"]["SecretAccessKey"])  # type: ignore[index]
    assert the_record(server, request_id)["responseElements"]["accessKey"]["secretAccessKey"] == \
        "HIDDEN_DUE_TO_SECURITY_REASONS"
    request_id, _, error = invoke(iam, "GetUser", UserName="no-such-user-here")
    assert error == "NoSuchEntity" and the_record(server, request_id)["errorCode"] == "NoSuchEntity"

    sts = server.client("sts", config=NO_RETRY)
    account = admin_arn.split(":")[4]
    role = f"audit-role-{uuid.uuid4().hex[:8]}"
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": admin_arn},
                                                                "Action": "sts:AssumeRole"}]})
    role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    request_id, resp, _ = invoke(sts, "AssumeRole", RoleArn=role_arn, RoleSessionName="audited")
    r = the_record(server, request_id)
    check_common(server, r, "AssumeRole", "sts.amazonaws.com")
    assert r["requestParameters"] == {"roleArn": role_arn, "roleSessionName": "audited"}
    assert r["resources"][0] == {"ARN": role_arn, "accountId": account, "type": "AWS::IAM::Role"}
    c = resp["Credentials"]  # type: ignore[index]
    SECRETS.extend([c["SecretAccessKey"], c["SessionToken"]])
    as_role = boto3.Session(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                            aws_session_token=c["SessionToken"], region_name="us-east-1")
    request_id, _, _ = invoke(as_role.client("sts", endpoint_url=server.url), "GetCallerIdentity")
    ident = the_record(server, request_id)["userIdentity"]
    assert ident["type"] == "AssumedRole" and ident["accessKeyId"] == c["AccessKeyId"]
    assert ident["arn"] == f"arn:aws:sts::{account}:assumed-role/{role}/audited"
    assert ident["sessionContext"]["sessionIssuer"] == {"type": "Role", "principalId": ident["principalId"].split(
        ":")[0], "arn": role_arn, "accountId": account, "userName": role}
    assert ident["sessionContext"]["attributes"]["mfaAuthenticated"] == "false"
    assert ident["sessionContext"]["attributes"]["creationDate"].endswith("Z")


def test_lookup_events_serves_the_trail_as_cloudtrail_does(server: Server):
    sm = server.client(config=NO_RETRY)
    name = f"audit/lookup-{uuid.uuid4().hex[:8]}"
    arn = sm.create_secret(Name=name, SecretString=secret("lookup"))["ARN"]
    for _ in range(3):
        sm.get_secret_value(SecretId=name)
    ct = server.client("cloudtrail")
    found = ct.lookup_events(LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": arn}])["Events"]
    assert [e["EventName"] for e in found] == ["GetSecretValue"] * 3 + ["CreateSecret"]  # newest first
    e = found[0]
    assert e["EventSource"] == "secretsmanager.amazonaws.com" and e["ReadOnly"] == "true"
    assert e["Username"] == "admin" and e["AccessKeyId"].startswith("AKIA")
    assert e["Resources"] == [{"ResourceType": "AWS::SecretsManager::Secret", "ResourceName": arn}]
    detail = json.loads(e["CloudTrailEvent"])
    assert detail["eventID"] == e["EventId"] and detail["responseElements"] is None
    # By name, paged two at a time.
    pages = list(ct.get_paginator("lookup_events").paginate(
        LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": name}],
        PaginationConfig={"PageSize": 2}))
    assert [len(p["Events"]) for p in pages] == [2, 2]
    by_id = ct.lookup_events(LookupAttributes=[{"AttributeKey": "EventId", "AttributeValue": e["EventId"]}])
    assert [x["EventId"] for x in by_id["Events"]] == [e["EventId"]]
    writes = ct.lookup_events(LookupAttributes=[{"AttributeKey": "ReadOnly", "AttributeValue": "false"}],
                              MaxResults=50)["Events"]
    assert writes and all(x["ReadOnly"] == "false" for x in writes)
    with pytest.raises(Exception) as exc:
        ct.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "A"},
                                           {"AttributeKey": "EventName", "AttributeValue": "B"}])
    assert "InvalidLookupAttributesException" in str(exc.value)


def test_lookup_events_is_authorized_by_policy(server: Server):
    iam = server.client("iam")
    user = f"no-trail-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    SECRETS.append(key["SecretAccessKey"])
    ct = boto3.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                       region_name="us-east-1").client("cloudtrail", endpoint_url=server.url, config=NO_RETRY)
    request_id, _, error = invoke(ct, "LookupEvents")
    assert error == "AccessDeniedException"
    assert the_record(server, request_id)["eventSource"] == "cloudtrail.amazonaws.com"
    iam.put_user_policy(UserName=user, PolicyName="trail", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "cloudtrail:LookupEvents",
                                                 "Resource": "*"}]}))
    import time

    deadline = time.monotonic() + 10  # policy caches refresh within their TTL
    while invoke(ct, "LookupEvents", MaxResults=1)[2] is not None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert invoke(ct, "LookupEvents", MaxResults=1)[2] is None


def test_aws_cli_lookup_events(server: Server):
    out = subprocess.run(
        [sys.executable, "-m", "awscli", "cloudtrail", "lookup-events", "--endpoint-url", server.url,
         "--profile", server.profile, "--max-items", "3", "--lookup-attributes",
         "AttributeKey=EventSource,AttributeValue=secretsmanager.amazonaws.com"],
        env=server.env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    events = json.loads(out.stdout)["Events"]
    assert len(events) == 3 and all(e["EventSource"] == "secretsmanager.amazonaws.com" for e in events)


def test_nothing_secret_reaches_the_trail_the_lookup_or_the_log(server: Server):
    """Runs last in this module: every value and credential used above is searched for."""
    admin = credentials(server)
    needles = [*SECRETS, admin.secret_key]
    assert len(needles) > 10
    ct = server.client("cloudtrail")
    looked_up = json.dumps([e for page in ct.get_paginator("lookup_events").paginate() for e in page["Events"]],
                           default=str)
    haystacks = {"audit table": audit_text(server), "LookupEvents": looked_up, "server log": server.log_text()}
    for where, text in haystacks.items():
        for needle in needles:
            assert needle not in text, f"a secret value or credential appears in the {where}"
    # And the binary value, in any encoding a record could carry.
    for value in SECRETS:
        assert base64.b64encode(value.encode()).decode() not in haystacks["audit table"]


def test_the_record_is_durable_before_the_response(server: Server):
    sm = server.client(config=NO_RETRY)
    for _ in range(5):
        request_id, _, _ = invoke(sm, "ListSecrets", MaxResults=1)
        assert len(records(server, request_id)) == 1
    reply = call(server, "secretsmanager.ListSecrets", {})
    assert len(records(server, reply.headers["x-amzn-requestid"])) == 1
