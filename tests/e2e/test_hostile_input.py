"""Input a fuzzer found once made the server fault: nulls inside lists and maps, policies
nested deeper than a JSON parser goes, and pagination tokens that decode to positions of the
wrong type. Each now gets its AWS error (4xx) and changes nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
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


# -- Lambda's REST routes ------------------------------------------------------------------------
def lambda_call(server: Server, method: str, path: str, body: bytes = b"",
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    import http.client
    from urllib.parse import urlsplit

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    from tests.e2e.support import credentials

    req = AWSRequest(method=method, url=server.url + path, data=body,
                     headers={"Content-Type": "application/json", **(headers or {})})
    SigV4Auth(credentials(server), "lambda", "us-east-1").add_auth(req)
    target = urlsplit(server.url)
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=dict(req.headers.items()))
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_lambda_requests_are_checked_against_the_model(server: Server):
    from tests.e2e.rotation_support import execution_role, zipped

    role = execution_role(server)
    code = base64.b64encode(zipped({"lambda_function.py": "def lambda_handler(e, c):\n    return e\n"})).decode()
    name = f"checked-{uuid.uuid4().hex[:6]}"
    valid = {"FunctionName": name, "Runtime": "python3.12", "Role": role,
             "Handler": "lambda_function.lambda_handler", "Code": {"ZipFile": code}}
    base = "/2015-03-31/functions"

    def create(body: bytes) -> tuple[int, str]:
        status, headers, _ = lambda_call(server, "POST", base, body)
        return status, headers.get("x-amzn-errortype", "")

    refused = [
        (b"[]", "InvalidRequestContentException"),
        (b"1", "InvalidRequestContentException"),
        (b'{"FunctionName": "' + b"[" * 10 + b'"' + b"[" * 3000, "InvalidRequestContentException"),
        (json.dumps({**valid, "Timeout": "abc"}).encode(), "InvalidRequestContentException"),
        (json.dumps({**valid, "Timeout": 10**30}).encode(), "InvalidRequestContentException"),
        (json.dumps({**valid, "Description": "\ud800"}).encode(), "InvalidRequestContentException"),
        (json.dumps({**valid, "Code": {"ZipFile": "not base64!!"}}).encode(), "InvalidRequestContentException"),
        (json.dumps({**valid, "Environment": {"Variables": {"APP": 1}}}).encode(), "InvalidRequestContentException"),
        (json.dumps({**valid, "Environment": {"Variables": {"APP": "x\u0000y"}}}).encode(),
         "InvalidParameterValueException"),
        (json.dumps({**valid, "Environment": {"Variables": {"STRONGROOM_WEBHOOK_URL": "file:///etc/hostname"}}}).encode(),
         "InvalidParameterValueException"),
        (json.dumps({**valid, "Environment": {"Variables": {"STRONGROOM_WEBHOOK_URL": "data:text/plain,hi"}}}).encode(),
         "InvalidParameterValueException"),
        (json.dumps({**valid, "FunctionName": "arn:foo"}).encode(), "InvalidParameterValueException"),
        (json.dumps({**valid, "FunctionName": "a" * 200}).encode(), "ValidationException"),
        (json.dumps({**valid, "FunctionName": 7}).encode(), "InvalidRequestContentException"),
    ]
    for body, code_name in refused:
        assert create(body) == (400, code_name), body[:120]
    status, _, listing = lambda_call(server, "GET", base + "/")
    assert status == 200 and name not in listing.decode()  # nothing was made

    # A member the model does not name is dropped, whatever it holds (it once broke the audit record).
    assert create(json.dumps({**valid, "Foo": 10**30, "Bar": {"x": [None]}}).encode())[0] == 201
    status, headers, _ = lambda_call(server, "POST", f"{base}/{name}/invocations", b"{}",
                                     {"X-Amz-Invocation-Type": "Bogus"})
    assert (status, headers.get("x-amzn-errortype")) == (400, "ValidationException")
    status, _, _ = lambda_call(server, "GET", f"{base}/{name}", b"[]")  # a body on a read is not read
    assert status == 200
    status, headers, _ = lambda_call(server, "PUT", f"{base}/{name}/configuration", b'{"Description": null}')
    assert status == 200  # a null member is an absent member
    for body in (b"[]", b'{"Timeout": true}', b'{"Handler": 1}'):
        status, headers, _ = lambda_call(server, "PUT", f"{base}/{name}/configuration", body)
        assert (status, headers.get("x-amzn-errortype")) == (400, "InvalidRequestContentException"), body
    status, headers, _ = lambda_call(server, "POST", f"{base}/{name}/policy",
                                     b'{"StatementId": null, "Action": "lambda:InvokeFunction", "Principal": "x"}')
    assert status == 400, headers
    assert lambda_call(server, "DELETE", f"{base}/{name}")[0] == 204


def test_lambda_paths_and_methods_it_does_not_have_answer_in_its_shape(server: Server):
    for method, path in (("GET", "/2015-03-31/functions/fn/configuration/x/y/z"),
                         ("GET", "/2015-03-31/functions/fn/policy/x/y"),
                         ("PATCH", "/2015-03-31/functions/fn"), ("OPTIONS", "/2015-03-31/functions")):
        status, headers, body = lambda_call(server, method, path)
        assert (status, headers.get("x-amzn-errortype")) == (404, "ResourceNotFoundException"), (method, path)
        assert json.loads(body)["message"]


def test_a_function_that_scribbles_over_its_result_fails_alone(server: Server):
    from tests.e2e.rotation_support import execution_role, zipped

    lam = server.client("lambda")
    name = f"scribbler-{uuid.uuid4().hex[:6]}"
    source = ("import os\n\ndef lambda_handler(e, c):\n"
              "    with open(os.environ['_STRONGROOM_RESULT'], 'w') as f:\n        f.write(e['write'])\n"
              "    os._exit(0)\n")
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=execution_role(server),
                        Handler="lambda_function.lambda_handler", Code={"ZipFile": zipped({"lambda_function.py": source})})
    for written in ("[1]", "{nope"):
        out = lam.invoke(FunctionName=name, Payload=json.dumps({"write": written}).encode())
        assert out["StatusCode"] == 200 and out["FunctionError"] == "Unhandled"
        assert json.loads(out["Payload"].read())["errorType"] == "Runtime.InvalidResult"
    lam.delete_function(FunctionName=name)


def test_second_round_of_hostile_input(server: Server, sm, secret: str):
    import urllib.error
    import urllib.request

    from botocore.exceptions import ClientError

    from strongroom.services.secretsmanager import paging

    # A cron expression for a date that never comes.
    reply = call(server, "secretsmanager.RotateSecret", {
        "SecretId": secret, "RotateImmediately": False,
        "RotationLambdaARN": "arn:aws:lambda:us-east-1:123456789012:function:nowhere",
        "RotationRules": {"ScheduleExpression": "cron(0 0 31 2 ? *)"}})
    assert (reply.status, reply.error) == (400, "InvalidParameterException"), reply.json
    assert "never occurs" in reply.json["message"]
    # Tokens nested deeper than the JSON parser goes (the signed one signed with the public key:
    # 12 bytes of MAC, then the JSON).
    deep = b"[" * 990 + b"]" * 990
    mac = hmac.new(paging._KEY, deep, hashlib.sha256).digest()[:12]
    reply = call(server, "secretsmanager.ListSecrets", {"NextToken": base64.urlsafe_b64encode(mac + deep).decode()})
    assert (reply.status, reply.error) == (400, "InvalidNextTokenException"), reply.json
    trail = server.client("cloudtrail")
    with pytest.raises(trail.exceptions.InvalidNextTokenException):
        trail.lookup_events(NextToken=base64.urlsafe_b64encode(deep).decode())
    # A presigned query dated in the year 9999: refused before any date arithmetic overflows.
    url = (server.url + "/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256"
           "&X-Amz-SignedHeaders=host&X-Amz-Signature=" + "0" * 64 + "&X-Amz-Date=99991231T235959Z"
           "&X-Amz-Credential=AKIAEXAMPLEEXAMPLE00%2F99991231%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Expires=604800")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(url, timeout=10)
    assert 400 <= exc.value.code < 500
    # A query-protocol number wider than a float.
    with pytest.raises(ClientError) as err:
        server.client("iam").list_users(MaxItems=int("9" * 400))
    assert 400 <= err.value.response["ResponseMetadata"]["HTTPStatusCode"] < 500
