"""Administrative actions outside the API are on the record too: `strongroom iam ...`,
`iam apply`, `account create` (which write the database directly) and the local admin
endpoint (status, unseal, seal, rekey), appended to the chain the running server extends,
so `strongroom audit verify` stays intact."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Backend, Server, remember_secret, strongroom
from tests.e2e.audit_support import NO_RETRY, client, invoke, start_configured, the_record

HIDDEN = "HIDDEN_DUE_TO_SECURITY_REASONS"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, backend: Backend) -> Iterator[Server]:
    server = start_configured(tmp_path_factory.mktemp(f"audit-local-{backend.name}"), backend,
                              "[audit]\ndigest_every_events = 5\ndigest_interval_seconds = 0.5\n")
    yield server
    server.stop()


def local_records(srv: Server, event_name: str, needle: str = "") -> list[dict[str, Any]]:
    rows = srv.sql("SELECT record FROM audit_events WHERE event_name = :n AND record LIKE :p ORDER BY seq",
                   n=event_name, p=f"%{needle}%")
    return [json.loads(str(r[0])) for r in rows]


def verify_ok(srv: Server) -> str:
    out = strongroom("audit", "verify", env=srv.env, check=False)
    assert out.returncode == 0 and out.stdout.startswith("OK: "), out.stdout + out.stderr
    return str(out.stdout)


def test_iam_commands_are_recorded_as_the_root_on_the_shared_chain(srv: Server):
    user = f"cli-{uuid.uuid4().hex[:8]}"
    strongroom("iam", "create-user", user, env=srv.env)
    out = strongroom("iam", "create-access-key", user, "--json", env=srv.env).stdout
    key = json.loads(out)["AccessKey"]
    remember_secret(key["SecretAccessKey"], "the secret key `strongroom iam create-access-key` printed")
    strongroom("iam", "list-users", env=srv.env)  # a read: not recorded
    failed = strongroom("iam", "delete-user", f"no-such-{user}", env=srv.env, check=False)
    assert failed.returncode == 1

    [created] = local_records(srv, "CreateUser", user)
    account = created["recipientAccountId"]
    assert created["eventSource"] == "iam.amazonaws.com" and created["eventType"] == "AwsApiCall"
    assert created["userIdentity"] == {"type": "Root", "principalId": account, "arn": f"arn:aws:iam::{account}:root",
                                       "accountId": account, "accessKeyId": "", "userName": "root"}
    assert created["userAgent"] == "strongroom-cli" and created["readOnly"] is False
    assert created["requestParameters"]["userName"] == user
    assert created["additionalEventData"]["command"].endswith("iam create-user")
    assert {"host", "osUser", "pid"} <= set(created["additionalEventData"])
    [made_key] = local_records(srv, "CreateAccessKey", user)
    assert made_key["responseElements"]["accessKey"]["secretAccessKey"] == HIDDEN
    assert made_key["responseElements"]["accessKey"]["accessKeyId"] == key["AccessKeyId"]
    assert key["SecretAccessKey"] not in json.dumps(made_key)
    assert not local_records(srv, "ListUsers", "strongroom-cli")
    [refused] = local_records(srv, "DeleteUser", f"no-such-{user}")
    assert refused["errorCode"] == "NoSuchEntity" and refused["errorMessage"]

    # The server keeps extending the same chain after the CLI did, and it all verifies (the
    # CLI signed a digest over its events as it closed).
    sm = client(srv, config=NO_RETRY)
    request_id, _, _ = invoke(sm, "ListSecrets")
    after = the_record(srv, request_id)
    assert after["eventName"] == "ListSecrets"
    seqs = srv.sql("SELECT seq FROM audit_events WHERE event_name IN ('CreateUser', 'ListSecrets') "
                   "AND (record LIKE :u OR record LIKE :r) ORDER BY seq", u=f"%{user}%", r=f"%{request_id}%")
    assert [s[0] for s in seqs] == sorted(s[0] for s in seqs) and len(seqs) == 2
    verify_ok(srv)


def test_iam_apply_and_account_create_are_recorded(srv: Server, tmp_path: Path):
    name = f"acct-{uuid.uuid4().hex[:6]}"
    out = strongroom("account", "create", "--name", name, env=srv.env).stdout
    secret = out.split("aws_secret_access_key = ")[1].strip()
    remember_secret(secret, "the secret key `strongroom account create` printed")
    account = out.split()[1]
    [made] = local_records(srv, "CreateAccount", name)
    assert made["eventSource"] == "organizations.amazonaws.com" and made["recipientAccountId"] == account
    assert made["userIdentity"]["type"] == "Root" and made["userAgent"] == "strongroom-cli"
    assert made["responseElements"]["createAccountStatus"]["accountId"] == account
    assert secret not in json.dumps(made)

    applied = f"applied-{uuid.uuid4().hex[:6]}"
    doc = {"accounts": [{"name": applied, "users": [{"name": "alice", "policies": {"read": {
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:ListSecrets",
                                                "Resource": "*"}]}}}]}]}
    (tmp_path / "iam.yaml").write_text(json.dumps(doc))
    out = strongroom("iam", "apply", str(tmp_path / "iam.yaml"), env=srv.env).stdout
    remember_secret(out.split(" / ")[1].split()[0], "the admin key `iam apply` printed")
    [account_event] = local_records(srv, "CreateAccount", applied)
    new_account = account_event["recipientAccountId"]
    assert account_event["additionalEventData"]["command"].endswith("iam apply")
    names = [json.loads(str(r[0]))["eventName"] for r in srv.sql(
        "SELECT record FROM audit_events WHERE account_id = :a ORDER BY seq", a=new_account)]
    assert names == ["CreateAccount", "CreateUser", "PutUserPolicy"]  # GetUser and the other reads: not recorded
    verify_ok(srv)


def _admin(srv: Server, path: str, body: dict[str, Any] | None = None, token: bool = True) -> tuple[int, Any]:
    admin = json.loads((srv.data_dir / "admin.json").read_text())
    headers = {"content-type": "application/json"}
    if token:
        headers["x-strongroom-admin-token"] = admin["token"]
    req = urllib.request.Request(admin["url"] + "/_strongroom/" + path, method="POST" if body is not None else "GET",
                                 data=None if body is None else json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_admin_endpoint_requests_are_recorded_without_shares_or_passphrases(srv: Server):
    marker = uuid.uuid4().hex
    assert _admin(srv, "status")[0] == 200
    assert _admin(srv, "status", token=False)[0] == 403
    share = f"share-secret-{marker}"
    status, _ = _admin(srv, "unseal", {"share": share})  # unsealed already: answered with the status
    assert status == 200
    passphrase = f"rekey-passphrase-{marker}"
    status, body = _admin(srv, "rekey", {"to": {"source": "passphrase", "passphrase": passphrase},
                                         "batch_size": 0})
    assert status == 400 and body["__type"] == "ValidationException"
    for value in (share, passphrase):
        remember_secret(value, "a value sent to the admin endpoint")

    statuses = local_records(srv, "GetRootKeyStatus")
    assert [r.get("errorCode") for r in statuses[-2:]] == [None, "AccessDeniedException"]
    allowed, refused = statuses[-2:]
    assert allowed["eventSource"] == "strongroom.amazonaws.com" and allowed["readOnly"] is True
    assert allowed["userIdentity"]["type"] == "Root" and allowed["sourceIPAddress"] == "127.0.0.1"
    assert refused["userIdentity"]["type"] == "Unknown"
    [unseal] = [r for r in local_records(srv, "Unseal") if r["eventTime"] >= allowed["eventTime"]][-1:]
    assert unseal["requestParameters"] == {"share": HIDDEN} and unseal["readOnly"] is False
    [rekey] = local_records(srv, "StartRekey")[-1:]
    assert rekey["errorCode"] == "ValidationException"
    assert rekey["requestParameters"] == {"batch_size": 0, "to": {"source": "passphrase"}}
    text = "\n".join(str(r) for r in srv.sql("SELECT * FROM audit_events"))
    assert share not in text and passphrase not in text
    verify_ok(srv)


RENAME = (["ALTER TABLE audit_events RENAME TO audit_events_hidden"],
          ["ALTER TABLE audit_events_hidden RENAME TO audit_events"])


def test_a_cli_change_is_refused_when_its_record_cannot_be_written(srv: Server):
    user = f"unrecorded-{uuid.uuid4().hex[:6]}"
    for statement in RENAME[0]:
        srv.sql(statement)
    try:
        out = strongroom("iam", "create-user", user, env=srv.env, check=False)
        refused = strongroom("account", "create", "--name", user, env=srv.env, check=False)
    finally:
        for statement in RENAME[1]:
            srv.sql(statement)
    assert out.returncode == 1 and "audit trail cannot be written" in out.stderr, out.stderr
    assert refused.returncode == 1 and "no account was created" in refused.stderr, refused.stderr
    assert strongroom("iam", "list-users", "--json", env=srv.env).stdout.count(user) == 0
    assert user not in strongroom("account", "list", env=srv.env).stdout
