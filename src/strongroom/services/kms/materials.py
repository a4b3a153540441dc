"""Key material and key creation: random 256-bit material per version, stored only
wrapped by the root key, unwrapped through a bounded cache."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.exc import IntegrityError

from strongroom.crypto import aead
from strongroom.crypto.rootkey import RootKeyError
from strongroom.errors import KMSInternalException
from strongroom.services.kms.core import DAY, ENABLED, SYMMETRIC_DEFAULT, KmsDeps, key_arn
from strongroom.services.kms.policies import managed_key_policy
from strongroom.storage import Tx
from strongroom.storage import kms_store as ks
from strongroom.storage.kms_store import KmsAliasRecord, KmsKeyRecord, KmsMaterialRecord

log = logging.getLogger("strongroom.kms")
SECRETS_MANAGER_ALIAS = "alias/aws/secretsmanager"
MANAGED_DESCRIPTION = "Default key that protects my Secrets Manager data when no other key is defined"
DEFAULT_ROTATION_DAYS = 365


def material_purpose(key_id: str, version: int) -> bytes:
    # Binds each wrapped blob to its key and version: a row copied onto another key won't unwrap.
    return f"kms-key-material:{key_id}:{version}".encode()


def add_material(deps: KmsDeps, tx: Tx, key: KmsKeyRecord, rotation_type: str | None) -> int:
    """Create the next material version of `key` and make it current; returns the version.

    Nothing is cached here: if the transaction rolls back, a cached entry
    would name a version number the next rotation reuses for other material.
    """
    version = key.current_material + 1
    _insert_material(deps, tx, key.key_id, version, rotation_type)
    key.current_material = version
    return version


def _insert_material(deps: KmsDeps, tx: Tx, key_id: str, version: int, rotation_type: str | None) -> None:
    material = aead.new_key()
    wrapped = deps.root.wrap(material, material_purpose(key_id, version))
    ks.insert_material(tx, KmsMaterialRecord(key_id, version, deps.clock(), rotation_type, wrapped))


def load_material(deps: KmsDeps, tx: Tx, key: KmsKeyRecord, version: int) -> bytes | None:
    """The raw material of one version of `key`, or None when that version does not exist."""
    cached = deps.cache.get(key.key_id, version)
    if cached is not None:
        return cached
    record = ks.get_material(tx, key.key_id, version)
    if record is None:
        return None
    try:
        material = deps.root.unwrap(record.material_wrapped, material_purpose(key.key_id, version))
    except RootKeyError:
        log.error("key material does not unwrap under the root key", extra={"key_id": key.key_id})
        raise KMSInternalException("The key material could not be unwrapped.") from None
    deps.cache.put(key.key_id, version, material)
    return material


def create_key(deps: KmsDeps, tx: Tx, account_id: str, region: str, *, policy: str, description: str = "",
               key_manager: str = "CUSTOMER", tags: list[dict[str, str]] | None = None,
               rotation_days: int | None = None) -> KmsKeyRecord:
    """Insert a new Enabled symmetric key with its first material."""
    now = deps.clock()
    key_id = str(uuid.uuid4())
    key = KmsKeyRecord(
        key_id=key_id, account_id=account_id, region=region, arn=key_arn(region, account_id, key_id),
        key_usage="ENCRYPT_DECRYPT", key_spec=SYMMETRIC_DEFAULT, origin="AWS_KMS", key_manager=key_manager,
        key_state=ENABLED, creation_date=now, current_material=1, policy=policy, description=description,
        rotation_enabled=rotation_days is not None, rotation_period_days=rotation_days,
        next_rotation_date=now + rotation_days * DAY if rotation_days else None, tags=list(tags or []),
    )
    ks.insert_key(tx, key)  # the key row first: material rows reference it
    _insert_material(deps, tx, key_id, 1, None)
    return key


def ensure_managed_key(deps: KmsDeps, tx: Tx, account_id: str, region: str) -> KmsKeyRecord:
    """The account's aws/secretsmanager key, created on first use as AWS does.

    Runs in the caller's write transaction. Two first uses racing on
    PostgreSQL collide on the alias's primary key; the loser's savepoint
    rolls back and it uses the winner's key.
    """
    alias = ks.get_alias(tx, account_id, region, SECRETS_MANAGER_ALIAS)
    key = ks.get_key(tx, alias.key_id) if alias else None
    if key is not None:
        return key
    try:
        with tx.conn.begin_nested():
            key = create_key(deps, tx, account_id, region, policy=managed_key_policy(account_id, region),
                             description=MANAGED_DESCRIPTION, key_manager="AWS",
                             rotation_days=DEFAULT_ROTATION_DAYS)
            now = deps.clock()
            ks.insert_alias(tx, KmsAliasRecord(account_id, region, SECRETS_MANAGER_ALIAS, key.key_id, now, now))
    except IntegrityError:
        alias = ks.get_alias(tx, account_id, region, SECRETS_MANAGER_ALIAS)
        key = ks.get_key(tx, alias.key_id) if alias else None
        if key is None:
            raise
        return key
    log.info("created AWS managed key", extra={"key_arn": key.arn, "alias": SECRETS_MANAGER_ALIAS})
    return key
