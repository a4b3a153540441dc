"""`strongroom audit verify` catches each kind of tampering with the stored trail, and says where.

Rows are edited directly in the database, as an attacker with database access would;
each case is undone afterwards so the next starts from an intact trail.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, insert, select, update

from strongroom.audit.chain import link
from strongroom.audit.signing import load_public
from strongroom.audit.verify import Report, verify
from strongroom.storage import Store, open_store
from strongroom.storage import tables as t
from tests.conftest import Backend, Server, strongroom
from tests.e2e.audit_support import NO_RETRY, client, start_configured

E = t.audit_events


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, backend: Backend) -> Iterator[Server]:
    server = start_configured(tmp_path_factory.mktemp(f"audit-tamper-{backend.name}"), backend,
                              "[audit]\ndigest_every_events = 5\n")
    sm = client(server, config=NO_RETRY)
    sm.create_secret(Name="tamper/a", SecretString="tamper-value")
    for _ in range(11):
        sm.get_secret_value(SecretId="tamper/a")  # 12 events: digests sign 1..5 and 6..10
    yield server
    server.stop()


@pytest.fixture(scope="module")
def store(srv: Server) -> Iterator[Store]:
    s = open_store(srv.database_url, pool_size=1)
    yield s
    s.close()


@pytest.fixture(scope="module")
def public_key(srv: Server) -> Any:
    return load_public(srv.data_dir / "audit-signing.key")


def events(store: Store) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(E).order_by(E.c.seq))]


@contextlib.contextmanager
def tampering(store: Store, public_key: Any) -> Iterator[None]:
    """Restore both tables afterwards, and check the restored trail verifies again."""
    with store.engine.connect() as conn:
        saved_events = [dict(r._mapping) for r in conn.execute(select(E))]
        saved_digests = [dict(r._mapping) for r in conn.execute(select(t.audit_digests))]
        head = dict(conn.execute(select(t.audit_chain_head)).one()._mapping)
    try:
        yield
    finally:
        with store.engine.begin() as conn:
            conn.execute(delete(E))
            conn.execute(insert(E), saved_events)
            conn.execute(delete(t.audit_digests))
            conn.execute(insert(t.audit_digests), saved_digests)
            conn.execute(update(t.audit_chain_head).values(**head))
        assert verify(store, public_key).ok


def kinds(report: Report) -> set[tuple[str, int | None]]:
    return {(p.kind, p.seq) for p in report.problems}


def test_an_intact_trail_verifies(srv: Server, store: Store, public_key: Any):
    report = verify(store, public_key)
    assert report.ok, report.problems
    assert (report.events, report.digests, report.last_signed_seq) == (12, 2, 10)
    out = strongroom("audit", "verify", env=srv.env)
    assert out.stdout.startswith("OK: 12 events") and "2 newer events are chained but not yet signed" in out.stdout


def test_an_altered_event_is_found_by_its_hash(srv: Server, store: Store, public_key: Any):
    with tampering(store, public_key):
        row = events(store)[2]
        with store.engine.begin() as conn:
            conn.execute(update(E).where(E.c.seq == 3).values(record=row["record"].replace("127.0.0.1", "10.6.6.6")))
        out = strongroom("audit", "verify", env=srv.env, check=False)
        assert out.returncode == 1
        assert f"seq 3 (eventID {row['event_id']}): altered" in out.stdout
        assert "digest-mismatch" in out.stdout and out.stdout.splitlines()[-1].startswith("FAILED")


def test_an_altered_event_with_every_hash_recomputed_is_found_by_the_digests(store: Store, public_key: Any):
    with tampering(store, public_key):
        rows = events(store)
        rows[3]["record"] = rows[3]["record"].replace('"readOnly":true', '"readOnly":false')
        prev = rows[2]["hash"]
        with store.engine.begin() as conn:
            for row in rows[3:]:
                new = link(prev, row["record"])
                conn.execute(update(E).where(E.c.seq == row["seq"]).values(record=row["record"], prev_hash=prev,
                                                                           hash=new))
                prev = new
            conn.execute(update(t.audit_chain_head).values(hash=prev))
        report = verify(store, public_key)
        assert kinds(report) == {("digest-mismatch", 5), ("digest-mismatch", 10)}
        assert "changed after it signed them" in str(report.problems[0])


def cli_findings(srv: Server) -> list[str]:
    """`strongroom audit verify`'s TAMPERED lines (it must also exit 1 and end with FAILED)."""
    out = strongroom("audit", "verify", env=srv.env, check=False)
    assert out.returncode == 1 and out.stdout.splitlines()[-1].startswith("FAILED"), out.stdout
    return [line for line in out.stdout.splitlines() if line.startswith("TAMPERED ")]


def test_a_removed_event(srv: Server, store: Store, public_key: Any):
    with tampering(store, public_key):
        with store.engine.begin() as conn:
            conn.execute(delete(E).where(E.c.seq == 4))
        report = verify(store, public_key)
        assert ("removed", 4) in kinds(report)
        assert "events 4..4 are missing" in str(report.problems[0])
        assert ("digest-mismatch", 5) in kinds(report)
        # The command says where: the seq of the gap.
        assert any(line.startswith("TAMPERED seq 4") and ": removed: events 4..4 are missing" in line
                   for line in cli_findings(srv))


def test_an_event_removed_from_the_end_with_the_head_rewound(store: Store, public_key: Any):
    with tampering(store, public_key):
        rows = events(store)
        with store.engine.begin() as conn:
            conn.execute(delete(E).where(E.c.seq >= 10))
            conn.execute(update(t.audit_chain_head).values(seq=9, hash=rows[8]["hash"]))
        report = verify(store, public_key)
        assert ("digest-mismatch", 10) in kinds(report)
        assert "the chain has no event 10" in " ".join(map(str, report.problems))


def _shift(conn: Any, after: int, by: int) -> None:
    # Two steps, so a unique seq is never taken twice mid-update.
    conn.execute(update(E).where(E.c.seq > after).values(seq=-E.c.seq))
    conn.execute(update(E).where(E.c.seq < 0).values(seq=-E.c.seq + by))


def test_an_inserted_event(srv: Server, store: Store, public_key: Any):
    with tampering(store, public_key):
        rows = events(store)
        forged = dict(rows[5])
        record = json.loads(forged["record"])
        record["eventID"] = forged["event_id"] = "00000000-0000-0000-0000-000000000000"
        forged["record"] = json.dumps(record, sort_keys=True, separators=(",", ":"))
        forged.update(seq=7, prev_hash=rows[5]["hash"], hash=link(rows[5]["hash"], forged["record"]))
        with store.engine.begin() as conn:
            _shift(conn, 6, 1)
            conn.execute(insert(E).values(**forged))
        report = verify(store, public_key)
        assert ("broken-link", 8) in kinds(report)  # the event after the forgery no longer follows
        assert ("digest-mismatch", 10) in kinds(report)
        problem = next(p for p in report.problems if p.kind == "broken-link")
        assert problem.event_id == rows[6]["event_id"]
        assert any(line.startswith(f"TAMPERED seq 8 (eventID {rows[6]['event_id']}): broken-link")
                   for line in cli_findings(srv))


def test_reordered_events(srv: Server, store: Store, public_key: Any):
    with tampering(store, public_key):
        rows = events(store)
        with store.engine.begin() as conn:
            conn.execute(update(E).where(E.c.seq == 8).values(seq=-8))
            conn.execute(update(E).where(E.c.seq == 9).values(seq=8))
            conn.execute(update(E).where(E.c.seq == -8).values(seq=9))
        report = verify(store, public_key)
        assert ("broken-link", 8) in kinds(report) and ("digest-mismatch", 10) in kinds(report)
        # Where: seq 8 now holds what was event 9, which does not follow event 7.
        assert any(line.startswith(f"TAMPERED seq 8 (eventID {rows[8]['event_id']}): broken-link")
                   for line in cli_findings(srv))


def test_an_edited_query_column(store: Store, public_key: Any):
    with tampering(store, public_key):
        with store.engine.begin() as conn:
            conn.execute(update(E).where(E.c.seq == 2).values(principal_arn="arn:aws:iam::1:user/someone-else"))
        assert kinds(verify(store, public_key)) == {("columns-altered", 2)}


def test_a_forged_digest(srv: Server, store: Store, public_key: Any, tmp_path: Path):
    with tampering(store, public_key):
        other = Ed25519PrivateKey.generate()
        with store.engine.begin() as conn:
            first = conn.execute(select(t.audit_digests).order_by(t.audit_digests.c.id)).first()
            doc = first.digest.replace('"lastSeq":5', '"lastSeq":4')
            conn.execute(update(t.audit_digests).where(t.audit_digests.c.id == first.id)
                         .values(digest=doc, signature=other.sign(doc.encode()).hex()))
        report = verify(store, public_key)
        assert any(p.kind == "digest-forged" and f"digest #{first.id}" in p.message for p in report.problems)
        out = strongroom("audit", "verify", env=srv.env, check=False)
        assert out.returncode == 1 and "digest-forged" in out.stdout


def test_a_removed_digest(store: Store, public_key: Any):
    with tampering(store, public_key):
        with store.engine.begin() as conn:
            first_id = conn.execute(select(t.audit_digests.c.id).order_by(t.audit_digests.c.id)).scalar()
            conn.execute(delete(t.audit_digests).where(t.audit_digests.c.id == first_id))
        report = verify(store, public_key)
        assert [p.kind for p in report.problems] == ["digest-chain"]


def test_verifying_with_the_wrong_public_key_fails(srv: Server, tmp_path: Path):
    from strongroom.audit.signing import public_pem

    pem = tmp_path / "other.pub"
    pem.write_bytes(public_pem(Ed25519PrivateKey.generate().public_key()))
    out = strongroom("audit", "verify", "--public-key", str(pem), env=srv.env, check=False)
    assert out.returncode == 1 and "digest-forged" in out.stdout

