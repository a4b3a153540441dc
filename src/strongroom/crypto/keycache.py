"""A bounded, thread-safe LRU of unwrapped KMS key material.

Unwrapping through the root key on every Decrypt would make each secret read
pay for a root-key call (an HSM round trip with PKCS#11). Material is
immutable once created, so a cached entry can only become wrong by its key
going away; the KMS service drops a key's entries whenever the key changes
state, and the key's state is always read from the database before its
material is used, so a key disabled on another node is refused here too.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from strongroom import metrics


class MaterialCache:
    def __init__(self, max_entries: int = 1024):
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key_id: str, version: int) -> bytes | None:
        with self._lock:
            material = self._entries.get((key_id, version))
            if material is not None:
                self._entries.move_to_end((key_id, version))
        if material is None:
            metrics.cache_miss("kms_material")
        else:
            metrics.cache_hit("kms_material")
        return material

    def put(self, key_id: str, version: int, material: bytes) -> None:
        if self.max_entries <= 0:
            return
        with self._lock:
            self._entries[(key_id, version)] = material
            self._entries.move_to_end((key_id, version))
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def invalidate(self, key_id: str | None = None) -> None:
        """Forget one key's material (every version), or everything."""
        with self._lock:
            if key_id is None:
                self._entries.clear()
                return
            for entry in [e for e in self._entries if e[0] == key_id]:
                del self._entries[entry]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
