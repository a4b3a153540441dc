"""The ciphertext blob a KMS key returns: self-describing, bound to its encryption context.

Layout (all integers big-endian)::

    version (1 byte, = 1) | key id (16 bytes, the key's UUID) | material version (4 bytes)
    | nonce (12 bytes) | AES-256-GCM ciphertext | tag (16 bytes)

The first 21 bytes are the header: Decrypt reads from it which key and which
generation of that key's material to use, so callers never have to say. The
additional authenticated data covers the header and the canonical encryption
context, so a blob whose header was edited to point at another key or
material, or opened with a different context, fails authentication.

Each material version is a random 256-bit key used with random 96-bit nonces;
the usual bound of 2**32 messages per key applies per material version, which
rotation (automatic or on demand) resets.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from strongroom.crypto import aead

FORMAT_VERSION = 1
HEADER_SIZE = 1 + 16 + 4
MIN_SIZE = HEADER_SIZE + aead.NONCE_SIZE + 16
_AAD_PREFIX = b"strongroom/kms-ciphertext/v1"


class CiphertextError(Exception):
    """The blob is not a strongroom KMS ciphertext, was altered, or its context differs."""


@dataclass(frozen=True, slots=True)
class Header:
    key_id: str  # the KMS key's UUID, canonical lowercase form
    material_version: int


def pack_header(key_id: str, material_version: int) -> bytes:
    if not 0 <= material_version < 2**32:
        raise ValueError("material version out of range")
    return bytes([FORMAT_VERSION]) + uuid.UUID(key_id).bytes + material_version.to_bytes(4, "big")


def parse_header(blob: bytes) -> Header:
    """The header of `blob`; CiphertextError when it cannot be one of ours."""
    if len(blob) < MIN_SIZE or blob[0] != FORMAT_VERSION:
        raise CiphertextError("not a recognised ciphertext blob")
    key_id = str(uuid.UUID(bytes=bytes(blob[1:17])))
    return Header(key_id, int.from_bytes(blob[17:HEADER_SIZE], "big"))


def canonical_context(context: Mapping[str, str] | None) -> bytes:
    """Encryption context as unambiguous bytes: order-independent, length-prefixed UTF-8 pairs.

    AWS treats the context as an unordered map, so {"a": "1", "b": "2"} and
    {"b": "2", "a": "1"} must authenticate identically; length prefixes keep
    {"ab": "c"} and {"a": "bc"} apart.
    """
    items = sorted((context or {}).items())
    out = bytearray(len(items).to_bytes(4, "big"))
    for key, value in items:
        for part in (key.encode(), value.encode()):
            out += len(part).to_bytes(4, "big") + part
    return bytes(out)


def _aad(header: bytes, context: Mapping[str, str] | None) -> bytes:
    return _AAD_PREFIX + header + canonical_context(context)


def seal(material: bytes, key_id: str, material_version: int, plaintext: bytes,
         context: Mapping[str, str] | None) -> bytes:
    """Encrypt `plaintext` under one material version of a KMS key."""
    header = pack_header(key_id, material_version)
    return header + aead.encrypt(material, plaintext, _aad(header, context))


def open_blob(material: bytes, blob: bytes, context: Mapping[str, str] | None) -> bytes:
    """Decrypt a blob made by `seal` with the material its header names."""
    parse_header(blob)
    header = bytes(blob[:HEADER_SIZE])
    try:
        return aead.decrypt(material, bytes(blob[HEADER_SIZE:]), _aad(header, context))
    except aead.DecryptError:
        raise CiphertextError("ciphertext or encryption context does not authenticate") from None
