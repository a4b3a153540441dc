"""The minimal baseline: the least a GetSecretValue server must do, on strongroom's HTTP stack.

    .venv/bin/python bench/baseline_server.py --port 8000 --secrets 1000     # serve it by hand
    (bench/run_all.py starts it itself, next to strongroom and moto, and drives all three)

A raw ASGI callable on uvicorn (uvloop + httptools, one worker, access log off; the same
server strongroom runs on) that, for every request:

1. reads the body;
2. verifies the SigV4 signature with strongroom's own verifier
   (`strongroom.auth.sigv4.SigV4Verifier`: parse, then verify against the secret key of
   the access key, from a dict);
3. looks the secret up by name in a dict;
4. decrypts its value with AES-256-GCM (`cryptography`'s AESGCM, a 12-byte nonce per value,
   the secret's name as associated data);
5. answers with a GetSecretValue-shaped JSON body.

No authorization, no audit, no storage, no logging. strongroom's target is at least 75% of
this server's throughput, measured in the same run under the same load. The secrets
(names `bench/secret-00000` ..., values from random.Random(7)) are the ones bench/seed.py
and the harness create, so the response bodies have the same size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import uuid
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

JSON_TYPE = b"application/x-amz-json-1.1"
DEFAULT_ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
DEFAULT_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def build_app(secrets: dict[str, str], credentials: dict[str, str], region: str = "us-east-1",
              account: str = "000000000000") -> Any:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from strongroom.auth.sigv4 import SigV4Verifier, WireRequest
    from strongroom.errors import AwsError

    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    created = dt.datetime.now(dt.timezone.utc).timestamp()
    store: dict[str, tuple[bytes, bytes, bytes, str, str]] = {}
    for name, value in secrets.items():
        nonce = os.urandom(12)
        aad = name.encode()
        arn = f"arn:aws:secretsmanager:{region}:{account}:secret:{name}-AbCdEf"
        store[name] = (nonce, aead.encrypt(nonce, value.encode(), aad), aad, arn, str(uuid.uuid4()))
    verifier = SigV4Verifier()

    async def respond(send: Any, status: int, body: bytes) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", JSON_TYPE), (b"content-length", str(len(body)).encode()),
                                (b"x-amzn-requestid", str(uuid.uuid4()).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks = []
        more = True
        while more:
            msg = await receive()
            chunks.append(msg.get("body", b""))
            more = msg.get("more_body", False)
        body = b"".join(chunks)
        if scope["method"] == "GET":  # /health, /ready
            await respond(send, 200, b'{"status":"ok"}')
            return
        headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]
        wire = WireRequest(method=scope["method"], path=scope["path"],
                           query_string=scope.get("query_string", b"").decode("latin-1"), headers=headers, body=body)
        try:
            claim, parts = verifier.parse(wire, dt.datetime.now(dt.timezone.utc))
            secret_key = credentials.get(claim.access_key_id)
            if secret_key is None:
                await respond(send, 400, b'{"__type":"UnrecognizedClientException"}')
                return
            verifier.verify(wire, claim, parts, secret_key)
        except AwsError as err:
            await respond(send, 400, json.dumps({"__type": type(err).__name__, "message": str(err)}).encode())
            return
        try:
            name = json.loads(body)["SecretId"]
            nonce, sealed, aad, arn, version = store[name]
        except (ValueError, KeyError, TypeError):
            await respond(send, 400, b'{"__type":"ResourceNotFoundException"}')
            return
        value = aead.decrypt(nonce, sealed, aad).decode()
        out = json.dumps({"ARN": arn, "Name": name, "VersionId": version, "SecretString": value,
                          "VersionStages": ["AWSCURRENT"], "CreatedDate": created}, separators=(",", ":"))
        await respond(send, 200, out.encode())

    return app


def main(argv: list[str]) -> int:
    import uvicorn

    from seed import names_for, values_for

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--secrets", type=int, default=1000)
    p.add_argument("--value-size", type=int, default=64)
    p.add_argument("--access-key", default=os.environ.get("BASELINE_ACCESS_KEY", DEFAULT_ACCESS_KEY))
    p.add_argument("--secret-key-env", default="BASELINE_SECRET_KEY",
                   help="environment variable holding the secret access key (default key when unset)")
    a = p.parse_args(argv)
    secret_key = os.environ.get(a.secret_key_env, DEFAULT_SECRET_KEY)
    names = names_for(a.secrets)
    app = build_app(dict(zip(names, values_for(a.secrets, a.value_size))), {a.access_key: secret_key})
    uvicorn.run(app, host=a.host, port=a.port, log_config=None, access_log=False, log_level="warning",
                server_header=False, lifespan="on")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
