"""The passphrase root-key source: a random root key kept wrapped under a key-encryption key.

The key-encryption key (KEK) comes either from a passphrase, through scrypt
with a random salt and the parameters stored beside it, or from Shamir shares
of a random KEK (n-of-m: any `threshold` shares rebuild it). Only wrapped root
keys are written to disk (`root-passphrase.json` in the data directory, mode
0600); a wrong passphrase or wrong shares fail AES-GCM authentication when a
root key is unwrapped, so they are told apart from a right one without storing
any verifier.

The vault may hold several root keys while an online rekey moves data from
one to the next; each is bound (authenticated data) to its own key id.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from strongroom.crypto import aead, shamir
from strongroom.crypto.localkey import LocalRootKey
from strongroom.crypto.rootkey import RootKeyError

VAULT_FILE = "root-passphrase.json"
FORMAT = "strongroom-passphrase-vault/1"
SOURCE = "passphrase"
MIN_PASSPHRASE = 8
# scrypt cost: 2**15 * 8 * 128 bytes = 32 MiB and ~0.1 s per attempt; stored per vault, so it can grow.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
_AAD = b"strongroom/passphrase-vault/v1:"


class UnsealError(RootKeyError):
    """The passphrase or shares do not open this vault."""


@dataclass
class Vault:
    path: Path
    mode: str  # "passphrase" or "shares"
    salt: bytes = b""
    n: int = SCRYPT_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P
    total: int = 0  # shares mode: how many shares were made
    threshold: int = 0  # shares mode: how many rebuild the KEK
    keys: dict[str, bytes] = field(default_factory=dict)  # root key id -> root key wrapped by the KEK

    # -- creation and persistence -------------------------------------------------
    @classmethod
    def create_with_passphrase(cls, path: Path, passphrase: str) -> tuple["Vault", bytes]:
        if len(passphrase) < MIN_PASSPHRASE:
            raise RootKeyError(f"the passphrase must be at least {MIN_PASSPHRASE} characters")
        vault = cls(path, "passphrase", salt=os.urandom(16))
        return vault, vault.derive(passphrase)

    @classmethod
    def create_with_shares(cls, path: Path, total: int, threshold: int) -> tuple["Vault", bytes, list[str]]:
        if not 1 <= threshold <= total <= 255:
            raise RootKeyError("need 1 <= --threshold <= --shares <= 255")
        kek = aead.new_key()
        shares = [shamir.encode_share(s) for s in shamir.split(kek, total, threshold)]
        return cls(path, "shares", total=total, threshold=threshold), kek, shares

    @classmethod
    def load(cls, path: Path) -> "Vault":
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise RootKeyError(f"passphrase vault {path} does not exist; run `strongroom init --root-key passphrase`"
                               ) from None
        except (OSError, ValueError) as exc:
            raise RootKeyError(f"cannot read passphrase vault {path}: {type(exc).__name__}") from None
        if data.get("format") != FORMAT:
            raise RootKeyError(f"{path} is not a strongroom passphrase vault")
        kdf, shares = data.get("kdf") or {}, data.get("shares") or {}
        return cls(
            path, data["mode"],
            salt=base64.b64decode(kdf.get("salt", "")), n=int(kdf.get("n", SCRYPT_N)),
            r=int(kdf.get("r", SCRYPT_R)), p=int(kdf.get("p", SCRYPT_P)),
            total=int(shares.get("total", 0)), threshold=int(shares.get("threshold", 0)),
            keys={k: base64.b64decode(v) for k, v in data["keys"].items()},
        )

    def save(self) -> None:
        data = {
            "format": FORMAT,
            "mode": self.mode,
            "kdf": {"name": "scrypt", "n": self.n, "r": self.r, "p": self.p,
                    "salt": base64.b64encode(self.salt).decode()} if self.mode == "passphrase" else None,
            "shares": {"total": self.total, "threshold": self.threshold} if self.mode == "shares" else None,
            "keys": {k: base64.b64encode(v).decode() for k, v in self.keys.items()},
        }
        write_private(self.path, json.dumps(data, indent=2).encode())

    # -- the key-encryption key ---------------------------------------------------
    def derive(self, passphrase: str) -> bytes:
        """The KEK a passphrase gives (scrypt); right or wrong is only known by `open`."""
        if self.mode != "passphrase":
            raise UnsealError("this strongroom is unsealed with shares, not a passphrase")
        return Scrypt(salt=self.salt, length=32, n=self.n, r=self.r, p=self.p).derive(passphrase.encode())

    def combine(self, shares: list[str]) -> bytes:
        """The KEK the shares rebuild; ShareError on mistyped or duplicated shares."""
        if self.mode != "shares":
            raise UnsealError("this strongroom is unsealed with a passphrase, not shares")
        if len(shares) < self.threshold:
            raise UnsealError(f"{self.threshold} shares are needed, {len(shares)} given")
        return shamir.combine([shamir.decode_share(s) for s in shares])

    # -- root keys ----------------------------------------------------------------
    def add_key(self, kek: bytes) -> LocalRootKey:
        """A new random root key wrapped under `kek` (call save() to keep it)."""
        raw = aead.new_key()
        key = LocalRootKey(raw, SOURCE)
        self.keys[key.key_id] = aead.encrypt(kek, raw, _AAD + key.key_id.encode())
        return key

    def add_raw(self, kek: bytes, raw: bytes) -> LocalRootKey:
        """Add a root key made elsewhere (another node's rekey) under `kek` (call save() to keep it)."""
        key = LocalRootKey(raw, SOURCE)
        self.keys[key.key_id] = aead.encrypt(kek, raw, _AAD + key.key_id.encode())
        return key

    def open(self, kek: bytes, key_id: str | None = None) -> LocalRootKey:
        """The root key `key_id` (or the only one); UnsealError when `kek` is not this vault's."""
        if key_id is None:
            if len(self.keys) != 1:
                raise RootKeyError(f"the passphrase vault holds {len(self.keys)} root keys; name one")
            key_id = next(iter(self.keys))
        wrapped = self.keys.get(key_id)
        if wrapped is None:
            raise RootKeyError(f"the passphrase vault holds no root key {key_id}")
        try:
            raw = aead.decrypt(kek, wrapped, _AAD + key_id.encode())
        except aead.DecryptError:
            what = "passphrase" if self.mode == "passphrase" else "shares"
            raise UnsealError(f"wrong {what}: the vault does not open") from None
        key = LocalRootKey(raw, SOURCE)
        if key.key_id != key_id:
            raise RootKeyError("the passphrase vault is corrupt (key id mismatch)")
        return key

    def check(self, kek: bytes) -> None:
        """UnsealError unless `kek` opens the vault (tries any one key)."""
        if not self.keys:
            raise RootKeyError("the passphrase vault holds no root key")
        self.open(kek, next(iter(self.keys)))

    def remove_key(self, key_id: str) -> None:
        self.keys.pop(key_id, None)


def write_private(path: Path, data: bytes) -> None:
    """Replace `path` atomically with `data`, readable by the owner only, durably."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
