"""Encryption: the only package that touches nonces and raw keys."""

from strongroom.crypto.envelope import open_sealed, seal
from strongroom.crypto.rootkey import FileRootKey, RootKey, RootKeyError

__all__ = ["FileRootKey", "RootKey", "RootKeyError", "open_sealed", "seal"]
