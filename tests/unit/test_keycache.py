"""The KMS material cache: bounded, least recently used out first, invalidated per key."""

from __future__ import annotations

from strongroom.crypto.keycache import MaterialCache


def test_evicts_least_recently_used():
    cache = MaterialCache(max_entries=2)
    cache.put("a", 1, b"A1")
    cache.put("b", 1, b"B1")
    assert cache.get("a", 1) == b"A1"  # a is now the most recent
    cache.put("c", 1, b"C1")
    assert cache.get("b", 1) is None and cache.get("a", 1) == b"A1" and len(cache) == 2


def test_invalidate_one_key_drops_every_version():
    cache = MaterialCache()
    for version in (1, 2, 3):
        cache.put("k", version, bytes([version]))
    cache.put("other", 1, b"o")
    cache.invalidate("k")
    assert [cache.get("k", v) for v in (1, 2, 3)] == [None, None, None]
    assert cache.get("other", 1) == b"o"
    cache.invalidate()
    assert len(cache) == 0


def test_zero_size_caches_nothing():
    cache = MaterialCache(max_entries=0)
    cache.put("k", 1, b"x")
    assert cache.get("k", 1) is None
