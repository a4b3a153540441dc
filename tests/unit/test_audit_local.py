"""Local administrative records (audit/local.py): appended by a second writer while a
"server" writer runs on the same database, they form one chain that verifies."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text

from strongroom.audit.local import LocalTrail, local_event, root_principal
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


def test_a_local_writer_and_a_server_writer_extend_one_chain(store: Store):
    key = Ed25519PrivateKey.generate()
    server = AuditWriter(store, key, digest_every=7)
    trail = LocalTrail(store, key=key, command="strongroom iam create-user")

    def api_calls() -> None:
        for i in range(60):
            server.append_sync(build(Call(service="secretsmanager", operation="ListSecrets", region="us-east-1",
                                          request_id=f"api-{i}", model_name="secretsmanager", params={})))

    thread = threading.Thread(target=api_calls)
    thread.start()
    try:
        for i in range(30):
            trail.preflight()
            trail.append(local_event(service="iam", operation="CreateAccessKey", region="us-east-1",
                                     principal=root_principal("123456789012"), model_name="iam",
                                     params={"UserName": f"u{i}"},
                                     result={"AccessKey": {"UserName": f"u{i}", "AccessKeyId": f"AKIA{i:016d}",
                                                           "SecretAccessKey": f"never-recorded-{i:08d}",
                                                           "Status": "Active"}}))
        thread.join()
    finally:
        trail.close()  # signs a digest over everything
        server.stop()
    report = verify(store, key.public_key())
    assert report.ok, report.problems
    assert report.events == 90 and report.last_signed_seq == 90
    with store.engine.connect() as conn:
        records = [json.loads(r[0]) for r in conn.execute(text(
            "SELECT record FROM audit_events WHERE event_name = 'CreateAccessKey' ORDER BY seq"))]
    assert len(records) == 30
    first = records[0]
    assert first["userIdentity"]["type"] == "Root" and first["userAgent"] == "strongroom-cli"
    assert first["additionalEventData"]["command"] == "strongroom iam create-user"
    assert first["responseElements"]["accessKey"]["secretAccessKey"] == "HIDDEN_DUE_TO_SECURITY_REASONS"
    assert all("never-recorded" not in json.dumps(r) for r in records)


def test_fail_closed_refuses_before_acting_and_fail_open_does_not(store: Store):
    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE audit_events RENAME TO audit_events_hidden"))
    closed, opened = LocalTrail(store), LocalTrail(store, fail_closed=False)
    event = local_event(service="iam", operation="CreateUser", region="us-east-1",
                        principal=root_principal("123456789012"), model_name="iam", params={"UserName": "x"})
    try:
        with pytest.raises(AuditUnavailable):
            closed.preflight()
        with pytest.raises(AuditUnavailable):
            closed.append(event)
        opened.preflight()  # fail open: the change goes ahead ...
        opened.append(event)  # ... and the lost record is logged, not raised
    finally:
        closed.close()
        opened.close()
