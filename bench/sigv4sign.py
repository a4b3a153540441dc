"""A small AWS Signature Version 4 signer for the AWS JSON 1.1 requests of the benchmarks.

It signs exactly what botocore signs for a Secrets Manager call (content-type, host,
x-amz-date, x-amz-target and the amz-sdk-* headers botocore adds), but with the signing
key cached per day, so a signature costs two SHA-256 and one HMAC. `verify_against_botocore`
checks it, byte for byte, against botocore's SigV4Auth before any figure is trusted.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid

ALGORITHM = "AWS4-HMAC-SHA256"
JSON_TYPE = "application/x-amz-json-1.1"
USER_AGENT = "strongroom-bench/1"  # never signed, as in botocore


def amz_date_now() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


class Signer:
    def __init__(self, access_key: str, secret_key: str, region: str, service: str = "secretsmanager"):
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.service = service
        self._keys: dict[str, bytes] = {}

    def _key(self, date: str) -> bytes:
        key = self._keys.get(date)
        if key is None:
            k = ("AWS4" + self.secret_key).encode()
            for part in (date, self.region, self.service, "aws4_request"):
                k = hmac.new(k, part.encode(), hashlib.sha256).digest()
            self._keys[date] = key = k
        return key

    def authorization(self, method: str, path: str, headers: dict[str, str], body: bytes, amz_date: str) -> str:
        """The Authorization header for `headers` (lower-case names, all of them signed)."""
        names = sorted(headers)
        canonical_headers = "".join(f"{n}:{' '.join(headers[n].split())}\n" for n in names)
        signed = ";".join(names)
        canonical = f"{method}\n{path}\n\n{canonical_headers}\n{signed}\n{hashlib.sha256(body).hexdigest()}"
        date = amz_date[:8]
        scope = f"{date}/{self.region}/{self.service}/aws4_request"
        to_sign = f"{ALGORITHM}\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        sig = hmac.new(self._key(date), to_sign.encode(), hashlib.sha256).hexdigest()
        return f"{ALGORITHM} Credential={self.access_key}/{scope}, SignedHeaders={signed}, Signature={sig}"

    def signed_headers(self, host: str, target: str, body: bytes, amz_date: str | None = None,
                       invocation_id: str | None = None) -> dict[str, str]:
        """Every header of a signed POST / for an AWS JSON 1.1 operation, lower-case names."""
        amz_date = amz_date or amz_date_now()
        headers = {
            "host": host,
            "x-amz-target": target,
            "content-type": JSON_TYPE,
            "x-amz-date": amz_date,
            "amz-sdk-invocation-id": invocation_id or str(uuid.uuid4()),
            "amz-sdk-request": "attempt=1; max=3",
        }
        headers["authorization"] = self.authorization("POST", "/", headers, body, amz_date)
        return headers

    def raw_request(self, host: str, target: str, body: bytes, amz_date: str | None = None) -> bytes:
        """One complete HTTP/1.1 keep-alive request, ready to write to a socket."""
        headers = self.signed_headers(host, target, body, amz_date)
        lines = ["POST / HTTP/1.1"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines += [f"user-agent: {USER_AGENT}", f"content-length: {len(body)}", "", ""]
        return "\r\n".join(lines).encode() + body


def verify_against_botocore(signer: Signer, host: str, target: str, body: bytes) -> None:
    """Sign one request with botocore and with `signer`; raise unless the headers agree exactly."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    invocation_id = str(uuid.uuid4())
    req = AWSRequest(method="POST", url=f"http://{host}/", data=body, headers={
        "X-Amz-Target": target,
        "Content-Type": JSON_TYPE,
        "amz-sdk-invocation-id": invocation_id,
        "amz-sdk-request": "attempt=1; max=3",
        "User-Agent": USER_AGENT,
    })
    SigV4Auth(Credentials(signer.access_key, signer.secret_key), signer.service, signer.region).add_auth(req)
    ours = signer.signed_headers(host, target, body, amz_date=req.headers["X-Amz-Date"], invocation_id=invocation_id)
    if ours["authorization"] != req.headers["Authorization"]:
        raise AssertionError(f"signer disagrees with botocore:\n ours     {ours['authorization']}\n"
                             f" botocore {req.headers['Authorization']}")
