"""SigV4 verification against botocore's own signers (SigV4Auth, SigV4QueryAuth)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import unquote, urlsplit

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from strongroom.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
)
from strongroom.auth.sigv4 import SigV4Verifier, WireRequest, derive_signing_key

KEY_ID, SECRET = "AKIAEXAMPLEEXAMPLE01", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
URL = "http://127.0.0.1:7979/"
BODY = b'{"SecretId":"prod/db"}'


def signed(body: bytes = BODY, *, url: str = URL, secret: str = SECRET, token: str | None = None,
           extra: dict[str, str] | None = None) -> AWSRequest:
    req = AWSRequest(method="POST", url=url, data=body,
                     headers={"X-Amz-Target": "secretsmanager.GetSecretValue",
                              "Content-Type": "application/x-amz-json-1.1", **(extra or {})})
    SigV4Auth(Credentials(KEY_ID, secret, token), "secretsmanager", "us-east-1").add_auth(req)
    return req


def presigned(expires: int = 60, *, secret: str = SECRET) -> AWSRequest:
    req = AWSRequest(method="POST", url=URL, data=b"",
                     headers={"X-Amz-Target": "secretsmanager.ListSecrets"})
    SigV4QueryAuth(Credentials(KEY_ID, secret), "secretsmanager", "us-east-1", expires=expires).add_auth(req)
    return req


def wire(req: AWSRequest, *, drop: tuple[str, ...] = (), add: dict[str, str] | None = None,
         body: bytes | None = None, query: str | None = None) -> WireRequest:
    """The request as the server sees it: lower-case headers, the Host header, the raw query."""
    parts = urlsplit(req.url)
    headers = [("host", parts.netloc)] + [(k.lower(), v) for k, v in req.headers.items()]
    headers = [(k, v) for k, v in headers if k not in drop] + [(k.lower(), v) for k, v in (add or {}).items()]
    data = req.body if body is None else body
    if isinstance(data, str):
        data = data.encode()
    return WireRequest("POST", unquote(parts.path) or "/", parts.query if query is None else query,
                       headers, data or b"")


def verify(w: WireRequest, *, now: dt.datetime | None = None, secret: str = SECRET):  # type: ignore[no-untyped-def]
    verifier = SigV4Verifier()
    claim, parts = verifier.parse(w, now or dt.datetime.now(dt.timezone.utc))
    verifier.verify(w, claim, parts, secret)
    return claim


def auth_header(req: AWSRequest) -> str:
    return req.headers["Authorization"]


def test_a_botocore_signed_request_verifies():
    req = signed()
    claim = verify(wire(req))
    assert claim.date == req.headers["X-Amz-Date"][:8]
    assert (claim.access_key_id, claim.region, claim.service) == (KEY_ID, "us-east-1", "secretsmanager")
    assert claim.presigned is False and claim.security_token is None


def test_session_token_is_reported():
    assert verify(wire(signed(token="session-token-value"))).security_token == "session-token-value"


def test_paths_are_double_encoded_like_every_service_but_s3():
    assert verify(wire(signed(url="http://127.0.0.1:7979/a%20b/c"))).service == "secretsmanager"


def test_unsigned_headers_may_be_added():
    verify(wire(signed(), add={"user-agent": "changed", "x-forwarded-for": "10.0.0.1"}))


@pytest.mark.parametrize(
    "tamper",
    [
        {"body": BODY.replace(b"prod", b"dev!")},
        {"body": BODY + b" "},
        {"body": b""},
        {"drop": ("x-amz-target",), "add": {"x-amz-target": "secretsmanager.DeleteSecret"}},
        {"drop": ("content-type",), "add": {"content-type": "text/plain"}},
        {"drop": ("host",), "add": {"host": "127.0.0.1:9999"}},
        {"query": "extra=1"},
        {"add": {"x-amz-target": "secretsmanager.DeleteSecret"}},  # a second value joins the signed one
    ],
)
def test_tampering_breaks_the_signature(tamper):
    with pytest.raises(InvalidSignatureException) as exc:
        verify(wire(signed(), **tamper))
    assert "signature we calculated does not match" in exc.value.message


def test_a_signed_header_that_is_missing_breaks_the_signature():
    with pytest.raises(InvalidSignatureException):
        verify(wire(signed(), drop=("x-amz-target",)))


def test_a_claimed_payload_hash_does_not_replace_the_body():
    # The client signs x-amz-content-sha256 for BODY; the body is then swapped.
    import hashlib

    req = signed(extra={"X-Amz-Content-SHA256": hashlib.sha256(BODY).hexdigest()})
    verify(wire(req))
    with pytest.raises(InvalidSignatureException):
        verify(wire(req, body=b'{"SecretId":"other"}'))


def test_wrong_secret_is_refused():
    with pytest.raises(InvalidSignatureException):
        verify(wire(signed(secret="not-the-secret")))


def test_cached_signing_keys_follow_a_changed_secret():
    verifier = SigV4Verifier()
    now = dt.datetime.now(dt.timezone.utc)
    for secret in (SECRET, "rotated-secret", SECRET):
        w = wire(signed(secret=secret))
        claim, parts = verifier.parse(w, now)
        verifier.verify(w, claim, parts, secret)
        with pytest.raises(InvalidSignatureException):
            verifier.verify(w, claim, parts, "rotated-secret" if secret == SECRET else SECRET)


def test_signing_key_matches_the_aws_documented_example():
    # AWS's SigV4 documentation example (secret, 20150830, us-east-1, iam).
    key = derive_signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", "us-east-1", "iam")
    assert key.hex() == "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"


def test_no_authentication_at_all():
    req = AWSRequest(method="POST", url=URL, data=BODY, headers={"X-Amz-Target": "secretsmanager.ListSecrets"})
    with pytest.raises(MissingAuthenticationTokenException):
        verify(wire(req))


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda a: a.replace("Credential=", "Cred="), "requires 'Credential' parameter"),
        (lambda a: a.replace("SignedHeaders=", "Signed="), "requires 'SignedHeaders' parameter"),
        (lambda a: a.split(", Signature=")[0], "requires 'Signature' parameter"),
        (lambda a: a.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1"), "Unsupported AWS 'algorithm'"),
        (lambda a: "Bearer abc", "Unsupported AWS 'algorithm'"),
        (lambda a: a.replace("/us-east-1/", "/"), "Credential should be scoped"),
        (lambda a: a.replace("/aws4_request", "/aws5_request"), "Credential should be scoped"),
        (lambda a: a.replace(f"Credential={KEY_ID}", "Credential="), "Credential should be scoped"),
    ],
)
def test_incomplete_authorization_headers(mangle, message):
    req = signed()
    w = wire(req, drop=("authorization",), add={"authorization": mangle(auth_header(req))})
    with pytest.raises(IncompleteSignatureException) as exc:
        verify(w)
    assert message in exc.value.message


def test_missing_date_is_incomplete():
    with pytest.raises(IncompleteSignatureException) as exc:
        verify(wire(signed(), drop=("x-amz-date",)))
    assert "X-Amz-Date" in exc.value.message


def test_unparseable_date_is_incomplete():
    with pytest.raises(IncompleteSignatureException):
        verify(wire(signed(), drop=("x-amz-date",), add={"x-amz-date": "yesterday"}))


def test_credential_date_must_match_the_request_date():
    req = signed()
    day = req.headers["X-Amz-Date"][:8]
    other = (dt.datetime.strptime(day, "%Y%m%d") - dt.timedelta(days=1)).strftime("%Y%m%d")
    w = wire(req, drop=("authorization",), add={"authorization": auth_header(req).replace(f"/{day}/", f"/{other}/")})
    with pytest.raises(InvalidSignatureException) as exc:
        verify(w)
    assert "Date in Credential scope does not match" in exc.value.message


def test_host_must_be_signed():
    req = signed()
    header = auth_header(req).replace("SignedHeaders=", "SignedHeaders=x;").replace("host;", "")
    w = wire(req, drop=("authorization",), add={"authorization": header})
    with pytest.raises(InvalidSignatureException) as exc:
        verify(w)
    assert "'Host'" in exc.value.message


@pytest.mark.parametrize(
    ("skew", "message"),
    [
        (dt.timedelta(minutes=6), "Signature expired"),  # the server's clock is ahead: the request is old
        (dt.timedelta(minutes=-6), "Signature not yet current"),
    ],
)
def test_clock_skew_beyond_five_minutes(skew, message):
    w = wire(signed())
    with pytest.raises(InvalidSignatureException) as exc:
        verify(w, now=dt.datetime.now(dt.timezone.utc) + skew)
    assert message in exc.value.message


@pytest.mark.parametrize("skew", [dt.timedelta(minutes=4), dt.timedelta(minutes=-4)])
def test_clock_skew_within_five_minutes_is_accepted(skew):
    verify(wire(signed()), now=dt.datetime.now(dt.timezone.utc) + skew)


def test_presigned_request_verifies():
    claim = verify(wire(presigned()))
    assert claim.presigned is True and claim.access_key_id == KEY_ID


def test_presigned_query_order_does_not_matter():
    req = presigned()
    query = "&".join(reversed(urlsplit(req.url).query.split("&")))
    verify(wire(req, query=query))


def test_presigned_request_expires():
    w = wire(presigned(expires=60))
    now = dt.datetime.now(dt.timezone.utc)
    verify(w, now=now + dt.timedelta(seconds=30))
    with pytest.raises(InvalidSignatureException) as exc:
        verify(w, now=now + dt.timedelta(seconds=120))
    assert "Signature expired" in exc.value.message


def test_presigned_request_from_the_future_is_refused():
    with pytest.raises(InvalidSignatureException) as exc:
        verify(wire(presigned(expires=3600)), now=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10))
    assert "not yet current" in exc.value.message


def _with_query(req: AWSRequest, name: str, value: str | None) -> WireRequest:
    pairs = [p for p in urlsplit(req.url).query.split("&") if not p.startswith(name + "=")]
    if value is not None:
        pairs.append(f"{name}={value}")
    return wire(req, query="&".join(pairs))


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("X-Amz-Expires", "604801", InvalidSignatureException),
        ("X-Amz-Expires", "0", InvalidSignatureException),
        ("X-Amz-Expires", "soon", IncompleteSignatureException),
        ("X-Amz-Signature", "0" * 64, InvalidSignatureException),
        ("X-Amz-Credential", None, IncompleteSignatureException),
        ("X-Amz-Signature", None, IncompleteSignatureException),
        ("X-Amz-SignedHeaders", None, IncompleteSignatureException),
        ("X-Amz-Date", None, IncompleteSignatureException),
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA1", IncompleteSignatureException),
    ],
)
def test_presigned_parameter_problems(name, value, error):
    with pytest.raises(error):
        verify(_with_query(presigned(), name, value))


def test_presigned_with_wrong_secret_is_refused():
    with pytest.raises(InvalidSignatureException):
        verify(wire(presigned(secret="nope")))
