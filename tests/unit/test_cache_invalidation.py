"""The secrets cache across processes (SQLite): the database's triggers announce every change,
however it was made, and ChangeFeed.sync delivers it before a request trusts the cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from strongroom.cache import SecretCache, cache_key
from strongroom.cache.secrets import CachedSecret
from strongroom.storage import SecretRecord, Store, open_store
from strongroom.storage.migrate import upgrade
from strongroom.storage.notify import PollingFeed
from strongroom.storage.store import KMS_KEYS_CHANGED, SECRET_CHANGED


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    ours, theirs = open_store(url), open_store(url)  # two processes' views of one file
    upgrade(ours)
    yield ours, theirs
    ours.close()
    theirs.close()


def _create(store: Store, name: str) -> SecretRecord:
    secret = SecretRecord("111122223333", "us-east-1", name, f"arn:aws:secretsmanager:us-east-1:111122223333:secret:{name}-abcdef",
                          1.0, 1.0)
    with store.write() as tx:
        tx.insert_secret(secret)
    return secret


def _cached(cache: SecretCache, secret: SecretRecord) -> tuple[str, ...]:
    key = cache_key(secret.account_id, secret.region, secret.name)
    assert cache.put(key, CachedSecret(secret, {}), cache.epoch)
    return key


def test_a_change_made_elsewhere_is_delivered_by_the_next_sync(stores: tuple[Store, Store]) -> None:
    ours, theirs = stores
    a, b = _create(ours, "a"), _create(ours, "b")
    feed, cache = PollingFeed(ours), SecretCache()
    feed.subscribe(SECRET_CHANGED, cache.invalidate)
    assert feed.sync()
    key_a, key_b = _cached(cache, a), _cached(cache, b)
    assert feed.sync() and cache.get(key_a) is not None  # nothing new: the entries stand

    with theirs.write() as tx:  # another process moves a label of `a`
        tx.replace_stages(a.id, {"AWSCURRENT": "v2"})  # type: ignore[arg-type]
    assert cache.get(key_a) is not None, "not yet heard of"
    assert feed.sync()
    assert cache.get(key_a) is None and cache.get(key_b) is not None


def test_a_change_made_in_plain_sql_is_announced_too(stores: tuple[Store, Store]) -> None:
    ours, theirs = stores
    a = _create(ours, "a")
    feed, cache = PollingFeed(ours), SecretCache()
    feed.subscribe(SECRET_CHANGED, cache.invalidate)
    assert feed.sync()
    key = _cached(cache, a)
    with theirs.engine.begin() as conn:  # a repair by hand, outside strongroom
        conn.execute(text("UPDATE secrets SET description = 'edited' WHERE id = :id"), {"id": a.id})
    # Nothing told the other processes to look (the change stamp moves with strongroom's own
    # writes): the feed's poller hears it on its next tick.
    feed.poll_once()
    assert cache.get(key) is None


def test_recording_an_access_date_is_not_a_change(stores: tuple[Store, Store]) -> None:
    ours, theirs = stores
    a = _create(ours, "a")
    feed, cache = PollingFeed(ours), SecretCache()
    feed.subscribe(SECRET_CHANGED, cache.invalidate)
    assert feed.sync()
    key = _cached(cache, a)
    with theirs.write() as tx:
        tx.touch_secret_accessed(a.id, 86400.0)  # type: ignore[arg-type]
    assert feed.sync()
    assert cache.get(key) is not None


def test_kms_key_rows_changed_by_any_writer_are_announced(stores: tuple[Store, Store]) -> None:
    ours, theirs = stores
    feed, heard = PollingFeed(ours), []
    feed.subscribe(KMS_KEYS_CHANGED, heard.append)
    assert feed.sync()
    with theirs.engine.begin() as conn:
        conn.execute(text("UPDATE kms_keys SET description = 'x'"))  # no rows: nothing to announce
    assert feed.sync() and heard == []
    with theirs.engine.begin() as conn:
        conn.execute(text("INSERT INTO accounts (account_id, name, created_date) VALUES ('111122223333', 'a', 1)"))
        conn.execute(text(
            "INSERT INTO kms_keys (key_id, account_id, region, arn, key_usage, key_spec, origin, key_manager, "
            "key_state, creation_date, current_material, policy, description, rotation_enabled, tags) VALUES "
            "('k', '111122223333', 'us-east-1', 'arn:k', 'ENCRYPT_DECRYPT', 'SYMMETRIC_DEFAULT', 'AWS_KMS', "
            "'CUSTOMER', 'Enabled', 1, 1, '{}', '', 0, '[]')"))
        conn.execute(text("UPDATE kms_keys SET key_state = 'Disabled' WHERE key_id = 'k'"))
    feed.poll_once()  # the poller's tick (plain SQL does not move the change stamp)
    assert heard == ["*"]
