"""Input a fuzzer found once made the server fault: nulls inside lists and maps, policies
nested deeper than a JSON parser goes, and pagination tokens that decode to positions of the
wrong type. Each now gets its AWS error (4xx) and changes nothing."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from tests.conftest import Server
from tests.e2e.support import call, signed_request, send

DEEP = "[" * 5000 + "]" * 5000
DEEP_OBJECT = '{"a":' * 3000 + "1" + "}" * 3000


@pytest.fixture(scope="module")
def secret(_sm_client) -> str:  # type: ignore[no-untyped-def]
    name = f"hostile/{uuid.uuid4().hex[:8]}"
    _sm_client.create_secret(Name=name, SecretString="unchanged")
    return name


@pytest.fixture(scope="module")
def key_id(server: Server) -> str:
    return str(server.client("kms").create_key()["KeyMetadata"]["KeyId"])


def kms(server: Server, op: str, body: dict) -> tuple[int, str]:
    reply = send(server, signed_request(server, f"TrentService.{op}", json.dumps(body).encode(), service="kms"))
    return reply.status, reply.error


def test_nulls_inside_lists_and_maps_are_validation_errors(server: Server, sm, secret: str, key_id: str):
    before = sm.list_secret_version_ids(SecretId=secret)["Versions"]
    for op, body in (
        ("TagResource", {"SecretId": secret, "Tags": [None]}),
        ("CreateSecret", {"Name": secret + "-new", "SecretString": "x", "Tags": [None]}),
        ("ListSecrets", {"Filters": [None]}),
        ("ListSecrets", {"Filters": [{"Key": "name", "Values": ["x", None]}]}),
        ("ListSecrets", {"Filters": [{"Key": "description", "Values": [None]}]}),
        ("BatchGetSecretValue", {"SecretIdList": [None]}),
        ("BatchGetSecretValue", {"Filters": [{"Key": "all", "Values": [None]}]}),
        ("PutSecretValue", {"SecretId": secret, "SecretString": "y", "VersionStages": ["AWSCURRENT", None]}),
        ("UntagResource", {"SecretId": secret, "TagKeys": [None]}),
    ):
        reply = call(server, f"secretsmanager.{op}", body)
        assert (reply.status, reply.error) == (400, "ValidationException"), (op, reply.status, reply.json)
        assert "Member must not be null" in reply.json["message"]
    assert sm.list_secret_version_ids(SecretId=secret)["Versions"] == before
    assert sm.get_secret_value(SecretId=secret)["SecretString"] == "unchanged"
    for op, body in (("Encrypt", {"KeyId": key_id, "Plaintext": "aGVsbG8=", "EncryptionContext": {"k": None}}),
                     ("CreateKey", {"Tags": [None]}),
                     ("GenerateDataKey", {"KeyId": key_id, "KeySpec": "AES_256", "EncryptionContext": {"a": None}})):
        assert kms(server, op, body) == (400, "ValidationException"), op


def test_policies_nested_too_deeply_are_malformed(server: Server, sm, secret: str, key_id: str):
    for document in (DEEP, DEEP_OBJECT):
        reply = call(server, "secretsmanager.PutResourcePolicy", {"SecretId": secret, "ResourcePolicy": document})
        assert (reply.status, reply.error) == (400, "MalformedPolicyDocumentException"), reply.json
        reply = call(server, "secretsmanager.ValidateResourcePolicy", {"ResourcePolicy": document})
        assert reply.status in (200, 400) and reply.status != 500
        if reply.status == 200:
            assert reply.json["PolicyValidationPassed"] is False
        assert kms(server, "PutKeyPolicy", {"KeyId": key_id, "PolicyName": "default", "Policy": document}) == \
            (400, "MalformedPolicyDocumentException")
        iam = server.client("iam")
        with pytest.raises(iam.exceptions.MalformedPolicyDocumentException):
            iam.create_policy(PolicyName=f"deep-{uuid.uuid4().hex[:6]}", PolicyDocument=document)
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId=secret)


def test_tokens_naming_positions_of_the_wrong_type_are_invalid(server: Server):
    # The tokens are signed; these are signed with the same key, as a forger reading the
    # source could: the position inside is checked all the same.
    from strongroom.services.kms.paging import _encode as kms_marker
    from strongroom.services.secretsmanager.paging import encode as sm_token

    for sort_by, position in (("name", [{"x": 1}, 1]), ("created-date", [1e308, 2**70]),
                              ("created-date", [None, None]), ("name", ["a", True])):
        token = sm_token({"k": "list", "s": ["desc", sort_by], "a": position})
        reply = call(server, "secretsmanager.ListSecrets",
                     {"SortBy": sort_by, "SortOrder": "desc", "MaxResults": 1, "NextToken": token})
        assert (reply.status, reply.error) == (400, "InvalidNextTokenException"), (position, reply.json)
    for op, kind in (("ListKeys", "keys"), ("ListAliases", "aliases")):
        for after in (1, None, {"a": 1}, [1, 2]):
            assert kms(server, op, {"Marker": kms_marker(kind, after)}) == (400, "InvalidMarkerException"), (op, after)
    trail = server.client("cloudtrail")
    tokens = [json.dumps({"b": before, "f": "0"}).encode() for before in (10**30, -2**70, "x")]
    for raw in [*tokens, b'{"b": Infinity, "f": "x"}']:
        with pytest.raises(trail.exceptions.InvalidNextTokenException):
            trail.lookup_events(NextToken=base64.urlsafe_b64encode(raw).decode())
