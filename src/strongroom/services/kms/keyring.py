"""The keyring Secrets Manager seals values through, backed by KMS keys, as AWS does.

Each secret version gets its own data key from GenerateDataKey under the
secret's KMS key (or the account's aws/secretsmanager key, created on first
use), with the encryption context {"SecretARN": ..., "SecretVersionId": ...};
the stored wrapped key is the KMS ciphertext blob. Opening asks KMS to
decrypt that blob, so a disabled key, a key pending deletion or a blob moved
to another secret or version fails there. Versions sealed before KMS keys
existed (key id "file:...") are still opened by the root-key keyring.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

from strongroom.cache.lru import LRU
from strongroom.cache.secrets import fresh_view
from strongroom.crypto import aead, kms_ciphertext
from strongroom.crypto.kms_ciphertext import CiphertextError
from strongroom.crypto.envelope import Sealed, open_with, seal_with
from strongroom.crypto.keyring import (
    DEFAULT_KEY_LABEL,
    DecryptionError,
    EncryptionError,
    InvalidKeyError,
    KeyAccessDenied,
    Keyring,
    SealContext,
)
from strongroom.context import current_request
from strongroom.errors import (
    AccessDeniedException,
    AwsError,
    InvalidCiphertextException,
    KMSInternalException,
    NotFoundException,
)
from strongroom.services.kms.access import CROSS_ACCOUNT_ACTIONS, authorize_key
from strongroom.services.kms.core import Caller, KmsDeps, alias_arn, require_enabled, require_usable_by, resolve_key
from strongroom.services.kms.cryptoops import UNKNOWN_CIPHERTEXT_KEY, decrypt_blob, encrypt_under
from strongroom.services.kms.materials import SECRETS_MANAGER_ALIAS, ensure_managed_key, load_material
from strongroom.storage import Tx
from strongroom.storage import kms_store as ks
from strongroom.storage.kms_store import KmsKeyRecord
from strongroom.storage.store import WouldBlock, no_blocking

SERVICE = "secretsmanager"
DATA_KEY_BYTES = 32


class KmsKeyring:
    def __init__(self, deps: KmsDeps, legacy: Keyring | None = None, *, max_keys: int = 1024,
                 max_data_keys: int = 10_000):
        self.deps = deps
        self.legacy = legacy
        # Key rows (state, policy), trusted only in a request whose view the change feed made fresh;
        # dropped on every KMS key change (services/kms/keys.py announces state changes,
        # storage/store.py any other write to a key row).
        self.records: LRU[str, KmsKeyRecord] = LRU(max_keys)
        self._records_epoch = 0
        # Unwrapped data keys, by (wrapped key, encryption context): what a blob opens to never changes,
        # and the key's state and policy are checked on every use before one is taken from here.
        self.data_keys: LRU[tuple[bytes, tuple[tuple[str, str], ...]], tuple[str, bytes]] = LRU(max_data_keys)

    def forget_key(self, key_id: str | None = None) -> None:
        """A KMS key changed (None or "*": any key): drop what is cached about it."""
        self._records_epoch += 1
        if key_id is None or key_id == "*":
            self.records.drop()
            self.data_keys.drop()
        else:
            self.records.drop(lambda k, _: k == key_id)
            self.data_keys.drop(lambda _, v: v[0] == key_id)

    # -- the Keyring protocol ------------------------------------------------------
    def seal(self, plaintext: bytes, aad: bytes, kms_key_id: str | None, *,
             context: SealContext | None = None) -> tuple[str, Sealed]:
        if context is None:
            raise EncryptionError("sealing under a KMS key needs the secret's SealContext")
        try:
            with self._tx(context, write=True) as tx:
                key = self._key_for(tx, context, kms_key_id)
                caller = self._caller(context)
                require_usable_by(key, caller, "GenerateDataKey")
                authorize_key(caller, key, "GenerateDataKey", encryption_context=context.encryption_context)
                require_enabled(key)
                # GenerateDataKey: a fresh data key, returned with its encryption under the KMS key.
                data_key = os.urandom(DATA_KEY_BYTES)
                blob = encrypt_under(self.deps, tx, key, data_key, context.encryption_context)
        except KMSInternalException:
            raise
        except AccessDeniedException as err:
            raise KeyAccessDenied(err.message, kms_code=err.code) from None
        except AwsError as err:
            raise EncryptionError(err.message, kms_code=err.code) from None
        return _label(key), seal_with(data_key, blob, plaintext, aad)

    def open(self, key_id: str, sealed: Sealed, aad: bytes, *, context: SealContext | None = None) -> bytes:
        if key_id != DEFAULT_KEY_LABEL and not key_id.startswith("arn:"):
            if self.legacy is None:
                raise DecryptionError("the value was sealed by a keyring this server does not have")
            if no_blocking.get():
                raise WouldBlock()  # the root key may be an HSM or a remote KMS
            return self.legacy.open(key_id, sealed, aad, context=context)
        if context is None:
            raise DecryptionError("opening a KMS-sealed value needs the secret's SealContext")
        try:
            if context.tx is not None and cast(Tx, context.tx).write:
                with self._tx(context, write=False) as tx:  # a write decides from the database itself
                    key, _, data_key = decrypt_blob(self.deps, tx, self._caller(context), sealed.wrapped_key,
                                                    context.encryption_context)
            else:
                key, data_key = self._data_key(context, sealed.wrapped_key, key_id)
        except KMSInternalException:
            raise
        except AccessDeniedException as err:
            raise KeyAccessDenied(err.message, kms_code=err.code) from None
        except AwsError as err:
            raise DecryptionError(err.message, kms_code=err.code) from None
        if _label(key) != key_id:
            # The row names the key it was sealed under; a blob from another key was swapped in.
            raise DecryptionError("the data key was not sealed under this version's KMS key",
                                  kms_code="IncorrectKeyException")
        try:
            return open_with(data_key, sealed, aad)
        except aead.DecryptError:
            raise DecryptionError("the value could not be decrypted") from None

    def check_key(self, kms_key_id: str, context: SealContext) -> None:
        if self._is_managed_alias(context, kms_key_id):
            return  # created on first use
        try:
            with self._tx(context, write=False) as tx:
                # Existence only: using the key (GenerateDataKey, Decrypt) is what its policy decides.
                resolve_key(tx, self._caller(context), kms_key_id, action="DescribeKey", authorize=False)
        except AccessDeniedException as err:
            raise KeyAccessDenied(err.message, kms_code=err.code) from None
        except AwsError as err:
            raise InvalidKeyError(err.message, kms_code=err.code) from None

    # -- reading, with the caches ---------------------------------------------------
    def _data_key(self, context: SealContext, blob: bytes, sealed_under: str = "") -> tuple[KmsKeyRecord, bytes]:
        """cryptoops.decrypt_blob's checks and answer, with the key row and the data key cached.

        `sealed_under` is the key ARN the secret's row names: when that key is gone (deleted
        after its waiting period) the answer is KMS's NotFoundException, which Secrets Manager
        reports as DecryptionFailure, rather than the access denial an unknown blob gets.
        """
        caller = self._caller(context)
        enc = context.encryption_context
        try:
            header = kms_ciphertext.parse_header(blob)
        except CiphertextError:
            raise InvalidCiphertextException("") from None
        key = self._key_record(context, header.key_id)
        if key is None and sealed_under.endswith(f":key/{header.key_id}"):
            raise NotFoundException(f"Key '{sealed_under}' does not exist")
        if key is None or key.region != caller.region:
            raise AccessDeniedException(UNKNOWN_CIPHERTEXT_KEY)
        if key.account_id != caller.account_id and (caller.ctx is None or "Decrypt" not in CROSS_ACCOUNT_ACTIONS):
            raise AccessDeniedException(UNKNOWN_CIPHERTEXT_KEY)
        require_usable_by(key, caller, "Decrypt")
        authorize_key(caller, key, "Decrypt", encryption_context=enc or {})
        require_enabled(key)
        cache_key = (bytes(blob), tuple(sorted(enc.items())))
        hit = self.data_keys.get(cache_key)
        if hit is not None and hit[0] == key.key_id:
            return key, hit[1]
        with self._tx(context, write=False) as tx:
            material = load_material(self.deps, tx, key, header.material_version)
        if material is None:
            raise InvalidCiphertextException("")
        try:
            data_key = kms_ciphertext.open_blob(material, blob, enc)
        except CiphertextError:
            raise InvalidCiphertextException("") from None
        self.data_keys.put(cache_key, (key.key_id, data_key))
        return key, data_key

    def _key_record(self, context: SealContext, key_id: str) -> KmsKeyRecord | None:
        trusted = fresh_view.get()
        if trusted:
            cached = self.records.get(key_id)
            if cached is not None:
                return cached
        epoch = self._records_epoch
        with self._tx(context, write=False) as tx:
            key = ks.get_key(tx, key_id)
        if trusted and key is not None and epoch == self._records_epoch:
            self.records.put(key_id, key)
        return key

    # -- helpers ------------------------------------------------------------------
    def _caller(self, context: SealContext) -> Caller:
        """Secrets Manager acting for the request's caller (kms:ViaService), in the secret's account."""
        ctx = current_request.get()
        arn = ctx.principal.arn if ctx is not None else f"arn:aws:iam::{context.account_id}:root"
        return Caller(context.account_id, context.region, arn, via_service=SERVICE, ctx=ctx)

    @contextmanager
    def _tx(self, context: SealContext, *, write: bool) -> Iterator[Tx]:
        if context.tx is not None:
            # Inside the secret's write: the KMS key is used, not changed, so it is share-locked
            # (a concurrent DisableKey waits for this seal) and writers of other secrets don't queue.
            yield cast(Tx, context.tx).sharing()
            return
        with (self.deps.store.write() if write else self.deps.store.read()) as tx:
            yield tx

    def _is_managed_alias(self, context: SealContext, ref: str | None) -> bool:
        return ref in (SECRETS_MANAGER_ALIAS, alias_arn(context.region, context.account_id, SECRETS_MANAGER_ALIAS))

    def _key_for(self, tx: Tx, context: SealContext, kms_key_id: str | None) -> KmsKeyRecord:
        if not kms_key_id or self._is_managed_alias(context, kms_key_id):
            return ensure_managed_key(self.deps, tx, context.account_id, context.region)
        return resolve_key(tx, self._caller(context), kms_key_id, action="GenerateDataKey", authorize=False)


def _label(key: KmsKeyRecord) -> str:
    """The key id a version row records (and ListSecretVersionIds reports)."""
    return DEFAULT_KEY_LABEL if key.key_manager == "AWS" else key.arn
