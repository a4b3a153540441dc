"""Keys themselves: CreateKey, DescribeKey, ListKeys, UpdateKeyDescription, Enable/DisableKey,
Schedule/CancelKeyDeletion, and the purge of keys whose waiting period has passed."""

from __future__ import annotations

import logging
from typing import Any

from strongroom.context import RequestContext
from strongroom.errors import (
    KMSInvalidStateException,
    NotFoundException,
    UnsupportedOperationException,
    ValidationException,
)
from strongroom.services.kms import paging
from strongroom.services.kms.access import authorize_identity, authorize_key
from strongroom.services.kms.core import (
    DAY,
    DISABLED,
    ENABLED,
    PENDING_DELETION,
    SYMMETRIC_DEFAULT,
    Caller,
    KmsDeps,
    key_metadata,
    require_customer_managed,
    require_not_pending,
    resolve_key,
    ts,
)
from strongroom.services.kms.materials import SECRETS_MANAGER_ALIAS, create_key as insert_new_key, ensure_managed_key
from strongroom.services.kms.policies import check_policy, default_key_policy
from strongroom.services.kms.tags import check_tags
from strongroom.storage import kms_store as ks

log = logging.getLogger("strongroom.kms")
KEY_CHANGED = "kms-key"  # change-event topic: every node drops the key's cached material
UNSUPPORTED_SPEC = ("strongroom supports only symmetric encryption keys "
                    "(KeySpec SYMMETRIC_DEFAULT, KeyUsage ENCRYPT_DECRYPT).")


def create_key(deps: KmsDeps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    if "KeySpec" in req and "CustomerMasterKeySpec" in req:
        raise ValidationException("You cannot specify KeySpec and CustomerMasterKeySpec in the same request. "
                                  "CustomerMasterKeySpec is deprecated.")
    spec = req.get("KeySpec") or req.get("CustomerMasterKeySpec") or SYMMETRIC_DEFAULT
    usage = req.get("KeyUsage") or "ENCRYPT_DECRYPT"
    if spec == SYMMETRIC_DEFAULT and usage != "ENCRYPT_DECRYPT":
        raise ValidationException(f"KeyUsage {usage} is not compatible with KeySpec {spec}")
    if spec != SYMMETRIC_DEFAULT:
        raise UnsupportedOperationException(UNSUPPORTED_SPEC)
    if req.get("Origin", "AWS_KMS") != "AWS_KMS" or req.get("CustomKeyStoreId") or req.get("XksKeyId"):
        raise UnsupportedOperationException("strongroom generates key material itself (Origin AWS_KMS); "
                                            "imported material and custom key stores aren't supported.")
    if req.get("MultiRegion"):
        raise UnsupportedOperationException("Multi-Region keys aren't supported by strongroom.")
    tags = req.get("Tags", [])
    check_tags(tags)
    authorize_identity(ctx, "CreateKey", extra={
        "kms:KeySpec": spec, "kms:KeyUsage": usage, "kms:KeyOrigin": req.get("Origin", "AWS_KMS"),
        "kms:BypassPolicyLockoutSafetyCheck": bool(req.get("BypassPolicyLockoutSafetyCheck", False)),
        **{f"aws:RequestTag/{t['TagKey']}": t["TagValue"] for t in tags},
        **({"aws:TagKeys": [t["TagKey"] for t in tags]} if tags else {}),
    })
    policy = req.get("Policy")
    if policy is None:
        policy = default_key_policy(ctx.account_id)
    else:
        check_policy(policy, account_id=ctx.account_id, caller_arn=ctx.principal.arn,
                     bypass_lockout=req.get("BypassPolicyLockoutSafetyCheck", False))
    with deps.store.write() as tx:
        key = insert_new_key(deps, tx, ctx.account_id, ctx.region, policy=policy,
                             description=req.get("Description", ""), tags=tags)
    log.info("created KMS key", extra={"key_arn": key.arn})
    return {"KeyMetadata": key_metadata(key)}


def describe_key(deps: KmsDeps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    caller = Caller.of(ctx)
    with deps.store.read() as tx:
        try:
            return {"KeyMetadata": key_metadata(resolve_key(tx, caller, req["KeyId"], action="DescribeKey"))}
        except NotFoundException:
            if req["KeyId"] not in (SECRETS_MANAGER_ALIAS, _alias_arn_of(ctx, SECRETS_MANAGER_ALIAS)):
                raise
    # DescribeKey on a predefined AWS alias creates the AWS managed key, as KMS does.
    with deps.store.write() as tx:
        key = ensure_managed_key(deps, tx, ctx.account_id, ctx.region)
    authorize_key(caller, key, "DescribeKey", request_alias=req["KeyId"])
    return {"KeyMetadata": key_metadata(key)}


def _alias_arn_of(ctx: RequestContext, name: str) -> str:
    return f"arn:aws:kms:{ctx.region}:{ctx.account_id}:{name}"


def list_keys(deps: KmsDeps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    authorize_identity(ctx, "ListKeys")
    with deps.store.read() as tx:
        keys = ks.list_keys(tx, ctx.account_id, ctx.region)
    chunk, more = paging.page(keys, lambda k: k.key_id, req, "keys", default_limit=100)
    return {"Keys": [{"KeyId": k.key_id, "KeyArn": k.arn} for k in chunk], **more}


def update_key_description(deps: KmsDeps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    caller = Caller.of(ctx)
    with deps.store.write() as tx:
        key = resolve_key(tx, caller, req["KeyId"], action="UpdateKeyDescription", aliases=False)
        require_customer_managed(key, caller, "UpdateKeyDescription")
        require_not_pending(key)
        key.description = req["Description"]
        ks.update_key(tx, key)
    return {}


def enable_key(deps: KmsDeps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return _set_enabled(deps, ctx, req["KeyId"], True)


def disable_key(deps: KmsDeps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return _set_enabled(deps, ctx, req["KeyId"], False)


def _set_enabled(deps: KmsDeps, ctx: RequestContext, ref: str, enabled: bool) -> dict[str, Any]:
    caller = Caller.of(ctx)
    action = "EnableKey" if enabled else "DisableKey"
    with deps.store.write() as tx:
        key = resolve_key(tx, caller, ref, action=action, aliases=False)
        require_customer_managed(key, caller, action)
        require_not_pending(key)
        key.key_state = ENABLED if enabled else DISABLED
        ks.update_key(tx, key)
        tx.publish(KEY_CHANGED, key.key_id)
    deps.cache.invalidate(key.key_id)
    return {}


def schedule_key_deletion(deps: KmsDeps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    window = req.get("PendingWindowInDays", 30)
    if window < 7:
        raise ValidationException(f"1 validation error detected: Value '{window}' at 'pendingWindowInDays' "
                                  "failed to satisfy constraint: Member must have value greater than or equal to 7")
    if window > 30:
        raise ValidationException(f"1 validation error detected: Value '{window}' at 'pendingWindowInDays' "
                                  "failed to satisfy constraint: Member must have value less than or equal to 30")
    caller = Caller.of(ctx)
    with deps.store.write() as tx:
        key = resolve_key(tx, caller, req["KeyId"], action="ScheduleKeyDeletion", aliases=False)
        require_customer_managed(key, caller, "ScheduleKeyDeletion")
        require_not_pending(key)
        key.key_state = PENDING_DELETION
        key.deletion_date = deps.clock() + window * DAY
        key.pending_window_days = window
        ks.update_key(tx, key)
        tx.publish(KEY_CHANGED, key.key_id)
        in_use = ks.secrets_sealed_with(tx, key.arn)
    deps.cache.invalidate(key.key_id)
    if in_use:
        # KMS has no field for this; the operator learns it from the log (and from
        # GetSecretValue failing, which CancelKeyDeletion + EnableKey undo).
        log.warning("KMS key scheduled for deletion still protects secret values",
                    extra={"key_arn": key.arn, "secrets": in_use, "deletion_date": key.deletion_date})
    return {"KeyId": key.arn, "DeletionDate": ts(key.deletion_date), "KeyState": PENDING_DELETION,
            "PendingWindowInDays": window}


def cancel_key_deletion(deps: KmsDeps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    caller = Caller.of(ctx)
    with deps.store.write() as tx:
        key = resolve_key(tx, caller, req["KeyId"], action="CancelKeyDeletion", aliases=False)
        require_customer_managed(key, caller, "CancelKeyDeletion")
        if key.key_state != PENDING_DELETION:
            raise KMSInvalidStateException(f"{key.arn} is not pending deletion.")
        # A key whose deletion is canceled comes back Disabled, as in KMS: re-enabling is a decision.
        key.key_state = DISABLED
        key.deletion_date = key.pending_window_days = None
        ks.update_key(tx, key)
    return {"KeyId": key.arn}


def purge_due_keys(deps: KmsDeps) -> int:
    """Delete for good every key whose deletion date has passed; returns how many."""
    with deps.store.write() as tx:
        due = ks.keys_due_for_deletion(tx, deps.clock())
        for key in due:
            ks.delete_key(tx, key.key_id)
            tx.publish(KEY_CHANGED, key.key_id)
    for key in due:
        deps.cache.invalidate(key.key_id)
        log.info("deleted KMS key after its waiting period", extra={"key_arn": key.arn})
    return len(due)
