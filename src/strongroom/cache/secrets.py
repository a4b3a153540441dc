"""The secrets GetSecretValue reads, as the database last said: record, labels, sealed versions.

Values stay sealed here (the wrapped data key and the AES-GCM ciphertext); each read still
opens its value, which costs microseconds. An entry is only trusted for a request after the
change feed has delivered every change committed before the request began
(`ChangeFeed.sync`), so a write acknowledged by any process or node is seen at once.

Filling races with invalidation: a reader that loaded a secret before a change committed
could store what it read after the change's invalidation ran. Every invalidation moves
`epoch`; a reader notes it before reading the database and its entry is kept only if no
invalidation happened since.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from strongroom import metrics
from strongroom.storage import SecretRecord, VersionRecord

Key = tuple[str, ...]

# True while the current request may trust caches of records other processes can change
# (set by the Secrets Manager read path once the change feed is in sync for this request).
fresh_view: ContextVar[bool] = ContextVar("strongroom_fresh_view", default=False)


def cache_key(account_id: str, region: str, secret_id: str) -> Key:
    """Names are per account and region; an ARN (full or partial) names one secret anywhere."""
    if secret_id.startswith("arn:"):
        return ("arn", secret_id)
    return ("name", account_id, region, secret_id)


@dataclass(slots=True)
class CachedSecret:
    secret: SecretRecord
    stages: dict[str, str]  # label -> version id
    versions: dict[str, VersionRecord] = field(default_factory=dict)


class SecretCache:
    """At most `max_entries` entries (a secret looked up by name and by ARN takes two)."""

    def __init__(self, max_entries: int = 10_000):
        self.max_entries = max(0, max_entries)
        self._entries: OrderedDict[Key, CachedSecret] = OrderedDict()
        self._by_id: dict[int, set[Key]] = {}
        self._lock = threading.Lock()
        self.epoch = 0

    def get(self, key: Key) -> CachedSecret | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
        if entry is None:
            metrics.cache_miss("secrets")
        else:
            metrics.cache_hit("secrets")
        return entry

    def put(self, key: Key, entry: CachedSecret, epoch: int) -> bool:
        """Keep `entry` unless something was invalidated since `epoch` was read."""
        secret_id = entry.secret.id
        if self.max_entries == 0 or secret_id is None:
            return False
        with self._lock:
            if epoch != self.epoch:
                return False
            self._forget(key)
            self._entries[key] = entry
            self._by_id.setdefault(secret_id, set()).add(key)
            while len(self._entries) > self.max_entries:
                self._forget(next(iter(self._entries)))
            return True

    def add_version(self, entry: CachedSecret, version: VersionRecord, epoch: int) -> None:
        """A version read later for a cached secret (VersionId, other labels)."""
        with self._lock:
            if epoch == self.epoch:
                entry.versions[version.version_id] = version

    def invalidate(self, secret_id: int | str | None = None) -> None:
        """Forget one secret (by id), or everything (None or "*")."""
        with self._lock:
            self.epoch += 1
            if secret_id is None or secret_id == "*":
                self._entries.clear()
                self._by_id.clear()
                return
            for key in self._by_id.pop(int(secret_id), ()):
                self._entries.pop(key, None)

    def _forget(self, key: Key) -> None:
        entry = self._entries.pop(key, None)
        if entry is None or entry.secret.id is None:
            return
        keys = self._by_id.get(entry.secret.id)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_id[entry.secret.id]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"entries": len(self._entries), "max_entries": self.max_entries, "epoch": self.epoch}
