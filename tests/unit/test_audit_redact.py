"""What reaches an audit record: redaction by the model's sensitive trait and by member name."""

from __future__ import annotations

import datetime as dt

from strongroom.audit.redact import HIDDEN, Redactor, camel, operation_model, request_parameters, \
    response_elements


def test_member_names_become_lower_camel_case_as_cloudtrail_writes_them():
    assert camel("SecretId") == "secretId"
    assert camel("ARN") == "arn"
    assert camel("KmsKeyId") == "kmsKeyId"
    assert camel("RotationLambdaARN") == "rotationLambdaARN"


def test_sensitive_shapes_are_hidden_and_the_rest_kept():
    op = operation_model("secretsmanager", "CreateSecret")
    out = request_parameters(Redactor(), op, {
        "Name": "db/password", "SecretString": "s3cr3t-value", "Description": "the db",
        "Tags": [{"Key": "team", "Value": "payments"}], "ForceOverwriteReplicaSecret": False,
    })
    assert out == {"name": "db/password", "secretString": HIDDEN, "description": "the db",
                   "tags": [{"key": "team", "value": "payments"}], "forceOverwriteReplicaSecret": False}


def test_blobs_are_hidden_whatever_their_name():
    op = operation_model("secretsmanager", "PutSecretValue")
    out = request_parameters(Redactor(), op, {"SecretId": "x", "SecretBinary": b"\x00\x01binary"})
    assert out["secretBinary"] == HIDDEN
    kms = operation_model("kms", "Decrypt")
    out = request_parameters(Redactor(), kms, {"CiphertextBlob": b"cipher", "EncryptionContext": {"a": "b"}})
    assert out == {"ciphertextBlob": HIDDEN, "encryptionContext": {"a": "b"}}


def test_the_deny_list_catches_what_the_model_does_not_mark():
    # STS's SessionToken carries no sensitive trait; the deny-list hides it, nested in Credentials.
    op = operation_model("sts", "AssumeRole")
    result = {"Credentials": {"AccessKeyId": "ASIAEXAMPLE", "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG",
                              "SessionToken": "FQoGZXIvYXdzEXAMPLETOKEN",
                              "Expiration": dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)},
              "AssumedRoleUser": {"Arn": "arn:aws:sts::123456789012:assumed-role/r/s", "AssumedRoleId": "AROA:s"}}
    out = response_elements(Redactor(), op, result)
    assert out["credentials"] == {"accessKeyId": "ASIAEXAMPLE", "secretAccessKey": HIDDEN, "sessionToken": HIDDEN,
                                  "expiration": "2030-01-01T00:00:00Z"}
    assert out["assumedRoleUser"]["arn"].endswith("assumed-role/r/s")


def test_without_a_model_the_deny_list_still_applies_recursively():
    out = Redactor().walk(None, {"outer": [{"password": "pw-123456", "safe": 1, "inner": {"SecretString": "v"}}]})
    assert out == {"outer": [{"password": HIDDEN, "safe": 1, "inner": {"SecretString": HIDDEN}}]}


def test_iam_create_access_key_secret_is_hidden_by_its_sensitive_trait():
    op = operation_model("iam", "CreateAccessKey")
    out = response_elements(Redactor(), op, {"AccessKey": {"UserName": "u", "AccessKeyId": "AKIA1",
                                                           "Status": "Active", "SecretAccessKey": "abcd/efgh"}})
    assert out["accessKey"]["secretAccessKey"] == HIDDEN
    assert out["accessKey"]["accessKeyId"] == "AKIA1"


def test_error_messages_are_scrubbed_of_hidden_values():
    r = Redactor()
    request_parameters(r, operation_model("secretsmanager", "PutSecretValue"),
                       {"SecretId": "x", "SecretString": "leaky-value-42"})
    assert r.scrub("Value 'leaky-value-42' is not valid") == f"Value '{HIDDEN}' is not valid"
    assert r.scrub(None) is None
