"""Leases (storage/leases.py) on both backends: one holder at a time, handover at expiry."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.storage import Store, open_store
from strongroom.storage.leases import Lease, holders
from strongroom.storage.migrate import upgrade
from tests.conftest import Backend


@pytest.fixture
def store(backend: Backend, tmp_path: Path) -> Iterator[Store]:
    s = open_store(backend.new_database() or f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(s)
    yield s
    s.close()


def test_one_holder_until_it_expires_then_the_next(store: Store) -> None:
    a, b = Lease(store, "work", 0.5, holder="a"), Lease(store, "work", 0.5, holder="b")
    assert a.acquire() and a.token == 1
    assert not b.acquire()
    assert a.acquire() and a.token == 1  # renewing keeps the token
    time.sleep(0.7)
    assert b.acquire() and b.token == 2  # taken over: the fencing token moves on
    assert not a.acquire() and not a.held
    assert holders(store)["work"][:2] == ("b", 2)


def test_release_hands_over_at_once(store: Store) -> None:
    a, b = Lease(store, "work", 30, holder="a"), Lease(store, "work", 30, holder="b")
    assert a.acquire()
    a.release()
    assert b.acquire() and b.token == 2


def test_racing_nodes_never_hold_it_together(store: Store) -> None:
    # Long enough that a thread the loaded machine delays cannot see its rival's grant expire
    # within the same round (that would be a takeover, not an overlap).
    leases = [Lease(store, "race", 2.0, holder=f"n{i}") for i in range(6)]
    overlaps: list[str] = []
    for _ in range(4):
        won: list[str] = []
        barrier = threading.Barrier(len(leases))

        def grab(lease: Lease) -> None:
            barrier.wait()
            if lease.acquire():
                won.append(lease.holder)

        threads = [threading.Thread(target=grab, args=(lease,)) for lease in leases]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if len(won) > 1:
            overlaps.append(",".join(won))
        time.sleep(2.1)  # let it expire: every round is a fresh race
    assert overlaps == []
