"""Online rekey, driven in-process: durable batches, resume after an interruption, nothing lost."""

from __future__ import annotations

import base64
import os
import json
import shutil
import stat
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from strongroom.auth.credentials import access_key_purpose, create_access_key, create_user, session_purpose
from strongroom.config import load_settings
from strongroom.crypto.keyring import RootKeyring
from strongroom.crypto.rootchain import RootKeyChain
from strongroom.crypto.rootkey import FileRootKey, RootKey, RootKeyError
from strongroom.crypto import passphrase
from strongroom.rootkeys import configfile, rekey, sources
from strongroom.rootkeys.manager import RekeyRefused, RootKeys, finish_handoff
from strongroom.rotation.functions import FunctionRecord, FunctionRegistry, function_arn
from strongroom.services.kms import KmsDeps
from strongroom.services.kms.materials import create_key, material_purpose
from strongroom.services.kms.policies import default_key_policy
from strongroom.services.secretsmanager.core import value_binding
from strongroom.storage import SecretRecord, Store, VersionRecord, iam_store, open_store
from strongroom.storage import rootkey_store as rk
from strongroom.storage import tables as t
from strongroom.storage.migrate import upgrade

ACCOUNT = "123456789012"


class Boom(Exception):
    pass


@pytest.fixture(autouse=True)
def no_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rekey, "GRACE", 0.0)


@pytest.fixture
def deployment(tmp_path: Path) -> Any:
    data = tmp_path / "data"
    data.mkdir()
    FileRootKey.create(data / "root.key")
    settings = load_settings(data)
    store = open_store(settings.database_url)
    upgrade(store)
    yield settings, store
    store.close()


def populate(store: Store, root: RootKey) -> dict[str, Any]:
    """Two of every kind of root-wrapped value; returns what each should unwrap to."""
    now = time.time()
    expected: dict[str, Any] = {"access": {}, "sessions": {}, "materials": [], "versions": {}}
    with store.write() as tx:
        tx.insert_account(ACCOUNT, "main", now)
        create_user(tx, ACCOUNT, "admin", now)
        for _ in range(2):
            key_id, secret = create_access_key(tx, root, ACCOUNT, "admin", now)
            expected["access"][key_id] = secret.encode()
        for i in range(2):
            key_id = f"ASIAEXAMPLE{i:09d}"
            iam_store.insert_session(tx.conn, iam_store.SessionRecord(
                key_id, ACCOUNT, root.wrap(f"session-{i}".encode(), session_purpose(key_id)), "h" * 64,
                now + 3600, "role", "AROAEXAMPLE", "s", f"arn:aws:iam::{ACCOUNT}:user/admin", now))
            expected["sessions"][key_id] = f"session-{i}".encode()
        deps = KmsDeps(store=store, root=root)
        for _ in range(2):
            create_key(deps, tx, ACCOUNT, "us-east-1", policy=default_key_policy(ACCOUNT))
        for i in range(2):
            secret = SecretRecord(ACCOUNT, "us-east-1", f"s{i}", f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:"
                                  f"secret:s{i}-abcdef", now, now)
            tx.insert_secret(secret)
            version = VersionRecord(secret.id, f"v{i}", 1, now, value_type="string")  # type: ignore[arg-type]
            key_id, sealed = RootKeyring(root).seal(f"legacy {i}".encode(), value_binding(secret, f"v{i}"), None)
            version.key_id, version.wrapped_key, version.ciphertext = key_id, sealed.wrapped_key, sealed.ciphertext
            tx.insert_version(version)
            expected["versions"][(secret.id, f"v{i}")] = f"legacy {i}".encode()
    registry = FunctionRegistry(store, root, Path("/nonexistent"))
    arn = function_arn("us-east-1", ACCOUNT, "rotator")
    registry.insert(FunctionRecord(ACCOUNT, "us-east-1", "rotator", arn, "python3.11", "lambda_function.handler",
                                   f"arn:aws:iam::{ACCOUNT}:role/r", environment={"DB_PASSWORD": "hunter2"},
                                   code=b"PK zip bytes"))
    expected["function"] = arn
    return expected


def check_all(store: Store, root: RootKey, expected: dict[str, Any]) -> None:
    """Every value opens with `root`, and secret versions name the key that wraps them."""
    fn = FunctionRegistry(store, root, Path("/nonexistent")).get(expected["function"], with_code=True)
    assert fn is not None and fn.code == b"PK zip bytes" and fn.environment == {"DB_PASSWORD": "hunter2"}
    with store.read() as tx:
        for key_id, secret in expected["access"].items():
            assert root.unwrap(tx.get_access_key(key_id).secret_wrapped, access_key_purpose(key_id)) == secret
        for key_id, secret in expected["sessions"].items():
            row = iam_store.get_session(tx.conn, key_id)
            assert root.unwrap(row.secret_wrapped, session_purpose(key_id)) == secret
        rows = tx.conn.execute(select(t.kms_key_materials)).all()
        assert len(rows) == 2
        for r in rows:
            assert len(root.unwrap(r.material_wrapped, material_purpose(r.key_id, r.version))) == 32
        for (secret_id, version_id), value in expected["versions"].items():
            secret = rk.secret_by_id(tx, secret_id)
            version = tx.version(secret_id, version_id)
            assert version.key_id == root.key_id
            from strongroom.crypto.envelope import Sealed
            assert RootKeyring(root).open(version.key_id, Sealed(version.wrapped_key, version.ciphertext),
                                          value_binding(secret, version_id)) == value


def test_interrupted_rekey_resumes_and_loses_nothing(deployment):
    settings, store = deployment
    keys = RootKeys(settings, store)
    keys.load()
    old = keys.chain.get(keys.chain.key_id)
    expected = populate(store, keys.chain)
    status = keys.start_rekey(None, launch=False)
    new_id = status["rekey"]["new_root_key_id"]
    assert new_id != old.key_id and keys.chain.key_id == new_id
    marker_id = status["rekey"]["id"]
    batches: list[rk.RekeyRecord] = []

    def interrupt(rec: rk.RekeyRecord) -> None:
        batches.append(rec)
        if len(batches) == 4:
            raise Boom("killed mid-rekey")

    with pytest.raises(Boom):
        rekey.run(store, keys.chain, marker_id, batch_size=1, on_batch=interrupt)
    with store.read() as tx:
        marker = rk.latest_rekey(tx)
    assert marker.state == "running" and marker.rewrapped == 3  # 2 access keys, then a sts session
    assert marker.phase == "sts_session_credentials" and marker.cursor is not None
    # A value written meanwhile is wrapped by the new key already.
    with store.write() as tx:
        late_id, late = create_access_key(tx, keys.chain, ACCOUNT, "admin", time.time())
    expected["access"][late_id] = late.encode()

    # "Restart": a new process loads both keys from config.toml and the marker, then resumes.
    restarted = RootKeys(load_settings(settings.data_dir), store)
    restarted.load()
    assert restarted.chain.key_id == new_id and set(restarted.chain.key_ids()) == {new_id, old.key_id}
    rec = rekey.run(store, restarted.chain, marker_id, batch_size=1)
    assert rec.phase == rekey.FINISH and rec.rewrapped == 10  # every old value exactly once
    notes = restarted.finish_rekey(rec)
    assert any("root.key" in n for n in notes)
    new_key = restarted.chain.get(new_id)
    assert restarted.chain.key_ids() == [new_id]
    check_all(store, new_key, expected)
    with pytest.raises(RootKeyError):
        check_all(store, old, expected)
    config = tomllib.loads(settings.config_path.read_text())["root_key"]
    assert config["source"] == "file" and config["path"].startswith("root-")
    # The old key file can go: a fresh start needs only the new one.
    (settings.data_dir / "root.key").unlink()
    again = RootKeys(load_settings(settings.data_dir), store)
    again.load()
    assert again.chain.key_ids() == [new_id]
    check_all(store, again.chain, expected)


def test_a_value_no_key_opens_stops_the_rekey_without_retiring(deployment):
    settings, store = deployment
    keys = RootKeys(settings, store)
    keys.load()
    populate(store, keys.chain)
    with store.write() as tx:
        tx.conn.execute(update(t.access_keys).values(secret_wrapped=b"\x00" * 60))
    marker_id = keys.start_rekey(None, launch=False)["rekey"]["id"]
    with pytest.raises(rekey.RekeyError, match="access_keys .* does not unwrap"):
        rekey.run(store, keys.chain, marker_id, batch_size=10)
    with store.read() as tx:
        assert rk.latest_rekey(tx).state == "running"
    assert len(keys.chain.key_ids()) == 2  # the old key is still held


def test_a_second_rekey_waits_for_the_first(deployment):
    settings, store = deployment
    keys = RootKeys(settings, store)
    keys.load()
    first = keys.start_rekey(None, launch=False)["rekey"]
    again = keys.start_rekey(None, launch=False)["rekey"]
    assert again["id"] == first["id"] and again["new_root_key_id"] == first["new_root_key_id"]
    from strongroom.rootkeys.manager import RekeyRefused
    with pytest.raises(RekeyRefused):
        keys.start_rekey({"source": "passphrase", "passphrase": "a new passphrase"}, launch=False)


def test_rekey_in_a_background_thread_finishes(deployment):
    settings, store = deployment
    keys = RootKeys(settings, store)
    keys.load()
    expected = populate(store, keys.chain)
    keys.start_rekey(None, batch_size=3)
    assert keys.job is not None
    keys.job.thread.join(timeout=30)
    status = keys.status()
    assert status["rekey"]["state"] == "done", status
    check_all(store, keys.chain.get(status["root_key_id"]), expected)
    chain = RootKeyChain([keys.chain.get(status["root_key_id"])])
    check_all(store, chain, expected)


# -- several nodes on one database: the new key reaches the others through the hand-off --------
def _node(settings: Any, name: str, files: tuple[str, ...] = ("root.key",)) -> Any:
    """Another node's data directory on the same database: a copy of the first one's key files."""
    data = settings.data_dir.parent / name
    data.mkdir()
    for f in files:
        shutil.copy2(settings.data_dir / f, data / f)
    if settings.config_path.exists():
        shutil.copy2(settings.config_path, data / "config.toml")
    return load_settings(data, settings.database_url)


def _handoffs(store: Store) -> list[Any]:
    with store.read() as tx:
        return list(tx.conn.execute(select(rk.root_key_handoffs)).all())


def test_other_nodes_follow_a_rekey_through_the_database(deployment):
    settings, store = deployment
    down = _node(settings, "down")  # stopped before the rekey; starts after it is done
    gone = _node(settings, "gone")  # starts only after `rekey --finish`
    a = RootKeys(settings, store)
    a.load()
    b = RootKeys(_node(settings, "b"), store)
    b.load()
    old_id = a.chain.key_id
    expected = populate(store, a.chain)
    status = a.start_rekey(None, launch=False)
    new_id = status["rekey"]["new_root_key_id"]
    [handoff] = _handoffs(store)
    assert (handoff.old_key_id, handoff.new_key_id) == (old_id, new_id)
    # config.toml names the new key only once the rekey is done; the file is made at once.
    assert not settings.config_path.exists()
    [new_file] = settings.data_dir.glob("root-*.key")
    new_name, new_raw = new_file.name, new_file.read_bytes()
    assert new_raw not in handoff.wrapped and base64.b64encode(new_raw) not in handoff.wrapped

    rec = rekey.run(store, a.chain, status["rekey"]["id"], batch_size=4)
    # Node b has not polled yet: the first value it meets under the new key makes it look, and
    # it takes the key from the hand-off, keeping it in its own data directory.
    with store.read() as tx:
        key_id = next(iter(expected["access"]))
        wrapped = tx.get_access_key(key_id).secret_wrapped
    assert b.chain.unwrap(wrapped, access_key_purpose(key_id)) == expected["access"][key_id]
    assert b.chain.key_id == new_id and old_id in b.chain.key_ids()
    b_file = b.data_dir / new_name
    assert b_file.read_bytes() == new_raw and stat.S_IMODE(b_file.stat().st_mode) == 0o600

    notes = a.finish_rekey(rec)
    assert any("rekey --finish" in n for n in notes)
    b.refresh()
    assert b.chain.key_ids() == [new_id]
    assert tomllib.loads(b.settings.config_path.read_text())["root_key"]["path"] == new_name
    (b.data_dir / "root.key").unlink()
    restarted = RootKeys(load_settings(b.data_dir, settings.database_url), store)
    restarted.load()
    check_all(store, restarted.chain, expected)

    # A node down for the whole rekey follows at its next start, from the copy in the database.
    late = RootKeys(down, store)
    late.load()
    assert late.chain.key_ids() == [new_id]
    assert tomllib.loads(down.config_path.read_text())["root_key"]["path"] == new_name
    check_all(store, late.chain, expected)

    # Every node followed: the copy wrapped by the retired key leaves the database.
    assert finish_handoff(store) == 1 and _handoffs(store) == []
    stranded = RootKeys(gone, store)
    with pytest.raises(RootKeyError, match="no longer holds a copy"):
        stranded.load()


def test_finish_is_refused_while_the_rekey_runs(deployment):
    settings, store = deployment
    keys = RootKeys(settings, store)
    keys.load()
    populate(store, keys.chain)
    status = keys.start_rekey(None, launch=False)
    with pytest.raises(RekeyRefused, match="still running"):
        finish_handoff(store)
    assert len(_handoffs(store)) == 1
    # A second rekey drops the first one's copy: it is wrapped by a key that rekey retires.
    keys.finish_rekey(rekey.run(store, keys.chain, status["rekey"]["id"], batch_size=50))
    keys.start_rekey(None, launch=False)
    assert [h.rekey_id for h in _handoffs(store)] == [status["rekey"]["id"] + 1]


def test_a_passphrase_node_adds_the_new_key_to_its_own_vault(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    created = sources.create({"source": "passphrase", "passphrase": "correct horse battery"}, data)
    configfile.write_root_key(data / "config.toml", created.spec)
    settings = load_settings(data)
    store = open_store(settings.database_url)
    upgrade(store)
    try:
        other = _node(settings, "other", files=(passphrase.VAULT_FILE,))
        a, b = RootKeys(settings, store), RootKeys(other, store)
        for node in (a, b):
            node.load()
            assert node.sealed
            node.unseal(passphrase_text="correct horse battery", resume=False)
        expected = populate(store, a.chain)
        status = a.start_rekey(None, launch=False)
        new_id = status["rekey"]["new_root_key_id"]
        b.refresh()
        assert b.chain.key_id == new_id
        assert new_id in json.loads((other.data_dir / passphrase.VAULT_FILE).read_text())["keys"]
        a.finish_rekey(rekey.run(store, a.chain, status["rekey"]["id"], batch_size=50))
        b.refresh()
        vault = json.loads((other.data_dir / passphrase.VAULT_FILE).read_text())
        assert list(vault["keys"]) == [new_id]  # the old key retired here too
        again = RootKeys(load_settings(other.data_dir, settings.database_url), store)
        again.load()
        again.unseal(passphrase_text="correct horse battery", resume=False)
        assert again.chain.key_ids() == [new_id]
        check_all(store, again.chain, expected)
    finally:
        store.close()


def test_a_node_follows_a_rekey_to_a_new_passphrase_vault(deployment):
    settings, store = deployment
    a = RootKeys(settings, store)
    a.load()
    b = RootKeys(_node(settings, "b"), store)
    b.load()
    expected = populate(store, a.chain)
    status = a.start_rekey({"source": "passphrase", "passphrase": "the new passphrase"}, launch=False)
    new_id = status["rekey"]["new_root_key_id"]
    b.refresh()  # no passphrase given to b: the key comes wrapped by the old file key
    assert b.chain.key_id == new_id and not b.sealed
    a.finish_rekey(rekey.run(store, a.chain, status["rekey"]["id"], batch_size=50))
    b.refresh()
    config = tomllib.loads(b.settings.config_path.read_text())["root_key"]
    assert config == {"source": "passphrase", "root_key_id": new_id}
    assert (b.data_dir / passphrase.VAULT_FILE).read_bytes() == (settings.data_dir / passphrase.VAULT_FILE).read_bytes()
    again = RootKeys(load_settings(b.data_dir, settings.database_url), store)
    again.load()
    assert again.sealed  # from now on b starts sealed, like a
    again.unseal(passphrase_text="the new passphrase", resume=False)
    check_all(store, again.chain, expected)


class FakeKms:
    """Stands in for the external KMS: data keys it made, and how often each node asked to Decrypt."""

    def __init__(self) -> None:
        self.keys: dict[bytes, bytes] = {}
        self.decrypts = 0

    def generate_data_key(self, KeyId: str, KeySpec: str, EncryptionContext: dict[str, str]) -> dict[str, Any]:
        plaintext = os.urandom(32)
        blob = os.urandom(48)
        self.keys[blob] = plaintext
        return {"KeyId": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/ext", "Plaintext": plaintext, "CiphertextBlob": blob}

    def decrypt(self, CiphertextBlob: bytes, EncryptionContext: dict[str, str], KeyId: str) -> dict[str, Any]:
        self.decrypts += 1
        return {"Plaintext": self.keys[CiphertextBlob]}


def test_a_node_follows_a_rekey_to_an_external_kms_by_decrypting_itself(deployment, monkeypatch):
    from strongroom.crypto import kmskey

    fake = FakeKms()
    monkeypatch.setattr(kmskey.KmsConfig, "client", lambda self: fake)
    settings, store = deployment
    a = RootKeys(settings, store)
    a.load()
    b = RootKeys(_node(settings, "b"), store)
    b.load()
    expected = populate(store, a.chain)
    status = a.start_rekey({"source": "kms", "key_id": "alias/root", "endpoint_url": "http://127.0.0.1:1"},
                           launch=False)
    [handoff] = _handoffs(store)
    raw = next(iter(fake.keys.values()))
    assert raw not in handoff.wrapped
    b.refresh()  # b writes the blob into its own directory and asks the external KMS itself
    assert b.chain.key_id == status["rekey"]["new_root_key_id"] and fake.decrypts == 1
    [blob_file] = b.data_dir.glob("root-kms-*.json")
    assert json.loads(blob_file.read_text())["ciphertext"] and stat.S_IMODE(blob_file.stat().st_mode) == 0o600
    a.finish_rekey(rekey.run(store, a.chain, status["rekey"]["id"], batch_size=50))
    b.refresh()
    again = RootKeys(load_settings(b.data_dir, settings.database_url), store)
    again.load()
    check_all(store, again.chain, expected)
