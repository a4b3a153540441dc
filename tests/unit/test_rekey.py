"""Online rekey, driven in-process: durable batches, resume after an interruption, nothing lost."""

from __future__ import annotations

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
from strongroom.rootkeys import rekey
from strongroom.rootkeys.manager import RootKeys
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
