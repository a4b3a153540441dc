"""Cryptographic operations: Encrypt, Decrypt, ReEncrypt, GenerateDataKey(WithoutPlaintext),
GenerateRandom, and the two primitives the Secrets Manager keyring shares with them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from strongroom.context import RequestContext
from strongroom.crypto import kms_ciphertext
from strongroom.crypto.kms_ciphertext import CiphertextError
from strongroom.errors import (
    AccessDeniedException,
    DryRunOperationException,
    IncorrectKeyException,
    InvalidCiphertextException,
    InvalidKeyUsageException,
    KMSInternalException,
    UnsupportedOperationException,
    ValidationException,
)
from strongroom.services.kms.access import CROSS_ACCOUNT_ACTIONS, authorize_identity, authorize_key
from strongroom.services.kms.core import (
    SYMMETRIC_DEFAULT,
    Caller,
    KmsDeps,
    material_id,
    require_enabled,
    require_usable_by,
    resolve_key,
)
from strongroom.services.kms.materials import load_material
from strongroom.storage import Tx
from strongroom.storage import kms_store as ks
from strongroom.storage.kms_store import KmsKeyRecord

UNKNOWN_CIPHERTEXT_KEY = ("The ciphertext refers to a customer master key that does not exist, "
                          "does not exist in this region, or you are not allowed to access.")
DATA_KEY_BYTES = {"AES_256": 32, "AES_128": 16}


# -- primitives -----------------------------------------------------------------
def encrypt_under(deps: KmsDeps, tx: Tx, key: KmsKeyRecord, plaintext: bytes,
                  context: Mapping[str, str] | None) -> bytes:
    """A ciphertext blob of `plaintext` under the key's newest material (state already checked)."""
    material = load_material(deps, tx, key, key.current_material)
    if material is None:
        raise KMSInternalException("The key's current material is missing.")
    return kms_ciphertext.seal(material, key.key_id, key.current_material, plaintext, context)


def decrypt_blob(deps: KmsDeps, tx: Tx, caller: Caller, blob: bytes, context: Mapping[str, str] | None,
                 *, action: str = "Decrypt") -> tuple[KmsKeyRecord, int, bytes]:
    """(key, material version, plaintext) of a blob; the key is the one the blob's header names."""
    try:
        header = kms_ciphertext.parse_header(blob)
    except CiphertextError:
        raise InvalidCiphertextException("") from None
    key = ks.get_key(tx, header.key_id)
    if key is None or key.region != caller.region:
        raise AccessDeniedException(UNKNOWN_CIPHERTEXT_KEY)
    if key.account_id != caller.account_id and (caller.ctx is None or action not in CROSS_ACCOUNT_ACTIONS):
        raise AccessDeniedException(UNKNOWN_CIPHERTEXT_KEY)
    require_usable_by(key, caller, action)
    authorize_key(caller, key, action, encryption_context=context or {})
    require_enabled(key)
    material = load_material(deps, tx, key, header.material_version)
    if material is None:
        raise InvalidCiphertextException("")
    try:
        return key, header.material_version, kms_ciphertext.open_blob(material, blob, context)
    except CiphertextError:
        raise InvalidCiphertextException("") from None


def usable_key(tx: Tx, caller: Caller, ref: str, action: str,
               context: Mapping[str, str] | None = None) -> KmsKeyRecord:
    """The key for a cryptographic operation, authorized with the request's encryption context."""
    key = resolve_key(tx, caller, ref, action=action, authorize=False)
    require_usable_by(key, caller, action)
    authorize_key(caller, key, action, encryption_context=context or {},
                  request_alias=ref if ref.startswith("alias/") or ":alias/" in ref else None)
    require_enabled(key)
    return key


# -- request checks shared by the operations -------------------------------------
def _check_request(req: dict[str, Any], key: KmsKeyRecord | None, *algorithm_fields: str) -> None:
    if "Recipient" in req:
        raise UnsupportedOperationException("Recipient (attested AWS Nitro Enclaves) isn't supported by strongroom.")
    for name in algorithm_fields:
        algorithm = req.get(name, SYMMETRIC_DEFAULT)
        if algorithm != SYMMETRIC_DEFAULT:
            target = key.arn if key is not None else "this key"
            raise InvalidKeyUsageException(f"{algorithm} is not a valid encryption algorithm for {target}; "
                                           f"symmetric keys use {SYMMETRIC_DEFAULT}.")


def _dry_run(req: dict[str, Any]) -> None:
    if req.get("DryRun"):
        raise DryRunOperationException("The request would have succeeded, but the DryRun option is set.")


# -- operations -----------------------------------------------------------------
def encrypt(deps: KmsDeps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    with deps.store.read() as tx:
        key = usable_key(tx, Caller.of(ctx), req["KeyId"], "Encrypt", req.get("EncryptionContext"))
        _check_request(req, key, "EncryptionAlgorithm")
        _dry_run(req)
        blob = encrypt_under(deps, tx, key, req["Plaintext"], req.get("EncryptionContext"))
    return {"CiphertextBlob": blob, "KeyId": key.arn, "EncryptionAlgorithm": SYMMETRIC_DEFAULT}


def decrypt(deps: KmsDeps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    if "CiphertextBlob" not in req:
        raise ValidationException("1 validation error detected: Value null at 'ciphertextBlob' failed to "
                                  "satisfy constraint: Member must not be null")
    caller = Caller.of(ctx)
    _check_request(req, None, "EncryptionAlgorithm")
    with deps.store.read() as tx:
        named = (resolve_key(tx, caller, req["KeyId"], action="Decrypt", authorize=False)  # the blob's key is
                 if "KeyId" in req else None)  # authorized below, with the encryption context
        key, version, plaintext = decrypt_blob(deps, tx, caller, req["CiphertextBlob"],
                                               req.get("EncryptionContext"))
    if named is not None and named.key_id != key.key_id:
        raise IncorrectKeyException("The key ID in the request does not identify a CMK that can perform "
                                    "this operation.")
    _dry_run(req)
    return {"KeyId": key.arn, "Plaintext": plaintext, "EncryptionAlgorithm": SYMMETRIC_DEFAULT,
            "KeyMaterialId": material_id(key.key_id, version)}


def re_encrypt(deps: KmsDeps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    if "CiphertextBlob" not in req:
        raise ValidationException("1 validation error detected: Value null at 'ciphertextBlob' failed to "
                                  "satisfy constraint: Member must not be null")
    caller = Caller.of(ctx)
    _check_request(req, None, "SourceEncryptionAlgorithm", "DestinationEncryptionAlgorithm")
    with deps.store.read() as tx:
        named = (resolve_key(tx, caller, req["SourceKeyId"], action="ReEncryptFrom", authorize=False)
                 if "SourceKeyId" in req else None)
        source, version, plaintext = decrypt_blob(deps, tx, caller, req["CiphertextBlob"],
                                                  req.get("SourceEncryptionContext"), action="ReEncryptFrom")
        if named is not None and named.key_id != source.key_id:
            raise IncorrectKeyException("The key ID in the request does not identify a CMK that can perform "
                                        "this operation.")
        dest = usable_key(tx, caller, req["DestinationKeyId"], "ReEncryptTo", req.get("DestinationEncryptionContext"))
        _dry_run(req)
        blob = encrypt_under(deps, tx, dest, plaintext, req.get("DestinationEncryptionContext"))
    return {
        "CiphertextBlob": blob,
        "SourceKeyId": source.arn,
        "KeyId": dest.arn,
        "SourceEncryptionAlgorithm": SYMMETRIC_DEFAULT,
        "DestinationEncryptionAlgorithm": SYMMETRIC_DEFAULT,
        "SourceKeyMaterialId": material_id(source.key_id, version),
        "DestinationKeyMaterialId": material_id(dest.key_id, dest.current_material),
    }


def data_key_size(req: dict[str, Any]) -> int:
    spec, size = req.get("KeySpec"), req.get("NumberOfBytes")
    if spec is None and size is None:
        raise ValidationException("Please specify either number of bytes or key spec.")
    if spec is not None and size is not None:
        raise ValidationException("Please specify either number of bytes or key spec, not both.")
    return DATA_KEY_BYTES[spec] if spec is not None else int(size)  # type: ignore[arg-type]


def generate_data_key(deps: KmsDeps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return _generate(deps, ctx, req, "GenerateDataKey")


def generate_data_key_without_plaintext(deps: KmsDeps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    out = _generate(deps, ctx, req, "GenerateDataKeyWithoutPlaintext")
    del out["Plaintext"]
    return out


def _generate(deps: KmsDeps, ctx: RequestContext, req: dict[str, Any], action: str) -> dict[str, Any]:
    size = data_key_size(req)
    with deps.store.read() as tx:
        key = usable_key(tx, Caller.of(ctx), req["KeyId"], action, req.get("EncryptionContext"))
        _check_request(req, key)
        _dry_run(req)
        plaintext = os.urandom(size)
        blob = encrypt_under(deps, tx, key, plaintext, req.get("EncryptionContext"))
    return {"CiphertextBlob": blob, "Plaintext": plaintext, "KeyId": key.arn,
            "KeyMaterialId": material_id(key.key_id, key.current_material)}


def generate_random(deps: KmsDeps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    authorize_identity(ctx, "GenerateRandom")
    _check_request(req, None)
    if req.get("CustomKeyStoreId"):
        raise UnsupportedOperationException("Custom key stores aren't supported by strongroom.")
    if "NumberOfBytes" not in req:
        raise ValidationException("Please specify the number of bytes (NumberOfBytes).")
    return {"Plaintext": os.urandom(req["NumberOfBytes"])}
