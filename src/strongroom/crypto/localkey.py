"""A root key held in memory after being unlocked (by a passphrase, shares or an external KMS).

Wraps exactly as FileRootKey does (AES-256-GCM, the purpose as authenticated
data), so every in-memory source shares one blob format.
"""

from __future__ import annotations

import hashlib

from strongroom.crypto import aead
from strongroom.crypto.rootkey import RootKeyError

WRAP_AAD = b"strongroom/root-wrap/v1:"


def fingerprint(prefix: str, key: bytes) -> str:
    """A public key id: names the key without revealing it (truncated, domain-separated hash)."""
    return f"{prefix}:" + hashlib.sha256(b"strongroom-key-id" + key).hexdigest()[:16]


class LocalRootKey:
    """32 bytes in process memory; `key_id` is `<source>:<fingerprint>`."""

    def __init__(self, key: bytes, source: str):
        if len(key) != aead.KEY_SIZE:
            raise RootKeyError("a root key is exactly 32 bytes")
        self._key = key
        self.key_id = fingerprint(source, key)

    def wrap(self, plaintext: bytes, purpose: bytes) -> bytes:
        return aead.encrypt(self._key, plaintext, WRAP_AAD + purpose)

    def unwrap(self, blob: bytes, purpose: bytes) -> bytes:
        try:
            return aead.decrypt(self._key, blob, WRAP_AAD + purpose)
        except aead.DecryptError:
            raise RootKeyError("data was not wrapped by this root key (or was altered)") from None
