"""The change stamp (storage/stamp.py) and how the SQLite feed uses it to skip the database."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import event

from strongroom.storage import notify, open_store
from strongroom.storage.migrate import upgrade
from strongroom.storage.stamp import ChangeStamp, stamp_for


def test_a_bump_is_seen_through_every_mapping_of_the_file(tmp_path: Path) -> None:
    one, two = ChangeStamp(tmp_path / "db-changes"), ChangeStamp(tmp_path / "db-changes")
    seen = {two.read()}
    for _ in range(50):
        one.bump()
        assert two.read() not in seen  # a fresh word every time
        seen.add(two.read())
    assert os.stat(tmp_path / "db-changes").st_mode & 0o777 == 0o600
    one.close()
    two.close()


def test_no_stamp_for_a_database_in_memory() -> None:
    assert stamp_for(None) is None and stamp_for(":memory:") is None


def test_the_feed_goes_to_the_database_only_after_an_announced_write(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    store, other = open_store(url), open_store(url)  # `other` stands for another process on the file
    upgrade(store)
    feed = notify.PollingFeed(store)
    feed.start()
    queries: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *a: queries.append(a[2]))
    probes: list[int] = []
    real_newest = feed._newest
    feed._newest = lambda: probes.append(1) or real_newest()  # type: ignore[method-assign]
    try:
        assert feed.sync()
        assert len(probes) == 1
        assert feed.sync() and feed.sync()
        assert len(probes) == 1  # nothing announced: no database round trip

        with other.write(announce=False) as tx:  # the audit trail or a lease: nobody is told
            tx.publish("iam", "quiet")
        assert feed.sync()
        assert len(probes) == 1

        heard: list[str] = []
        feed.subscribe("iam", heard.append)
        with notify_as_other(), other.write() as tx:
            tx.publish("iam", "loud")
        assert feed.sync()
        assert len(probes) == 2 and "loud" in heard  # delivered before sync returned
        assert feed.sync()
        assert len(probes) == 2
    finally:
        feed.close()
        store.close()
        other.close()


class notify_as_other:
    """Publish as another process would (a process skips its own events when they come back)."""

    def __enter__(self) -> None:
        self.saved = notify._node
        notify._node = (os.getpid(), "another-node")

    def __exit__(self, *exc: object) -> None:
        notify._node = self.saved
