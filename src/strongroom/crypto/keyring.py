"""The keyring secrets are sealed with: data keys wrapped by a key-encryption key."""

from __future__ import annotations

from typing import Protocol

from strongroom.crypto import aead
from strongroom.crypto.envelope import Sealed, open_sealed, seal
from strongroom.crypto.rootkey import RootKey, RootKeyError


class DecryptionError(Exception):
    """A sealed value could not be opened (wrong key, altered data or binding)."""


class Keyring(Protocol):
    def seal(self, plaintext: bytes, aad: bytes, kms_key_id: str | None) -> tuple[str, Sealed]: ...

    def open(self, key_id: str, sealed: Sealed, aad: bytes) -> bytes: ...


class RootKeyring:
    """Wraps each data key directly under the root key."""

    _PURPOSE = b"secret-data-key"

    def __init__(self, root: RootKey):
        self.root = root

    def seal(self, plaintext: bytes, aad: bytes, kms_key_id: str | None) -> tuple[str, Sealed]:
        sealed = seal(plaintext, aad, lambda dk: self.root.wrap(dk, self._PURPOSE + aad))
        return self.root.key_id, sealed

    def open(self, key_id: str, sealed: Sealed, aad: bytes) -> bytes:
        try:
            return open_sealed(sealed, aad, lambda w: self.root.unwrap(w, self._PURPOSE + aad))
        except (RootKeyError, aead.DecryptError):
            raise DecryptionError("the value could not be decrypted") from None
