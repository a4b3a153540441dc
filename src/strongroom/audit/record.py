"""One API call as a CloudTrail record (eventVersion 1.11), built from plain request facts.

The HTTP gateway fills a `Call` for every request it answers (allowed, denied or failed,
whether or not the caller was identified) and this module turns it into the record; the
services never see it. Nothing secret can reach the record: parameters and results pass
through `redact`, error messages are scrubbed of every hidden value.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from strongroom.audit import catalog
from strongroom.audit.redact import Redactor, operation_model, request_parameters, response_elements
from strongroom.context import Principal
from strongroom.ids import ordered_id

EVENT_VERSION = "1.11"


@dataclass(slots=True)
class Call:
    """What the gateway knows about one answered request."""

    service: str  # the SigV4 signing name: secretsmanager, kms, iam, sts, cloudtrail ("" if unknown)
    operation: str
    region: str
    request_id: str
    time: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    source_ip: str = ""
    user_agent: str = ""
    principal: Principal | None = None
    access_key_id: str | None = None  # from the credential scope when no principal was resolved
    model_name: str | None = None  # botocore model holding the operation, when it is a known one
    params: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """A record ready to append, with the columns queries use."""

    record: dict[str, Any]
    event_id: str
    event_time: float
    account_id: str | None
    event_source: str
    event_name: str
    read_only: bool
    principal_arn: str | None
    username: str | None
    access_key_id: str | None
    error_code: str | None
    resource_names: list[str]
    resource_types: list[str]


_last_second: tuple[int, str] = (-1, "")


def iso(moment: dt.datetime) -> str:
    """CloudTrail's time format, to the second (cached: most calls fall in the second before)."""
    global _last_second
    second = int(moment.timestamp())
    cached = _last_second
    if cached[0] == second:
        return cached[1]
    text = moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    _last_second = (second, text)
    return text


# The userIdentity of recent principals: principals are immutable and the credential cache
# hands out the same object request after request. Records share these dicts, never change them.
_identities: dict[int, tuple[Principal, dict[str, Any]]] = {}
_MAX_IDENTITIES = 1024


def user_identity(p: Principal | None, access_key_id: str | None) -> dict[str, Any]:
    if p is None:
        # Authentication failed or never started: CloudTrail's type for a caller it could not identify.
        out: dict[str, Any] = {"type": "Unknown", "principalId": "", "accountId": ""}
        if access_key_id:
            out["accessKeyId"] = access_key_id
        return out
    known = _identities.get(id(p))
    if known is not None and known[0] is p:
        return known[1]
    out = _identity_of(p)
    if len(_identities) >= _MAX_IDENTITIES:
        _identities.clear()
    _identities[id(p)] = (p, out)
    return out


def _identity_of(p: Principal) -> dict[str, Any]:
    out: dict[str, Any] = {"type": p.type, "principalId": p.principal_id, "arn": p.arn, "accountId": p.account_id,
                           "accessKeyId": p.access_key_id}
    if p.type == "AssumedRole":
        role_id = p.principal_id.split(":", 1)[0]
        created = p.session_created
        out["sessionContext"] = {
            "sessionIssuer": {"type": "Role", "principalId": role_id, "arn": p.role_arn,
                              "accountId": p.account_id, "userName": p.role_name},
            "attributes": {
                "creationDate": iso(dt.datetime.fromtimestamp(created, dt.timezone.utc)) if created else None,
                "mfaAuthenticated": "false",
            },
        }
    else:
        out["userName"] = p.name
    return out


def build(call: Call) -> Event:
    """The CloudTrail record of `call`, never holding a secret value, key or token."""
    op = operation_model(call.model_name, call.operation) if call.model_name else None
    redactor = Redactor()
    params = request_parameters(redactor, op, call.params)
    # A failed call has no result; a read's result is not recorded (CloudTrail logs null) nor walked.
    logged = call.error_code is None and catalog.logs_response(call.operation)
    elements = response_elements(redactor, op, call.result) if logged else None
    message = redactor.scrub(call.error_message)
    found = catalog.resources(call.params, call.result, call.error_message)
    read_only = catalog.is_read_only(call.operation)
    p = call.principal
    account = p.account_id if p is not None else (found[0]["accountId"] if found else None)
    source = catalog.event_source(call.service)
    event_id = ordered_id()
    record: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": user_identity(p, call.access_key_id),
        "eventTime": iso(call.time),
        "eventSource": source,
        "eventName": call.operation,
        "awsRegion": call.region,
        "sourceIPAddress": call.source_ip,
        "userAgent": call.user_agent,
    }
    if call.error_code is not None:
        record["errorCode"] = call.error_code
        record["errorMessage"] = message or ""
    record.update({
        "requestParameters": params,
        "responseElements": elements,
        "requestID": call.request_id,
        "eventID": event_id,
        "readOnly": read_only,
    })
    if found:
        record["resources"] = found
    record.update({"eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": account,
                   "eventCategory": "Management"})
    return Event(
        record=record, event_id=event_id, event_time=call.time.timestamp(), account_id=account,
        event_source=source, event_name=call.operation, read_only=read_only,
        principal_arn=p.arn if p is not None else None,
        username=(p.session_name or p.name) if p is not None else None,
        access_key_id=p.access_key_id if p is not None else call.access_key_id,
        error_code=call.error_code,
        resource_names=catalog.lookup_names(call.params, found),
        resource_types=sorted({r["type"] for r in found}),
    )
