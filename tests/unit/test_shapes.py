"""Request checking against botocore's model: type errors, constraint violations, conversions."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from botocore.model import ServiceModel

from strongroom.errors import SerializationException, ValidationException
from strongroom.http.shapes import parse_input, service_model, to_wire


def sm_op(name: str):  # type: ignore[no-untyped-def]
    return service_model("secretsmanager").operation_model(name)


# A tiny model with the shapes Secrets Manager's inputs lack (timestamps, doubles, maps).
_TOY = ServiceModel({
    "metadata": {"protocol": "json", "apiVersion": "2020-01-01", "endpointPrefix": "toy",
                 "jsonVersion": "1.1", "targetPrefix": "Toy", "serviceId": "Toy", "signatureVersion": "v4"},
    "operations": {"Go": {"name": "Go", "http": {"method": "POST", "requestUri": "/"},
                          "input": {"shape": "GoRequest"}}},
    "shapes": {
        "GoRequest": {"type": "structure", "members": {
            "When": {"shape": "Time"}, "Ratio": {"shape": "Ratio"}, "Labels": {"shape": "Labels"},
            "Big": {"shape": "Big"}}},
        "Time": {"type": "timestamp"},
        "Ratio": {"type": "double"},
        "Big": {"type": "long"},
        "Labels": {"type": "map", "key": {"shape": "Str"}, "value": {"shape": "Short"}},
        "Str": {"type": "string"},
        "Short": {"type": "string", "max": 3},
    },
})
TOY = _TOY.operation_model("Go")


@pytest.mark.parametrize(
    ("op", "body", "message"),
    [
        ("ListSecrets", {"MaxResults": "5"}, "STRING_VALUE can not be converted to an Integer"),
        ("ListSecrets", {"MaxResults": True}, "Boolean value can not be converted to an Integer"),
        ("ListSecrets", {"MaxResults": 5.5}, "NUMBER_VALUE can not be converted to an Integer"),
        ("ListSecrets", {"MaxResults": 2**31}, "can not be converted to an Integer"),
        ("ListSecrets", {"MaxResults": float("nan")}, "can not be converted to an Integer"),
        ("ListSecrets", {"MaxResults": float("inf")}, "can not be converted to an Integer"),
        ("DeleteSecret", {"SecretId": "x", "RecoveryWindowInDays": 2**63}, "can not be converted to a Long"),
        ("DeleteSecret", {"SecretId": "x", "ForceDeleteWithoutRecovery": "true"},
         "STRING_VALUE can not be converted to a Boolean"),
        ("DeleteSecret", {"SecretId": "x", "ForceDeleteWithoutRecovery": 1},
         "NUMBER_VALUE can not be converted to a Boolean"),
        ("GetSecretValue", {"SecretId": 123}, "NUMBER_VALUE can not be converted to String"),
        ("GetSecretValue", {"SecretId": ["a"]}, "Start of list found where not expected."),
        ("GetSecretValue", {"SecretId": {"a": 1}}, "Start of structure or map found where not expected."),
        ("ListSecrets", {"Filters": {"Key": "name"}}, "Start of structure or map found where not expected."),
        ("ListSecrets", {"Filters": ["name"]}, "STRING_VALUE can not be converted to a structure"),
        ("TagResource", {"SecretId": "x", "Tags": "a=b"}, "STRING_VALUE can not be converted to a list"),
        ("CreateSecret", {"Name": "x", "SecretBinary": "not base64!"}, "Base64 encoded value could not be decoded."),
        ("CreateSecret", {"Name": "x", "SecretBinary": 5}, "NUMBER_VALUE can not be converted to a Blob"),
    ],
)
def test_type_mismatches_are_serialization_exceptions(op, body, message):
    with pytest.raises(SerializationException) as exc:
        parse_input(sm_op(op), body)
    assert exc.value.message == message or message in exc.value.message
    assert exc.value.code == "SerializationException" and exc.value.status == 400


@pytest.mark.parametrize("body", [[], "text", 5, None])
def test_a_body_that_is_not_an_object_is_a_serialization_exception(body):
    with pytest.raises(SerializationException):
        parse_input(sm_op("ListSecrets"), body)


@pytest.mark.parametrize(
    ("op", "body", "message"),
    [
        ("GetSecretValue", {}, "1 validation error detected: Value null at 'secretId' failed to satisfy "
                               "constraint: Member must not be null"),
        ("GetSecretValue", {"SecretId": ""}, "1 validation error detected: Value '' at 'secretId' failed to "
                                             "satisfy constraint: Member must have length greater than or equal to 1"),
        ("CreateSecret", {"Name": "n" * 513}, "Member must have length less than or equal to 512"),
        ("ListSecrets", {"MaxResults": 0}, "1 validation error detected: Value '0' at 'maxResults' failed to "
                                           "satisfy constraint: Member must have value greater than or equal to 1"),
        ("ListSecrets", {"MaxResults": 101}, "Member must have value less than or equal to 100"),
        ("ListSecrets", {"SortOrder": "up"}, "Value 'up' at 'sortOrder' failed to satisfy constraint: "
                                             "Member must satisfy enum value set: [asc, desc]"),
        ("ListSecrets", {"Filters": [{"Key": "name", "Values": ["a*b"]}]},
         "Value 'a*b' at 'filters.1.member.values.1.member' failed to satisfy constraint: Member must satisfy "
         "regular expression pattern"),
        ("ListSecrets", {"Filters": [{"Key": "nope", "Values": ["a"]}]},
         "at 'filters.1.member.key' failed to satisfy constraint: Member must satisfy enum value set"),
        ("TagResource", {"SecretId": "x", "Tags": [{"Key": "", "Value": "v"}]},
         "Value '' at 'tags.1.member.key' failed to satisfy constraint: Member must have length greater than "
         "or equal to 1"),
        ("GetRandomPassword", {"PasswordLength": 4097}, "Member must have value less than or equal to 4096"),
        ("PutSecretValue", {"SecretId": "x", "SecretString": "v", "VersionStages": []},
         "at 'versionStages' failed to satisfy constraint: Member must have length greater than or equal to 1"),
    ],
)
def test_constraint_violations_are_validation_exceptions(op, body, message):
    with pytest.raises(ValidationException) as exc:
        parse_input(sm_op(op), body)
    assert message in exc.value.message
    assert exc.value.code == "ValidationException" and exc.value.status == 400


def test_every_violation_is_reported_at_once():
    with pytest.raises(ValidationException) as exc:
        parse_input(sm_op("ListSecrets"), {"MaxResults": 0, "SortOrder": "up", "SortBy": "size"})
    assert exc.value.message.startswith("3 validation errors detected: ")
    assert exc.value.message.count("failed to satisfy constraint") == 3
    assert exc.value.message.count("; ") == 2


def test_sensitive_values_never_appear_in_messages():
    secret = "hunter2-" + "x" * 65536
    with pytest.raises(ValidationException) as exc:
        parse_input(sm_op("CreateSecret"), {"Name": "n", "SecretString": secret})
    assert "hunter2" not in exc.value.message
    assert "at 'secretString'" in exc.value.message
    blob = base64.b64encode(b"hunter2" + bytes(65536)).decode()
    with pytest.raises(ValidationException) as exc:
        parse_input(sm_op("CreateSecret"), {"Name": "n", "SecretBinary": blob})
    assert "hunter2" not in exc.value.message and blob[:20] not in exc.value.message
    with pytest.raises(ValidationException) as exc:
        parse_input(sm_op("PutSecretValue"), {"SecretId": "n", "SecretString": "v", "RotationToken": "hunter2!" * 8})
    assert "hunter2" not in exc.value.message


def test_blobs_become_bytes_and_their_length_counts_decoded_bytes():
    out = parse_input(sm_op("CreateSecret"), {"Name": "n", "SecretBinary": base64.b64encode(b"\x00\xff").decode()})
    assert out["SecretBinary"] == b"\x00\xff"
    with pytest.raises(ValidationException) as exc:
        parse_input(sm_op("CreateSecret"), {"Name": "n", "SecretBinary": ""})
    assert "Member must have length greater than or equal to 1" in exc.value.message


def test_unknown_members_and_nulls_are_dropped():
    out = parse_input(sm_op("GetSecretValue"), {"SecretId": "n", "Bogus": 1, "VersionStage": None})
    assert out == {"SecretId": "n"}


def test_integral_floats_are_integers():
    assert parse_input(sm_op("ListSecrets"), {"MaxResults": 7.0}) == {"MaxResults": 7}


def test_timestamps_doubles_and_maps():
    out = parse_input(TOY, {"When": 1700000000.5, "Ratio": 2, "Labels": {"a": "xyz"}, "Big": -(2**63)})
    assert out["When"] == dt.datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=dt.timezone.utc)
    assert out["Ratio"] == 2.0 and isinstance(out["Ratio"], float)
    assert out["Labels"] == {"a": "xyz"}
    assert out["Big"] == -(2**63)
    for bad in ({"When": "2023-11-14"}, {"When": 1e300}, {"When": float("nan")}, {"Ratio": float("inf")},
                {"Ratio": "1"}, {"Labels": ["a"]}):
        with pytest.raises(SerializationException):
            parse_input(TOY, bad)
    with pytest.raises(ValidationException) as exc:
        parse_input(TOY, {"Labels": {"a": "long"}})
    assert "at 'labels.a'" in exc.value.message


def test_to_wire_converts_dates_and_bytes_and_drops_nulls():
    when = dt.datetime(2024, 1, 2, 3, 4, 5, 678900, tzinfo=dt.timezone.utc)
    out = to_wire({"A": when, "B": b"\x00\x01", "C": None, "D": [{"E": when, "F": None}], "G": "s", "H": 3})
    assert out == {"A": 1704164645.679, "B": "AAE=", "D": [{"E": 1704164645.679}], "G": "s", "H": 3}
    assert json.loads(json.dumps(out)) == out


@pytest.mark.parametrize(
    ("op", "body"),
    [
        ("PutResourcePolicy", {"SecretId": "s", "ResourcePolicy": "{}", "PolicyName": "bad name"}),
        ("RotateSecret", {"SecretId": "s", "RotationRules": {"ScheduleExpression": "rate(1 day);"}}),
        ("RotateSecret", {"SecretId": "s", "RotationRules": {"Duration": "x3h"}}),
        ("PutSecretValue", {"SecretId": "s", "SecretString": "v", "RotationToken": "a" * 36 + "\n"}),
    ],
)
def test_patterns_must_match_the_whole_value(op, body):
    # AWS validates the whole value even where the model's pattern has no anchors.
    with pytest.raises(ValidationException) as exc:
        parse_input(sm_op(op), body)
    assert "Member must satisfy regular expression pattern" in exc.value.message


def test_whole_values_matching_a_pattern_pass():
    out = parse_input(sm_op("RotateSecret"), {"SecretId": "s", "RotationRules": {
        "ScheduleExpression": "cron(0 8 ? * MON-FRI *)", "Duration": "3h"}})
    assert out["RotationRules"] == {"ScheduleExpression": "cron(0 8 ? * MON-FRI *)", "Duration": "3h"}
