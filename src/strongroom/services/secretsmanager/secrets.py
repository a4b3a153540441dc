"""The secret itself: Create/Update/Describe/Delete/Restore, tags."""

from __future__ import annotations

from typing import Any

from strongroom.context import RequestContext
from strongroom.errors import (
    InvalidParameterException,
    InvalidRequestException,
    ResourceExistsException,
)
from strongroom.services.secretsmanager import arns, staging
from strongroom.services.secretsmanager.access import authorize
from strongroom.services.secretsmanager.core import (
    DAY,
    Deps,
    changed,
    check_kms_key,
    find,
    require_live,
    reseal_labelled,
    stages_by_version,
    summary,
    ts,
)
from strongroom.services.secretsmanager.validation import check_name, check_tags, check_value_choice, merge_tags
from strongroom.services.secretsmanager.values import add_version
from strongroom.storage import SecretRecord

REPLICATION_UNAVAILABLE = (
    "Replication to other Regions isn't available on this strongroom deployment."
)


def create_secret(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    name = req["Name"]
    check_name(name)
    check_value_choice(req, required=False)
    tags = req.get("Tags", [])
    check_tags(tags)
    merge_tags([], tags)
    if req.get("AddReplicaRegions"):
        raise InvalidRequestException(REPLICATION_UNAVAILABLE)
    if req.get("CrossAccountPrimaryARN"):
        raise InvalidRequestException("Cross-account replicas aren't available on this strongroom deployment.")
    has_value = "SecretString" in req or "SecretBinary" in req
    token = req.get("ClientRequestToken")
    arn = arns.secret_arn(ctx.region, ctx.account_id, name)
    authorize(ctx, "secretsmanager:CreateSecret", arn, req)
    if tags:
        authorize(ctx, "secretsmanager:TagResource", arn, req)
    with deps.store.write() as tx:
        existing = tx.secret_by_name(ctx.account_id, ctx.region, name)
        if existing is not None:
            if existing.deleted_date is not None:
                raise InvalidRequestException(
                    "You can't create this secret because a secret with this name is already scheduled for deletion."
                )
            # A retry of the same call (same token, same value) succeeds without change.
            if token and has_value and (version := tx.version(existing.id, token)) is not None:  # type: ignore[arg-type]
                add_version(deps, tx, existing, req, token, [staging.CURRENT])
                return {"ARN": existing.arn, "Name": existing.name, "VersionId": version.version_id}
            raise ResourceExistsException(f"The operation failed because the secret {name} already exists.")
        if req.get("KmsKeyId"):
            check_kms_key(deps, tx, ctx.account_id, ctx.region, req["KmsKeyId"])
        now = deps.clock()
        secret = SecretRecord(
            account_id=ctx.account_id,
            region=ctx.region,
            name=name,
            arn=arn,
            created_date=now,
            last_changed_date=now,
            description=req.get("Description"),
            kms_key_id=req.get("KmsKeyId") or None,
            secret_type=req.get("Type"),
            tags=list(tags),
        )
        tx.insert_secret(secret)
        out: dict[str, Any] = {"ARN": secret.arn, "Name": secret.name}
        if has_value:
            version, _ = add_version(deps, tx, secret, req, token, [staging.CURRENT])
            tx.update_secret(secret)
            out["VersionId"] = version.version_id
    changed(deps, secret)
    return out


def update_secret(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    check_value_choice(req, required=False)
    with deps.store.write() as tx:
        secret = find(tx, ctx, req["SecretId"], "UpdateSecret", req)
        require_live(secret)
        if "Description" in req:
            secret.description = req["Description"]
        rekey = False
        if "KmsKeyId" in req:
            if req["KmsKeyId"]:
                check_kms_key(deps, tx, secret.account_id, secret.region, req["KmsKeyId"])
            rekey = (req["KmsKeyId"] or None) != secret.kms_key_id
            secret.kms_key_id = req["KmsKeyId"] or None
        if "Type" in req:
            secret.secret_type = req["Type"]
        out: dict[str, Any] = {"ARN": secret.arn, "Name": secret.name}
        if "SecretString" in req or "SecretBinary" in req:
            version, _ = add_version(deps, tx, secret, req, req.get("ClientRequestToken"), [staging.CURRENT])
            out["VersionId"] = version.version_id
        if rekey:
            reseal_labelled(deps, tx, secret, skip={out["VersionId"]} if "VersionId" in out else set())
        secret.last_changed_date = deps.clock()
        tx.update_secret(secret)
    changed(deps, secret)
    return out


def describe_secret(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    with deps.store.read() as tx:
        secret = find(tx, ctx, req["SecretId"], "DescribeSecret", req)
        return summary(secret, stages_by_version(tx, secret.id), versions_key="VersionIdsToStages")  # type: ignore[arg-type]


def delete_secret(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    force = req.get("ForceDeleteWithoutRecovery", False)
    window = req.get("RecoveryWindowInDays")
    if force and window is not None:
        raise InvalidParameterException(
            "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays."
        )
    if window is None:
        window = 30
    if not force and not 7 <= window <= 30:
        raise InvalidParameterException("The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).")
    with deps.store.write() as tx:
        secret = find(tx, ctx, req["SecretId"], "DeleteSecret", req)
        now = deps.clock()
        if force:
            tx.delete_secret(secret.id)  # type: ignore[arg-type]
            deletion = now
        else:
            if secret.deleted_date is not None:
                raise InvalidRequestException(
                    "You can't delete secret " + secret.name + " because it's already scheduled for deletion."
                )
            secret.deleted_date = now
            secret.deletion_date = deletion = now + window * DAY
            tx.update_secret(secret)
    changed(deps, secret)
    return {"ARN": secret.arn, "Name": secret.name, "DeletionDate": ts(deletion)}


def restore_secret(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    with deps.store.write() as tx:
        secret = find(tx, ctx, req["SecretId"], "RestoreSecret", req)
        if secret.deleted_date is not None:
            secret.deleted_date = secret.deletion_date = None
            secret.last_changed_date = deps.clock()
            tx.update_secret(secret)
    changed(deps, secret)
    return {"ARN": secret.arn, "Name": secret.name}


def tag_resource(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    check_tags(req["Tags"])
    with deps.store.write() as tx:
        secret = find(tx, ctx, req["SecretId"], "TagResource", req)
        require_live(secret)
        secret.tags = merge_tags(secret.tags, req["Tags"])
        secret.last_changed_date = deps.clock()
        tx.update_secret(secret)
    changed(deps, secret)
    return {}


def untag_resource(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    keys = set(req["TagKeys"])
    with deps.store.write() as tx:
        secret = find(tx, ctx, req["SecretId"], "UntagResource", req)
        require_live(secret)
        secret.tags = [t for t in secret.tags if t["Key"] not in keys]
        secret.last_changed_date = deps.clock()
        tx.update_secret(secret)
    changed(deps, secret)
    return {}


def purge_deleted(deps: Deps) -> int:
    """Remove for good every secret whose recovery window has passed; returns how many."""
    with deps.store.write() as tx:
        due = tx.secrets_due_for_purge(deps.clock())
        for secret in due:
            tx.delete_secret(secret.id)  # type: ignore[arg-type]
    for secret in due:
        changed(deps, secret)
    return len(due)
