"""RotateSecret / CancelRotateSecret and the replication operations."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from strongroom.context import RequestContext
from strongroom.errors import InvalidParameterException, InvalidRequestException
from strongroom.services.secretsmanager import schedule, staging
from strongroom.services.secretsmanager.core import Deps, changed, find, require_live
from strongroom.storage import VersionRecord, rotation_store

_REPLICATION = "Replication to other Regions isn't available on this strongroom deployment."


def rotate_secret(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    rules = req.get("RotationRules")
    if rules is not None:
        schedule.check_rules(rules)
    with deps.store.write() as tx:
        secret = find(tx, ctx, req["SecretId"], "RotateSecret", req)
        require_live(secret)
        lambda_arn = req.get("RotationLambdaARN") or secret.rotation_lambda_arn
        if not lambda_arn:
            raise InvalidRequestException("No Lambda rotation function ARN is associated with this secret.")
        if not lambda_arn.startswith("arn:aws:lambda:"):
            raise InvalidParameterException("RotationLambdaARN must be a Lambda function ARN.")
        if deps.may_invoke is not None:  # as on AWS, refused here, not at the first step
            deps.may_invoke(tx.conn, lambda_arn, secret.arn)
        now = deps.clock()
        secret.rotation_lambda_arn = lambda_arn
        if rules is not None:
            secret.rotation_rules = rules
        secret.rotation_enabled = secret.rotation_rules is not None
        if secret.rotation_rules:
            secret.next_rotation_date = schedule.next_rotation(secret.rotation_rules, now)
        out: dict[str, Any] = {"ARN": secret.arn, "Name": secret.name}
        if req.get("RotateImmediately", True):
            stages = tx.stages(secret.id)  # type: ignore[arg-type]
            pending = stages.get(staging.PENDING)
            token = req.get("ClientRequestToken") or str(uuid.uuid4())
            # A retry of the same call (SDKs resend the same ClientRequestToken) is not a second rotation.
            if pending is not None and pending not in (stages.get(staging.CURRENT), token):
                raise InvalidRequestException(
                    "A previous rotation isn't complete. That rotation will be reattempted."
                )
            if tx.version(secret.id, token) is None:  # type: ignore[arg-type]
                secret.version_seq += 1
                tx.insert_version(VersionRecord(secret.id, token, secret.version_seq, now))  # type: ignore[arg-type]
            tx.replace_stages(secret.id, {**stages, staging.PENDING: token})  # type: ignore[arg-type]
            # Durable request for the rotation engine (strongroom/rotation), committed with the version.
            rotation_store.request(tx.conn, secret.id, token, now)  # type: ignore[arg-type]
            out["VersionId"] = token
        secret.last_changed_date = now
        tx.update_secret(secret)
    changed(deps, secret)
    return out


def cancel_rotate_secret(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    with deps.store.write() as tx:
        secret = find(tx, ctx, req["SecretId"], "CancelRotateSecret", req)
        require_live(secret)
        if not secret.rotation_enabled and not secret.rotation_lambda_arn:
            raise InvalidRequestException("Rotation is not enabled for this secret.")
        secret.rotation_enabled = False
        secret.next_rotation_date = None
        secret.last_changed_date = deps.clock()
        stages = tx.stages(secret.id)  # type: ignore[arg-type]
        tx.update_secret(secret)
        rotation_store.cancel(tx.conn, secret.id, secret.last_changed_date)  # type: ignore[arg-type]
    changed(deps, secret)
    out: dict[str, Any] = {"ARN": secret.arn, "Name": secret.name}
    if staging.PENDING in stages and stages[staging.PENDING] != stages.get(staging.CURRENT):
        out["VersionId"] = stages[staging.PENDING]
    return out


def _unavailable(action: str) -> Callable[[Deps, RequestContext, dict[str, Any]], dict[str, Any]]:
    def operation(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        with deps.store.read() as tx:
            find(tx, ctx, req["SecretId"], action, req)
        raise InvalidRequestException(_REPLICATION)

    return operation


replicate_secret_to_regions = _unavailable("ReplicateSecretToRegions")
remove_regions_from_replication = _unavailable("RemoveRegionsFromReplication")
stop_replication_to_replica = _unavailable("StopReplicationToReplica")
associate_cross_account_replica = _unavailable("AssociateCrossAccountReplica")
disassociate_cross_account_replica = _unavailable("DisassociateCrossAccountReplica")
