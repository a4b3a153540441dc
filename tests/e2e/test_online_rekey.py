"""`strongroom rekey`: the root key changes while the server serves; a rekey killed midway resumes
at the next start and loses nothing; afterwards the old key is not needed any more."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from sqlalchemy import select

from strongroom.crypto.keyring import RootKeyring
from strongroom.crypto.rootkey import FileRootKey
from strongroom.services.kms.materials import material_purpose
from strongroom.services.secretsmanager.core import value_binding
from strongroom.storage import open_store
from strongroom.storage import tables as t
from tests.conftest import Backend, Server, start_server, strongroom
from tests.e2e.keys_support import SHARE, assert_absent, client, marker, serve, wait_for


def populate(srv: Server) -> dict[str, object]:
    """Something of every kind the root key wraps: access keys, a role session, KMS key material,
    and a secret version sealed directly by the root key (as before KMS keys existed)."""
    sm, kms, iam, sts = (client(srv, s) for s in ("secretsmanager", "kms", "iam", "sts"))
    account = sts.get_caller_identity()["Account"]
    cmk = kms.create_key(Description="rekeyed")["KeyMetadata"]
    for i in range(4):
        sm.create_secret(Name=f"rekey/{i}", SecretString=f"value {i}", **({"KmsKeyId": cmk["Arn"]} if i % 2 else {}))
    blob = kms.encrypt(KeyId=cmk["KeyId"], Plaintext=b"kms payload")["CiphertextBlob"]
    iam.create_user(UserName="reader")
    iam.put_user_policy(UserName="reader", PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                                                "Resource": "*"}]}))
    user = iam.create_access_key(UserName="reader")["AccessKey"]
    iam.create_role(RoleName="deployer", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                                                "Action": "sts:AssumeRole"}]}))
    iam.put_role_policy(RoleName="deployer", PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                                                "Resource": "*"}]}))
    session = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/deployer", RoleSessionName="rekey-test",
                              DurationSeconds=3600)["Credentials"]
    legacy = sm.create_secret(Name="rekey/legacy", SecretString="placeholder")
    root = FileRootKey.load(srv.data_dir / "root.key")
    store = open_store(srv.database_url)
    try:
        with store.read() as tx:
            secret = tx.secret_by_arn(legacy["ARN"])
        key_id, sealed = RootKeyring(root).seal(b"legacy value", value_binding(secret, legacy["VersionId"]), None)
    finally:
        store.close()
    srv.sql("UPDATE secret_versions SET key_id = :k, wrapped_key = :w, ciphertext = :c WHERE version_id = :v",
            k=key_id, w=sealed.wrapped_key, c=sealed.ciphertext, v=legacy["VersionId"])
    return {"blob": blob, "user": (user["AccessKeyId"], user["SecretAccessKey"]), "session": session}


def check(srv: Server, things: dict[str, object]) -> None:
    sm = client(srv, "secretsmanager")
    for i in range(4):
        assert sm.get_secret_value(SecretId=f"rekey/{i}")["SecretString"] == f"value {i}"
    assert sm.get_secret_value(SecretId="rekey/legacy")["SecretString"] == "legacy value"
    assert client(srv, "kms").decrypt(CiphertextBlob=things["blob"])["Plaintext"] == b"kms payload"
    reader = client(srv, "secretsmanager", keys=things["user"])  # type: ignore[arg-type]
    assert reader.get_secret_value(SecretId="rekey/0")["SecretString"] == "value 0"
    s = things["session"]
    role = client(srv, "secretsmanager", keys=(s["AccessKeyId"], s["SecretAccessKey"]),  # type: ignore[index]
                  token=s["SessionToken"])  # type: ignore[index]
    assert role.get_secret_value(SecretId="rekey/2")["SecretString"] == "value 2"


def test_killed_rekey_resumes_and_the_old_key_file_can_go(tmp_path: Path, backend: Backend):
    srv = start_server(tmp_path, backend=backend)
    data = srv.data_dir
    old_key = (data / "root.key").read_bytes()
    logs = []
    try:
        things = populate(srv)
        out = strongroom("rekey", "--batch-size", "1", "--pause", "0.5", "--no-wait", env=srv.env)
        assert "running" in out.stderr
        wait_for(lambda: (marker(srv) or {}).get("rewrapped", 0) >= 3, what="three values re-wrapped")
        check(srv, things)  # the server keeps serving mid-rekey, old and new values alike
        client(srv, "secretsmanager").create_secret(Name="rekey/during", SecretString="written mid-rekey")
    finally:
        srv.proc.kill()  # no goodbye: the rekey stops wherever it is
        srv.proc.wait()
        logs.append(srv.log_text())
    interrupted = marker(srv)
    assert interrupted is not None and interrupted["state"] == "running"
    assert interrupted["phase"] != "finish"
    # The next start loads both keys and finishes the job.
    srv = serve(tmp_path, database_url=srv.database_url)
    try:
        done = wait_for(lambda: (m := marker(srv)) and m["state"] == "done" and m, what="the rekey to finish")
        assert done["rewrapped"] > interrupted["rewrapped"] and done["new_key_id"] != done["old_key_id"]
        check(srv, things)
        status = strongroom("rekey", "--status", env=srv.env).stderr
        assert f"unsealed (root key {done['new_key_id']}" in status and "done" in status
    finally:
        srv.stop()
        logs.append(srv.log_text())
    config = tomllib.loads((data / "config.toml").read_text())["root_key"]
    assert config["source"] == "file" and config["path"] != "root.key"
    new_key = (data / config["path"]).read_bytes()
    (data / "root.key").unlink()  # the old key is retired: nothing needs it any more
    srv = serve(tmp_path, database_url=srv.database_url)
    try:
        check(srv, things)
        assert client(srv, "secretsmanager").get_secret_value(SecretId="rekey/during")["SecretString"] == \
            "written mid-rekey"
    finally:
        srv.stop()
        logs.append(srv.log_text())
    # Neither root key, nor any KMS key material, is in the database or the logs in plaintext.
    store = open_store(srv.database_url)
    try:
        with store.read() as tx:
            rows = tx.conn.execute(select(t.kms_key_materials)).all()
    finally:
        store.close()
    root = FileRootKey(new_key)
    materials = [root.unwrap(r.material_wrapped, material_purpose(r.key_id, r.version)) for r in rows]
    assert len(materials) >= 2
    assert_absent([old_key, new_key, *materials], srv.database_files(), logs)


def test_rekey_to_a_passphrase_and_then_within_it(tmp_path: Path, backend: Backend):
    srv = start_server(tmp_path, backend=backend)
    url = srv.database_url
    data = srv.data_dir
    pf = tmp_path / "passphrase"
    pf.write_text("the passphrase after the file\n")
    try:
        client(srv, "secretsmanager").create_secret(Name="moving", SecretString="from file to passphrase")
        out = strongroom("rekey", "--to", "passphrase", "--passphrase-file", str(pf), env=srv.env)
        assert "done" in out.stderr and "root.key is no longer used" in out.stderr
        # Still unsealed: the server made the vault itself and holds the new key.
        assert client(srv, "secretsmanager").get_secret_value(SecretId="moving")["SecretString"] == \
            "from file to passphrase"
    finally:
        srv.stop()
    config = tomllib.loads((data / "config.toml").read_text())["root_key"]
    assert config["source"] == "passphrase" and config["root_key_id"].startswith("passphrase:")
    (data / "root.key").unlink()
    srv = serve(tmp_path, database_url=url)
    try:
        assert "sealed" in strongroom("rekey", "--status", env=srv.env).stderr
        strongroom("unseal", "--passphrase-file", str(pf), env=srv.env)
        assert client(srv, "secretsmanager").get_secret_value(SecretId="moving")["SecretString"] == \
            "from file to passphrase"
        # A rekey within the passphrase source keeps the passphrase and replaces the root key.
        strongroom("rekey", env=srv.env)
    finally:
        srv.stop()
    vault = json.loads((data / "root-passphrase.json").read_text())
    new_id = tomllib.loads((data / "config.toml").read_text())["root_key"]["root_key_id"]
    assert list(vault["keys"]) == [new_id] and new_id != config["root_key_id"]
    srv = serve(tmp_path, database_url=url)
    try:
        strongroom("unseal", "--passphrase-file", str(pf), env=srv.env)
        assert client(srv, "secretsmanager").get_secret_value(SecretId="moving")["SecretString"] == \
            "from file to passphrase"
    finally:
        srv.stop()


def test_rekey_to_shares_prints_them_once(tmp_path: Path, backend: Backend):
    srv = start_server(tmp_path, backend=backend)
    url = srv.database_url
    try:
        client(srv, "secretsmanager").create_secret(Name="shared-later", SecretString="v")
        out = strongroom("rekey", "--to", "passphrase", "--shares", "3", "--threshold", "2", env=srv.env)
        shares = [line for line in out.stdout.splitlines() if SHARE.match(line)]
        assert len(shares) == 3
    finally:
        srv.stop()
    srv = serve(tmp_path, database_url=url)
    try:
        strongroom("unseal", env=srv.env, input="\n".join(shares[1:]))
        assert client(srv, "secretsmanager").get_secret_value(SecretId="shared-later")["SecretString"] == "v"
    finally:
        srv.stop()


def test_rekey_needs_a_running_server_or_offline(tmp_path: Path, backend: Backend):
    srv = start_server(tmp_path, backend=backend)
    url = srv.database_url
    client(srv, "secretsmanager").create_secret(Name="offline", SecretString="rekeyed with the server down")
    env = srv.env
    refused = strongroom("rekey", "--offline", env=env, check=False)
    assert refused.returncode == 1 and "rekey online" in refused.stderr
    srv.stop()
    absent = strongroom("rekey", env=env, check=False)
    assert absent.returncode == 1 and "no running strongroom server" in absent.stderr
    out = strongroom("rekey", "--offline", "--batch-size", "2", env=env)
    assert "done" in out.stderr
    srv = serve(tmp_path, database_url=url)
    try:
        assert client(srv, "secretsmanager").get_secret_value(SecretId="offline")["SecretString"] == \
            "rekeyed with the server down"
    finally:
        srv.stop()
