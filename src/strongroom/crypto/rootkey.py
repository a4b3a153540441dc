"""Root-key sources: what wraps every other key strongroom keeps.

A root key never hands out its raw bytes; callers only ask it to wrap or
unwrap small secrets (data keys, KMS key material, access-key secrets).
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Protocol

from strongroom.crypto import aead

_WRAP_AAD = b"strongroom/root-wrap/v1:"


class RootKeyError(Exception):
    """The root key is missing, unreadable or does not match the data."""


class RootKey(Protocol):
    """Wraps and unwraps key material; implementations keep the key to themselves."""

    key_id: str

    def wrap(self, plaintext: bytes, purpose: bytes) -> bytes: ...

    def unwrap(self, blob: bytes, purpose: bytes) -> bytes: ...


class FileRootKey:
    """The embedded default: 32 random bytes in a file readable by the owner only."""

    def __init__(self, key: bytes):
        if len(key) != aead.KEY_SIZE:
            raise RootKeyError("root key file must hold exactly 32 bytes")
        self._key = key
        # A public fingerprint lets a restore tell "wrong key" from "corrupt data".
        self.key_id = "file:" + hashlib.sha256(b"strongroom-key-id" + key).hexdigest()[:16]

    @classmethod
    def create(cls, path: Path) -> "FileRootKey":
        path.parent.mkdir(parents=True, exist_ok=True)
        key = aead.new_key()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
            f.flush()
            os.fsync(f.fileno())
        return cls(key)

    @classmethod
    def load(cls, path: Path) -> "FileRootKey":
        try:
            mode = path.stat().st_mode
            key = path.read_bytes()
        except FileNotFoundError:
            raise RootKeyError(f"root key file {path} does not exist; run `strongroom init`") from None
        except OSError as exc:
            raise RootKeyError(f"cannot read root key file {path}: {exc.strerror}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise RootKeyError(f"root key file {path} must not be readable by group or others (chmod 600)")
        return cls(key)

    def wrap(self, plaintext: bytes, purpose: bytes) -> bytes:
        return aead.encrypt(self._key, plaintext, _WRAP_AAD + purpose)

    def unwrap(self, blob: bytes, purpose: bytes) -> bytes:
        try:
            return aead.decrypt(self._key, blob, _WRAP_AAD + purpose)
        except aead.DecryptError:
            raise RootKeyError("data was not wrapped by this root key (or was altered)") from None
