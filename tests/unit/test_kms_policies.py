"""Key policies: AWS's defaults, the checks on documents callers send, the getter for the engine."""

from __future__ import annotations

import json

import pytest

from strongroom.crypto.rootkey import FileRootKey
from strongroom.errors import MalformedPolicyDocumentException
from strongroom.services.kms import KmsDeps
from strongroom.services.kms.materials import create_key, ensure_managed_key
from strongroom.services.kms.policies import (
    LOCKOUT,
    check_policy,
    default_key_policy,
    key_policy_document,
    managed_key_policy,
)
from strongroom.storage import open_store
from strongroom.storage.migrate import upgrade

ACCOUNT = "111122223333"
CALLER = f"arn:aws:iam::{ACCOUNT}:user/alice"


def policy(*statements: dict) -> str:  # type: ignore[type-arg]
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(principal: object, action: object) -> dict:  # type: ignore[type-arg]
    return {"Effect": "Allow", "Principal": principal, "Action": action, "Resource": "*"}


def test_default_policy_gives_the_account_root_every_kms_action():
    doc = json.loads(default_key_policy(ACCOUNT))
    assert doc["Statement"] == [{"Sid": "Enable IAM User Permissions", "Effect": "Allow",
                                 "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                                 "Action": "kms:*", "Resource": "*"}]


def test_managed_policy_allows_cryptography_only_via_the_service():
    doc = json.loads(managed_key_policy(ACCOUNT, "eu-west-1"))
    crypto = [s for s in doc["Statement"] if s["Principal"] == {"AWS": "*"}]
    assert crypto and all("secretsmanager.eu-west-1.amazonaws.com" in json.dumps(s["Condition"]) for s in crypto)
    check_policy(json.dumps(doc), account_id=ACCOUNT, caller_arn=CALLER, bypass_lockout=True)


@pytest.mark.parametrize("principal, action", [
    ({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "kms:*"),
    ({"AWS": ACCOUNT}, ["kms:Encrypt", "kms:PutKeyPolicy"]),
    ({"AWS": [CALLER]}, "kms:Put*"),
    ("*", "*"),
])
def test_policies_that_keep_the_policy_changeable_pass(principal, action):
    check_policy(policy(allow(principal, action)), account_id=ACCOUNT, caller_arn=CALLER, bypass_lockout=False)


@pytest.mark.parametrize("principal, action", [
    ({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "kms:Encrypt"),
    ({"AWS": "arn:aws:iam::999999999999:root"}, "kms:*"),
    ({"AWS": f"arn:aws:iam::{ACCOUNT}:user/bob"}, "kms:PutKeyPolicy"),
])
def test_lockout_is_refused_unless_bypassed(principal, action):
    text = policy(allow(principal, action))
    with pytest.raises(MalformedPolicyDocumentException) as exc:
        check_policy(text, account_id=ACCOUNT, caller_arn=CALLER, bypass_lockout=False)
    assert exc.value.message == LOCKOUT
    check_policy(text, account_id=ACCOUNT, caller_arn=CALLER, bypass_lockout=True)


@pytest.mark.parametrize("text", ["{", "[]", '{"Statement": []}', policy({"Effect": "Maybe", "Action": "kms:*"})])
def test_malformed_documents_are_refused(text):
    with pytest.raises(MalformedPolicyDocumentException):
        check_policy(text, account_id=ACCOUNT, caller_arn=CALLER, bypass_lockout=True)


def test_key_policy_document_by_id_and_arn(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(store)
    deps = KmsDeps(store=store, root=FileRootKey(bytes(32)))
    try:
        with store.write() as tx:
            key = create_key(deps, tx, ACCOUNT, "us-east-1", policy=default_key_policy(ACCOUNT))
            managed = ensure_managed_key(deps, tx, ACCOUNT, "us-east-1")
            assert ensure_managed_key(deps, tx, ACCOUNT, "us-east-1").key_id == managed.key_id
        assert key_policy_document(store, key.key_id) == default_key_policy(ACCOUNT)
        assert key_policy_document(store, key.arn) == default_key_policy(ACCOUNT)
        assert key_policy_document(store, managed.arn) == managed_key_policy(ACCOUNT, "us-east-1")
        assert key_policy_document(store, key.arn.replace("us-east-1", "us-west-2")) is None
        assert key_policy_document(store, "00000000-0000-0000-0000-000000000000") is None
    finally:
        store.close()
