"""Several `strongroom serve` nodes on one PostgreSQL database, as behind a load balancer.

Three nodes share a database, a root key and a configuration. The tests prove
what docs/deployment.md promises: a write acknowledged by one node is read by
every other node at once; credential and policy changes reach every node
through change events (caches here keep entries for 300 s, so only the events
can explain a change seen within the bounded waits below); background work
runs on exactly one node and moves when that node is killed; concurrent label
moves from every node keep the staging-label invariants; killing a node
while clients write loses no acknowledged write and costs the clients of the
other nodes nothing; the audit trail the three nodes extend together verifies
intact afterwards; and a rotation whose node is killed mid-function is finished,
once, by another node.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import Server, start_server, strongroom
from tests.e2e.rotation_support import FAST_ROTATION, zipped
from tests.postgres import Cluster

# Digests every 20 events (or every second): the concurrent-write tests then leave several
# digests, signed by whichever node extended the chain, for `strongroom audit verify` to check.
CONFIG = """[server]
region = "us-east-1"
purge_interval_seconds = 0.3
lease_seconds = 3
cache_ttl_seconds = 300

[audit]
digest_every_events = 20
digest_interval_seconds = 1
"""
NODES = 3


class Deployment:
    def __init__(self, nodes: list[Server], creds: dict[str, str]):
        self.nodes = nodes
        self.creds = creds

    def client(self, node: int, service: str = "secretsmanager", **creds: str) -> Any:
        """A client of one node that never retries: an error the node answers is an error seen."""
        return boto3.client(service, endpoint_url=self.nodes[node].url, region_name="us-east-1",
                            config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5,
                                          read_timeout=60),
                            **(creds or self.creds))

    def log_events(self, node: int) -> list[dict[str, Any]]:
        out = []
        for line in self.nodes[node].log_text().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out


def _credentials(server: Server) -> dict[str, str]:
    import configparser

    parser = configparser.ConfigParser()
    parser.read(server.env["AWS_SHARED_CREDENTIALS_FILE"])
    section = parser[server.profile]
    return {"aws_access_key_id": section["aws_access_key_id"], "aws_secret_access_key": section["aws_secret_access_key"]}


def start_deployment(tmp: Path, postgres: Cluster) -> Deployment:
    url = postgres.create_database()
    first = tmp / "node0"
    (first / "data").mkdir(parents=True)
    (first / "data" / "config.toml").write_text(CONFIG)
    # FAST_ROTATION: rotation passes every 0.3 s with 3 s per-secret leases, so a rotation whose
    # node died is taken over within seconds.
    nodes = [start_server(first, database_url=url, args=("--log-level", "debug"), extra_env=FAST_ROTATION)]
    for i in range(1, NODES):
        home = tmp / f"node{i}"
        (home / "data").mkdir(parents=True)
        for item in nodes[0].data_dir.iterdir():  # same root key, configuration and signing key
            if item.is_file() and not item.name.startswith(("strongroom.db", "admin.json")):
                shutil.copy2(item, home / "data" / item.name)
        nodes.append(start_server(home, init=False, database_url=url, args=("--log-level", "debug"),
                                  extra_env=FAST_ROTATION))
    return Deployment(nodes, _credentials(nodes[0]))


@pytest.fixture
def deployment(tmp_path: Path, postgres: Cluster) -> Iterator[Deployment]:
    dep = start_deployment(tmp_path, postgres)
    try:
        yield dep
    finally:
        for node in dep.nodes:
            node.stop()


def eventually(check: Callable[[], bool], timeout: float = 10.0, message: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {message}")


def audit_verified(dep: Deployment, via: int) -> tuple[int, int]:
    """`strongroom audit verify` on the shared database, run from one node's data directory:
    asserts the chain and every digest are intact; returns (events, digests)."""
    out = strongroom("audit", "verify", env=dep.nodes[via].env, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "TAMPERED" not in out.stdout
    summary = re.search(r"^OK: (\d+) events \(seq 1\.\.(\d+)\), (\d+) digests", out.stdout, re.MULTILINE)
    assert summary, out.stdout
    events, last_seq, digests = (int(g) for g in summary.groups())
    assert events == last_seq  # no gap in the sequence the three nodes drew from
    return events, digests


def _audited_events(dep: Deployment) -> int:
    return int(dep.nodes[0].sql("SELECT count(*) FROM audit_events")[0][0])


# -- read-your-writes ------------------------------------------------------------------------
def test_a_write_on_one_node_is_read_at_once_on_every_other(deployment: Deployment) -> None:
    sm = [deployment.client(i) for i in range(NODES)]
    name = f"ryw/{uuid.uuid4().hex[:8]}"
    sm[0].create_secret(Name=name, SecretString="v0")
    for i in range(1, 31):
        writer = i % NODES
        put = sm[writer].put_secret_value(SecretId=name, SecretString=f"v{i}")
        for reader in range(NODES):
            got = sm[reader].get_secret_value(SecretId=name)
            assert (got["SecretString"], got["VersionId"]) == (f"v{i}", put["VersionId"]), (writer, reader)
    moved = sm[1].update_secret_version_stage(SecretId=name, VersionStage="BLUE", MoveToVersionId=put["VersionId"])
    assert moved["Name"] == name
    for reader in range(NODES):
        stages = sm[reader].describe_secret(SecretId=name)["VersionIdsToStages"][put["VersionId"]]
        assert "BLUE" in stages
    sm[2].delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    for reader in range(NODES):
        with pytest.raises(ClientError) as exc:
            sm[reader].get_secret_value(SecretId=name)
        assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_kms_key_state_is_seen_by_every_node_at_once(deployment: Deployment) -> None:
    kms = [deployment.client(i, "kms") for i in range(NODES)]
    key = kms[0].create_key()["KeyMetadata"]["KeyId"]
    blob = kms[1].encrypt(KeyId=key, Plaintext=b"across nodes")["CiphertextBlob"]
    assert kms[2].decrypt(CiphertextBlob=blob)["Plaintext"] == b"across nodes"  # material cached on node 2
    kms[0].disable_key(KeyId=key)
    for node in range(NODES):
        with pytest.raises(ClientError) as exc:
            kms[node].decrypt(CiphertextBlob=blob)
        assert exc.value.response["Error"]["Code"] == "DisabledException"


def test_credential_and_policy_changes_reach_every_node(deployment: Deployment) -> None:
    iam = deployment.client(0, "iam")
    user = f"u{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="list", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "secretsmanager:ListSecrets", "Resource": "*"}]}))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    creds = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
    users = [deployment.client(i, **creds) for i in range(NODES)]
    for node in range(NODES):
        users[node].list_secrets()  # every node now holds the key and its policies in its caches

    def denied(node: int, code: str) -> bool:
        try:
            users[node].list_secrets()
        except ClientError as exc:
            return bool(exc.response["Error"]["Code"] == code)
        return False

    iam.put_user_policy(UserName=user, PolicyName="deny", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}))
    for node in range(NODES):
        eventually(lambda: denied(node, "AccessDeniedException"), 3.0, f"policy change on node {node}")
    iam.delete_user_policy(UserName=user, PolicyName="deny")
    iam.update_access_key(UserName=user, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    for node in range(NODES):
        eventually(lambda: denied(node, "UnrecognizedClientException"), 3.0, f"key deactivation on node {node}")


# -- background work ---------------------------------------------------------------------------
def _runs(dep: Deployment, node: int) -> list[dict[str, Any]]:
    return [e for e in dep.log_events(node) if e.get("msg") == "background job ran"]


def _holders_between(dep: Deployment, nodes: list[int], start: str, end: str) -> set[int]:
    return {n for n in nodes for e in _runs(dep, n) if start <= e["time"] <= end}


def test_background_work_runs_on_one_node_and_moves_when_it_dies(deployment: Deployment) -> None:
    dep = deployment
    eventually(lambda: any(_runs(dep, n) for n in range(NODES)), 15.0, "a first background pass")
    time.sleep(3)
    started = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 2))
    now = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime())
    holders = _holders_between(dep, list(range(NODES)), started, now)
    assert len(holders) == 1, f"background work ran on nodes {holders} in the same seconds"
    [holder] = holders
    tokens = {e["token"] for e in _runs(dep, holder)}

    # Secrets past their recovery window are purged once, by the holder.
    sm = dep.client(0)
    doomed = [f"purge/{uuid.uuid4().hex[:8]}" for _ in range(5)]
    for name in doomed:
        sm.create_secret(Name=name, SecretString="x")
        sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    dep.nodes[0].sql("UPDATE secrets SET deletion_date = :past WHERE name LIKE 'purge/%'", past=time.time() - 1)
    eventually(lambda: not dep.nodes[0].sql("SELECT id FROM secrets WHERE name LIKE 'purge/%'"), 10.0, "purge")
    purged = [e for n in range(NODES) for e in dep.log_events(n)
              if e.get("msg") == "purged secrets past their recovery window"]
    assert sum(e["count"] for e in purged) == len(doomed)

    # Kill the holder without a chance to release its lease: another node takes over at expiry.
    dep.nodes[holder].proc.send_signal(signal.SIGKILL)
    dep.nodes[holder].proc.wait()
    killed_at = time.time()
    others = [n for n in range(NODES) if n != holder]
    eventually(lambda: any(e.get("msg") == "lease acquired" for n in others for e in dep.log_events(n)),
               15.0, "a takeover of the background lease")
    eventually(lambda: any(_runs(dep, n) for n in others), 5.0, "a background pass on the new holder")
    took_over = time.time() - killed_at
    assert took_over < 3 + 3 + 2  # the lease's lifetime, plus one renewal interval, plus slack
    time.sleep(2)
    start = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 1.5))
    end = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime())
    assert len(_holders_between(dep, others, start, end)) == 1
    [new_holder] = {n for n in others if _runs(dep, n)}
    assert min(e["token"] for e in _runs(dep, new_holder)) > max(tokens), "a handover moves the fencing token on"


# -- concurrent writers on every node ---------------------------------------------------------
def _hammer(workers: list[Callable[[], None]], seconds: float) -> None:
    threads = [threading.Thread(target=w, daemon=True) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds)
    assert not any(t.is_alive() for t in threads), "a client is stuck"


def test_concurrent_label_moves_from_every_node_keep_the_invariants(deployment: Deployment) -> None:
    name = f"labels/{uuid.uuid4().hex[:8]}"
    deployment.client(0).create_secret(Name=name, SecretString="initial")
    audited_before = _audited_events(deployment)
    acked: dict[str, str] = {}
    unexpected: list[str] = []
    lock = threading.Lock()

    def worker(node: int, seed: int) -> None:
        sm, rnd = deployment.client(node), random.Random(seed)
        for i in range(8):
            try:
                value = f"n{node}-s{seed}-{i}"
                if rnd.random() < 0.5 or not acked:
                    put = sm.put_secret_value(SecretId=name, SecretString=value, ClientRequestToken=str(uuid.uuid4()))
                    with lock:
                        acked[put["VersionId"]] = value
                elif rnd.random() < 0.5:
                    with lock:
                        target = rnd.choice(sorted(acked))
                    label = rnd.choice(["BLUE", "AWSCURRENT"])
                    current = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
                    holder = next((v for v, ls in current.items() if label in ls), None)
                    sm.update_secret_version_stage(SecretId=name, VersionStage=label, MoveToVersionId=target,
                                                   **({"RemoveFromVersionId": holder} if holder else {}))
                else:
                    update = sm.update_secret(SecretId=name, Description=value, SecretString=value)
                    with lock:
                        acked[update["VersionId"]] = value
            except ClientError as exc:
                # Losing a race for a label is an answer, not a fault: its holder moved meanwhile.
                if exc.response["Error"]["Code"] != "InvalidParameterException":
                    unexpected.append(f"node {node}: {exc}")

    _hammer([lambda n=n, s=s: worker(n, s) for n in range(NODES) for s in range(2)], 120)
    assert unexpected == []
    sm = deployment.client(1)
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    labels = collections.Counter(label for ls in stages.values() for label in ls)
    assert labels["AWSCURRENT"] == 1 and labels["AWSPREVIOUS"] == 1 and labels["BLUE"] <= 1
    current = next(v for v, ls in stages.items() if "AWSCURRENT" in ls)
    previous = next(v for v, ls in stages.items() if "AWSPREVIOUS" in ls)
    assert current != previous and current in acked
    listed = {v["VersionId"] for v in sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]}
    assert set(acked) <= listed, "an acknowledged version is missing"
    for version_id, value in acked.items():
        assert sm.get_secret_value(SecretId=name, VersionId=version_id)["SecretString"] == value

    # Three nodes appended to one audit chain at once (each under the chain head's row lock):
    # the chain and the digests (every 20 events, by whichever node was writing) verify intact.
    events, digests = audit_verified(deployment, via=2)
    assert events - audited_before >= len(acked)  # every acknowledged write was audited
    assert digests >= 2


def test_killing_a_node_while_clients_write_loses_no_acknowledged_write(deployment: Deployment) -> None:
    names = [f"kill/{uuid.uuid4().hex[:8]}" for _ in range(6)]
    for name in names:
        deployment.client(0).create_secret(Name=name, SecretString="start")
    acked: list[tuple[str, str, str]] = []
    survivor_errors: list[str] = []
    stop = threading.Event()
    victim = NODES - 1

    def writer(node: int, seed: int) -> None:
        sm, rnd = deployment.client(node), random.Random(seed)
        for _ in range(40):  # at most 240 versions over 6 secrets: under the 100-version quota of each
            if stop.is_set():
                return
            time.sleep(0.05)
            name, value = rnd.choice(names), f"{node}-{seed}-{uuid.uuid4().hex}"
            try:
                put = sm.put_secret_value(SecretId=name, SecretString=value)
                acked.append((name, put["VersionId"], value))
                got = sm.get_secret_value(SecretId=name, VersionId=put["VersionId"])
                assert got["SecretString"] == value
            except Exception as exc:  # noqa: BLE001 - the victim's clients fail; the others must not
                if node != victim:
                    survivor_errors.append(f"node {node}: {type(exc).__name__}: {exc}")
                else:
                    time.sleep(0.05)

    threads = [threading.Thread(target=writer, args=(n, s), daemon=True) for n in range(NODES) for s in range(2)]
    for t in threads:
        t.start()
    eventually(lambda: len(acked) > 15, 30.0, "writes on every node")
    deployment.nodes[victim].proc.send_signal(signal.SIGKILL)  # mid-request, holding row locks
    deployment.nodes[victim].proc.wait()
    killed = len(acked)
    eventually(lambda: len(acked) > killed + 15, 30.0, "writes after the kill")
    stop.set()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a client is stuck"
    assert survivor_errors == []
    assert len(acked) > 20
    sm = deployment.client(0)
    for name in names:
        listed = {v["VersionId"] for v in sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]}
        for acked_name, version_id, value in acked:
            if acked_name == name:
                assert version_id in listed
                assert sm.get_secret_value(SecretId=name, VersionId=version_id)["SecretString"] == value
    # The victim died holding audit batches in flight: what it had not committed is simply absent,
    # and the chain the survivors went on extending verifies intact.
    events, digests = audit_verified(deployment, via=0)
    assert events >= len(acked) and digests >= 2


# -- rotation across nodes ---------------------------------------------------------------------
# A rotation function in the shape of AWS's templates whose createSecret, the first time any
# node runs it, stores the AWSPENDING version and then stalls: the node running it is killed
# with the new version already written, the step not yet recorded as done. The node that takes
# over runs createSecret again; the function finds its AWSPENDING version and adds none.
SLOW_ROTATOR = '''
import os, time
import boto3

def lambda_handler(event, context):
    arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    sm = boto3.client("secretsmanager", endpoint_url=os.environ["SECRETS_MANAGER_ENDPOINT"])
    versions = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    if "AWSCURRENT" in versions.get(token, []):
        return
    if step == "createSecret":
        try:
            sm.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
        except sm.exceptions.ResourceNotFoundException:
            sm.put_secret_value(SecretId=arn, ClientRequestToken=token, VersionStages=["AWSPENDING"],
                                SecretString="rotated-" + token, RotationToken=event["RotationToken"])
        marker = os.environ["STALL_MARKER"]
        if not os.path.exists(marker):
            open(marker, "w").close()
            time.sleep(float(os.environ["STALL_SECONDS"]))
    elif step == "finishSecret":
        current = next(v for v, s in versions.items() if "AWSCURRENT" in s)
        sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token,
                                       RemoveFromVersionId=current)
'''


def _rotation_events(dep: Deployment, node: int, arn: str, msg: str) -> list[dict[str, Any]]:
    return [e for e in dep.log_events(node) if e.get("msg") == msg and e.get("secret") == arn]


def test_a_rotation_whose_node_dies_is_finished_once_by_another(deployment: Deployment, tmp_path: Path) -> None:
    dep = deployment
    iam, lam, sm = dep.client(0, "iam"), dep.client(1, "lambda"), dep.client(2)
    role = f"rotator-{uuid.uuid4().hex[:8]}"
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "lambda.amazonaws.com"}}]}
    role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName=role, PolicyName="rotate", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}]}))
    marker = tmp_path / "stalled"
    function = f"slow-{uuid.uuid4().hex[:8]}"
    fn_arn = lam.create_function(
        FunctionName=function, Runtime="python3.11", Role=role_arn, Handler="lambda_function.lambda_handler",
        Code={"ZipFile": zipped({"lambda_function.py": SLOW_ROTATOR})}, Timeout=120,
        Environment={"Variables": {"STALL_MARKER": str(marker), "STALL_SECONDS": "60"}})["FunctionArn"]
    lam.add_permission(FunctionName=function, StatementId="SecretsManagerAccess", Action="lambda:InvokeFunction",
                       Principal="secretsmanager.amazonaws.com")
    name = f"rot/{uuid.uuid4().hex[:8]}"
    arn = sm.create_secret(Name=name, SecretString="before")["ARN"]
    token = sm.rotate_secret(SecretId=name, RotationLambdaARN=fn_arn)["VersionId"]

    eventually(marker.exists, 90.0, "the function to stall in createSecret")  # first run prepares its venv
    runners = [n for n in range(NODES) if _rotation_events(dep, n, arn, "rotation step")]
    assert len(runners) == 1, f"the rotation started on nodes {runners}"
    [victim] = runners
    assert "AWSPENDING" in sm.describe_secret(SecretId=name)["VersionIdsToStages"][token]
    # The whole machine dies: the node and the function process it started.
    children = subprocess.run(["pgrep", "-P", str(dep.nodes[victim].proc.pid)], capture_output=True,
                              text=True).stdout.split()
    dep.nodes[victim].proc.send_signal(signal.SIGKILL)
    dep.nodes[victim].proc.wait()
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)

    survivors = [n for n in range(NODES) if n != victim]
    reader = dep.client(survivors[0])

    def finished() -> bool:
        stages = reader.describe_secret(SecretId=name)["VersionIdsToStages"]
        return "AWSCURRENT" in stages.get(token, []) and not any("AWSPENDING" in s for s in stages.values())

    eventually(finished, 90.0, "another node to finish the rotation")
    versions = reader.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]
    assert len(versions) == 2, versions  # "before" and one rotated version: createSecret ran twice, added once
    assert reader.get_secret_value(SecretId=name)["SecretString"] == f"rotated-{token}"
    assert reader.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"] == "before"
    assert _rotation_events(dep, victim, arn, "rotation succeeded") == []
    finishers = [n for n in survivors if _rotation_events(dep, n, arn, "rotation succeeded")]
    assert len(finishers) == 1, f"the rotation finished on nodes {finishers}"
    [finisher] = finishers
    assert len(_rotation_events(dep, finisher, arn, "rotation succeeded")) == 1
    steps = [e["step"] for n in survivors for e in _rotation_events(dep, n, arn, "rotation step")]
    assert steps.count("finishSecret") == 1, steps  # the last step ran once, on one node
    assert all(e["token"] == token for n in survivors for e in _rotation_events(dep, n, arn, "rotation step"))
    time.sleep(2)  # a few more scheduler passes on every survivor: nothing starts the rotation again
    assert len(reader.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]) == 2
    assert sum(len(_rotation_events(dep, n, arn, "rotation succeeded")) for n in survivors) == 1
