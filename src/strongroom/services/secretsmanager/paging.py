"""Opaque, tamper-evident NextToken values for keyset pagination.

A token names the last item returned (its sort key and id) rather than an
offset, so creating or deleting secrets between pages neither skips nor
repeats an item that existed throughout.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from typing import Any

from strongroom.errors import InvalidNextTokenException

# Tokens need integrity, not secrecy; a per-deployment key would be nicer but a
# process-independent constant keeps tokens valid across workers and nodes.
_KEY = hashlib.sha256(b"strongroom/next-token/v1").digest()


def encode(state: dict[str, Any]) -> str:
    body = json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
    mac = hmac.new(_KEY, body, hashlib.sha256).digest()[:12]
    return base64.urlsafe_b64encode(mac + body).decode()


def decode(token: str, kind: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(token.encode())
        mac, body = raw[:12], raw[12:]
        if not hmac.compare_digest(mac, hmac.new(_KEY, body, hashlib.sha256).digest()[:12]):
            raise ValueError
        state = json.loads(body)
        if not isinstance(state, dict) or state.get("k") != kind:
            raise ValueError
        return state
    except (ValueError, TypeError, UnicodeError, RecursionError):
        raise InvalidNextTokenException("The NextToken value is invalid.") from None


def nonce() -> str:
    return os.urandom(4).hex()
