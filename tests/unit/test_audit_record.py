"""The CloudTrail record of one call: fields, identities, resources, responseElements."""

from __future__ import annotations

import datetime as dt
import json

from strongroom.audit.record import Call, build
from strongroom.audit.redact import HIDDEN
from strongroom.context import Principal

ACCOUNT = "123456789012"
USER = Principal(account_id=ACCOUNT, arn=f"arn:aws:iam::{ACCOUNT}:user/alice", principal_id="AIDAALICE",
                 access_key_id="AKIAALICE", type="IAMUser", name="alice")
ROLE = Principal(account_id=ACCOUNT, arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/app/s1",
                 principal_id="AROAAPP:s1", access_key_id="ASIAAPP", type="AssumedRole", name="s1",
                 role_name="app", role_arn=f"arn:aws:iam::{ACCOUNT}:role/app", session_name="s1",
                 session_created=1_700_000_000.0)
SECRET_ARN = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:db/pw-AbCdEf"
WHEN = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.timezone.utc)


def call(**kw: object) -> Call:
    base: dict[str, object] = dict(service="secretsmanager", operation="GetSecretValue", region="us-east-1",
                                   request_id="req-1", time=WHEN, source_ip="10.0.0.1", user_agent="aws-cli/2",
                                   principal=USER, model_name="secretsmanager")
    base.update(kw)
    return Call(**base)  # type: ignore[arg-type]


def test_a_successful_read_has_every_cloudtrail_field_and_no_value():
    ev = build(call(params={"SecretId": "db/pw"},
                    result={"ARN": SECRET_ARN, "Name": "db/pw", "SecretString": "the-value", "VersionId": "v1"}))
    r = ev.record
    assert r["eventVersion"] == "1.11"
    assert r["eventTime"] == "2024-05-01T12:00:00Z"
    assert r["eventSource"] == "secretsmanager.amazonaws.com"
    assert r["eventName"] == "GetSecretValue"
    assert r["awsRegion"] == "us-east-1" and r["sourceIPAddress"] == "10.0.0.1" and r["userAgent"] == "aws-cli/2"
    assert r["userIdentity"] == {"type": "IAMUser", "principalId": "AIDAALICE", "arn": USER.arn,
                                 "accountId": ACCOUNT, "accessKeyId": "AKIAALICE", "userName": "alice"}
    assert r["requestParameters"] == {"secretId": "db/pw"}
    assert r["responseElements"] is None  # as AWS logs GetSecretValue
    assert r["requestID"] == "req-1" and r["eventID"] == ev.event_id
    assert r["readOnly"] is True
    assert r["resources"] == [{"ARN": SECRET_ARN, "accountId": ACCOUNT, "type": "AWS::SecretsManager::Secret"}]
    assert r["eventType"] == "AwsApiCall" and r["managementEvent"] is True
    assert r["recipientAccountId"] == ACCOUNT and r["eventCategory"] == "Management"
    assert "errorCode" not in r
    assert "the-value" not in json.dumps(r)
    assert ev.resource_names == [SECRET_ARN, "db/pw"]


def test_a_write_records_its_redacted_response():
    ev = build(call(operation="PutSecretValue", params={"SecretId": SECRET_ARN, "SecretString": "new-value"},
                    result={"ARN": SECRET_ARN, "Name": "db/pw", "VersionId": "v2", "VersionStages": ["AWSCURRENT"]}))
    assert ev.record["readOnly"] is False
    assert ev.record["requestParameters"] == {"secretId": SECRET_ARN, "secretString": HIDDEN}
    assert ev.record["responseElements"] == {"arn": SECRET_ARN, "name": "db/pw", "versionId": "v2",
                                             "versionStages": ["AWSCURRENT"]}


def test_a_denied_call_names_the_resource_from_the_refusal():
    message = (f"User: {USER.arn} is not authorized to perform: secretsmanager:GetSecretValue on resource: "
               f"{SECRET_ARN} because no identity-based policy allows the secretsmanager:GetSecretValue action")
    ev = build(call(params={"SecretId": "db/pw"}, error_code="AccessDeniedException", error_message=message))
    assert ev.record["errorCode"] == "AccessDeniedException"
    assert ev.record["errorMessage"] == message
    assert ev.record["responseElements"] is None
    assert ev.record["resources"][0]["ARN"] == SECRET_ARN


def test_an_unauthenticated_call_has_an_unknown_identity_with_the_key_it_claimed():
    ev = build(call(principal=None, access_key_id="AKIAUNKNOWN", error_code="UnrecognizedClientException",
                    error_message="The security token included in the request is invalid.", params=None))
    ident = ev.record["userIdentity"]
    assert ident["type"] == "Unknown" and ident["accessKeyId"] == "AKIAUNKNOWN"
    assert ev.record["requestParameters"] is None
    assert ev.principal_arn is None and ev.access_key_id == "AKIAUNKNOWN"
    assert ev.record["recipientAccountId"] is None


def test_an_assumed_role_carries_its_session_context():
    ident = build(call(principal=ROLE, params={"SecretId": "x"})).record["userIdentity"]
    assert ident["type"] == "AssumedRole" and ident["arn"] == ROLE.arn and ident["principalId"] == "AROAAPP:s1"
    assert ident["sessionContext"] == {
        "sessionIssuer": {"type": "Role", "principalId": "AROAAPP", "arn": ROLE.role_arn, "accountId": ACCOUNT,
                          "userName": "app"},
        "attributes": {"creationDate": "2023-11-14T22:13:20Z", "mfaAuthenticated": "false"},
    }


def test_validation_errors_never_echo_a_secret_value():
    ev = build(call(operation="CreateSecret", params={"Name": "x", "SecretString": "oops-secret"},
                    error_code="ValidationException", error_message="bad value 'oops-secret'"))
    assert "oops-secret" not in json.dumps(ev.record)


def test_event_sources_for_each_service():
    for service, source in (("kms", "kms.amazonaws.com"), ("iam", "iam.amazonaws.com"),
                            ("sts", "sts.amazonaws.com"), ("cloudtrail", "cloudtrail.amazonaws.com")):
        assert build(call(service=service, model_name=None)).record["eventSource"] == source


def test_kms_crypto_calls_hide_plaintext_and_log_no_response():
    ev = build(call(service="kms", model_name="kms", operation="Encrypt",
                    params={"KeyId": "alias/app", "Plaintext": b"plain"},
                    result={"CiphertextBlob": b"c", "KeyId": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k1"}))
    assert ev.record["requestParameters"] == {"keyId": "alias/app", "plaintext": HIDDEN}
    assert ev.record["responseElements"] is None and ev.record["readOnly"] is True
    assert ev.record["resources"][0]["type"] == "AWS::KMS::Key"
