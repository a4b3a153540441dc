"""Where the trail goes: sinks (file, stdout, syslog) fed from the table, webhooks for alerts,
/metrics, and the `strongroom audit` and `usage` commands — on a server configured for them."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from strongroom.alerts.webhook import verify as verify_signature
from tests.conftest import Backend, Server, free_port, strongroom
from tests.e2e.audit_support import (
    NO_RETRY, Receiver, SyslogReceiver, admin_keys, client, invoke, metric, scrape, start_configured, the_record, wait_for,
)

HOOK_SECRET = "whsec-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory, backend: Backend) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp(f"audit-outputs-{backend.name}")
    every, only_deletions = Receiver(fail=1), Receiver()
    syslog_port = free_port()
    config = f"""
[audit]
digest_every_events = 5
forward_poll_seconds = 0.1
forward_retry_seconds = 0.5

[[audit.sinks]]
type = "file"
path = "audit/audit.jsonl"
max_bytes = 8192
keep = 100

[[audit.sinks]]
type = "stdout"

[[audit.sinks]]
type = "syslog"
protocol = "tcp"
address = "127.0.0.1:{syslog_port}"

[alerts]
access_denied_threshold = 3
access_denied_window_seconds = 60
retry_base_seconds = 0.2
poll_seconds = 0.1

[[alerts.webhooks]]
url = "{every.url}"
secret = "{HOOK_SECRET}"

[[alerts.webhooks]]
url = "{only_deletions.url}"
events = ["secret_scheduled_for_deletion"]
secret = "{HOOK_SECRET}"

[metrics]
refresh_seconds = 0.2
"""
    srv = start_configured(tmp, backend, config)
    yield {"server": srv, "every": every, "deletions": only_deletions, "syslog_port": syslog_port,
           "secrets": [HOOK_SECRET]}
    srv.stop()
    every.close()
    only_deletions.close()


@pytest.fixture(scope="module")
def srv(outputs: dict[str, Any]) -> Server:
    return outputs["server"]  # type: ignore[no-any-return]


def sink_file_text(srv: Server) -> str:
    folder = srv.data_dir / "audit"
    files = [*sorted(folder.glob("audit.jsonl.*")), folder / "audit.jsonl"]  # oldest first
    return "".join(p.read_text() for p in files if p.exists())


def test_sinks_get_every_event_and_a_down_sink_catches_up(outputs: dict[str, Any], srv: Server):
    sm = client(srv, config=NO_RETRY)
    name = f"sinks/{uuid.uuid4().hex[:8]}"
    values = [f"sink-value-{uuid.uuid4().hex}" for _ in range(3)]
    outputs["secrets"].extend(values)
    ids = [invoke(sm, "CreateSecret", Name=name, SecretString=values[0])[0]]
    for value in values[1:]:
        ids.append(invoke(sm, "PutSecretValue", SecretId=name, SecretString=value)[0])
    ids += [invoke(sm, "GetSecretValue", SecretId=name)[0] for _ in range(30)]
    # The file sink has all of them, rotated by size, each line a CloudTrail record.
    wait_for(lambda: all(i in sink_file_text(srv) for i in ids), what="the file sink")
    assert len(list((srv.data_dir / "audit").glob("audit.jsonl.*"))) >= 1
    lines = [json.loads(line) for line in sink_file_text(srv).splitlines()]
    assert [ln["requestID"] for ln in lines if ln["requestID"] in ids] == ids  # in commit order
    # stdout (in the server log) too.
    wait_for(lambda: ids[-1] in srv.log_text(), what="the stdout sink")
    # The syslog server was down all along: that sink is behind, and says so.
    syslog = f"sink:syslog:127.0.0.1:{outputs['syslog_port']}"
    wait_for(lambda: metric(scrape(srv), "strongroom_audit_sink_lag_events", sink=syslog) >= len(ids),
             what="the lag gauge")
    assert metric(scrape(srv), "strongroom_audit_sink_errors_total", sink=syslog) >= 1
    receiver = SyslogReceiver(outputs["syslog_port"])
    try:
        wait_for(lambda: all(any(i in m for m in receiver.messages) for i in ids), what="the syslog catch-up")
        assert all(m.startswith("<") and "strongroom: {" in m for m in receiver.messages)
        outputs["syslog"] = "\n".join(receiver.messages)
    finally:
        receiver.close()
    wait_for(lambda: metric(scrape(srv), "strongroom_audit_sink_lag_events", sink=syslog) == 0, what="zero lag")


def test_alert_webhooks_are_signed_retried_and_filtered(outputs: dict[str, Any], srv: Server):
    sm = client(srv, config=NO_RETRY)
    iam = client(srv, "iam")
    name = f"alerts/{uuid.uuid4().hex[:8]}"
    arn = sm.create_secret(Name=name, SecretString="alert-secret-value")["ARN"]
    outputs["secrets"].append("alert-secret-value")
    user = f"intruder-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    outputs["secrets"].append(key["SecretAccessKey"])
    intruder = boto3.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                             region_name="us-east-1").client("secretsmanager", endpoint_url=srv.url, config=NO_RETRY)
    for _ in range(3):
        assert invoke(intruder, "GetSecretValue", SecretId=arn)[2] == "AccessDeniedException"
    sm.put_resource_policy(SecretId=arn, ResourcePolicy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "secretsmanager:DeleteResourcePolicy",
        "Resource": "*", "Condition": {"StringEquals": {"aws:PrincipalArn": "arn:aws:iam::000000000000:user/x"}}}]}))
    lambda_arn = "arn:aws:lambda:us-east-1:123456789012:function:strongroom-builtin-postgresql-single-user"
    sm.rotate_secret(SecretId=arn, RotationLambdaARN=lambda_arn)  # leaves a pending version
    assert invoke(sm, "RotateSecret", SecretId=arn, RotationLambdaARN=lambda_arn)[2] == "InvalidRequestException"
    sm.delete_secret(SecretId=arn, RecoveryWindowInDays=7)

    every: Receiver = outputs["every"]
    wanted = {"access_denied_burst", "resource_policy_changed", "rotation_failed", "secret_scheduled_for_deletion"}

    def got() -> dict[str, dict[str, Any]]:
        out = {}
        for headers, body in every.received:
            alert = json.loads(body)
            if alert["resource"] == arn:
                out[alert["type"]] = {"headers": headers, "body": body, "alert": alert}
        return out

    alerts = wait_for(lambda: got() if set(got()) >= wanted else None, what="four alerts")
    assert every.fail == 0  # the first delivery was refused (503) and retried
    for kind, item in alerts.items():
        assert verify_signature(HOOK_SECRET, item["body"], item["headers"]["X-Strongroom-Signature"])
        assert item["headers"]["X-Strongroom-Event"] == kind
        assert item["alert"]["account"] == arn.split(":")[4] and item["alert"]["eventIds"]
    burst = alerts["access_denied_burst"]["alert"]
    assert burst["detail"]["count"] == 3 and len(burst["eventIds"]) == 3
    assert alerts["secret_scheduled_for_deletion"]["alert"]["detail"]["recoveryWindowInDays"] == 7
    # The second webhook asked for deletions only.
    deletions = wait_for(lambda: [json.loads(b) for _, b in outputs["deletions"].received
                                  if json.loads(b)["resource"] == arn], what="the deletions webhook")
    assert {a["type"] for a in deletions} == {"secret_scheduled_for_deletion"}
    assert len(srv.sql("SELECT id FROM alert_outbox WHERE status = 'delivered'")) >= 5
    outputs["webhooks"] = "\n".join(b.decode() for _, b in every.received)


def test_metrics_move_as_calls_are_made(srv: Server):
    sm = client(srv, config=NO_RETRY)
    before = scrape(srv)
    name = f"metrics/{uuid.uuid4().hex[:8]}"
    sm.create_secret(Name=name, SecretString="metrics-value")
    for _ in range(4):
        sm.get_secret_value(SecretId=name)
    assert invoke(sm, "DescribeSecret", SecretId="metrics/none")[2] == "ResourceNotFoundException"
    after = scrape(srv)

    def delta(sample: str, **labels: str) -> float:
        return metric(after, sample, **labels) - metric(before, sample, **labels)

    ok = {"service": "secretsmanager", "operation": "GetSecretValue"}
    assert delta("strongroom_requests_total", **ok, outcome="ok") == 4
    assert delta("strongroom_request_duration_seconds_count", **ok) == 4
    assert delta("strongroom_requests_total", service="secretsmanager", operation="DescribeSecret",
                 outcome="ResourceNotFoundException") == 1
    assert delta("strongroom_audit_events_total") >= 6
    assert metric(after, "strongroom_audit_writer_up") == 1
    assert ("strongroom_audit_queue_depth", ()) in after
    assert ("strongroom_rotations_total", (("result", "failed"),)) in after or any(
        k[0] == "strongroom_rotation_duration_seconds_count" for k in after)
    # Gauges of stored state follow (refreshed every 0.2 s here).
    def stored_active() -> int:
        return len(srv.sql("SELECT id FROM secrets WHERE deleted_date IS NULL"))

    wait_for(lambda: metric(scrape(srv), "strongroom_secrets", state="active") == stored_active(), what="the gauge")
    active = stored_active()
    sm.create_secret(Name=name + "-2", SecretString="x")
    wait_for(lambda: metric(scrape(srv), "strongroom_secrets", state="active") == active + 1, what="the new secret")
    assert metric(scrape(srv), "strongroom_secret_versions") >= 2
    with urllib.request.urlopen(srv.url + "/ready", timeout=5) as resp:
        assert json.loads(resp.read()) == {"status": "ready", "reason": "ready"}


def test_rotation_metrics_move_when_a_secret_rotates(srv: Server):
    from tests.e2e.rotation_support import create_rotator, execution_role, rotated, use_profile_of
    from tests.e2e.rotation_support import wait_for as wait_long

    before = scrape(srv)
    name = f"metrics/rotated-{uuid.uuid4().hex[:8]}"
    with use_profile_of(srv):  # the rotation helpers sign with the current profile files
        arn = create_rotator(srv, f"fn-{uuid.uuid4().hex[:8]}", execution_role(srv))
        sm = srv.client(config=NO_RETRY)
        sm.create_secret(Name=name, SecretString=f"rotate-me-{uuid.uuid4().hex}")
        sm.rotate_secret(SecretId=name, RotationLambdaARN=arn)
        wait_long(rotated(sm, name), what="the rotation", server=srv)
    after = wait_for(lambda: (lambda now: now if metric(now, "strongroom_rotations_total", result="succeeded")
                              > metric(before, "strongroom_rotations_total", result="succeeded") else None)(
        scrape(srv)), what="the rotation counter")
    assert metric(after, "strongroom_rotation_duration_seconds_count") >= \
        metric(before, "strongroom_rotation_duration_seconds_count") + 1
    assert metric(after, "strongroom_rotation_duration_seconds_sum") > \
        metric(before, "strongroom_rotation_duration_seconds_sum")
    steps = {k: v for k, v in after.items() if k[0] == "strongroom_rotation_steps_total"}
    assert sum(steps.values()) >= 4  # createSecret, setSecret, testSecret, finishSecret


def test_ready_answers_503_when_storage_is_unreachable(srv: Server, backend: Backend):
    if backend.cluster is None:
        # SQLite's readiness check (SELECT 1 on a pooled connection) touches no file, and a
        # process cannot be kept from a file it has open: there is no reliable way to make
        # a local database "unreachable" for a running server.
        pytest.skip("storage can only be made unreachable on PostgreSQL")
    cluster, database = backend.cluster, srv.database_url.rsplit("/", 1)[1]

    def ready() -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(srv.url + "/ready", timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    assert ready()[0] == 200
    # No new connections (superusers included), and the server's current ones cut.
    cluster.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
    try:
        cluster.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'")
        status, body = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(ready()), what="/ready to fail")
        assert "storage unreachable" in json.dumps(body), body
    finally:
        cluster.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
    wait_for(lambda: ready()[0] == 200, timeout=30, what="/ready to recover")


def test_audit_command_lists_filters_and_prints_json_lines(srv: Server):
    sm = client(srv, config=NO_RETRY)
    name = f"cli/{uuid.uuid4().hex[:8]}"
    sm.create_secret(Name=name, SecretString="cli-value")
    sm.get_secret_value(SecretId=name)
    invoke(sm, "GetSecretValue", SecretId=name + "-missing")
    out = strongroom("audit", "--secret", name, "--json", env=srv.env).stdout.splitlines()
    assert [json.loads(line)["eventName"] for line in out] == ["GetSecretValue", "CreateSecret"]
    out = strongroom("audit", "--event-name", "GetSecretValue", "--error-code", "any", "--start", "10m", "--json",
                     env=srv.env).stdout.splitlines()
    assert out and all(json.loads(line)["errorCode"] for line in out)
    one = strongroom("audit", "--principal", "admin", "--limit", "1", "--json", env=srv.env).stdout.splitlines()
    assert len(one) == 1
    table = strongroom("audit", "--secret", name, env={**srv.env, "COLUMNS": "200"}).stdout
    assert "GetSecretValue" in table and "CreateSecret" in table and "user/admin" in table
    assert "cli-value" not in table


def test_usage_reports_unread_secrets_callers_and_cost(srv: Server):
    sm = client(srv, config=NO_RETRY)
    read, unread = f"usage/{uuid.uuid4().hex[:8]}", f"usage/{uuid.uuid4().hex[:8]}"
    sm.create_secret(Name=read, SecretString="u1")
    sm.create_secret(Name=unread, SecretString="u2")
    for _ in range(3):
        sm.get_secret_value(SecretId=read)
    report = json.loads(strongroom("usage", "--days", "7", "--json", env=srv.env).stdout)
    by_name = {s["Name"]: s for s in report["Secrets"]}
    assert by_name[unread]["Status"] == "never read" and by_name[unread]["LastAccessedDate"] is None
    assert by_name[read]["Status"] == "in use" and by_name[read]["Calls"] == 4  # create + 3 reads
    assert any(p["Principal"].endswith(":user/admin") and p["Calls"] > 4 for p in report["Principals"])
    cost = report["AwsEquivalentCost"]
    assert cost["SecretsPerMonthUSD"] == round(cost["ActiveSecrets"] * 0.40, 2)
    assert cost["ApiCalls"] > 0
    # $0.05 per 10,000 calls, for the window's calls and projected to a 30-day month.
    assert cost["ApiCallsUSD"] == round(cost["ApiCalls"] / 10_000 * 0.05, 4)
    assert cost["ProjectedApiCallsPerMonth"] == round(cost["ApiCalls"] * 30 / 7)
    assert cost["ProjectedMonthlyUSD"] == round(
        cost["ActiveSecrets"] * 0.40 + cost["ApiCalls"] * 30 / 7 / 10_000 * 0.05, 2)
    text = strongroom("usage", env={**srv.env, "COLUMNS": "200"}).stdout
    assert "never read" in text and "AWS-equivalent cost" in text


def test_verify_and_public_key_export(srv: Server, tmp_path: Path):
    pem = tmp_path / "audit.pub"
    strongroom("audit", "public-key", "-o", str(pem), env=srv.env)
    assert pem.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    result = strongroom("audit", "verify", "--public-key", str(pem), env=srv.env, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK: ")


def test_no_secret_in_any_output(outputs: dict[str, Any], srv: Server):
    """Runs last: sink files, stdout/log, syslog, webhooks and the table, searched for every secret used."""
    wait_for(lambda: srv.sql("SELECT max(seq) FROM audit_events")[0][0] is not None, what="events")
    texts = {"file sink": sink_file_text(srv), "log and stdout": srv.log_text(),
             "syslog": outputs.get("syslog", ""), "webhooks": outputs.get("webhooks", ""),
             "table": "\n".join(str(r) for r in srv.sql("SELECT * FROM audit_events"))}
    assert all(texts.values()), [k for k, v in texts.items() if not v]
    for needle in [*outputs["secrets"], admin_keys(srv)[1]]:
        for where, text in texts.items():
            assert needle not in text, f"a secret appears in the {where}"
            assert base64.b64encode(needle.encode()).decode() not in text
