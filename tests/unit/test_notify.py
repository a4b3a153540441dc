"""Change events (storage/notify.py): published with the transaction, heard by other processes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import update

from strongroom.storage import Store, notify, open_store
from strongroom.storage import tables as t
from strongroom.storage.migrate import upgrade
from tests.conftest import Backend
from tests.postgres import Cluster


@pytest.fixture
def store(backend: Backend, tmp_path: Path) -> Iterator[Store]:
    s = open_store(backend.new_database() or f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(s)
    yield s
    s.close()


@contextmanager
def as_other_node() -> Iterator[None]:
    """Publish as another process would (a process ignores its own events when they come back)."""
    saved = notify._node
    notify._node = (notify.os.getpid(), "another-node")
    try:
        yield
    finally:
        notify._node = saved


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError("not within the time allowed")


def test_events_of_other_nodes_arrive_once_committed(store: Store) -> None:
    feed = notify.open_feed(store)
    heard: list[str] = []
    feed.subscribe("iam", heard.append)
    feed.start()
    try:
        if isinstance(feed, notify.PostgresFeed):
            assert feed.connected.wait(10)
        with as_other_node():
            with pytest.raises(RuntimeError), store.write() as tx:
                tx.publish("iam", "rolled-back")
                raise RuntimeError("the change fails")
            with store.write() as tx:
                tx.publish("iam", "123456789012")
                tx.publish("other-topic", "x")
        eventually(lambda: [k for k in heard if k != "*"] == ["123456789012"])
        time.sleep(0.3)
        assert [k for k in heard if k != "*"] == ["123456789012"]  # ("*": the listener's start)
    finally:
        feed.close()


def test_the_committing_process_hears_its_own_events_at_commit(store: Store) -> None:
    feed = notify.open_feed(store)
    store.feed = feed
    heard: list[str] = []
    feed.subscribe("kms-key", heard.append)
    with store.write() as tx:
        tx.publish("kms-key", "k1")
        assert heard == []  # not before the commit: a cache could reload the old row
    assert heard == ["k1"]
    with pytest.raises(RuntimeError), store.write() as tx:
        tx.publish("kms-key", "k2")
        raise RuntimeError
    assert heard == ["k1"]


def test_a_poller_that_missed_pruned_events_drops_everything(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(store)
    feed = notify.PollingFeed(store)
    heard: list[str] = []
    feed.subscribe("iam", heard.append)
    with as_other_node(), store.write() as tx:
        tx.publish("iam", "a")
    feed.poll_once()
    with as_other_node():
        for key in ("b", "c"):
            with store.write() as tx:
                tx.publish("iam", key)
    with store.write() as tx:  # "b" is pruned before this poller reads it
        tx.conn.execute(update(t.change_events).where(t.change_events.c.item == "b").values(created_date=0))
        tx.conn.execute(t.change_events.delete().where(t.change_events.c.created_date == 0))
    feed.poll_once()
    assert heard == ["a", "*", "c"]
    store.close()


def test_a_listener_whose_connection_breaks_reconnects_and_drops_everything(postgres: Cluster) -> None:
    store = open_store(postgres.create_database())
    upgrade(store)
    feed = notify.open_feed(store)
    heard: list[str] = []
    feed.subscribe("iam", heard.append)
    feed.start()
    try:
        eventually(lambda: heard == ["*"], 10)  # on connecting: whatever was cached may be stale
        with store.engine.begin() as conn:
            conn.exec_driver_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE application_name = 'strongroom-listen' AND datname = current_database()")
        eventually(lambda: heard == ["*", "*"], 15)
        with as_other_node(), store.write() as tx:
            tx.publish("iam", "after")
        eventually(lambda: heard == ["*", "*", "after"])
    finally:
        feed.close()
        store.close()
