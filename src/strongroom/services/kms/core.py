"""What every KMS operation shares: collaborators, identifiers, key lookup, state checks, shapes."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from strongroom.context import RequestContext
from strongroom.crypto.keycache import MaterialCache
from strongroom.crypto.rootkey import RootKey
from strongroom.services.kms.access import CROSS_ACCOUNT_ACTIONS, authorize_key
from strongroom.errors import (
    AccessDeniedException,
    AwsError,
    DisabledException,
    InvalidArnException,
    KMSInvalidStateException,
    NotFoundException,
)
from strongroom.storage import Store, Tx
from strongroom.storage import kms_store as ks
from strongroom.storage.kms_store import KmsKeyRecord

DAY = 86400.0
ENABLED, DISABLED, PENDING_DELETION = "Enabled", "Disabled", "PendingDeletion"
SYMMETRIC_DEFAULT = "SYMMETRIC_DEFAULT"
MANAGED_PREFIX = "alias/aws/"

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_ARN = re.compile(r"^arn:aws[a-z-]*:kms:([a-z0-9-]*):(\d*):(.+)$")


@dataclass
class KmsDeps:
    """The collaborators of the KMS service, passed in explicitly."""

    store: Store
    root: RootKey
    clock: Callable[[], float] = time.time
    cache: MaterialCache = field(default_factory=MaterialCache)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who uses a key: an API caller, or Secrets Manager acting for a secret's account."""

    account_id: str
    region: str
    arn: str
    via_service: str | None = None  # "secretsmanager" when a service calls on the caller's behalf
    # The request being served, whose principal the key policy is evaluated for (None: the
    # service's own call, not evaluated). Its account may differ from `account_id`, the account
    # key references are resolved in (a secret's account, for Secrets Manager).
    ctx: RequestContext | None = None

    @classmethod
    def of(cls, ctx: RequestContext) -> "Caller":
        return cls(ctx.account_id, ctx.region, ctx.principal.arn, ctx=ctx)


def key_arn(region: str, account_id: str, key_id: str) -> str:
    return f"arn:aws:kms:{region}:{account_id}:key/{key_id}"


def alias_arn(region: str, account_id: str, alias_name: str) -> str:
    return f"arn:aws:kms:{region}:{account_id}:{alias_name}"


def material_id(key_id: str, version: int) -> str:
    """KeyMaterialId: a public name for one material version (a hash of ids, never of the material)."""
    return hashlib.sha256(f"strongroom/kms-material-id/v1:{key_id}:{version}".encode()).hexdigest()


def ts(value: float | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromtimestamp(value, dt.timezone.utc)


def denied(caller: Caller, action: str, resource: str) -> AwsError:
    return AccessDeniedException(
        f"User: {caller.arn} is not authorized to perform: kms:{action} on resource: {resource} "
        f"because no resource-based policy allows the kms:{action} action"
    )


def _not_found(arn: str) -> AwsError:
    return NotFoundException(f"Key '{arn}' does not exist")


def _alias_not_found(arn: str) -> AwsError:
    return NotFoundException(f"Alias {arn} is not found.")


def resolve_key(tx: Tx, caller: Caller, ref: str, *, action: str, aliases: bool = True,
                authorize: bool = True) -> KmsKeyRecord:
    """The key `ref` names (key id, key ARN and, where the operation allows, alias name or alias
    ARN), after its key policy allowed `action` (unless `authorize` is False: the caller then
    authorizes itself, with the encryption context the decision needs).

    Another account's key is reachable only by key ARN, for the operations KMS allows across
    accounts; keys of another region do not exist from here.
    """
    key = _resolve(tx, caller, ref, action, aliases)
    if authorize:
        alias = ref if ref.startswith("alias/") or ":alias/" in ref else None
        authorize_key(caller, key, action, request_alias=alias)
    return key


def _resolve(tx: Tx, caller: Caller, ref: str, action: str, aliases: bool) -> KmsKeyRecord:
    if ref.startswith("alias/"):
        if not aliases:
            raise NotFoundException(f"Invalid keyId {ref}")
        return _by_alias(tx, caller, caller.region, caller.account_id, ref, action)
    m = _ARN.match(ref)
    if m:
        region, account, resource = m.groups()
        if resource.startswith("alias/"):
            if not aliases:
                raise InvalidArnException("Key Aliases are not supported for this operation")
            return _by_alias(tx, caller, region, account, resource, action)
        if not resource.startswith("key/") or not region or len(account) != 12:
            raise InvalidArnException(f"Invalid arn {ref}")
        key_id = resource[len("key/"):]
        key = ks.get_key(tx, key_id) if _UUID.match(key_id) else None
        if account != caller.account_id:
            # Whether the key exists is not told to another account that may not use it.
            if (key is None or key.account_id != account or key.region != region or region != caller.region
                    or action not in CROSS_ACCOUNT_ACTIONS or caller.ctx is None):
                raise denied(caller, action, ref)
            return key
        if key is None or key.account_id != account or key.region != region or region != caller.region:
            raise _not_found(ref)
        return key
    if ref.startswith("arn:"):
        raise InvalidArnException(f"Invalid arn {ref}")
    if not _UUID.match(ref):
        raise NotFoundException(f"Invalid keyId {ref}")
    key = ks.get_key(tx, ref)
    if key is None or key.account_id != caller.account_id or key.region != caller.region:
        raise _not_found(key_arn(caller.region, caller.account_id, ref))
    return key


def _by_alias(tx: Tx, caller: Caller, region: str, account: str, name: str, action: str) -> KmsKeyRecord:
    arn = alias_arn(region, account, name)
    if account != caller.account_id:
        raise denied(caller, action, arn)
    alias = ks.get_alias(tx, account, region, name) if region == caller.region else None
    key = ks.get_key(tx, alias.key_id) if alias else None
    if key is None:
        raise _alias_not_found(arn)
    return key


def require_enabled(key: KmsKeyRecord) -> None:
    """Cryptographic operations need an Enabled key; the error names the state, as KMS's does."""
    if key.key_state == DISABLED:
        raise DisabledException(f"{key.arn} is disabled.")
    if key.key_state != ENABLED:
        raise KMSInvalidStateException(f"{key.arn} is pending deletion.")


def require_not_pending(key: KmsKeyRecord) -> None:
    if key.key_state == PENDING_DELETION:
        raise KMSInvalidStateException(f"{key.arn} is pending deletion.")


def require_customer_managed(key: KmsKeyRecord, caller: Caller, action: str) -> None:
    """AWS managed keys are managed by their service; their key policy grants users no management."""
    if key.key_manager == "AWS":
        raise denied(caller, action, key.arn)


def require_usable_by(key: KmsKeyRecord, caller: Caller, action: str) -> None:
    """An AWS managed key's policy allows cryptography only through its service (kms:ViaService)."""
    if key.key_manager == "AWS" and caller.via_service is None:
        raise denied(caller, action, key.arn)


def key_metadata(key: KmsKeyRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "AWSAccountId": key.account_id,
        "KeyId": key.key_id,
        "Arn": key.arn,
        "CreationDate": ts(key.creation_date),
        "Enabled": key.key_state == ENABLED,
        "Description": key.description,
        "KeyUsage": key.key_usage,
        "KeyState": key.key_state,
        "Origin": key.origin,
        "KeyManager": key.key_manager,
        "CustomerMasterKeySpec": key.key_spec,
        "KeySpec": key.key_spec,
        "EncryptionAlgorithms": [SYMMETRIC_DEFAULT],
        "MultiRegion": False,
        "CurrentKeyMaterialId": material_id(key.key_id, key.current_material),
    }
    if key.key_state == PENDING_DELETION:
        out["DeletionDate"] = ts(key.deletion_date)
    return out
