"""Secret values and their versions: Get/Put/BatchGet, ListSecretVersionIds,
UpdateSecretVersionStage."""

from __future__ import annotations

import uuid
from typing import Any

from strongroom.cache.secrets import CachedSecret, SecretCache, cache_key, fresh_view
from strongroom.context import RequestContext
from strongroom.crypto.keyring import kms_key_label
from strongroom.errors import (
    AwsError,
    InvalidParameterException,
    InvalidNextTokenException,
    InvalidRequestException,
    LimitExceededException,
    ResourceExistsException,
    ResourceNotFoundException,
)
from strongroom.services.secretsmanager import listing, paging, staging
from strongroom.services.secretsmanager.access import authorize
from strongroom.services.secretsmanager.core import (
    DAY,
    Deps,
    changed,
    day_of,
    find,
    open_value,
    require_live,
    same_value,
    seal_value,
    ts,
    value_fields,
)
from strongroom.services.secretsmanager.validation import check_value_choice
from strongroom.storage import SecretRecord, Tx, VersionRecord

MAX_VERSIONS = 100
EXISTING_VERSION = "You can't modify an existing version, you can only create a new version."


def add_version(
    deps: Deps,
    tx: Tx,
    secret: SecretRecord,
    req: dict[str, Any],
    token: str | None,
    labels: list[str],
) -> tuple[VersionRecord, bool]:
    """Store a new value as version `token` with `labels`; (version, created?).

    A repeated token with the same value changes nothing (idempotent retry); with
    a different value it is refused. A version created by a rotation without a
    value receives this value.
    """
    now = deps.clock()
    version_id = token or str(uuid.uuid4())
    existing = tx.version(secret.id, version_id)  # type: ignore[arg-type]
    if existing is not None and existing.value_type is not None:
        if same_value(deps, secret, existing, req, tx):
            return existing, False
        raise ResourceExistsException(EXISTING_VERSION)
    stages = tx.stages(secret.id)  # type: ignore[arg-type]
    if existing is None:
        secret.version_seq += 1
        version = VersionRecord(secret.id, version_id, secret.version_seq, now)  # type: ignore[arg-type]
        seal_value(deps, secret, version, req, tx)
        tx.insert_version(version)
    else:
        version = existing
        seal_value(deps, secret, version, req, tx)
        tx.set_version_value(version)
    if staging.CURRENT not in stages and staging.CURRENT not in labels:
        labels = [*labels, staging.CURRENT]  # the first value of a secret is always current
    new_stages = staging.attach(stages, version_id, labels)
    tx.replace_stages(secret.id, new_stages)  # type: ignore[arg-type]
    _prune(tx, secret, new_stages, now)
    secret.last_changed_date = now
    version.stages = staging.labels_of(new_stages, version_id)
    return version, True


def _prune(tx: Tx, secret: SecretRecord, stages: dict[str, str], now: float) -> None:
    """Drop the oldest unlabeled versions past 100, sparing those under a day old."""
    versions = tx.versions(secret.id)  # type: ignore[arg-type]
    excess = len(versions) - MAX_VERSIONS
    if excess <= 0:
        return
    labelled = set(stages.values())
    droppable = [v.version_id for v in versions if v.version_id not in labelled and now - v.created_date >= DAY]
    if len(droppable) < excess:
        raise LimitExceededException(
            f"You have exceeded the maximum number of versions ({MAX_VERSIONS}) for this secret. "
            "Versions without staging labels are removed once they are more than 24 hours old."
        )
    tx.delete_versions(secret.id, droppable[:excess])  # type: ignore[arg-type]


def put_secret_value(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    check_value_choice(req, required=True)
    labels = req.get("VersionStages") or [staging.CURRENT]
    with deps.store.write() as tx:
        secret = find(tx, ctx, req["SecretId"], "PutSecretValue", req)
        require_live(secret)
        version, created = add_version(deps, tx, secret, req, req.get("ClientRequestToken"), labels)
        if created:
            tx.update_secret(secret)
    if created:
        changed(deps, secret)
    return {"ARN": secret.arn, "Name": secret.name, "VersionId": version.version_id,
            "VersionStages": version.stages}


def _check_version(version: VersionRecord | None, version_id: str, stage: str | None) -> None:
    if version is None or version.value_type is None or (stage is not None and stage not in version.stages):
        what = f"VersionId: {version_id}" + (f" and staging label: {stage}" if stage else "")
        raise ResourceNotFoundException(f"Secrets Manager can't find the specified secret value for {what}")


def _from_cache(deps: Deps, ctx: RequestContext, key: Any, version_id: str | None, stage: str | None,
                request: dict[str, Any]) -> tuple[SecretRecord, VersionRecord] | None:
    """The secret and version from the cache (authorized as `find` would), or None to ask the database."""
    assert deps.cache is not None
    entry = deps.cache.get(key)
    if entry is None:
        return None
    secret = entry.secret
    authorize(ctx, "secretsmanager:GetSecretValue", secret.arn, request, secret)
    require_live(secret)
    if version_id is None:
        stage = stage or staging.CURRENT
    wanted = version_id if version_id is not None else entry.stages.get(stage)  # type: ignore[arg-type]
    version = entry.versions.get(wanted) if wanted is not None else None
    if version is None:
        return None  # not loaded yet, or an error the database path words
    _check_version(version, version.version_id, stage)
    return secret, version


def _load(deps: Deps, ctx: RequestContext, secret_id: str, version_id: str | None, stage: str | None,
          request: dict[str, Any]) -> tuple[SecretRecord, VersionRecord, dict[str, str]]:
    with deps.store.read() as tx:
        secret = find(tx, ctx, secret_id, "GetSecretValue", request)
        require_live(secret)
        stages = tx.stages(secret.id)  # type: ignore[arg-type]
        if version_id is None:
            stage = stage or staging.CURRENT
        wanted = version_id if version_id is not None else stages.get(stage)  # type: ignore[arg-type]
        if wanted is None:
            raise ResourceNotFoundException(
                f"Secrets Manager can't find the specified secret value for staging label: {stage}"
            )
        version = tx.version(secret.id, wanted, stages)  # type: ignore[arg-type]
    _check_version(version, wanted, stage)
    assert version is not None
    return secret, version, stages


def _remember(cache: SecretCache, key: Any, secret: SecretRecord, version: VersionRecord, stages: dict[str, str],
              epoch: int) -> None:
    entry = cache.get(key)
    if entry is not None and entry.secret.id == secret.id:
        cache.add_version(entry, version, epoch)
    else:
        cache.put(key, CachedSecret(secret, stages, {version.version_id: version}), epoch)


def read_value(deps: Deps, ctx: RequestContext, secret_id: str, version_id: str | None = None,
               stage: str | None = None) -> dict[str, Any]:
    request = {k: v for k, v in (("VersionId", version_id), ("VersionStage", stage)) if v is not None}
    key = cache_key(ctx.account_id, ctx.region, secret_id)
    fresh = deps.cache is not None and deps.fresh()
    token = fresh_view.set(fresh)  # the keyring trusts its KMS key records only in a fresh view
    try:
        found = _from_cache(deps, ctx, key, version_id, stage, request) if fresh else None
        if found is not None:
            secret, version = found
            plaintext = open_value(deps, secret, version)
        else:
            epoch = deps.cache.epoch if fresh and deps.cache is not None else 0  # before reading: cache/secrets.py
            secret, version, stages = _load(deps, ctx, secret_id, version_id, stage, request)
            plaintext = open_value(deps, secret, version)
            if fresh and deps.cache is not None:  # only what opened: a row that fails is read again next time
                _remember(deps.cache, key, secret, version, stages, epoch)
    finally:
        fresh_view.reset(token)
    _note_access(deps, secret, version)
    return {
        "ARN": secret.arn,
        "Name": secret.name,
        "VersionId": version.version_id,
        **value_fields(version, plaintext),
        "VersionStages": list(version.stages),
        "CreatedDate": ts(version.created_date),
    }


def _note_access(deps: Deps, secret: SecretRecord, version: VersionRecord) -> None:
    """LastAccessedDate, which AWS keeps to the day: one write per secret and day, not per read.

    The records may be cached ones: once written, they say so, and later reads skip the write.
    Other processes write at most once each (the UPDATE only moves the date forward)."""
    today = day_of(deps.clock())
    if secret.last_accessed_date == today and version.last_accessed_date == today:
        return
    with deps.store.write() as tx:
        tx.touch_secret_accessed(secret.id, today)  # type: ignore[arg-type]
        tx.touch_version_accessed(secret.id, version.version_id, today)  # type: ignore[arg-type]
    secret.last_accessed_date = version.last_accessed_date = today


def get_secret_value(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return read_value(deps, ctx, req["SecretId"], req.get("VersionId"), req.get("VersionStage"))


def batch_get_secret_value(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    ids, flt = req.get("SecretIdList"), req.get("Filters")
    if (ids is None) == (flt is None):
        raise InvalidParameterException("Either SecretIdList or Filters must be specified, but not both.")
    if ids is not None and ("MaxResults" in req or "NextToken" in req):
        raise InvalidParameterException("MaxResults and NextToken can only be used with Filters.")
    authorize(ctx, "secretsmanager:BatchGetSecretValue", "*", req)
    out: dict[str, Any] = {"SecretValues": [], "Errors": []}
    if flt is not None:
        authorize(ctx, "secretsmanager:ListSecrets", "*", req)
        page, token = listing.page_of_secrets(deps, ctx, flt, req.get("MaxResults"), req.get("NextToken"),
                                              "asc", "created-date", kind="batch")
        ids = [s.arn for s in page]
        if token:
            out["NextToken"] = token
    for secret_id in dict.fromkeys(ids or []):
        try:
            out["SecretValues"].append(read_value(deps, ctx, secret_id))
        except AwsError as err:
            if err.status >= 500:
                raise
            out["Errors"].append({"SecretId": secret_id, "ErrorCode": err.code, "Message": err.message})
    return out


def list_secret_version_ids(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    include_deprecated = req.get("IncludeDeprecated", False)
    limit = req.get("MaxResults") or MAX_VERSIONS
    with deps.store.read() as tx:
        secret = find(tx, ctx, req["SecretId"], "ListSecretVersionIds", req)
        versions = [v for v in tx.versions(secret.id) if include_deprecated or v.stages]  # type: ignore[arg-type]
    versions.reverse()  # newest first
    if "NextToken" in req:
        # Keyset, like ListSecrets: the token names the last version returned (its sequence
        # number), so versions added or pruned between pages neither repeat nor vanish.
        state = paging.decode(req["NextToken"], "versions")
        before = state.get("s")
        if state.get("i") != secret.id or not isinstance(before, int):
            raise InvalidNextTokenException("The NextToken value is invalid.")
        versions = [v for v in versions if v.seq < before]
    page = versions[:limit]
    entries = []
    for v in page:
        entry: dict[str, Any] = {"VersionId": v.version_id, "CreatedDate": ts(v.created_date)}
        if v.stages:
            entry["VersionStages"] = v.stages
        if v.last_accessed_date is not None:
            entry["LastAccessedDate"] = ts(v.last_accessed_date)
        if v.key_id:
            entry["KmsKeyIds"] = [kms_key_label(v.key_id)]
        entries.append(entry)
    out: dict[str, Any] = {"Versions": entries, "ARN": secret.arn, "Name": secret.name}
    if len(versions) > limit:
        out["NextToken"] = paging.encode({"k": "versions", "i": secret.id, "s": page[-1].seq})
    return out


def update_secret_version_stage(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    label = req["VersionStage"]
    remove_from, move_to = req.get("RemoveFromVersionId"), req.get("MoveToVersionId")
    if remove_from is None and move_to is None:
        raise InvalidParameterException("You must specify RemoveFromVersionId, MoveToVersionId, or both.")
    with deps.store.write() as tx:
        secret = find(tx, ctx, req["SecretId"], "UpdateSecretVersionStage", req)
        require_live(secret)
        found = {vid: tx.version(secret.id, vid) for vid in (remove_from, move_to) if vid is not None}  # type: ignore[arg-type]
        for vid, version in found.items():
            if version is None:
                raise ResourceNotFoundException(f"Secrets Manager can't find the specified secret version: {vid}")
        target = found.get(move_to) if move_to is not None else None
        if label == staging.CURRENT and target is not None and target.value_type is None:
            # A rotation's AWSPENDING placeholder has no value until PutSecretValue fills it.
            raise InvalidRequestException(
                f"You can't move staging label AWSCURRENT to version {move_to} because it has no secret value."
            )
        new_stages = staging.move(tx.stages(secret.id), label, remove_from, move_to)  # type: ignore[arg-type]
        tx.replace_stages(secret.id, new_stages)  # type: ignore[arg-type]
        secret.last_changed_date = deps.clock()
        tx.update_secret(secret)
    changed(deps, secret)
    return {"ARN": secret.arn, "Name": secret.name}

