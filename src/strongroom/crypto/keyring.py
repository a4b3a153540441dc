"""The keyring secrets are sealed with: data keys wrapped by a key-encryption key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from strongroom.crypto import aead
from strongroom.crypto.envelope import Sealed, open_sealed, seal
from strongroom.crypto.rootkey import RootKey, RootKeyError

# What Secrets Manager reports as a version's KMS key when the AWS managed key protects it.
DEFAULT_KEY_LABEL = "DefaultEncryptionKey"
# The root-key purpose of a data key sealed by RootKeyring (followed by the value's binding).
ROOT_DATA_KEY_PURPOSE = b"secret-data-key"


class KeyringError(Exception):
    """A keyring refused; `kms_code` names the KMS error when a KMS key was the reason."""

    def __init__(self, message: str = "", *, kms_code: str | None = None):
        super().__init__(message)
        self.message = message
        self.kms_code = kms_code


class DecryptionError(KeyringError):
    """A sealed value could not be opened (wrong key, altered data or binding, unusable key)."""


class EncryptionError(KeyringError):
    """A value could not be sealed because its key is not usable (disabled, pending deletion, gone)."""


class InvalidKeyError(KeyringError):
    """The key named for a secret does not exist or is not a valid key identifier."""


class KeyAccessDenied(KeyringError):
    """The key exists but belongs to an account the secret's account may not use."""


@dataclass(frozen=True, slots=True)
class SealContext:
    """Whose value is sealed, for keyrings that bind data keys to resources (the KMS keyring).

    `tx` is the caller's open storage transaction, if any: key lookups (and the
    first-use creation of the AWS managed key) then join it instead of opening
    a second write transaction that SQLite would make wait on the first.
    """

    account_id: str
    region: str
    encryption_context: Mapping[str, str] = field(default_factory=dict)
    tx: object | None = None


class Keyring(Protocol):
    def seal(self, plaintext: bytes, aad: bytes, kms_key_id: str | None, *,
             context: SealContext | None = None) -> tuple[str, Sealed]: ...

    def open(self, key_id: str, sealed: Sealed, aad: bytes, *, context: SealContext | None = None) -> bytes: ...

    def check_key(self, kms_key_id: str, context: SealContext) -> None:
        """Raise InvalidKeyError / KeyAccessDenied unless `kms_key_id` names a key the account may use."""
        ...


def kms_key_label(key_id: str | None) -> str:
    """A version's key as Secrets Manager's ListSecretVersionIds reports it (KmsKeyIds)."""
    return key_id if key_id and key_id.startswith("arn:") else DEFAULT_KEY_LABEL


class RootKeyring:
    """Wraps each data key directly under the root key (the format before KMS keys)."""

    _PURPOSE = ROOT_DATA_KEY_PURPOSE

    def __init__(self, root: RootKey):
        self.root = root

    def seal(self, plaintext: bytes, aad: bytes, kms_key_id: str | None, *,
             context: SealContext | None = None) -> tuple[str, Sealed]:
        sealed = seal(plaintext, aad, lambda dk: self.root.wrap(dk, self._PURPOSE + aad))
        return self.root.key_id, sealed

    def open(self, key_id: str, sealed: Sealed, aad: bytes, *, context: SealContext | None = None) -> bytes:
        try:
            return open_sealed(sealed, aad, lambda w: self.root.unwrap(w, self._PURPOSE + aad))
        except (RootKeyError, aead.DecryptError):
            raise DecryptionError("the value could not be decrypted") from None

    def check_key(self, kms_key_id: str, context: SealContext) -> None:
        return None
