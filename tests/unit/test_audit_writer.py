"""The audit writer on a real SQLite database: group commit, the chain, digests, failure."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text

from strongroom import metrics
from strongroom.audit.chain import GENESIS, canonical, link
from strongroom.audit.record import Call, build
from strongroom.audit.verify import verify
from strongroom.audit.writer import AuditUnavailable, AuditWriter
from strongroom.storage import Store, open_store
from strongroom.storage.migrate import upgrade


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    upgrade(s)
    yield s
    s.close()


def event(n: int = 0, op: str = "GetSecretValue"):  # type: ignore[no-untyped-def]
    return build(Call(service="secretsmanager", operation=op, region="us-east-1", request_id=f"req-{n}",
                      time=dt.datetime.now(dt.timezone.utc), model_name="secretsmanager",
                      params={"SecretId": f"s{n}"}))


def rows(store: Store) -> list:  # type: ignore[type-arg]
    with store.engine.connect() as conn:
        return list(conn.execute(text("SELECT seq, prev_hash, hash, record FROM audit_events ORDER BY seq")))


def test_concurrent_requests_share_commits_and_form_one_chain(store: Store):
    writer = AuditWriter(store, None)
    before = metrics.AUDIT_BATCH._sum.get()  # type: ignore[attr-defined]

    async def main() -> list[int]:
        return list(await asyncio.gather(*(writer.append(event(i)) for i in range(200))))

    try:
        seqs = asyncio.run(main())
    finally:
        writer.stop()
    assert sorted(seqs) == list(range(1, 201))
    got = rows(store)
    assert [r.seq for r in got] == list(range(1, 201))
    prev = GENESIS
    for r in got:
        assert r.prev_hash == prev and r.hash == link(prev, r.record)
        assert r.record == canonical(json.loads(r.record))
        prev = r.hash
    # 200 events arrived together: far fewer than 200 commits carried them.
    assert metrics.AUDIT_BATCH._sum.get() - before == 200  # type: ignore[attr-defined]


def test_batches_group_commits(store: Store):
    writer = AuditWriter(store, None)
    samples_before = _count(metrics.AUDIT_BATCH)

    async def main() -> None:
        await asyncio.gather(*(writer.append(event(i)) for i in range(300)))

    try:
        asyncio.run(main())
    finally:
        writer.stop()
    assert _count(metrics.AUDIT_BATCH) - samples_before < 300


def _count(histogram) -> float:  # type: ignore[no-untyped-def]
    return next(s.value for m in histogram.collect() for s in m.samples if s.name.endswith("_count"))


def test_an_unwritable_table_fails_every_waiting_request_and_the_probe(store: Store):
    writer = AuditWriter(store, None)
    with store.engine.begin() as conn:
        conn.execute(text("CREATE TRIGGER audit_block BEFORE INSERT ON audit_events "
                          "BEGIN SELECT RAISE(ABORT, 'blocked'); END"))

    async def main() -> None:
        await writer.append(event())

    try:
        with pytest.raises(AuditUnavailable):
            asyncio.run(main())
        with pytest.raises(AuditUnavailable):
            writer.probe()
        with store.engine.begin() as conn:
            conn.execute(text("DROP TRIGGER audit_block"))
        writer.probe()  # writable again
        assert writer.append_sync(event()) == 1  # the failed batch consumed no sequence number
    finally:
        writer.stop()


def test_digests_every_n_events_and_at_shutdown_then_verify(store: Store):
    key = Ed25519PrivateKey.generate()
    writer = AuditWriter(store, key, digest_every=10, digest_interval=3600)
    for i in range(25):
        writer.append_sync(event(i))
    writer.stop()  # signs events 21..25
    with store.engine.connect() as conn:
        digests = list(conn.execute(text("SELECT first_seq, last_seq FROM audit_digests ORDER BY id")))
    assert [tuple(d) for d in digests] == [(1, 10), (11, 20), (21, 25)]
    report = verify(store, key.public_key())
    assert report.ok, report.problems
    assert (report.events, report.digests, report.last_signed_seq, report.unsigned) == (25, 3, 25, 0)


def test_time_based_digest_when_idle(store: Store):
    key = Ed25519PrivateKey.generate()
    writer = AuditWriter(store, key, digest_every=1000, digest_interval=0.1)
    writer.append_sync(event())
    import time

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with store.engine.connect() as conn:
            if conn.execute(text("SELECT count(*) FROM audit_digests")).scalar():
                break
        time.sleep(0.05)
    writer.stop()
    assert verify(store, key.public_key()).last_signed_seq == 1


def test_verify_rejects_another_key(store: Store):
    key = Ed25519PrivateKey.generate()
    writer = AuditWriter(store, key, digest_every=2)
    for i in range(4):
        writer.append_sync(event(i))
    writer.stop()
    report = verify(store, Ed25519PrivateKey.generate().public_key())
    assert not report.ok
    assert {p.kind for p in report.problems} == {"digest-forged"}


def test_time_based_digest_under_steady_traffic(store: Store):
    import time

    key = Ed25519PrivateKey.generate()
    writer = AuditWriter(store, key, digest_every=1000, digest_interval=0.2)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:  # never idle for 0.2 s
        writer.append_sync(event())
        time.sleep(0.02)
    with store.engine.connect() as conn:
        digests = conn.execute(text("SELECT count(*) FROM audit_digests")).scalar()
    writer.stop()
    assert digests >= 2


def test_writers_of_two_processes_extend_one_chain(tmp_path: Path):
    """Each writer keeps the chain's end from its last batch; when another one wrote since, its
    next batch finds its first sequence number taken, writes nothing, and links again."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    stores = [open_store(url), open_store(url)]  # two processes' stores on one file
    upgrade(stores[0])
    writers = [AuditWriter(s, None) for s in stores]
    try:
        seqs = [writers[n % 2].append_sync(event(n)) for n in range(12)]
        seqs += [writers[0].append_sync(event(100)), writers[0].append_sync(event(101))]
    finally:
        for w in writers:
            w.stop()
    assert seqs == list(range(1, 15))
    got = rows(stores[0])
    prev = GENESIS
    for r in got:
        assert r.prev_hash == prev and r.hash == link(prev, r.record)
        prev = r.hash
    with stores[0].engine.connect() as conn:
        assert tuple(conn.execute(text("SELECT seq, hash FROM audit_chain_head")).one()) == (14, prev)
    for s in stores:
        s.close()


def test_a_table_renamed_away_and_back_fails_the_batch_then_keeps_one_chain(store: Store):
    """The chain head moves with each batch through a trigger on the writer's own connection;
    whatever happens to the table or the trigger, the head must end where the last event is."""
    writer = AuditWriter(store, None)

    def sql(statement: str) -> None:
        with store.engine.begin() as conn:
            conn.execute(text(statement))

    try:
        for n in range(3):
            writer.append_sync(event(n))
        sql("ALTER TABLE audit_events RENAME TO audit_events_hidden")
        for n in (10, 11):  # the second one opens a fresh connection, where the trigger can't be made
            with pytest.raises(AuditUnavailable):
                writer.append_sync(event(n))
        sql("ALTER TABLE audit_events_hidden RENAME TO audit_events")
        for n in range(20, 23):
            writer.append_sync(event(n))
        writer._driver.cursor().execute("DROP TRIGGER temp.strongroom_audit_head")  # lost, however
        for n in range(30, 33):
            writer.append_sync(event(n))
    finally:
        writer.stop()
    got = rows(store)
    assert [r.seq for r in got] == list(range(1, 10))
    prev = GENESIS
    for r in got:
        assert r.prev_hash == prev and r.hash == link(prev, r.record)
        prev = r.hash
    with store.engine.connect() as conn:
        assert tuple(conn.execute(text("SELECT seq, hash FROM audit_chain_head")).one()) == (9, prev)
