"""LookupEvents: the audit trail as CloudTrail serves it, so `aws cloudtrail lookup-events` works.

A caller sees the events of its own account, newest first, filtered by at most one lookup
attribute and a time range (the last 90 days by default, as CloudTrail). The call is
authorized by the policy engine as cloudtrail:LookupEvents.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from strongroom.auth import policy
from strongroom.auth.authorize import decide
from strongroom.context import RequestContext
from strongroom.errors import AccessDeniedException, AwsError
from strongroom.storage import Store
from strongroom.storage import audit_store as q

TARGET_PREFIX = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101"
DEFAULT_WINDOW = 90 * 86400.0
_ATTRIBUTES = {"EventId": "event_id", "EventName": "event_name", "ReadOnly": "read_only", "Username": "principal",
               "ResourceType": "resource_type", "ResourceName": "resource", "EventSource": "event_source",
               "AccessKeyId": "access_key_id"}


def _error(code: str, message: str) -> AwsError:
    return AwsError(message, code=code, status=400)


@dataclass
class Deps:
    store: Store


def _filter(ctx: RequestContext, req: dict[str, Any]) -> q.EventFilter:
    attrs = req.get("LookupAttributes") or []
    if len(attrs) > 1:
        raise _error("InvalidLookupAttributesException", "You can specify only one lookup attribute.")
    now = dt.datetime.now(dt.timezone.utc)
    start: dt.datetime | None = req.get("StartTime")
    end: dt.datetime | None = req.get("EndTime")
    if start is not None and end is not None and start > end:
        raise _error("InvalidTimeRangeException", "Start time must be earlier than end time.")
    f = q.EventFilter(account_id=ctx.account_id,
                      start=start.timestamp() if start else (end or now).timestamp() - DEFAULT_WINDOW,
                      end=end.timestamp() if end else None)
    for attr in attrs:
        key, value = attr.get("AttributeKey"), attr.get("AttributeValue")
        if key not in _ATTRIBUTES or not value:
            raise _error("InvalidLookupAttributesException", "The lookup attribute is not valid.")
        if key == "ReadOnly":
            if value not in ("true", "false"):
                raise _error("InvalidLookupAttributesException", "ReadOnly must be true or false.")
            f.read_only = value == "true"
        else:
            setattr(f, _ATTRIBUTES[key], value)
    return f


def _fingerprint(req: dict[str, Any]) -> str:
    """The query a token continues (the default start time moves, so it is not part of it)."""
    asked = {k: req.get(k) for k in ("LookupAttributes", "StartTime", "EndTime", "EventCategory")}
    return hashlib.sha256(json.dumps(asked, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _token(req: dict[str, Any], before: int) -> str:
    raw = json.dumps({"b": before, "f": _fingerprint(req)}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _before(req: dict[str, Any], token: str | None) -> int | None:
    if token is None:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        before, fp = data["b"], data["f"]
        # An event's seq: a whole number in the database's integer range (the token is not signed).
        if isinstance(before, bool) or not isinstance(before, int) or not 0 <= before < 2**63:
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error, RecursionError):
        raise _error("InvalidNextTokenException", "Invalid NextToken.") from None
    if fp != _fingerprint(req):  # a token belongs to the query that produced it
        raise _error("InvalidNextTokenException", "NextToken does not match the request's parameters.")
    return before


def _event(row: Any) -> dict[str, Any]:
    record = json.loads(row.record)
    return {
        "EventId": row.event_id,
        "EventName": row.event_name,
        "ReadOnly": "true" if row.read_only else "false",
        "AccessKeyId": row.access_key_id,
        "EventTime": dt.datetime.fromtimestamp(row.event_time, dt.timezone.utc),
        "EventSource": row.event_source,
        "Username": row.username,
        "Resources": [{"ResourceType": r["type"], "ResourceName": r["ARN"]} for r in record.get("resources") or ()],
        "CloudTrailEvent": row.record,
    }


def lookup_events(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    request, result = decide(ctx, "cloudtrail:LookupEvents", "*", policy.global_condition_keys(ctx))
    if not result.allowed:
        raise AccessDeniedException(policy.access_denied_message(request, result))
    f = _filter(ctx, req)
    before = _before(req, req.get("NextToken"))
    if req.get("EventCategory") == "insight":  # strongroom records no Insights events
        return {"Events": []}
    limit = req.get("MaxResults") or 50
    with deps.store.read() as tx:
        rows = q.find_events(tx.conn, f, limit=limit + 1, before_seq=before)
    out: dict[str, Any] = {"Events": [_event(r) for r in rows[:limit]]}
    if len(rows) > limit:
        out["NextToken"] = _token(req, int(rows[limit - 1].seq))
    return out


Operation = Callable[[Deps, RequestContext, dict[str, Any]], dict[str, Any]]
OPERATIONS: dict[str, Operation] = {"LookupEvents": lookup_events}


class CloudTrail:
    signing_name = "cloudtrail"
    target_prefix = TARGET_PREFIX
    model_name = "cloudtrail"

    def __init__(self, deps: Deps):
        self.deps = deps

    def operation(self, name: str) -> Operation | None:
        return OPERATIONS.get(name)

    def call(self, name: str, ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
        return OPERATIONS[name](self.deps, ctx, request)
