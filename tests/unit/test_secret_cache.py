"""The read path's caches: bounded, invalidated by id or wholesale, and never refilled by a
reader that raced with an invalidation."""

from __future__ import annotations

import random
import threading

from strongroom.cache import LRU, CachedSecret, SecretCache, cache_key
from strongroom.storage import SecretRecord, VersionRecord


def _secret(i: int) -> SecretRecord:
    return SecretRecord("111122223333", "us-east-1", f"s{i}", f"arn:aws:secretsmanager:us-east-1:111122223333:secret:s{i}-abcdef",
                        1.0, 1.0, id=i)


def _entry(i: int) -> CachedSecret:
    return CachedSecret(_secret(i), {"AWSCURRENT": f"v{i}"}, {f"v{i}": VersionRecord(i, f"v{i}", 1, 1.0, "string")})


def _key(i: int) -> tuple[str, ...]:
    return cache_key("111122223333", "us-east-1", f"s{i}")


def test_secret_cache_never_exceeds_its_limit_and_evicts_the_least_recently_used():
    cache = SecretCache(max_entries=3)
    for i in range(3):
        assert cache.put(_key(i), _entry(i), cache.epoch)
    assert cache.get(_key(0)) is not None  # 0 is now the most recent
    assert cache.put(_key(3), _entry(3), cache.epoch)
    assert len(cache) == 3
    assert cache.get(_key(1)) is None, "the least recently used entry goes first"
    assert all(cache.get(_key(i)) is not None for i in (0, 2, 3))


def test_secret_cache_stays_bounded_under_concurrent_fills():
    cache = SecretCache(max_entries=50)
    seen: list[int] = []

    def fill(seed: int) -> None:
        rnd = random.Random(seed)
        for _ in range(2000):
            i = rnd.randrange(500)
            if rnd.random() < 0.05:
                cache.invalidate(i)
            else:
                cache.put(_key(i), _entry(i), cache.epoch)
            seen.append(len(cache))

    threads = [threading.Thread(target=fill, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(seen) <= 50
    assert len(cache._by_id) <= 50 and sum(map(len, cache._by_id.values())) == len(cache)


def test_invalidating_a_secret_drops_every_key_it_was_found_by():
    cache = SecretCache()
    entry = _entry(7)
    cache.put(_key(7), entry, cache.epoch)
    cache.put(cache_key("999999999999", "eu-west-1", entry.secret.arn), entry, cache.epoch)
    cache.put(_key(8), _entry(8), cache.epoch)
    cache.invalidate("7")  # the change feed delivers ids as text
    assert cache.get(_key(7)) is None
    assert cache.get(("arn", entry.secret.arn)) is None
    assert cache.get(_key(8)) is not None
    cache.invalidate("*")
    assert len(cache) == 0


def test_a_reader_that_raced_with_an_invalidation_does_not_fill():
    cache = SecretCache()
    epoch = cache.epoch  # the reader notes the epoch, then reads the database...
    cache.invalidate(5)  # ...a change commits meanwhile...
    assert not cache.put(_key(5), _entry(5), epoch)  # ...so what it read may be stale: not kept
    assert cache.get(_key(5)) is None
    assert cache.put(_key(5), _entry(5), cache.epoch)


def test_a_version_read_after_an_invalidation_is_not_added():
    cache = SecretCache()
    entry = _entry(1)
    cache.put(_key(1), entry, cache.epoch)
    epoch = cache.epoch
    cache.invalidate(2)
    cache.add_version(entry, VersionRecord(1, "old", 0, 1.0, "string"), epoch)
    assert "old" not in entry.versions
    cache.add_version(entry, VersionRecord(1, "old", 0, 1.0, "string"), cache.epoch)
    assert "old" in entry.versions


def test_a_limit_of_zero_caches_nothing():
    cache = SecretCache(max_entries=0)
    assert not cache.put(_key(1), _entry(1), cache.epoch)
    assert len(cache) == 0


def test_names_are_scoped_to_account_and_region_and_arns_are_not():
    assert cache_key("1", "us-east-1", "db") != cache_key("2", "us-east-1", "db")
    assert cache_key("1", "us-east-1", "db") != cache_key("1", "eu-west-1", "db")
    arn = "arn:aws:secretsmanager:us-east-1:1:secret:db-abcdef"
    assert cache_key("1", "us-east-1", arn) == cache_key("2", "eu-west-1", arn)


def test_lru_is_bounded_and_drops_selectively():
    lru: LRU[int, str] = LRU(4)
    for i in range(10):
        lru.put(i, f"k{i % 2}")
        assert len(lru) <= 4
    assert [lru.get(i) for i in range(6)] == [None] * 6
    lru.drop(lambda _, v: v == "k0")
    assert lru.get(6) is None and lru.get(7) == "k1" and lru.get(9) == "k1"
    lru.drop()
    assert len(lru) == 0
