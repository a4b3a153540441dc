"""`strongroom rekey` on one node of several sharing a PostgreSQL database.

The rekey makes its new root key in the data directory of the node it runs on; every other
node must follow with no file copied by hand: it takes the key from the database's hand-off
(wrapped by the old root key it holds), serves throughout, keeps the key in its own data
directory and config.toml so that it restarts, and a node that was down for the whole rekey
follows at its next start. `strongroom rekey --finish` then deletes the database's copy.
"""

from __future__ import annotations

import json
import shutil
import stat
import threading
import tomllib
import uuid
from pathlib import Path

from tests.conftest import Server, start_server, strongroom
from tests.e2e.keys_support import assert_absent, marker, wait_for
from tests.e2e.test_scale_out import NODES, Deployment, start_deployment
from tests.postgres import Cluster

SECRETS = 8


def _root_key(data: Path) -> tuple[str, bytes]:
    """The key file config.toml names in a node's data directory, and its bytes."""
    spec = tomllib.loads((data / "config.toml").read_text()).get("root_key", {})
    name = spec.get("path", "root.key")
    path = data / name
    assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    return name, path.read_bytes()


def _spare_node(dep: Deployment, home: Path, url: str) -> Server:
    """One more node, set up as start_deployment sets up nodes 1 and 2."""
    (home / "data").mkdir(parents=True)
    for item in dep.nodes[0].data_dir.iterdir():
        if item.is_file() and not item.name.startswith(("strongroom.db", "admin.json")):
            shutil.copy2(item, home / "data" / item.name)
    return start_server(home, init=False, database_url=url, args=("--log-level", "debug"))


def test_rekey_on_one_node_reaches_every_node(tmp_path: Path, postgres: Cluster) -> None:
    dep = start_deployment(tmp_path, postgres)
    url = dep.nodes[0].database_url
    late: Server | None = None
    try:
        old_name, old_key = _root_key(dep.nodes[0].data_dir)
        # A fourth node that is down for the whole rekey: it must follow at its next start.
        late = _spare_node(dep, tmp_path / "late", url)
        late.stop()

        sm0, kms0, iam0 = dep.client(0), dep.client(0, "kms"), dep.client(0, "iam")
        cmk = kms0.create_key(Description="rekeyed across nodes")["KeyMetadata"]["Arn"]
        values = {}
        for i in range(SECRETS):
            name = f"multi/{uuid.uuid4().hex[:8]}"
            values[name] = f"value {i}"
            sm0.create_secret(Name=name, SecretString=values[name], **({"KmsKeyId": cmk} if i % 2 else {}))
        blob = kms0.encrypt(KeyId=cmk, Plaintext=b"kms payload")["CiphertextBlob"]
        iam0.create_user(UserName="reader")
        iam0.put_user_policy(UserName="reader", PolicyName="read", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                                                    "Resource": "*"}]}))
        access = iam0.create_access_key(UserName="reader")["AccessKey"]
        reader = {"aws_access_key_id": access["AccessKeyId"], "aws_secret_access_key": access["SecretAccessKey"]}
        written = f"multi/written-{uuid.uuid4().hex[:8]}"
        sm0.create_secret(Name=written, SecretString="w0")

        errors: list[str] = []
        reads = [0]
        stop, rekeying = threading.Event(), threading.Event()

        def read_on(node: int) -> None:
            sm, kms = dep.client(node), dep.client(node, "kms")
            fresh = None  # the reader's key is first used mid-rekey: its secret is unwrapped then
            current = written  # the secret this node writes to
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    for name, value in values.items():
                        assert sm.get_secret_value(SecretId=name)["SecretString"] == value, name
                    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"kms payload"
                    if rekeying.is_set():
                        fresh = fresh or dep.client(node, **reader)
                        assert fresh.get_secret_value(SecretId=current)["SecretString"].startswith("w")
                    # Writes mid-rekey: wrapped with whichever key this node holds as active. A new
                    # secret every 40 writes: like AWS, a secret takes at most 100 versions a day.
                    block = f"{written}-{node}-{i // 40}" if i >= 40 else written
                    if block != current:
                        sm.create_secret(Name=block, SecretString=f"w{node}-{i}")
                        current = block
                    else:
                        sm.put_secret_value(SecretId=block, SecretString=f"w{node}-{i}")
                    if i % 3 == 1:  # new KMS key material, wrapped mid-rekey too
                        key = kms.create_key()["KeyMetadata"]["KeyId"]
                        assert kms.decrypt(CiphertextBlob=kms.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]
                                           )["Plaintext"] == b"x"
                    reads[0] += 1
                except Exception as exc:  # noqa: BLE001 - every failure is a finding
                    errors.append(f"node {node}: {type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=read_on, args=(n,), daemon=True) for n in (1, 2)]
        for t in threads:
            t.start()
        wait_for(lambda: reads[0] >= 2, what="readers on nodes 1 and 2")
        rekeying.set()
        out = strongroom("rekey", "--batch-size", "3", "--pause", "0.1", env=dep.nodes[0].env)
        assert "done" in out.stderr and "rekey --finish" in out.stderr
        done = marker(dep.nodes[0])
        assert done is not None and done["state"] == "done" and done["rewrapped"] >= SECRETS
        before = reads[0]
        try:  # each pass makes about 15 calls on each node; a loaded machine can make that slow
            wait_for(lambda: reads[0] >= before + 2, timeout=180, what="reads after the rekey")
        except AssertionError:
            raise AssertionError(f"no reads completed after the rekey; last errors: {errors[-5:]}") from None
        stop.set()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads), "a reader is stuck"
        assert errors == []

        # Every node now names the new key in its own config.toml and holds it in its own directory.
        new_name, new_key = _root_key(dep.nodes[0].data_dir)
        assert new_name != old_name and new_key != old_key
        for node in dep.nodes[1:]:
            assert _root_key(node.data_dir) == (new_name, new_key)
            status = strongroom("rekey", "--status", env=node.env).stderr
            assert f"root key {done['new_key_id']}" in status
        assert dep.nodes[0].sql("SELECT count(*) FROM root_key_handoffs") == [(1,)]

        # Restarted with empty caches, nodes 1 and 2 read everything under the new key alone.
        for i in (1, 2):
            dep.nodes[i].stop()
            (dep.nodes[i].data_dir / old_name).unlink()  # retired: nothing needs it any more
            dep.nodes[i] = start_server(tmp_path / f"node{i}", init=False, database_url=url,
                                        args=("--log-level", "debug"))
        # The late node still names the old key: it takes the new one from the database at start.
        late = start_server(tmp_path / "late", init=False, database_url=url)
        assert _root_key(late.data_dir) == (new_name, new_key)
        dep.nodes.append(late)
        for node in range(1, NODES + 1):
            sm, kms = dep.client(node), dep.client(node, "kms")
            for name, value in values.items():
                assert sm.get_secret_value(SecretId=name)["SecretString"] == value
            assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"kms payload"
            assert dep.client(node, **reader).get_secret_value(SecretId=written)["SecretString"].startswith("w")

        # Every node followed: the copy wrapped under the retired key leaves the database.
        finish = strongroom("rekey", "--finish", env=dep.nodes[0].env)
        assert "deleted" in finish.stderr
        assert dep.nodes[0].sql("SELECT count(*) FROM root_key_handoffs") == [(0,)]
        late.stop()
        late = start_server(tmp_path / "late", init=False, database_url=url)  # config.toml suffices now
        dep.nodes[-1] = late
        assert dep.client(NODES, "secretsmanager").get_secret_value(SecretId=written)["SecretString"]
    finally:
        for node in dep.nodes:
            node.stop()
        if late is not None:
            late.stop()
    logs = [n.log_text() for n in dep.nodes]
    assert_absent([old_key, new_key], dep.nodes[0].database_files(), logs)

