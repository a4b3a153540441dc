"""The alert detector: audit records in, alerts out (a consumer of the audit forwarder).

Rules:
- secret_scheduled_for_deletion: a successful DeleteSecret.
- resource_policy_changed: a successful PutResourcePolicy / DeleteResourcePolicy (or KMS PutKeyPolicy).
- rotation_failed: a RotationFailed service event, or RotateSecret failing for a reason other
  than the caller's (access, validation, a missing secret).
- access_denied_burst: `threshold` AccessDenied answers for one secret within `window`
  seconds, alerted once per window.
The burst windows live in memory: a restart forgets a burst in progress, not an alert raised.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Connection

from strongroom import metrics
from strongroom.alerts.outbox import outbox_rows
from strongroom.alerts.settings import (
    ACCESS_DENIED_BURST,
    POLICY_CHANGED,
    ROTATION_FAILED,
    SCHEDULED_FOR_DELETION,
    AlertSettings,
)
from strongroom.storage import audit_store as q

_CALLERS_FAULT = frozenset({"AccessDeniedException", "ResourceNotFoundException", "ValidationException",
                            "InvalidParameterException", "SerializationException", "UnrecognizedClientException",
                            "InvalidSignatureException", "IncompleteSignatureException", "ExpiredTokenException",
                            "MissingAuthenticationTokenException"})
_DENIED = frozenset({"AccessDeniedException", "AccessDenied"})


def _resource(record: dict[str, Any]) -> str | None:
    for res in record.get("resources") or ():
        if res.get("type") == "AWS::SecretsManager::Secret":
            return str(res["ARN"])
    params = record.get("requestParameters") or {}
    secret = params.get("secretId") if isinstance(params, dict) else None
    return str(secret) if secret else None


def _epoch(record: dict[str, Any]) -> float:
    try:
        return dt.datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=dt.timezone.utc).timestamp()
    except (KeyError, ValueError):
        return 0.0


def make_alert(event_type: str, record: dict[str, Any] | None, resource: str | None, summary: str,
               detail: dict[str, Any], event_ids: list[str]) -> dict[str, Any]:
    """The webhook payload: what happened, where, and which audit events show it (no secrets)."""
    return {
        "id": str(uuid.uuid4()),
        "type": event_type,
        "time": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "account": (record or {}).get("recipientAccountId"),
        "region": (record or {}).get("awsRegion"),
        "resource": resource,
        "summary": summary,
        "detail": detail,
        "eventIds": event_ids,
    }


class Detector:
    name = "alerts"

    def __init__(self, settings: AlertSettings):
        self.settings = settings
        self._denied: dict[str, deque[tuple[float, str]]] = {}
        self._quiet_until: dict[str, float] = {}

    def deliver(self, records: list[tuple[int, str]]) -> Callable[[Connection], None] | None:
        alerts = [a for _, text in records for a in self.check(json.loads(text))]
        if not alerts:
            return None
        for alert in alerts:
            metrics.ALERTS.labels(alert["type"]).inc()
        rows = [row for alert in alerts for row in outbox_rows(self.settings, alert)]
        return lambda conn: q.enqueue(conn, rows)

    def check(self, r: dict[str, Any]) -> list[dict[str, Any]]:
        source, name, error = r.get("eventSource"), r.get("eventName"), r.get("errorCode")
        who = (r.get("userIdentity") or {}).get("arn")
        ids = [r.get("eventID", "")]
        resource = _resource(r)
        if source == "secretsmanager.amazonaws.com":
            if name == "DeleteSecret" and error is None:
                params = r.get("requestParameters") or {}
                detail = {"principal": who, "deletionDate": (r.get("responseElements") or {}).get("deletionDate"),
                          "forceDeleteWithoutRecovery": bool(params.get("forceDeleteWithoutRecovery")),
                          "recoveryWindowInDays": params.get("recoveryWindowInDays")}
                return [make_alert(SCHEDULED_FOR_DELETION, r, resource,
                                   f"{resource} was scheduled for deletion by {who}", detail, ids)]
            if name in ("PutResourcePolicy", "DeleteResourcePolicy") and error is None:
                return [make_alert(POLICY_CHANGED, r, resource, f"{name} on {resource} by {who}",
                                   {"principal": who, "operation": name}, ids)]
            if name == "RotateSecret" and error is not None and error not in _CALLERS_FAULT:
                return [make_alert(ROTATION_FAILED, r, resource, f"rotation of {resource} failed: {error}",
                                   {"principal": who, "errorCode": error}, ids)]
            if name == "RotationFailed" and r.get("eventType") == "AwsServiceEvent":
                detail = dict(r.get("serviceEventDetails") or {})
                return [make_alert(ROTATION_FAILED, r, resource, f"rotation of {resource} failed", detail, ids)]
        if source == "kms.amazonaws.com" and name == "PutKeyPolicy" and error is None:
            key = ((r.get("resources") or [{}])[0]).get("ARN")
            return [make_alert(POLICY_CHANGED, r, key, f"PutKeyPolicy on {key} by {who}",
                               {"principal": who, "operation": name}, ids)]
        if error in _DENIED and resource is not None and source == "secretsmanager.amazonaws.com":
            return self._burst(r, resource)
        return []

    def _burst(self, r: dict[str, Any], resource: str) -> list[dict[str, Any]]:
        s = self.settings
        now = _epoch(r)
        window = self._denied.setdefault(resource, deque())
        window.append((now, r.get("eventID", "")))
        while window and window[0][0] < now - s.access_denied_window_seconds:
            window.popleft()
        if len(window) < s.access_denied_threshold or now < self._quiet_until.get(resource, 0.0):
            return []
        self._quiet_until[resource] = now + s.access_denied_window_seconds
        ids = [eid for _, eid in window]
        principals = sorted({str((r.get("userIdentity") or {}).get("arn"))})
        window.clear()
        if len(self._denied) > 10_000:  # bound memory under a scan of many names
            self._denied.clear()
        return [make_alert(ACCESS_DENIED_BURST, r, resource,
                           f"{len(ids)} AccessDenied answers for {resource} within "
                           f"{s.access_denied_window_seconds:g} s",
                           {"count": len(ids), "windowSeconds": s.access_denied_window_seconds,
                            "lastPrincipals": principals}, ids)]
