"""Key rotation: Enable/DisableKeyRotation, GetKeyRotationStatus, RotateKeyOnDemand,
ListKeyRotations, and the automatic rotation of keys whose rotation date has come.

Rotating adds a material version and makes it current; older versions stay,
so ciphertexts made before a rotation still decrypt (their header names the
version they need) while new encryptions use the newest material.
"""

from __future__ import annotations

import logging
from typing import Any

from strongroom.context import RequestContext
from strongroom.errors import LimitExceededException
from strongroom.services.kms import paging
from strongroom.services.kms.core import (
    DAY,
    Caller,
    KmsDeps,
    material_id,
    require_customer_managed,
    require_enabled,
    require_not_pending,
    resolve_key,
    ts,
)
from strongroom.services.kms.materials import DEFAULT_ROTATION_DAYS, add_material
from strongroom.storage import kms_store as ks

log = logging.getLogger("strongroom.kms")
MAX_ON_DEMAND = 25  # KMS's lifetime quota of on-demand rotations per key


def enable_key_rotation(deps: KmsDeps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    caller = Caller.of(ctx)
    period = req.get("RotationPeriodInDays", DEFAULT_ROTATION_DAYS)
    with deps.store.write() as tx:
        key = resolve_key(tx, caller, req["KeyId"], action="EnableKeyRotation", aliases=False)
        require_customer_managed(key, caller, "EnableKeyRotation")
        require_enabled(key)
        key.rotation_enabled = True
        key.rotation_period_days = period
        key.next_rotation_date = deps.clock() + period * DAY
        ks.update_key(tx, key)
    return {}


def disable_key_rotation(deps: KmsDeps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    caller = Caller.of(ctx)
    with deps.store.write() as tx:
        key = resolve_key(tx, caller, req["KeyId"], action="DisableKeyRotation", aliases=False)
        require_customer_managed(key, caller, "DisableKeyRotation")
        require_enabled(key)
        key.rotation_enabled = False
        key.rotation_period_days = key.next_rotation_date = None
        ks.update_key(tx, key)
    return {}


def get_key_rotation_status(deps: KmsDeps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    with deps.store.read() as tx:
        key = resolve_key(tx, Caller.of(ctx), req["KeyId"], action="GetKeyRotationStatus", aliases=False)
    require_not_pending(key)
    out: dict[str, Any] = {"KeyRotationEnabled": key.rotation_enabled, "KeyId": key.key_id}
    if key.rotation_enabled:
        out["RotationPeriodInDays"] = key.rotation_period_days
        out["NextRotationDate"] = ts(key.next_rotation_date)
    return out


def rotate_key_on_demand(deps: KmsDeps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    caller = Caller.of(ctx)
    with deps.store.write() as tx:
        key = resolve_key(tx, caller, req["KeyId"], action="RotateKeyOnDemand", aliases=False)
        require_customer_managed(key, caller, "RotateKeyOnDemand")
        require_enabled(key)
        if ks.count_rotations(tx, key.key_id, "ON_DEMAND") >= MAX_ON_DEMAND:
            raise LimitExceededException(
                f"The key {key.arn} has reached the limit of {MAX_ON_DEMAND} on-demand rotations.")
        add_material(deps, tx, key, "ON_DEMAND")
        ks.update_key(tx, key)
    log.info("rotated KMS key on demand", extra={"key_arn": key.arn, "material": key.current_material})
    return {"KeyId": key.key_id}


def list_key_rotations(deps: KmsDeps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    with deps.store.read() as tx:
        key = resolve_key(tx, Caller.of(ctx), req["KeyId"], action="ListKeyRotations", aliases=False)
        require_not_pending(key)
        materials = ks.list_materials(tx, key.key_id)
    include_all = req.get("IncludeKeyMaterial") == "ALL_KEY_MATERIAL"
    entries = []
    for m in materials:
        if m.rotation_type is None and not include_all:
            continue
        entry: dict[str, Any] = {
            "KeyId": key.key_id,
            "KeyMaterialId": material_id(key.key_id, m.version),
            "KeyMaterialState": "CURRENT" if m.version == key.current_material else "NON_CURRENT",
        }
        if m.rotation_type is not None:
            entry["RotationDate"] = ts(m.created_date)
            entry["RotationType"] = m.rotation_type
        entries.append((m.version, entry))
    chunk, more = paging.page(entries, lambda e: e[0], req, "rotations", default_limit=100)
    return {"Rotations": [e for _, e in chunk], **more}


def rotate_due_keys(deps: KmsDeps) -> int:
    """Give every Enabled key whose automatic rotation date has passed new material; returns how many.

    A key disabled on its rotation date is rotated on the first pass after it
    is enabled again, as KMS does.
    """
    rotated = []
    with deps.store.write() as tx:
        now = deps.clock()
        for key in ks.keys_due_for_rotation(tx, now):
            add_material(deps, tx, key, "AUTOMATIC")
            key.next_rotation_date = now + (key.rotation_period_days or DEFAULT_ROTATION_DAYS) * DAY
            ks.update_key(tx, key)
            rotated.append(key)
    for key in rotated:
        log.info("rotated KMS key", extra={"key_arn": key.arn, "material": key.current_material})
    return len(rotated)
