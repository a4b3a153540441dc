"""When the audit record can't be written: fail closed (the default) refuses the call and
changes nothing; fail open answers it, logs loudly and counts it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Backend, Server, strongroom
from tests.e2e.audit_support import NO_RETRY, client, invoke, metric, scrape, start_configured

SQLITE_BLOCK = ["CREATE TRIGGER audit_block BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'no'); END"]
SQLITE_UNBLOCK = ["DROP TRIGGER audit_block"]
PG_BLOCK = ["CREATE FUNCTION audit_block() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'no'; END $$ "
            "LANGUAGE plpgsql",
            "CREATE TRIGGER audit_block BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION audit_block()"]
PG_UNBLOCK = ["DROP TRIGGER audit_block ON audit_events", "DROP FUNCTION audit_block()"]
RENAME = (["ALTER TABLE audit_events RENAME TO audit_events_hidden"],
          ["ALTER TABLE audit_events_hidden RENAME TO audit_events"])


@pytest.fixture(scope="module")
def closed(tmp_path_factory: pytest.TempPathFactory, backend: Backend) -> Iterator[Server]:
    srv = start_configured(tmp_path_factory.mktemp(f"audit-closed-{backend.name}"), backend, "")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def opened(tmp_path_factory: pytest.TempPathFactory, backend: Backend) -> Iterator[Server]:
    srv = start_configured(tmp_path_factory.mktemp(f"audit-open-{backend.name}"), backend,
                           '[audit]\nfail_mode = "open"\n')
    yield srv
    srv.stop()


def run(srv: Server, statements: list[str]) -> None:
    for statement in statements:
        srv.sql(statement)


@pytest.mark.parametrize("how", ["trigger", "rename"])
def test_fail_closed_refuses_calls_and_changes_nothing(closed: Server, how: str):
    sm = client(closed, config=NO_RETRY)
    iam = client(closed, "iam", config=NO_RETRY)
    name = f"closed/{how}"
    sm.create_secret(Name=name, SecretString="before")
    sm.get_secret_value(SecretId=name)  # today's LastAccessedDate is set before the snapshot
    versions = sm.list_secret_version_ids(SecretId=name)["Versions"]
    before = scrape(closed)
    failures_before = metric(before, "strongroom_audit_write_failures_total")
    # The metric's outcome is the code the caller saw: each protocol names the fault its own way.
    refused = {("secretsmanager", "GetSecretValue", "InternalServiceError"): 0.0,
               ("iam", "CreateUser", "InternalFailure"): 0.0}
    refused = {k: metric(before, "strongroom_requests_total", service=k[0], operation=k[1], outcome=k[2])
               for k in refused}
    sqlite = closed.database_url.startswith("sqlite")
    block, unblock = RENAME if how == "rename" else (SQLITE_BLOCK, SQLITE_UNBLOCK) if sqlite else (PG_BLOCK,
                                                                                                     PG_UNBLOCK)
    run(closed, block)
    try:
        assert invoke(sm, "CreateSecret", Name=name + "-new", SecretString="never")[2] == "InternalServiceError"
        assert invoke(sm, "PutSecretValue", SecretId=name, SecretString="after")[2] == "InternalServiceError"
        assert invoke(sm, "DeleteSecret", SecretId=name, ForceDeleteWithoutRecovery=True)[2] == \
            "InternalServiceError"
        request_id, resp, error = invoke(sm, "GetSecretValue", SecretId=name)
        assert error == "InternalServiceError" and resp is None  # the value never left
        assert invoke(iam, "CreateUser", UserName=f"closed-{how}")[2] == "InternalFailure"
        during = scrape(closed)
        assert metric(during, "strongroom_audit_write_failures_total") > failures_before
        for (service, operation, outcome), was in refused.items():
            assert metric(during, "strongroom_requests_total", service=service, operation=operation,
                          outcome=outcome) > was, (service, operation, outcome)
    finally:
        run(closed, unblock)
    # Nothing changed while the trail was down.
    assert invoke(sm, "DescribeSecret", SecretId=name + "-new")[2] == "ResourceNotFoundException"
    assert sm.list_secret_version_ids(SecretId=name)["Versions"] == versions
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "before"
    assert invoke(iam, "GetUser", UserName=f"closed-{how}")[2] == "NoSuchEntity"
    assert "OK: " in strongroom("audit", "verify", env=closed.env).stdout


def test_fail_open_answers_logs_and_counts(opened: Server):
    sm = client(opened, config=NO_RETRY)
    sm.create_secret(Name="open/a", SecretString="v1")
    lost_before = metric(scrape(opened), "strongroom_audit_fail_open_total")
    run(opened, RENAME[0])
    try:
        sm.put_secret_value(SecretId="open/a", SecretString="v2")
        assert sm.get_secret_value(SecretId="open/a")["SecretString"] == "v2"
    finally:
        run(opened, RENAME[1])
    assert metric(scrape(opened), "strongroom_audit_fail_open_total") - lost_before == 2
    assert "AUDIT RECORD LOST" in opened.log_text()
    assert "v2" not in [line for line in opened.log_text().splitlines() if "AUDIT RECORD LOST" in line][0]
