"""The root key a running strongroom uses: one active key, maybe others being retired, maybe sealed.

Every component is handed one RootKeyChain and keeps it; what it holds
changes underneath (unseal, seal, rekey) without anyone being rebuilt.

Wrapped values do not name the key that wrapped them (the blob format of each
source is unchanged). Unwrap tries the active key first, then the others:
AES-GCM authentication (or the HSM's) tells a wrong key apart with certainty,
so a wrong guess costs one failed decryption and never yields wrong data.
Outside a rekey there is only one key, so there is nothing to try.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from strongroom.crypto.rootkey import RootKey, RootKeyError


class SealedError(RootKeyError):
    """No root key is loaded: the server waits for `strongroom unseal`."""


SEALED_MESSAGE = "strongroom is sealed; run `strongroom unseal`"


class RootKeyChain:
    def __init__(self, keys: Sequence[RootKey] = (), active: str | None = None):
        self._lock = threading.Lock()
        self._keys: tuple[RootKey, ...] = ()
        self._active: RootKey | None = None
        # Called when no held key opens a value (RootKeys sets it): another node's rekey may have
        # re-wrapped it under a key this process has not loaded yet. True: look again.
        self.on_miss: Callable[[], bool] | None = None
        if keys:
            self.set_keys(keys, active)

    # -- state ----------------------------------------------------------------------
    def set_keys(self, keys: Sequence[RootKey], active: str | None = None) -> None:
        """Hold `keys`, wrapping with the one whose id is `active` (default: the first)."""
        unique: dict[str, RootKey] = {}
        for key in keys:
            unique.setdefault(key.key_id, key)
        chosen = unique.get(active) if active else (next(iter(unique.values()), None))
        if active and chosen is None:
            raise RootKeyError(f"root key {active} is not loaded")
        ordered = ([chosen] if chosen else []) + [k for k in unique.values() if k is not chosen]
        with self._lock:
            self._keys, self._active = tuple(ordered), chosen

    def seal(self) -> None:
        """Forget every key (they are garbage once no reference remains)."""
        with self._lock:
            self._keys, self._active = (), None

    @property
    def sealed(self) -> bool:
        return self._active is None

    @property
    def key_id(self) -> str:
        active = self._active
        if active is None:
            raise SealedError(SEALED_MESSAGE)
        return active.key_id

    def key_ids(self) -> list[str]:
        return [k.key_id for k in self._keys]

    def keys(self) -> tuple[RootKey, ...]:
        return self._keys

    def get(self, key_id: str) -> RootKey | None:
        return next((k for k in self._keys if k.key_id == key_id), None)

    # -- the RootKey protocol ---------------------------------------------------------
    def wrap(self, plaintext: bytes, purpose: bytes) -> bytes:
        active = self._active
        if active is None:
            raise SealedError(SEALED_MESSAGE)
        return active.wrap(plaintext, purpose)

    def unwrap(self, blob: bytes, purpose: bytes) -> bytes:
        return self.unwrap_with_id(blob, purpose)[1]

    def unwrap_with_id(self, blob: bytes, purpose: bytes, *, follow: bool = True) -> tuple[str, bytes]:
        """(id of the key that wrapped `blob`, plaintext); RootKeyError when no held key did.

        With `follow`, a miss first asks on_miss to load keys a rekey just made, then retries
        the keys not tried yet (the rekey itself passes False: it holds both keys already).
        """
        keys = self._keys
        if not keys:
            raise SealedError(SEALED_MESSAGE)
        found = self._try(keys, blob, purpose)
        if found is not None:
            return found
        hook = self.on_miss
        if follow and hook is not None and hook():
            tried = {k.key_id for k in keys}
            found = self._try([k for k in self._keys if k.key_id not in tried], blob, purpose)
            if found is not None:
                return found
        raise RootKeyError("data was not wrapped by any loaded root key (or was altered)")

    @staticmethod
    def _try(keys: Sequence[RootKey], blob: bytes, purpose: bytes) -> tuple[str, bytes] | None:
        for key in keys:
            try:
                return key.key_id, key.unwrap(blob, purpose)
            except SealedError:
                raise
            except RootKeyError:
                continue
        return None
