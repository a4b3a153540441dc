"""Limit/Marker paging for KMS List* operations.

A marker names the sort key of the last item returned (keyset paging), so
keys or aliases created or deleted between pages neither repeat nor skip an
item that existed throughout. Markers carry a MAC so a hand-edited one is an
InvalidMarkerException rather than a confusing page.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from strongroom.errors import InvalidMarkerException

T = TypeVar("T")
_KEY = hashlib.sha256(b"strongroom/kms-marker/v1").digest()
_INVALID = "The request was rejected because the marker is not valid."


def _encode(kind: str, after: Any) -> str:
    body = json.dumps({"k": kind, "a": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(hmac.new(_KEY, body, hashlib.sha256).digest()[:12] + body).decode()


def _decode(marker: str, kind: str) -> Any:
    try:
        raw = base64.urlsafe_b64decode(marker.encode())
        mac, body = raw[:12], raw[12:]
        if not hmac.compare_digest(mac, hmac.new(_KEY, body, hashlib.sha256).digest()[:12]):
            raise ValueError
        state = json.loads(body)
        if state.get("k") != kind:
            raise ValueError
        return state["a"]
    except (ValueError, TypeError, KeyError, UnicodeError, AttributeError, RecursionError):
        raise InvalidMarkerException(_INVALID) from None


def page(items: Sequence[T], sort_key: Callable[[T], Any], req: dict[str, Any], kind: str, *,
         default_limit: int, max_limit: int | None = None) -> tuple[list[T], dict[str, Any]]:
    """(items of this page, the Truncated/NextMarker fields of the response)."""
    limit = req.get("Limit") or default_limit
    if max_limit is not None:
        limit = min(limit, max_limit)
    ordered = sorted(items, key=sort_key)
    if "Marker" in req:
        after = _decode(req["Marker"], kind)
        try:  # signed, but never trusted blindly: a position of another type names no item
            ordered = [i for i in ordered if _jsonable(sort_key(i)) > after]
        except TypeError:
            raise InvalidMarkerException(_INVALID) from None
    chunk = ordered[:limit]
    if len(ordered) > limit:
        return chunk, {"Truncated": True, "NextMarker": _encode(kind, _jsonable(sort_key(chunk[-1])))}
    return chunk, {"Truncated": False}


def _jsonable(value: Any) -> Any:
    # Tuples come back from JSON as lists; compare like with like.
    return list(value) if isinstance(value, tuple) else value
