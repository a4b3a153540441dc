"""What every Secrets Manager operation shares: finding a secret, sealing values,
shaping responses."""

from __future__ import annotations

import datetime as dt
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from strongroom.cache.secrets import SecretCache
from strongroom.context import RequestContext
from strongroom.crypto.envelope import Sealed, binding
from strongroom.crypto.keyring import (
    DecryptionError,
    EncryptionError,
    InvalidKeyError,
    KeyAccessDenied,
    Keyring,
    SealContext,
)
from strongroom.errors import (
    AccessDeniedException,
    DecryptionFailure,
    EncryptionFailure,
    InvalidParameterException,
    InvalidRequestException,
    ResourceNotFoundException,
)
from strongroom.services.secretsmanager import arns
from strongroom.services.secretsmanager.access import authorize
from strongroom.storage import SecretRecord, Store, Tx, VersionRecord

NOT_FOUND = "Secrets Manager can't find the specified secret."
MARKED_FOR_DELETION = "You can't perform this operation on the secret because it was marked for deletion."
DAY = 86400.0


@dataclass
class Deps:
    """The collaborators of the service, passed in explicitly."""

    store: Store
    keyring: Keyring
    clock: Callable[[], float] = time.time
    on_change: list[Callable[[SecretRecord], None]] = field(default_factory=list)
    # The read path's cache (cache/secrets.py), and the check that makes it safe to trust for one
    # request: ChangeFeed.sync, True once every change committed anywhere before it was delivered.
    cache: SecretCache | None = None
    fresh: Callable[[], bool] = field(default=lambda: False)
    # RotateSecret's check that Secrets Manager may invoke the rotation function, run inside its
    # transaction: (connection, function ARN, secret ARN), raising AccessDeniedException
    # (rotation/permission.py, plugged in by the composition root).
    may_invoke: Callable[[Any, str, str], None] | None = None


def find(tx: Tx, ctx: RequestContext, secret_id: str, action: str, req: dict[str, Any]) -> SecretRecord:
    """Resolve a name, full ARN or partial ARN and authorize `action` on it.

    A caller who may not act on the secret learns nothing of whether it exists:
    authorization is checked before ResourceNotFoundException is answered.
    """
    if arns.is_arn(secret_id):
        secret = tx.secret_by_arn(secret_id) or tx.secret_by_partial_arn(secret_id)
    else:
        secret = tx.secret_by_name(ctx.account_id, ctx.region, secret_id)
    if secret is None:
        wanted = secret_id if arns.is_arn(secret_id) else arns.base_arn(ctx.region, ctx.account_id, secret_id)
        authorize(ctx, "secretsmanager:" + action, wanted, req)
        raise ResourceNotFoundException(NOT_FOUND)
    authorize(ctx, "secretsmanager:" + action, secret.arn, req, secret)
    return secret


def require_live(secret: SecretRecord) -> None:
    if secret.deleted_date is not None:
        raise InvalidRequestException(MARKED_FOR_DELETION)


def value_binding(secret: SecretRecord, version_id: str) -> bytes:
    return binding("strongroom/secret-value/v1", secret.account_id, secret.arn, version_id)


KMS_DENIED = "Access to KMS is not allowed"


def key_context(secret: SecretRecord, version_id: str, tx: Tx | None = None) -> SealContext:
    """The KMS encryption context AWS binds each version's data key to."""
    return SealContext(secret.account_id, secret.region,
                       {"SecretARN": secret.arn, "SecretVersionId": version_id}, tx)


def _kms_reason(err: EncryptionError | DecryptionError) -> str:
    """KMS's reason, appended the way AWS Secrets Manager relays errors from KMS."""
    if not err.kms_code:
        return "."
    return (f": {err.message} " if err.message else " ") + f"(Service: AWSKMS; Error Code: {err.kms_code})"


def seal_plaintext(deps: Deps, secret: SecretRecord, version: VersionRecord, plaintext: bytes,
                   tx: Tx | None = None) -> None:
    """Seal `plaintext` as this version's value under the secret's KMS key."""
    try:
        key_id, sealed = deps.keyring.seal(plaintext, value_binding(secret, version.version_id), secret.kms_key_id,
                                           context=key_context(secret, version.version_id, tx))
    except KeyAccessDenied:
        raise AccessDeniedException(KMS_DENIED) from None
    except EncryptionError as err:
        raise EncryptionFailure(
            "Secrets Manager can't encrypt the protected secret text using the provided KMS key" + _kms_reason(err)
        ) from None
    version.key_id, version.wrapped_key, version.ciphertext = key_id, sealed.wrapped_key, sealed.ciphertext


def seal_value(deps: Deps, secret: SecretRecord, version: VersionRecord, req: dict[str, Any],
               tx: Tx | None = None) -> None:
    if "SecretString" in req:
        plaintext, version.value_type = req["SecretString"].encode(), "string"
    else:
        plaintext, version.value_type = bytes(req["SecretBinary"]), "binary"
    seal_plaintext(deps, secret, version, plaintext, tx)


def open_value(deps: Deps, secret: SecretRecord, version: VersionRecord, tx: Tx | None = None) -> bytes:
    assert version.wrapped_key is not None and version.ciphertext is not None and version.key_id is not None
    try:
        return deps.keyring.open(
            version.key_id,
            Sealed(version.wrapped_key, version.ciphertext),
            value_binding(secret, version.version_id),
            context=key_context(secret, version.version_id, tx),
        )
    except KeyAccessDenied:
        raise AccessDeniedException(KMS_DENIED) from None
    except DecryptionError as err:
        raise DecryptionFailure(
            "Secrets Manager can't decrypt the protected secret text using the provided KMS key" + _kms_reason(err)
        ) from None


def check_kms_key(deps: Deps, tx: Tx, account_id: str, region: str, kms_key_id: str) -> None:
    """CreateSecret/UpdateSecret refuse a KmsKeyId that names no key the secret's account may use."""
    try:
        deps.keyring.check_key(kms_key_id, SealContext(account_id, region, {}, tx))
    except KeyAccessDenied:
        raise AccessDeniedException(KMS_DENIED) from None
    except InvalidKeyError as err:
        raise InvalidParameterException(f"The operation failed because of an invalid KMS key: {err.message}") from None


def reseal_labelled(deps: Deps, tx: Tx, secret: SecretRecord, skip: set[str]) -> None:
    """Re-encrypt the AWSCURRENT, AWSPENDING and AWSPREVIOUS versions under the secret's (new) KMS key.

    As AWS documents for UpdateSecret with a new KmsKeyId: other versions stay
    under the key they were sealed with, which must stay usable to read them.
    """
    labelled = {vid for label, vid in tx.stages(secret.id).items()  # type: ignore[arg-type]
                if label in ("AWSCURRENT", "AWSPENDING", "AWSPREVIOUS")}
    for version_id in sorted(labelled - skip):
        version = tx.version(secret.id, version_id)  # type: ignore[arg-type]
        if version is None or version.value_type is None:
            continue
        seal_plaintext(deps, secret, version, open_value(deps, secret, version, tx), tx)
        tx.set_version_value(version)


def same_value(deps: Deps, secret: SecretRecord, version: VersionRecord, req: dict[str, Any],
               tx: Tx | None = None) -> bool:
    if version.value_type is None:
        return False
    if ("SecretString" in req) != (version.value_type == "string"):
        return False
    wanted = req["SecretString"].encode() if "SecretString" in req else bytes(req["SecretBinary"])
    return hmac.compare_digest(open_value(deps, secret, version, tx), wanted)


def value_fields(version: VersionRecord, plaintext: bytes) -> dict[str, Any]:
    if version.value_type == "string":
        return {"SecretString": plaintext.decode()}
    return {"SecretBinary": plaintext}


def day_of(ts: float) -> float:
    """AWS reports access dates at day granularity (midnight UTC)."""
    return ts - ts % DAY


def ts(value: float | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromtimestamp(value, dt.timezone.utc)


def summary(secret: SecretRecord, stages: dict[str, list[str]], *, versions_key: str) -> dict[str, Any]:
    """DescribeSecret's response, or a ListSecrets entry (which names its versions map differently)."""
    out: dict[str, Any] = {"ARN": secret.arn, "Name": secret.name}
    optional = {
        "Type": secret.secret_type,
        "Description": secret.description,
        "KmsKeyId": secret.kms_key_id,
        "RotationLambdaARN": secret.rotation_lambda_arn,
        "RotationRules": secret.rotation_rules,
        "LastRotatedDate": ts(secret.last_rotated_date),
        "LastChangedDate": ts(secret.last_changed_date),
        "LastAccessedDate": ts(secret.last_accessed_date),
        "DeletedDate": ts(secret.deleted_date),
        "NextRotationDate": ts(secret.next_rotation_date) if secret.rotation_enabled else None,
        "OwningService": secret.owning_service,
        "CreatedDate": ts(secret.created_date),
    }
    if secret.rotation_enabled or secret.rotation_lambda_arn:
        out["RotationEnabled"] = secret.rotation_enabled
    out.update({k: v for k, v in optional.items() if v is not None})
    if secret.tags:
        out["Tags"] = list(secret.tags)
    if stages:
        out[versions_key] = stages
    if secret.primary_region:
        out["PrimaryRegion"] = secret.primary_region
    return out


def stages_by_version(tx: Tx, secret_id: int) -> dict[str, list[str]]:
    return labels_by_version(tx.stages(secret_id))


def labels_by_version(stages: dict[str, str]) -> dict[str, list[str]]:
    """{label: version} turned into {version: [labels]}, labels sorted."""
    out: dict[str, list[str]] = {}
    for label, vid in sorted(stages.items()):
        out.setdefault(vid, []).append(label)
    return out


def changed(deps: Deps, secret: SecretRecord) -> None:
    for hook in deps.on_change:
        hook(secret)
