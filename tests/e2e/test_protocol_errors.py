"""Malformed, unauthenticated and badly signed requests over raw HTTP; none changes state."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.conftest import Server
from tests.e2e.support import JSON_11, call, credentials, names_with_prefix, send, signed_request, snapshot

PREFIX = f"protocol/{uuid.uuid4().hex[:8]}/"
CANARY = PREFIX + "canary"
PUT = "secretsmanager.PutSecretValue"


@pytest.fixture(scope="module", autouse=True)
def canary(_sm_client) -> None:  # type: ignore[no-untyped-def]
    _sm_client.create_secret(Name=CANARY, SecretString="canary-value-1")


@pytest.fixture(autouse=True)
def state_is_unchanged(sm) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Every test here sends refused requests: the canary and the set of secrets must not move."""
    before = snapshot(sm, CANARY), names_with_prefix(sm, PREFIX)
    yield
    assert (snapshot(sm, CANARY), names_with_prefix(sm, PREFIX)) == before


def put_body(value: str = "canary-value-2") -> bytes:
    return json.dumps({"SecretId": CANARY, "SecretString": value}).encode()


def test_a_valid_raw_request_is_answered(server):
    # The reference point for everything below: the same machinery, correctly used, works.
    reply = call(server, "secretsmanager.DescribeSecret", {"SecretId": CANARY})
    assert reply.status == 200 and reply.json["Name"] == CANARY
    assert reply.headers["content-type"] == JSON_11
    assert reply.headers["x-amzn-requestid"]


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"SecretId": "x",}', b"\xff\xfe\x00", b'{"a": NaN}', b"[" * 100_000 + b"]" * 100_000],
    ids=["syntax", "trailing-comma", "not-utf8", "nan", "deep-nesting"],
)
def test_malformed_json_is_serialization_exception(server, body):
    reply = call(server, PUT, body)
    assert reply.status == 400
    assert reply.error == "SerializationException"
    assert reply.headers["x-amzn-errortype"] == "SerializationException"


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"42"])
def test_a_body_that_is_not_an_object_is_serialization_exception(server, body):
    reply = call(server, PUT, body)
    assert (reply.status, reply.error) == (400, "SerializationException")


@pytest.mark.parametrize(
    "payload",
    [
        {"SecretId": CANARY, "SecretString": 12345},
        {"SecretId": CANARY, "SecretString": "v", "VersionStages": "AWSCURRENT"},
        {"SecretId": CANARY, "SecretBinary": "%%% not base64 %%%"},
        {"SecretId": [CANARY], "SecretString": "v"},
    ],
)
def test_wrong_types_are_serialization_exception(server, payload):
    reply = call(server, PUT, payload)
    assert (reply.status, reply.error) == (400, "SerializationException")


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"SecretString": "v"}, "Value null at 'secretId' failed to satisfy constraint: Member must not be null"),
        ({"SecretId": CANARY, "SecretString": "v", "VersionStages": []}, "at 'versionStages'"),
        ({"SecretId": CANARY, "SecretString": "v", "ClientRequestToken": "short"}, "at 'clientRequestToken'"),
        ({"SecretId": "", "SecretString": "v"}, "at 'secretId'"),
    ],
)
def test_missing_or_invalid_parameters_are_validation_exception(server, payload, fragment):
    reply = call(server, PUT, payload)
    assert (reply.status, reply.error) == (400, "ValidationException")
    assert fragment in reply.json["message"]


def test_validation_messages_never_echo_a_secret_value(server):
    reply = call(server, PUT, {"SecretId": CANARY, "SecretString": "leak-me-" + "x" * 70000})
    assert reply.error == "ValidationException"
    assert b"leak-me" not in reply.body


@pytest.mark.parametrize("target", ["secretsmanager.Frobnicate", "secretsmanager.", "nosuchservice.ListSecrets", ""])
def test_unknown_operation(server, target):
    reply = call(server, target, {})
    assert (reply.status, reply.error) == (400, "UnknownOperationException")


def test_oversized_body_is_413(server):
    value = "x" * (1024 * 1024 + 1)
    reply = call(server, PUT, {"SecretId": CANARY, "SecretString": value})
    assert reply.status == 413
    assert reply.error == "RequestEntityTooLargeException"


def test_missing_authentication(server):
    req = AWSRequest(method="POST", url=server.url + "/", data=put_body(),
                     headers={"X-Amz-Target": PUT, "Content-Type": JSON_11})
    reply = send(server, req)
    assert (reply.status, reply.error) == (400, "MissingAuthenticationTokenException")


def test_unknown_access_key(server):
    creds = Credentials("AKIAUNKNOWNUNKNOWN00", "whatever-secret")
    reply = send(server, signed_request(server, PUT, put_body(), creds=creds))
    assert (reply.status, reply.error) == (400, "UnrecognizedClientException")
    assert reply.json["message"] == "The security token included in the request is invalid."


def test_wrong_secret_key(server):
    real = credentials(server)
    reply = send(server, signed_request(server, PUT, put_body(), creds=Credentials(real.access_key, "wrong")))
    assert (reply.status, reply.error) == (400, "InvalidSignatureException")


def test_body_changed_after_signing(server):
    req = signed_request(server, PUT, put_body("canary-value-2"))
    reply = send(server, req, body=put_body("canary-value-3"))
    assert (reply.status, reply.error) == (400, "InvalidSignatureException")


def test_signed_header_changed_after_signing(server):
    req = signed_request(server, "secretsmanager.DescribeSecret", json.dumps({"SecretId": CANARY}).encode())
    reply = send(server, req, headers={"X-Amz-Target": "secretsmanager.DeleteSecret"})
    assert (reply.status, reply.error) == (400, "InvalidSignatureException")


def test_signature_for_another_service_is_refused(server):
    reply = send(server, signed_request(server, PUT, put_body(), service="kms"))
    assert (reply.status, reply.error) == (400, "InvalidSignatureException")
    assert "secretsmanager" in reply.json["message"]


def test_truncated_authorization_header_is_incomplete(server):
    req = signed_request(server, PUT, put_body())
    header = req.headers["Authorization"].split(", Signature=")[0]
    reply = send(server, req, headers={"Authorization": header})
    assert (reply.status, reply.error) == (400, "IncompleteSignatureException")


@pytest.mark.parametrize("age", [dt.timedelta(hours=1), dt.timedelta(hours=-1)])
def test_skewed_x_amz_date_is_refused(server, age):
    stamp = (dt.datetime.now(dt.timezone.utc) - age).strftime("%Y%m%dT%H%M%SZ")
    reply = send(server, signed_request(server, PUT, put_body(), timestamp=stamp))
    assert (reply.status, reply.error) == (400, "InvalidSignatureException")
    assert ("Signature expired" if age > dt.timedelta(0) else "not yet current") in reply.json["message"]


def presign(server: Server, target: str, *, expires: int = 60, timestamp: str | None = None) -> AWSRequest:
    req = AWSRequest(method="POST", url=server.url + "/", data=b"", headers={"X-Amz-Target": target})
    auth = SigV4QueryAuth(credentials(server), "secretsmanager", "us-east-1", expires=expires)
    if timestamp is None:
        auth.add_auth(req)
    else:  # SigV4QueryAuth's own steps, signing as of `timestamp`
        req.context["timestamp"] = timestamp
        auth._modify_request_before_signing(req)
        auth._inject_signature_to_request(req, auth.signature(auth.string_to_sign(req, auth.canonical_request(req)),
                                                              req))
    return req


def test_presigned_query_string_request_is_accepted(server):
    req = presign(server, "secretsmanager.ListSecrets")
    assert "X-Amz-Signature=" in urlsplit(req.url).query and "Authorization" not in req.headers
    reply = send(server, req)
    assert reply.status == 200
    assert CANARY in [s["Name"] for s in reply.json["SecretList"]] or "NextToken" in reply.json


def test_presigned_request_answers_get_random_password(server):
    reply = send(server, presign(server, "secretsmanager.GetRandomPassword"))
    assert reply.status == 200 and len(reply.json["RandomPassword"]) == 32


def test_expired_presigned_request_is_refused(server):
    stamp = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=2)).strftime("%Y%m%dT%H%M%SZ")
    reply = send(server, presign(server, "secretsmanager.ListSecrets", expires=60, timestamp=stamp))
    assert (reply.status, reply.error) == (400, "InvalidSignatureException")
    assert "expired" in reply.json["message"]


def test_presigned_request_with_altered_query_is_refused(server):
    req = presign(server, "secretsmanager.ListSecrets")
    reply = send(server, req, url=req.url.replace("X-Amz-Expires=60", "X-Amz-Expires=600"))
    assert (reply.status, reply.error) == (400, "InvalidSignatureException")


def test_presigned_request_cannot_carry_an_unsigned_body(server):
    req = presign(server, PUT)
    reply = send(server, req, body=put_body("canary-value-9"))
    assert (reply.status, reply.error) == (400, "InvalidSignatureException")


def test_errors_are_aws_json_with_request_ids(server):
    reply = call(server, "secretsmanager.DescribeSecret", {"SecretId": PREFIX + "missing"})
    assert (reply.status, reply.error) == (400, "ResourceNotFoundException")
    assert set(reply.json) == {"__type", "message"}
    assert reply.headers["x-amzn-requestid"] and reply.headers["content-type"] == JSON_11


def test_binary_values_travel_as_base64(server):
    # The same path boto3 takes, by hand: the blob is base64 in JSON both ways.
    name = PREFIX + "binary-" + uuid.uuid4().hex[:6]
    created = call(server, "secretsmanager.CreateSecret",
                   {"Name": name, "SecretBinary": base64.b64encode(b"\x00\x01\xfe").decode()})
    assert created.status == 200
    got = call(server, "secretsmanager.GetSecretValue", {"SecretId": name})
    assert base64.b64decode(got.json["SecretBinary"]) == b"\x00\x01\xfe"
    assert isinstance(got.json["CreatedDate"], (int, float))
    call(server, "secretsmanager.DeleteSecret", {"SecretId": name, "ForceDeleteWithoutRecovery": True})


def test_missing_authentication_on_lambdas_routes_is_403(server):
    import json
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(server.url + "/2015-03-31/functions/", timeout=10)
    assert exc.value.code == 403
    assert exc.value.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert json.loads(exc.value.read()) == {"message": "Missing Authentication Token"}
