"""AWS Signature Version 4 verification, header-signed and presigned.

botocore's signer is the reference: the canonical request is rebuilt from what
arrived on the wire and compared in constant time. Signing keys are cached per
(access key, date, region, service), as they only change daily.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from threading import Lock
from urllib.parse import quote, unquote, unquote_plus

from strongroom.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
)

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = dt.timedelta(minutes=5)
MAX_PRESIGN_EXPIRES = 7 * 24 * 3600
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What a valid signature vouches for."""

    access_key_id: str
    date: str
    region: str
    service: str
    security_token: str | None
    presigned: bool


@dataclass(frozen=True, slots=True)
class WireRequest:
    method: str
    path: str  # decoded path
    query_string: str  # raw, percent-encoded
    headers: Sequence[tuple[str, str]]  # lower-case names
    body: bytes


SecretLookup = Callable[[str], str]  # access key id -> secret access key; raises when unknown


class SigV4Verifier:
    def __init__(self, cache_size: int = 4096):
        self._keys: OrderedDict[tuple[str, str, str, str, str], hmac.HMAC] = OrderedDict()
        self._cache_size = cache_size
        self._lock = Lock()

    def parse(self, req: WireRequest, now: dt.datetime) -> tuple[SignedRequest, dict[str, str]]:
        """Check the signature's shape and freshness; returns the claim and its parts."""
        headers = _header_map(req.headers)
        query = _query_pairs(req.query_string)
        auth = headers.get("authorization")
        if auth is not None:
            parts = _parse_authorization(auth)
            amz_date = headers.get("x-amz-date") or headers.get("date")
            if not amz_date:
                raise IncompleteSignatureException(
                    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
                    f"Authorization={auth.split(' ', 1)[0]}"
                )
            token = headers.get("x-amz-security-token")
            presigned = False
            expires = None
        elif any(k == "X-Amz-Algorithm" for k, _ in query):
            qmap = dict(query)
            missing = [k for k in ("X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Date")
                       if k not in qmap]
            if missing:
                raise IncompleteSignatureException(
                    " ".join(f"AWS query-string parameters must include '{k}'." for k in missing)
                    + " Re-examine the query-string parameters."
                )
            if qmap["X-Amz-Algorithm"] != ALGORITHM:
                raise IncompleteSignatureException(f"Unsupported AWS 'algorithm': '{qmap['X-Amz-Algorithm']}'.")
            parts = {
                "Credential": qmap["X-Amz-Credential"],
                "SignedHeaders": qmap["X-Amz-SignedHeaders"],
                "Signature": qmap["X-Amz-Signature"],
            }
            amz_date = qmap["X-Amz-Date"]
            token = qmap.get("X-Amz-Security-Token")
            presigned = True
            expires = qmap.get("X-Amz-Expires", "")
        else:
            raise MissingAuthenticationTokenException("Request is missing Authentication Token", status=400)

        scope = parts["Credential"].split("/")
        if len(scope) != 5 or scope[4] != "aws4_request" or not scope[0]:
            raise IncompleteSignatureException(
                f"Credential should be scoped to a valid region, service and terminated by 'aws4_request'. "
                f"Credential={parts['Credential'].split('/')[0]}/..."
            )
        access_key_id, date, region, service, _ = scope
        signed_at = _parse_amz_date(amz_date)
        day = f"{signed_at.year:04d}{signed_at.month:02d}{signed_at.day:02d}"
        if date != day:
            raise InvalidSignatureException(
                f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
                f"'{date}' != '{day}', from '{amz_date}'."
            )
        if presigned:
            try:
                seconds = int(expires or "")
            except ValueError:
                raise IncompleteSignatureException("X-Amz-Expires must be a number of seconds.") from None
            if not 0 < seconds <= MAX_PRESIGN_EXPIRES:
                raise InvalidSignatureException("X-Amz-Expires must be between 1 and 604800 seconds.")
            # Not yet current is checked first: near year 9999, adding the expiry would overflow.
            if signed_at > now + MAX_SKEW:
                raise InvalidSignatureException(f"Signature not yet current: {amz_date} is still later than "
                                                f"{(now + MAX_SKEW).strftime(_AMZ_DATE)}")
            if now > signed_at + dt.timedelta(seconds=seconds):
                raise InvalidSignatureException(
                    f"Signature expired: {amz_date} is now earlier than "
                    f"{(now - dt.timedelta(seconds=seconds)).strftime(_AMZ_DATE)} "
                    f"({now.strftime(_AMZ_DATE)} - {seconds} sec.)"
                )
        elif abs(now - signed_at) > MAX_SKEW:
            if signed_at < now:
                raise InvalidSignatureException(
                    f"Signature expired: {amz_date} is now earlier than {(now - MAX_SKEW).strftime(_AMZ_DATE)} "
                    f"({now.strftime(_AMZ_DATE)} - 5 min.)"
                )
            raise InvalidSignatureException(
                f"Signature not yet current: {amz_date} is still later than "
                f"{(now + MAX_SKEW).strftime(_AMZ_DATE)} ({now.strftime(_AMZ_DATE)} + 5 min.)"
            )
        claim = SignedRequest(access_key_id, date, region, service, token, presigned)
        return claim, {**parts, "amz_date": amz_date}

    def verify(self, req: WireRequest, claim: SignedRequest, parts: dict[str, str], secret: str) -> None:
        """Raise InvalidSignatureException unless the request was signed with `secret`."""
        signed = parts["SignedHeaders"]
        signed_headers = signed.split(";")
        if "host" not in signed_headers:
            raise InvalidSignatureException("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
        headers = _header_multimap(req.headers)
        canon_headers = []
        for name in signed_headers:
            values = headers.get(name)
            if values is None:
                raise InvalidSignatureException(_MISMATCH)
            canon_headers.append(f"{name}:{_canonical_values(values)}\n")
        # The hash of the body that arrived, never a client-supplied x-amz-content-sha256: trusting
        # that header would let a replayed signature vouch for a different body.
        canonical = (f"{req.method.upper()}\n{_canonical_path(req.path)}\n"
                     f"{_canonical_query(req.query_string, drop_signature=claim.presigned)}\n"
                     f"{''.join(canon_headers)}\n{signed}\n{hashlib.sha256(req.body).hexdigest()}")
        string_to_sign = (f"{ALGORITHM}\n{parts['amz_date']}\n{claim.date}/{claim.region}/{claim.service}/aws4_request\n"
                          f"{hashlib.sha256(canonical.encode()).hexdigest()}")
        # A copy of the keyed HMAC, not hmac.digest(): that one-shot call lets go of the
        # interpreter lock, and on a busy server getting it back costs more than the HMAC.
        mac = self._signing_mac(claim, secret).copy()
        mac.update(string_to_sign.encode())
        expected = mac.hexdigest()
        if not hmac.compare_digest(expected.encode(), parts["Signature"].encode()):
            raise InvalidSignatureException(_MISMATCH)

    def _signing_mac(self, claim: SignedRequest, secret: str) -> hmac.HMAC:
        """The HMAC keyed with the day's signing key, to copy for each request."""
        # The secret's hash is part of the cache key so a changed secret never reuses an old key.
        fingerprint = hashlib.sha256(secret.encode()).hexdigest()
        cache_key = (claim.access_key_id, fingerprint, claim.date, claim.region, claim.service)
        with self._lock:
            mac = self._keys.get(cache_key)
            if mac is not None:
                self._keys.move_to_end(cache_key)
                return mac
        mac = hmac.new(derive_signing_key(secret, claim.date, claim.region, claim.service), digestmod=hashlib.sha256)
        with self._lock:
            self._keys[cache_key] = mac
            while len(self._keys) > self._cache_size:
                self._keys.popitem(last=False)
        return mac


def derive_signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    k = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def _parse_authorization(value: str) -> dict[str, str]:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignatureException(f"Unsupported AWS 'algorithm': '{algorithm}'.")
    parts: dict[str, str] = {}
    for item in rest.split(","):
        key, sep, val = item.strip().partition("=")
        if sep:
            parts[key] = val
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if not parts.get(k)]
    if missing:
        raise IncompleteSignatureException(
            " ".join(f"Authorization header requires '{k}' parameter." for k in missing)
            + f" Authorization={value.split(' ', 1)[0]}"
        )
    return parts


def _parse_amz_date(value: str) -> dt.datetime:
    # The form every SDK sends, sliced: strptime costs more than the rest of parsing together.
    if len(value) == 16 and value[8] == "T" and value[15] == "Z" and value[:8].isdigit() and value[9:15].isdigit():
        try:
            return dt.datetime(int(value[0:4]), int(value[4:6]), int(value[6:8]), int(value[9:11]),
                               int(value[11:13]), int(value[13:15]), tzinfo=dt.timezone.utc)
        except ValueError:
            pass  # out-of-range fields: the message below, as before
    for fmt in (_AMZ_DATE, "%a, %d %b %Y %H:%M:%S GMT"):
        try:
            return dt.datetime.strptime(value, fmt).replace(tzinfo=dt.timezone.utc)
        except ValueError:
            continue
    raise IncompleteSignatureException(f"Date must be in ISO-8601 'basic format'. Got '{value}'.")


def _header_map(headers: Sequence[tuple[str, str]]) -> dict[str, str]:
    return {k: v for k, v in headers}


def _header_multimap(headers: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in headers:
        if k in out:
            out[k].append(v)
        else:
            out[k] = [v]
    return out


def _canonical_values(values: list[str]) -> str:
    """A header's values for signing: trimmed, inner runs of spaces folded, joined by commas."""
    if len(values) == 1:
        value = values[0]
        if "  " not in value and "\t" not in value and value == value.strip():
            return value  # the usual case, as every SDK sends it
    return ",".join(" ".join(v.split()) for v in values)


def _query_pairs(query_string: str) -> list[tuple[str, str]]:
    pairs = []
    for item in query_string.split("&") if query_string else []:
        k, _, v = item.partition("=")
        pairs.append((unquote_plus(k), unquote_plus(v)))
    return pairs


def _canonical_query(query_string: str, drop_signature: bool) -> str:
    pairs = []
    for k, v in _query_pairs(query_string):
        if drop_signature and k == "X-Amz-Signature":
            continue
        pairs.append((quote(k, safe="-_.~"), quote(v, safe="-_.~")))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


@lru_cache(maxsize=1024)  # every JSON and query call is signed for "/"
def _canonical_path(path: str) -> str:
    """Every service but S3 encodes path segments twice: once on the wire, once more to sign."""
    return quote(quote(_normalize_path(path), safe="/~"), safe="/~")


def _normalize_path(path: str) -> str:
    if not path:
        return "/"
    segments: list[str] = []
    for seg in path.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if segments:
                segments.pop()
            continue
        segments.append(seg)
    normalized = "/" + "/".join(segments)
    if path.endswith("/") and normalized != "/":
        normalized += "/"
    return normalized


def decoded_path(raw_path: bytes) -> str:
    return unquote(raw_path.decode("latin-1"))
