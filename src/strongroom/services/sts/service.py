"""STS operations: who am I, and temporary credentials for a role.

Session credentials are an ASIA... access key id, a secret stored only wrapped by the
root key, and a session token stored only as its SHA-256 digest.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import zlib
from collections.abc import Callable
from typing import Any

from strongroom.auth.credentials import (
    assumed_role_arn,
    new_access_key_id,
    new_secret_access_key,
    session_purpose,
    token_hash,
)
from strongroom.context import RequestContext
from strongroom.errors import AccessDenied, AwsError, PackedPolicyTooLarge, ValidationError
from strongroom.services.iam.core import Deps, check_identity_policy, check_tags, ts
from strongroom.services.sts import trust
from strongroom.storage import iam_store
from strongroom.storage.iam_store import RoleRecord, SessionRecord
from strongroom.storage.retry import retrying

Operation = Callable[[Deps, RequestContext, dict[str, Any]], dict[str, Any]]

ROLE_ARN = re.compile(r"arn:aws:iam::(\d{12}):role(/(?:[\x21-\x7e]*/)?)([\w+=,.@-]{1,64})")
POLICY_ARN = re.compile(r"arn:aws:iam::(\d{12}|aws):policy/(?:[\x21-\x7e]*/)?[\w+=,.@-]{1,128}")
DEFAULT_DURATION = 3600
CHAINED_MAX_DURATION = 3600
MAX_SESSION_POLICY = 2048
MAX_POLICY_ARNS = 10
PACKED_LIMIT = 2048  # bytes of compressed session policies and tags
KEEP_EXPIRED = 7 * 86400.0  # expired sessions answer ExpiredToken this long before they are purged


def get_caller_identity(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    p = ctx.principal
    return {"UserId": p.principal_id, "Account": p.account_id, "Arn": p.arn}


def get_access_key_info(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key_id = req["AccessKeyId"]
    with deps.store.read() as tx:
        key = tx.get_access_key(key_id)
        session = iam_store.get_session(tx.conn, key_id) if key is None else None
    account = key.account_id if key else session.account_id if session else None
    if account is None:
        raise ValidationError(f"The access key {key_id} is not valid.")
    return {"Account": account}


def _denied(ctx: RequestContext, action: str, arn: str) -> AwsError:
    return AccessDenied(f"User: {ctx.principal.arn} is not authorized to perform: {action} on resource: {arn}")


def _session_tags(ctx: RequestContext, req: dict[str, Any]) -> tuple[list[dict[str, str]], list[str]]:
    """The new session's tags and transitive keys: the caller's transitive tags, then the request's."""
    tags = [dict(t) for t in req.get("Tags", [])]
    check_tags(tags)
    explicit = {t["Key"].lower() for t in tags}
    transitive = list(req.get("TransitiveTagKeys", []))
    missing = [k for k in transitive if k.lower() not in explicit]
    if missing:
        raise ValidationError(f"Transitive tag keys {', '.join(missing)} are not among the session tags.")
    inherited = [k for k in ctx.principal.transitive_tag_keys if k in ctx.principal.tags]
    for key in inherited:
        if key.lower() in explicit:
            raise ValidationError(f"The tag key {key} is a transitive tag of the calling session and can't be set.")
        tags.insert(0, {"Key": key, "Value": ctx.principal.tags[key]})
        transitive.append(key)
    if len(tags) > 50:
        raise ValidationError("The number of session tags exceeds 50.")
    return tags, transitive


def _session_policies(req: dict[str, Any]) -> tuple[str | None, list[str]]:
    policy = req.get("Policy")
    if policy is not None:
        if len(policy) > MAX_SESSION_POLICY:
            raise ValidationError(f"1 validation error detected: Value at 'policy' failed to satisfy constraint: "
                                  f"Member must have length less than or equal to {MAX_SESSION_POLICY}")
        check_identity_policy(policy)
    arns = [d["arn"] for d in req.get("PolicyArns", []) if "arn" in d]
    if len(arns) > MAX_POLICY_ARNS:
        raise ValidationError(f"1 validation error detected: Value at 'policyArns' failed to satisfy constraint: "
                              f"Member must have length less than or equal to {MAX_POLICY_ARNS}")
    for arn in arns:
        if not POLICY_ARN.fullmatch(arn):
            raise ValidationError(f"{arn} is invalid")
    return policy, arns


def _packed_size(policy: str | None, arns: list[str], tags: list[dict[str, str]]) -> int:
    """Percent of the packed-policy budget used by session policies and tags (ceil)."""
    compact = json.dumps(json.loads(policy), separators=(",", ":")) if policy else ""
    packed = zlib.compress("\n".join([compact, *arns, *(f"{t['Key']}={t['Value']}" for t in tags)]).encode(), 9)
    return math.ceil(100 * len(packed) / PACKED_LIMIT)


def _load_role(deps: Deps, ctx: RequestContext, arn: str) -> RoleRecord:
    m = ROLE_ARN.fullmatch(arn)
    if m is None:
        raise ValidationError(f"{arn} is invalid")
    account, path, name = m.groups()
    with deps.store.read() as tx:
        role = iam_store.get_role(tx.conn, account, name)
    # A role that does not exist is indistinguishable from one the caller may not assume.
    if role is None or role.path != path:
        raise _denied(ctx, "sts:AssumeRole", arn)
    return role


def assume_role(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    arn, session_name = req["RoleArn"], req["RoleSessionName"]
    role = _load_role(deps, ctx, arn)
    trust_doc = json.loads(role.assume_role_policy)
    for action in ("sts:AssumeRole", "sts:TagSession") if req.get("Tags") else ("sts:AssumeRole",):
        if not trust.allows(trust_doc, ctx, action, role.arn, role.account_id, req):
            raise _denied(ctx, action, arn)
    tags, transitive = _session_tags(ctx, req)
    duration = req.get("DurationSeconds", DEFAULT_DURATION)
    if ctx.principal.type == "AssumedRole" and duration > CHAINED_MAX_DURATION:
        raise ValidationError("The requested DurationSeconds exceeds the 1 hour session limit for roles assumed "
                              "by role chaining.")
    if duration > role.max_session_duration:
        raise ValidationError("The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
    policy, policy_arns = _session_policies(req)
    packed = None
    if policy is not None or policy_arns or tags:
        packed = _packed_size(policy, policy_arns, tags)
        if packed > 100:
            raise PackedPolicyTooLarge(f"Packed policy consumes {packed}% of allotted space, please use smaller "
                                       "policy.")

    now = deps.clock()
    key_id, secret = new_access_key_id("ASIA"), new_secret_access_key()
    session_token = secrets.token_urlsafe(144)
    session = SessionRecord(
        access_key_id=key_id, account_id=role.account_id,
        secret_wrapped=deps.root.wrap(secret.encode(), session_purpose(key_id)),
        token_hash=token_hash(session_token), expiration=now + duration, role_name=role.role_name,
        role_id=role.role_id, session_name=session_name, source_arn=ctx.principal.arn, created_date=now,
        session_tags=tags, transitive_tag_keys=transitive, session_policy=policy, policy_arns=policy_arns,
        source_identity=req.get("SourceIdentity"),
    )
    with deps.store.write() as tx:
        iam_store.purge_expired_sessions(tx.conn, now - KEEP_EXPIRED)
        current = iam_store.get_role(tx.conn, role.account_id, role.role_name)
        if current is None or current.role_id != role.role_id:
            raise _denied(ctx, "sts:AssumeRole", arn)
        current.last_used_date, current.last_used_region = now, ctx.region
        iam_store.update_role(tx.conn, current)
        iam_store.insert_session(tx.conn, session)
    out: dict[str, Any] = {
        "Credentials": {"AccessKeyId": key_id, "SecretAccessKey": secret, "SessionToken": session_token,
                        "Expiration": ts(now + duration)},
        "AssumedRoleUser": {"AssumedRoleId": f"{role.role_id}:{session_name}",
                            "Arn": assumed_role_arn(role.account_id, role.role_name, session_name)},
    }
    if packed is not None:
        out["PackedPolicySize"] = packed
    if session.source_identity:
        out["SourceIdentity"] = session.source_identity
    return out


OPERATIONS: dict[str, Operation] = {
    "GetCallerIdentity": get_caller_identity,
    "GetAccessKeyInfo": get_access_key_info,
    "AssumeRole": assume_role,
}


class STS:
    """The STS service bound to its collaborators (AWS query protocol)."""

    signing_name = "sts"
    model_name = "sts"

    def __init__(self, deps: Deps):
        self.deps = deps

    def operation(self, name: str) -> Operation | None:
        return OPERATIONS.get(name)

    def call(self, name: str, ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
        return retrying(OPERATIONS[name])(self.deps, ctx, request)  # see storage/retry.py
