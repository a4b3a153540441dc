"""Signing and posting one webhook delivery.

Receivers verify `X-Strongroom-Signature: t=<unix seconds>,v1=<hex>` where hex is
HMAC-SHA256(secret, "<t>." + raw body), reject stale timestamps, and deduplicate on
`X-Strongroom-Delivery` (the same for every retry of one alert).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import time
from urllib.parse import urlsplit

SIGNATURE_HEADER = "X-Strongroom-Signature"


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, body: bytes, header: str, *, tolerance: float = 300.0, now: float | None = None) -> bool:
    """What a receiver does (used by tests and shown in docs/monitoring.md)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


class DeliveryError(Exception):
    pass


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> None:
    """POST once; raise DeliveryError unless answered 2xx (redirects are not followed)."""
    parts = urlsplit(url)
    conn_type = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = conn_type(parts.hostname or "", parts.port, timeout=timeout)
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json",
                                                       "User-Agent": "strongroom-alerts/1", **headers})
        resp = conn.getresponse()
        resp.read()
        if not 200 <= resp.status < 300:
            raise DeliveryError(f"HTTP {resp.status}")
    except OSError as exc:
        raise DeliveryError(type(exc).__name__) from None
    except http.client.HTTPException as exc:
        raise DeliveryError(type(exc).__name__) from None
    finally:
        conn.close()
