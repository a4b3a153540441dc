"""Envelope encryption: one fresh data key per sealed value.

The value is encrypted with AES-256-GCM under a new data key; the data key is
wrapped by a key-encryption function (the root key today, a KMS key on top of
it). The authenticated data binds the ciphertext to where it belongs, so a
ciphertext moved to another row no longer decrypts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from strongroom.crypto import aead

Wrap = Callable[[bytes], bytes]
Unwrap = Callable[[bytes], bytes]


@dataclass(frozen=True, slots=True)
class Sealed:
    wrapped_key: bytes
    ciphertext: bytes


def seal(plaintext: bytes, aad: bytes, wrap: Wrap) -> Sealed:
    data_key = aead.new_key()
    return Sealed(wrapped_key=wrap(data_key), ciphertext=aead.encrypt(data_key, plaintext, aad))


def seal_with(data_key: bytes, wrapped_key: bytes, plaintext: bytes, aad: bytes) -> Sealed:
    """Seal under a data key generated elsewhere (KMS GenerateDataKey), given its wrapped form."""
    return Sealed(wrapped_key=wrapped_key, ciphertext=aead.encrypt(data_key, plaintext, aad))


def open_with(data_key: bytes, sealed: Sealed, aad: bytes) -> bytes:
    """Decrypt with a data key already unwrapped; raises aead.DecryptError on any mismatch."""
    return aead.decrypt(data_key, sealed.ciphertext, aad)


def open_sealed(sealed: Sealed, aad: bytes, unwrap: Unwrap) -> bytes:
    """Decrypt; raises aead.DecryptError when the key, data or binding is wrong."""
    return aead.decrypt(unwrap(sealed.wrapped_key), sealed.ciphertext, aad)


def binding(*parts: str) -> bytes:
    """Additional authenticated data from unambiguous parts (length-prefixed)."""
    out = bytearray()
    for part in parts:
        raw = part.encode()
        out += len(raw).to_bytes(4, "big") + raw
    return bytes(out)
