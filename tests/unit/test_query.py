"""The AWS query protocol codec: botocore's serializer in, botocore's parser out."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from botocore.handlers import json_decode_policies
from botocore.parsers import QueryParser
from botocore.serialize import QuerySerializer

from strongroom.errors import AwsError, ExpiredTokenException, UnrecognizedClientException
from strongroom.http.query import as_query_error, decode, parse_params, serialize_error, serialize_result
from strongroom.http.shapes import service_model

IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/"


def wire_params(service: str, operation: str, params: dict[str, Any]) -> dict[str, str]:
    """The form fields botocore sends for `params`."""
    op = service_model(service).operation_model(operation)
    body = QuerySerializer().serialize_to_request(params, op)["body"]
    encoded = urlencode(body, doseq=True, encoding="utf-8")  # as botocore's AWSRequest encodes it
    fields = dict(parse_qsl(encoded, keep_blank_values=True))
    assert fields.pop("Action") == operation
    fields.pop("Version")
    return fields


def parse_response(service: str, operation: str, xml: str, status: int = 200) -> dict[str, Any]:
    op = service_model(service).operation_model(operation)
    response = {"body": xml.encode(), "headers": {}, "status_code": status}
    return QueryParser().parse(response, op.output_shape)  # type: ignore[no-any-return]


@pytest.mark.parametrize(("service", "operation", "params"), [
    ("sts", "AssumeRole", {
        "RoleArn": "arn:aws:iam::123456789012:role/path/reader", "RoleSessionName": "s-1",
        "DurationSeconds": 900, "Tags": [{"Key": "team", "Value": "blue"}, {"Key": "é", "Value": ""}],
        "TransitiveTagKeys": ["team"], "PolicyArns": [{"arn": "arn:aws:iam::123456789012:policy/p"}],
        "Policy": json.dumps({"Version": "2012-10-17", "Statement": []})}),
    ("iam", "CreateUser", {"UserName": "a.b+c@d", "Path": "/x/y/", "Tags": [{"Key": "k", "Value": "v w"}]}),
    ("iam", "UntagRole", {"RoleName": "r", "TagKeys": ["a", "b", "c"]}),
    ("iam", "ListPolicies", {"Scope": "Local", "OnlyAttached": True, "MaxItems": 10}),
    ("iam", "CreatePolicyVersion", {"PolicyArn": "arn:aws:iam::123456789012:policy/p",
                                    "PolicyDocument": '{"a": "&=+%"}', "SetAsDefault": False}),
])
def test_botocore_requests_decode_to_their_parameters(service: str, operation: str, params: dict[str, Any]) -> None:
    op = service_model(service).operation_model(operation)
    assert parse_params(op, wire_params(service, operation, params)) == params


def test_empty_list_is_an_empty_value() -> None:
    op = service_model("iam").operation_model("UntagUser")
    assert decode(op.input_shape, {"UserName": "u", "TagKeys": ""}) == {"UserName": "u", "TagKeys": []}


def test_list_members_keep_their_index_order() -> None:
    op = service_model("iam").operation_model("UntagUser")
    fields = {"UserName": "u", "TagKeys.member.10": "j", "TagKeys.member.2": "b", "TagKeys.member.1": "a"}
    assert decode(op.input_shape, fields)["TagKeys"] == ["a", "b", "j"]


def test_non_numeric_integer_is_a_validation_error() -> None:
    op = service_model("sts").operation_model("AssumeRole")
    with pytest.raises(AwsError) as exc:
        parse_params(op, {"RoleArn": "arn:aws:iam::123456789012:role/r", "RoleSessionName": "ss",
                          "DurationSeconds": "soon"})
    assert exc.value.code == "ValidationError"


@pytest.mark.parametrize(("params", "fragment"), [
    ({"UserName": "has space"}, "at 'userName' failed to satisfy constraint: Member must satisfy regular"),
    ({"UserName": "x" * 65}, "Member must have length less than or equal to 64"),
    ({"UserName": "u", "Path": "no-slash"}, "at 'path'"),
    ({"UserName": "u", "Tags": [{"Key": "bad!", "Value": "v"}]}, "at 'tags.1.member.key'"),
    ({}, "at 'userName' failed to satisfy constraint: Member must not be null"),
])
def test_constraint_violations_are_validation_errors(params: dict[str, Any], fragment: str) -> None:
    op = service_model("iam").operation_model("CreateUser")
    with pytest.raises(AwsError) as exc:
        parse_params(op, wire_params("iam", "CreateUser", params) if params else {})
    err = as_query_error(exc.value)
    assert (err.code, err.status) == ("ValidationError", 400)
    assert fragment in err.message


def test_unicode_letters_satisfy_tag_patterns() -> None:
    op = service_model("iam").operation_model("TagUser")
    tags = [{"Key": "Ωmega näme", "Value": "日本 ü.:/=+-@_"}]
    assert parse_params(op, wire_params("iam", "TagUser", {"UserName": "u", "Tags": tags}))["Tags"] == tags


def test_results_parse_back_with_botocore() -> None:
    created = dt.datetime(2024, 5, 1, 12, 30, 15, tzinfo=dt.timezone.utc)
    result = {"Users": [{"Path": "/", "UserName": "a<b&c", "UserId": "AIDAEXAMPLEEXAMPLE1", "CreateDate": created,
                         "Arn": "arn:aws:iam::123456789012:user/a"}], "IsTruncated": True, "Marker": "m=="}
    xml = serialize_result(service_model("iam").operation_model("ListUsers"), result, "req-1", IAM_NS)
    assert xml.startswith(f'<ListUsersResponse xmlns="{IAM_NS}"><ListUsersResult>')
    parsed = parse_response("iam", "ListUsers", xml)
    assert parsed["ResponseMetadata"]["RequestId"] == "req-1"
    assert parsed["Users"][0]["UserName"] == "a<b&c" and parsed["Users"][0]["CreateDate"] == created
    assert parsed["IsTruncated"] is True and parsed["Marker"] == "m=="


def test_policy_documents_travel_url_encoded_and_botocore_decodes_them() -> None:
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "a&b"}]}
    op = service_model("iam").operation_model("GetUserPolicy")
    xml = serialize_result(op, {"UserName": "u", "PolicyName": "p", "PolicyDocument": json.dumps(document)},
                           "r", IAM_NS)
    assert "%7B%22Version%22" in xml
    parsed = parse_response("iam", "GetUserPolicy", xml)
    json_decode_policies(parsed, op)
    assert parsed["PolicyDocument"] == document


def test_operation_without_output_still_names_the_request() -> None:
    op = service_model("iam").operation_model("DeleteUser")
    xml = serialize_result(op, {}, "rid", IAM_NS)
    assert xml == (f'<DeleteUserResponse xmlns="{IAM_NS}"><ResponseMetadata><RequestId>rid</RequestId>'
                   "</ResponseMetadata></DeleteUserResponse>")


def test_sts_credentials_parse_back() -> None:
    expires = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    result = {"Credentials": {"AccessKeyId": "ASIAEXAMPLEEXAMPLE12", "SecretAccessKey": "s", "SessionToken": "t",
                              "Expiration": expires},
              "AssumedRoleUser": {"AssumedRoleId": "AROAX:s", "Arn": "arn:aws:sts::1:assumed-role/r/s"},
              "PackedPolicySize": 7}
    op = service_model("sts").operation_model("AssumeRole")
    parsed = parse_response("sts", "AssumeRole", serialize_result(op, result, "r", "ns"))
    assert parsed["Credentials"]["Expiration"] == expires and parsed["PackedPolicySize"] == 7


@pytest.mark.parametrize(("err", "expected"), [
    (UnrecognizedClientException("The security token included in the request is invalid."),
     ("InvalidClientTokenId", 403)),
    (ExpiredTokenException("The security token included in the request is expired"), ("ExpiredToken", 403)),
    (AwsError("x", code="NoSuchEntity", status=404), ("NoSuchEntity", 404)),
])
def test_errors_parse_back_with_botocore(err: AwsError, expected: tuple[str, int]) -> None:
    mapped = as_query_error(err)
    assert (mapped.code, mapped.status) == expected
    xml = serialize_error(mapped, "rid", IAM_NS)
    parsed = parse_response("iam", "GetUser", xml, status=mapped.status)
    assert parsed["Error"]["Code"] == expected[0] and parsed["Error"]["Message"] == err.message
    assert parsed["Error"]["Type"] == "Sender"
    assert parsed["ResponseMetadata"]["RequestId"] == "rid"
