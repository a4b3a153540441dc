"""KMS (TrentService) through a real server and the real boto3 kms client and `aws kms` CLI."""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import Backend, Server, start_server

DAY = 86400.0


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def fails(expected: str, call, /, **kw):  # type: ignore[no-untyped-def]
    """Call and assert the AWS error code; returns the error message."""
    with pytest.raises(ClientError) as exc:
        call(**kw)
    assert code(exc) == expected, exc.value.response["Error"]
    return exc.value.response["Error"].get("Message", "")


def other_account_client(server: Server, service: str = "kms"):  # type: ignore[no-untyped-def]
    """A client signed by a user of a second account, made directly in the server's database."""
    from strongroom.auth.credentials import create_access_key, create_user, new_account_id
    from strongroom.crypto.rootkey import FileRootKey
    from strongroom.storage import iam_store, open_store

    root = FileRootKey.load(server.data_dir / "root.key")
    store = open_store(server.database_url)
    try:
        with store.write() as tx:
            account, now = new_account_id(), time.time()
            tx.insert_account(account, "other", now)
            create_user(tx, account, "bob", now)
            # Bob administers his own account: what stops him at our keys is their key policies.
            iam_store.put_inline_policy(tx.conn, "user", account, "bob", "AdministratorAccess", json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
            key_id, secret = create_access_key(tx, root, account, "bob", now)
    finally:
        store.close()
    return boto3.client(service, endpoint_url=server.url, region_name="us-east-1",
                        aws_access_key_id=key_id, aws_secret_access_key=secret)


@pytest.fixture
def kms(server: Server):  # type: ignore[no-untyped-def]
    return server.client("kms")


@pytest.fixture
def raw_kms(server: Server):  # type: ignore[no-untyped-def]
    """A client that sends what it is given, so the server's own validation answers."""
    return server.client("kms", config=Config(parameter_validation=False))


@pytest.fixture
def key(kms) -> dict:  # type: ignore[no-untyped-def,type-arg]
    return kms.create_key(Description="test key")["KeyMetadata"]


def alias_name() -> str:
    return f"alias/test-{uuid.uuid4().hex[:10]}"


# -- keys ------------------------------------------------------------------------
def test_create_key_returns_symmetric_customer_key_metadata(kms, server):
    meta = kms.create_key(Description="orders", Tags=[{"TagKey": "team", "TagValue": "db"}])["KeyMetadata"]
    uuid.UUID(meta["KeyId"])
    assert meta["Arn"] == f"arn:aws:kms:us-east-1:{meta['AWSAccountId']}:key/{meta['KeyId']}"
    assert meta["KeyState"] == "Enabled" and meta["Enabled"] is True
    assert (meta["KeyUsage"], meta["KeySpec"], meta["CustomerMasterKeySpec"]) == (
        "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", "SYMMETRIC_DEFAULT")
    assert (meta["KeyManager"], meta["Origin"], meta["EncryptionAlgorithms"]) == (
        "CUSTOMER", "AWS_KMS", ["SYMMETRIC_DEFAULT"])
    assert meta["Description"] == "orders" and len(meta["CurrentKeyMaterialId"]) == 64
    assert abs(meta["CreationDate"] - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=1)
    assert kms.list_resource_tags(KeyId=meta["KeyId"])["Tags"] == [{"TagKey": "team", "TagValue": "db"}]


@pytest.mark.parametrize("kw, expected", [
    ({"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"}, "UnsupportedOperationException"),
    ({"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}, "UnsupportedOperationException"),
    ({"KeyUsage": "SIGN_VERIFY"}, "ValidationException"),
    ({"KeySpec": "SYMMETRIC_DEFAULT", "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT"}, "ValidationException"),
    ({"Origin": "EXTERNAL"}, "UnsupportedOperationException"),
    ({"MultiRegion": True}, "UnsupportedOperationException"),
    ({"Tags": [{"TagKey": "aws:reserved", "TagValue": "x"}]}, "TagException"),
    ({"Policy": "not json"}, "MalformedPolicyDocumentException"),
    ({"KeySpec": "NOT_A_SPEC"}, "ValidationException"),
])
def test_create_key_refuses_what_it_cannot_make(raw_kms, kw, expected):
    fails(expected, raw_kms.create_key, **kw)


def test_describe_key_by_id_arn_alias_and_alias_arn(kms, key):
    name = alias_name()
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    alias_arn = key["Arn"].split(":key/")[0] + ":" + name
    for ref in (key["KeyId"], key["Arn"], name, alias_arn):
        assert kms.describe_key(KeyId=ref)["KeyMetadata"]["KeyId"] == key["KeyId"]


@pytest.mark.parametrize("ref, expected", [
    ("00000000-0000-0000-0000-000000000000", "NotFoundException"),
    ("not-a-key", "NotFoundException"),
    ("alias/does-not-exist", "NotFoundException"),
    ("arn:aws:kms:us-east-1:123:nonsense", "InvalidArnException"),
])
def test_describe_key_unknown(kms, key, ref, expected):
    message = fails(expected, kms.describe_key, KeyId=ref)
    if ref.startswith("0000"):
        assert message == f"Key 'arn:aws:kms:us-east-1:{key['AWSAccountId']}:key/{ref}' does not exist"


def test_key_of_another_region_does_not_exist_here(kms, key, server):
    west = server.session().client("kms", endpoint_url=server.url, region_name="us-west-2")
    fails("NotFoundException", west.describe_key, KeyId=key["KeyId"])
    fails("NotFoundException", west.describe_key, KeyId=key["Arn"])


def test_list_keys_pages_with_limit_and_marker(kms):
    created = {kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(3)}
    seen, marker = [], None
    while True:
        kw = {"Limit": 2, **({"Marker": marker} if marker else {})}
        out = kms.list_keys(**kw)
        assert len(out["Keys"]) <= 2
        seen += [k["KeyId"] for k in out["Keys"]]
        assert all(k["KeyArn"].endswith(k["KeyId"]) for k in out["Keys"])
        if not out["Truncated"]:
            assert "NextMarker" not in out
            break
        marker = out["NextMarker"]
    assert created <= set(seen) and len(seen) == len(set(seen))
    paginated = [k["KeyId"] for page in kms.get_paginator("list_keys").paginate() for k in page["Keys"]]
    assert sorted(paginated) == sorted(seen)
    fails("InvalidMarkerException", kms.list_keys, Marker="bogus")


def test_update_key_description(kms, key):
    kms.update_key_description(KeyId=key["KeyId"], Description="new words")
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["Description"] == "new words"


def test_disable_and_enable_key(kms, key):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"before")["CiphertextBlob"]
    kms.disable_key(KeyId=key["KeyId"])
    meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert (meta["KeyState"], meta["Enabled"]) == ("Disabled", False)
    assert fails("DisabledException", kms.decrypt, CiphertextBlob=blob) == f"{key['Arn']} is disabled."
    kms.enable_key(KeyId=key["KeyId"])
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before"


def test_disabled_key_state_errors(kms, key):
    kid = key["KeyId"]
    blob = kms.encrypt(KeyId=kid, Plaintext=b"x")["CiphertextBlob"]
    kms.disable_key(KeyId=kid)
    for call, kw in [
        (kms.encrypt, {"KeyId": kid, "Plaintext": b"x"}),
        (kms.decrypt, {"CiphertextBlob": blob}),
        (kms.re_encrypt, {"CiphertextBlob": blob, "DestinationKeyId": kid}),
        (kms.generate_data_key, {"KeyId": kid, "KeySpec": "AES_256"}),
        (kms.generate_data_key_without_plaintext, {"KeyId": kid, "NumberOfBytes": 16}),
        (kms.enable_key_rotation, {"KeyId": kid}),
        (kms.disable_key_rotation, {"KeyId": kid}),
        (kms.rotate_key_on_demand, {"KeyId": kid}),
    ]:
        fails("DisabledException", call, **kw)
    # Management and metadata still work on a disabled key.
    kms.tag_resource(KeyId=kid, Tags=[{"TagKey": "k", "TagValue": "v"}])
    assert kms.get_key_rotation_status(KeyId=kid)["KeyRotationEnabled"] is False
    kms.disable_key(KeyId=kid)  # disabling twice is not an error


def test_schedule_and_cancel_key_deletion(kms, key):
    out = kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert out["KeyId"] == key["Arn"] and out["KeyState"] == "PendingDeletion" and out["PendingWindowInDays"] == 7
    window = out["DeletionDate"] - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(days=6, hours=23) < window <= dt.timedelta(days=7)
    meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert meta["KeyState"] == "PendingDeletion" and meta["Enabled"] is False and "DeletionDate" in meta
    assert kms.cancel_key_deletion(KeyId=key["KeyId"])["KeyId"] == key["Arn"]
    meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert meta["KeyState"] == "Disabled" and "DeletionDate" not in meta
    fails("KMSInvalidStateException", kms.cancel_key_deletion, KeyId=key["KeyId"])


def test_schedule_key_deletion_default_window_is_30_days(kms, key):
    out = kms.schedule_key_deletion(KeyId=key["KeyId"])
    assert out["PendingWindowInDays"] == 30


@pytest.mark.parametrize("days", [6, 31])
def test_pending_window_must_be_7_to_30_days(kms, raw_kms, key, days):
    fails("ValidationException", raw_kms.schedule_key_deletion, KeyId=key["KeyId"], PendingWindowInDays=days)
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"


def test_pending_deletion_key_state_errors(kms, key):
    kid = key["KeyId"]
    blob = kms.encrypt(KeyId=kid, Plaintext=b"x")["CiphertextBlob"]
    kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)
    pending = f"{key['Arn']} is pending deletion."
    for call, kw in [
        (kms.encrypt, {"KeyId": kid, "Plaintext": b"x"}),
        (kms.decrypt, {"CiphertextBlob": blob}),
        (kms.generate_data_key, {"KeyId": kid, "NumberOfBytes": 32}),
        (kms.enable_key, {"KeyId": kid}),
        (kms.disable_key, {"KeyId": kid}),
        (kms.schedule_key_deletion, {"KeyId": kid}),
        (kms.enable_key_rotation, {"KeyId": kid}),
        (kms.get_key_rotation_status, {"KeyId": kid}),
        (kms.list_key_rotations, {"KeyId": kid}),
        (kms.rotate_key_on_demand, {"KeyId": kid}),
        (kms.tag_resource, {"KeyId": kid, "Tags": [{"TagKey": "a", "TagValue": "b"}]}),
        (kms.untag_resource, {"KeyId": kid, "TagKeys": ["a"]}),
        (kms.update_key_description, {"KeyId": kid, "Description": "x"}),
        (kms.create_alias, {"AliasName": alias_name(), "TargetKeyId": kid}),
    ]:
        assert fails("KMSInvalidStateException", call, **kw) in (pending, "")
    # Metadata, the policy and the tags stay readable while the key waits.
    kms.describe_key(KeyId=kid)
    kms.get_key_policy(KeyId=kid, PolicyName="default")
    kms.list_resource_tags(KeyId=kid)


def test_cross_account_key_use_is_denied(server, key):
    other = other_account_client(server)
    for call, kw in [
        (other.describe_key, {"KeyId": key["Arn"]}),
        (other.encrypt, {"KeyId": key["Arn"], "Plaintext": b"x"}),
        (other.disable_key, {"KeyId": key["Arn"]}),
    ]:
        fails("AccessDeniedException", call, **kw)
    blob = server.client("kms").encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    fails("AccessDeniedException", other.decrypt, CiphertextBlob=blob)
    # A bare key id names a key in the caller's own account: there is none.
    fails("NotFoundException", other.describe_key, KeyId=key["KeyId"])


# -- aliases ---------------------------------------------------------------------
def test_alias_lifecycle(kms, key):
    name, other = alias_name(), kms.create_key()["KeyMetadata"]
    kms.create_alias(AliasName=name, TargetKeyId=key["Arn"])
    fails("AlreadyExistsException", kms.create_alias, AliasName=name, TargetKeyId=key["KeyId"])
    listed = kms.list_aliases(KeyId=key["KeyId"])["Aliases"]
    assert [a["AliasName"] for a in listed] == [name]
    assert listed[0]["TargetKeyId"] == key["KeyId"]
    assert listed[0]["AliasArn"] == key["Arn"].split(":key/")[0] + ":" + name
    kms.update_alias(AliasName=name, TargetKeyId=other["KeyId"])
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == other["KeyId"]
    assert kms.list_aliases(KeyId=key["KeyId"])["Aliases"] == []
    kms.delete_alias(AliasName=name)
    fails("NotFoundException", kms.describe_key, KeyId=name)
    fails("NotFoundException", kms.delete_alias, AliasName=name)
    fails("NotFoundException", kms.update_alias, AliasName=name, TargetKeyId=key["KeyId"])


@pytest.mark.parametrize("name, expected", [
    ("no-prefix", "ValidationException"),
    ("alias/aws/mine", "NotAuthorizedException"),
    ("alias/aws/secretsmanager", "NotAuthorizedException"),
    ("alias/", "InvalidAliasNameException"),
    ("alias/has:colon", "InvalidAliasNameException"),
    ("alias/bad chars!", "ValidationException"),
])
def test_alias_name_rules(raw_kms, key, name, expected):
    fails(expected, raw_kms.create_alias, AliasName=name, TargetKeyId=key["KeyId"])


def test_alias_must_target_an_existing_key_not_an_alias(kms, key):
    name = alias_name()
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    fails("ValidationException", kms.create_alias, AliasName=alias_name(), TargetKeyId=name)
    fails("NotFoundException", kms.create_alias, AliasName=alias_name(),
          TargetKeyId="00000000-0000-0000-0000-000000000000")


def test_reserved_aliases_cannot_be_moved_or_deleted(kms, key):
    fails("NotAuthorizedException", kms.update_alias, AliasName="alias/aws/secretsmanager", TargetKeyId=key["KeyId"])
    fails("NotAuthorizedException", kms.delete_alias, AliasName="alias/aws/secretsmanager")


def test_list_aliases_pages_and_includes_predefined(kms, key):
    names = sorted(alias_name() for _ in range(3))
    for n in names:
        kms.create_alias(AliasName=n, TargetKeyId=key["KeyId"])
    every = [a["AliasName"] for page in kms.get_paginator("list_aliases").paginate(PaginationConfig={"PageSize": 2})
             for a in page["Aliases"]]
    assert set(names) <= set(every) and "alias/aws/secretsmanager" in every
    assert len(every) == len(set(every))


def test_deleting_a_key_deletes_nothing_else(kms, key):
    name = alias_name()
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    kms.schedule_key_deletion(KeyId=key["KeyId"])
    # Aliases keep pointing at a key pending deletion (they go with the key when it is deleted).
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyState"] == "PendingDeletion"


# -- cryptography ----------------------------------------------------------------
def test_encrypt_decrypt_round_trip(kms, key):
    out = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"attack at dawn")
    assert out["KeyId"] == key["Arn"] and out["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    assert b"attack at dawn" not in out["CiphertextBlob"]
    back = kms.decrypt(CiphertextBlob=out["CiphertextBlob"])
    assert back["Plaintext"] == b"attack at dawn" and back["KeyId"] == key["Arn"]
    assert back["KeyMaterialId"] == key["CurrentKeyMaterialId"]
    # Naming the right key is allowed, by any of its names.
    assert kms.decrypt(CiphertextBlob=out["CiphertextBlob"], KeyId=key["Arn"])["Plaintext"] == b"attack at dawn"


def test_encrypt_through_alias(kms, key):
    name = alias_name()
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    blob = kms.encrypt(KeyId=name, Plaintext=b"via alias")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["KeyId"] == key["Arn"]


def test_encryption_context_must_match(kms, key):
    ctx = {"SecretARN": "arn:x", "purpose": "test"}
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"bound", EncryptionContext=ctx)["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=dict(reversed(ctx.items())))["Plaintext"] == b"bound"
    for wrong in ({}, {"SecretARN": "arn:x"}, {**ctx, "purpose": "other"}):
        fails("InvalidCiphertextException", kms.decrypt, CiphertextBlob=blob, EncryptionContext=wrong)
    fails("InvalidCiphertextException", kms.decrypt, CiphertextBlob=blob)


def test_tampered_or_foreign_ciphertext_is_invalid(kms, key):
    blob = bytearray(kms.encrypt(KeyId=key["KeyId"], Plaintext=b"data")["CiphertextBlob"])
    blob[-1] ^= 1
    fails("InvalidCiphertextException", kms.decrypt, CiphertextBlob=bytes(blob))
    fails("InvalidCiphertextException", kms.decrypt, CiphertextBlob=b"not a ciphertext blob at all, no....")


def test_decrypt_with_the_wrong_key_id_is_incorrect_key(kms, key):
    other = kms.create_key()["KeyMetadata"]
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"data")["CiphertextBlob"]
    fails("IncorrectKeyException", kms.decrypt, CiphertextBlob=blob, KeyId=other["KeyId"])
    fails("IncorrectKeyException", kms.re_encrypt, CiphertextBlob=blob, SourceKeyId=other["KeyId"],
          DestinationKeyId=other["KeyId"])


def test_non_symmetric_algorithms_are_invalid_key_usage(kms, key):
    fails("InvalidKeyUsageException", kms.encrypt, KeyId=key["KeyId"], Plaintext=b"x",
          EncryptionAlgorithm="RSAES_OAEP_SHA_256")


def test_re_encrypt_moves_ciphertext_to_another_key_and_context(kms, key):
    dest = kms.create_key()["KeyMetadata"]
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"move me", EncryptionContext={"a": "1"})["CiphertextBlob"]
    out = kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext={"a": "1"}, DestinationKeyId=dest["Arn"],
                         DestinationEncryptionContext={"b": "2"})
    assert (out["SourceKeyId"], out["KeyId"]) == (key["Arn"], dest["Arn"])
    assert kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext={"b": "2"})["Plaintext"] == b"move me"
    fails("InvalidCiphertextException", kms.re_encrypt, CiphertextBlob=blob, DestinationKeyId=dest["KeyId"])


def test_generate_data_key_by_spec_and_size(kms, key):
    out = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256", EncryptionContext={"k": "v"})
    assert len(out["Plaintext"]) == 32 and out["KeyId"] == key["Arn"]
    back = kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext={"k": "v"})
    assert back["Plaintext"] == out["Plaintext"]
    assert len(kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_128")["Plaintext"]) == 16
    assert len(kms.generate_data_key(KeyId=key["KeyId"], NumberOfBytes=64)["Plaintext"]) == 64
    bare = kms.generate_data_key_without_plaintext(KeyId=key["KeyId"], NumberOfBytes=24)
    assert "Plaintext" not in bare and len(kms.decrypt(CiphertextBlob=bare["CiphertextBlob"])["Plaintext"]) == 24


@pytest.mark.parametrize("kw", [{}, {"KeySpec": "AES_256", "NumberOfBytes": 32}, {"NumberOfBytes": 0},
                                {"NumberOfBytes": 1025}])
def test_generate_data_key_needs_exactly_one_valid_size(raw_kms, key, kw):
    fails("ValidationException", raw_kms.generate_data_key, KeyId=key["KeyId"], **kw)


def test_generate_random(kms, raw_kms):
    a, b = (kms.generate_random(NumberOfBytes=32)["Plaintext"] for _ in range(2))
    assert len(a) == 32 and a != b
    fails("ValidationException", raw_kms.generate_random, NumberOfBytes=1025)
    fails("ValidationException", raw_kms.generate_random)


def test_dry_run_reports_success_without_acting(kms, key):
    fails("DryRunOperationException", kms.encrypt, KeyId=key["KeyId"], Plaintext=b"x", DryRun=True)


def test_plaintext_limit_is_4096_bytes(kms, raw_kms, key):
    kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x" * 4096)
    fails("ValidationException", raw_kms.encrypt, KeyId=key["KeyId"], Plaintext=b"x" * 4097)


def test_unknown_key_for_crypto(kms):
    fails("NotFoundException", kms.encrypt, KeyId="alias/nope", Plaintext=b"x")
    fails("NotFoundException", kms.generate_data_key, KeyId=str(uuid.uuid4()), KeySpec="AES_256")


# -- rotation --------------------------------------------------------------------
def test_rotation_status_enable_disable(kms, key):
    kid = key["KeyId"]
    status = kms.get_key_rotation_status(KeyId=kid)
    assert status["KeyRotationEnabled"] is False and status["KeyId"] == kid
    kms.enable_key_rotation(KeyId=kid, RotationPeriodInDays=90)
    status = kms.get_key_rotation_status(KeyId=kid)
    assert status["KeyRotationEnabled"] is True and status["RotationPeriodInDays"] == 90
    due = status["NextRotationDate"] - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(days=89, hours=23) < due <= dt.timedelta(days=90)
    kms.enable_key_rotation(KeyId=kid)
    assert kms.get_key_rotation_status(KeyId=kid)["RotationPeriodInDays"] == 365
    kms.disable_key_rotation(KeyId=kid)
    status = kms.get_key_rotation_status(KeyId=kid)
    assert status["KeyRotationEnabled"] is False and "NextRotationDate" not in status


@pytest.mark.parametrize("days", [89, 2561])
def test_rotation_period_bounds(raw_kms, key, days):
    fails("ValidationException", raw_kms.enable_key_rotation, KeyId=key["KeyId"], RotationPeriodInDays=days)


def test_rotation_operations_refuse_aliases(kms, key):
    name = alias_name()
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    fails("NotFoundException", kms.enable_key_rotation, KeyId=name)
    fails("InvalidArnException", kms.enable_key_rotation, KeyId=key["Arn"].split(":key/")[0] + ":" + name)


def test_rotate_on_demand_keeps_old_ciphertexts_decryptable(kms, key):
    kid = key["KeyId"]
    old = kms.encrypt(KeyId=kid, Plaintext=b"old", EncryptionContext={"c": "1"})["CiphertextBlob"]
    assert kms.rotate_key_on_demand(KeyId=kid)["KeyId"] == kid
    meta = kms.describe_key(KeyId=kid)["KeyMetadata"]
    assert meta["CurrentKeyMaterialId"] != key["CurrentKeyMaterialId"]
    new = kms.encrypt(KeyId=kid, Plaintext=b"new")["CiphertextBlob"]
    assert old[17:21] != new[17:21]  # the header names a newer material version
    assert kms.decrypt(CiphertextBlob=old, EncryptionContext={"c": "1"})["Plaintext"] == b"old"
    assert kms.decrypt(CiphertextBlob=old, EncryptionContext={"c": "1"})["KeyMaterialId"] == key["CurrentKeyMaterialId"]
    assert kms.decrypt(CiphertextBlob=new)["KeyMaterialId"] == meta["CurrentKeyMaterialId"]
    rotations = kms.list_key_rotations(KeyId=kid)["Rotations"]
    assert [(r["RotationType"], r["KeyMaterialState"]) for r in rotations] == [("ON_DEMAND", "CURRENT")]
    every = kms.list_key_rotations(KeyId=kid, IncludeKeyMaterial="ALL_KEY_MATERIAL")["Rotations"]
    assert [r["KeyMaterialState"] for r in every] == ["NON_CURRENT", "CURRENT"]
    re = kms.re_encrypt(CiphertextBlob=old, SourceEncryptionContext={"c": "1"}, DestinationKeyId=kid)
    assert re["SourceKeyMaterialId"] == key["CurrentKeyMaterialId"]
    assert re["DestinationKeyMaterialId"] == meta["CurrentKeyMaterialId"]


def test_list_key_rotations_pages(kms, key):
    for _ in range(3):
        kms.rotate_key_on_demand(KeyId=key["KeyId"])
    first = kms.list_key_rotations(KeyId=key["KeyId"], Limit=2)
    assert len(first["Rotations"]) == 2 and first["Truncated"]
    rest = kms.list_key_rotations(KeyId=key["KeyId"], Limit=2, Marker=first["NextMarker"])
    assert len(rest["Rotations"]) == 1 and not rest["Truncated"]


# -- tags and policies -----------------------------------------------------------
def test_tags(kms, key):
    kid = key["KeyId"]
    kms.tag_resource(KeyId=kid, Tags=[{"TagKey": "a", "TagValue": "1"}, {"TagKey": "b", "TagValue": "2"}])
    kms.tag_resource(KeyId=kid, Tags=[{"TagKey": "a", "TagValue": "3"}])
    assert kms.list_resource_tags(KeyId=kid)["Tags"] == [{"TagKey": "a", "TagValue": "3"},
                                                         {"TagKey": "b", "TagValue": "2"}]
    kms.untag_resource(KeyId=kid, TagKeys=["a", "missing"])
    assert kms.list_resource_tags(KeyId=kid)["Tags"] == [{"TagKey": "b", "TagValue": "2"}]
    fails("TagException", kms.tag_resource, KeyId=kid, Tags=[{"TagKey": "aws:x", "TagValue": "1"}])
    fails("LimitExceededException", kms.tag_resource, KeyId=kid,
          Tags=[{"TagKey": f"t{i}", "TagValue": ""} for i in range(50)])
    fails("NotFoundException", kms.list_resource_tags, KeyId=str(uuid.uuid4()))


def test_default_key_policy_allows_the_account_everything(kms, key):
    assert kms.list_key_policies(KeyId=key["KeyId"])["PolicyNames"] == ["default"]
    policy = json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
    [statement] = policy["Statement"]
    assert statement["Principal"] == {"AWS": f"arn:aws:iam::{key['AWSAccountId']}:root"}
    assert (statement["Effect"], statement["Action"], statement["Resource"]) == ("Allow", "kms:*", "*")
    fails("NotFoundException", kms.get_key_policy, KeyId=key["KeyId"], PolicyName="other")


def test_put_key_policy(kms, key):
    account = key["AWSAccountId"]
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "admins", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
         "Action": ["kms:Put*", "kms:Get*", "kms:Describe*", "kms:Encrypt"], "Resource": "*"}]})
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=policy)
    assert kms.get_key_policy(KeyId=key["KeyId"])["Policy"] == policy
    lockout = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "kms:Encrypt",
         "Resource": "*"}]})
    fails("MalformedPolicyDocumentException", kms.put_key_policy, KeyId=key["KeyId"], Policy=lockout)
    fails("MalformedPolicyDocumentException", kms.put_key_policy, KeyId=key["KeyId"], Policy='{"Statement": []}')
    kms.put_key_policy(KeyId=key["KeyId"], Policy=lockout, BypassPolicyLockoutSafetyCheck=True)
    # The key policy is enforced: the account locked itself out of every operation but Encrypt.
    fails("AccessDeniedException", kms.put_key_policy, KeyId=key["KeyId"], Policy=policy)
    fails("AccessDeniedException", kms.get_key_policy, KeyId=key["KeyId"])
    kms.encrypt(KeyId=key["KeyId"], Plaintext=b"still allowed")


def test_unimplemented_operations_are_unsupported_not_unknown(kms, key):
    fails("UnsupportedOperationException", kms.sign, KeyId=key["KeyId"], Message=b"m",
          SigningAlgorithm="RSASSA_PSS_SHA_256")


# -- the AWS managed key ---------------------------------------------------------
def test_describe_predefined_alias_creates_the_aws_managed_key(kms):
    meta = kms.describe_key(KeyId="alias/aws/secretsmanager")["KeyMetadata"]
    assert meta["KeyManager"] == "AWS" and meta["KeyState"] == "Enabled"
    assert kms.describe_key(KeyId="alias/aws/secretsmanager")["KeyMetadata"]["KeyId"] == meta["KeyId"]
    assert kms.get_key_rotation_status(KeyId=meta["KeyId"])["KeyRotationEnabled"] is True
    listed = {a["AliasName"]: a for a in kms.list_aliases()["Aliases"]}
    assert listed["alias/aws/secretsmanager"]["TargetKeyId"] == meta["KeyId"]


def test_aws_managed_key_cannot_be_managed_or_used_directly(kms):
    kid = kms.describe_key(KeyId="alias/aws/secretsmanager")["KeyMetadata"]["KeyId"]
    for call, kw in [
        (kms.disable_key, {"KeyId": kid}),
        (kms.schedule_key_deletion, {"KeyId": kid, "PendingWindowInDays": 7}),
        (kms.enable_key_rotation, {"KeyId": kid}),
        (kms.put_key_policy, {"KeyId": kid, "Policy": "{}"}),
        (kms.tag_resource, {"KeyId": kid, "Tags": [{"TagKey": "a", "TagValue": "b"}]}),
        (kms.create_alias, {"AliasName": alias_name(), "TargetKeyId": kid}),
        (kms.encrypt, {"KeyId": "alias/aws/secretsmanager", "Plaintext": b"x"}),
        (kms.generate_data_key, {"KeyId": kid, "KeySpec": "AES_256"}),
    ]:
        fails("AccessDeniedException", call, **kw)
    policy = json.loads(kms.get_key_policy(KeyId=kid)["Policy"])
    assert any("kms:ViaService" in json.dumps(s) for s in policy["Statement"])


# -- the AWS CLI -----------------------------------------------------------------
def aws_cli(server: Server, *args: str) -> dict:  # type: ignore[type-arg]
    proc = subprocess.run([sys.executable, "-m", "awscli", "--profile", "strongroom", "--output", "json", *args],
                          env=server.env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout) if proc.stdout.strip() else {}


def test_aws_kms_cli_create_encrypt_decrypt(server, tmp_path: Path):
    key_id = aws_cli(server, "kms", "create-key", "--description", "from the cli")["KeyMetadata"]["KeyId"]
    aws_cli(server, "kms", "create-alias", "--alias-name", "alias/cli-" + key_id[:8], "--target-key-id", key_id)
    (tmp_path / "plain.txt").write_bytes(b"hello from the cli")
    blob = aws_cli(server, "kms", "encrypt", "--key-id", "alias/cli-" + key_id[:8],
                   "--plaintext", f"fileb://{tmp_path / 'plain.txt'}")["CiphertextBlob"]
    (tmp_path / "blob.bin").write_bytes(base64.b64decode(blob))
    out = aws_cli(server, "kms", "decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'blob.bin'}")
    assert base64.b64decode(out["Plaintext"]) == b"hello from the cli"
    assert out["KeyId"].endswith(key_id)


# -- background maintenance (a server of its own: it moves the clock for every key) ----
@pytest.fixture(scope="module")
def maint_server(tmp_path_factory: pytest.TempPathFactory, backend: Backend) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("kms-maintenance"), backend=backend)
    yield srv
    srv.stop()


def own_client(server: Server, service: str = "kms"):  # type: ignore[no-untyped-def]
    """A client using the profile `strongroom init` wrote for this particular server."""
    import botocore.session

    core = botocore.session.Session()
    core.set_config_variable("config_file", server.env["AWS_CONFIG_FILE"])
    core.set_config_variable("credentials_file", server.env["AWS_SHARED_CREDENTIALS_FILE"])
    return boto3.Session(botocore_session=core, profile_name="strongroom").client(service, endpoint_url=server.url)


def run_maintenance_at(server: Server, when: float) -> tuple[int, int]:
    """One maintenance pass against the server's database with the clock set to `when`."""
    from strongroom.crypto.rootkey import FileRootKey
    from strongroom.services.kms import KmsDeps, run_maintenance
    from strongroom.storage import open_store

    store = open_store(server.database_url)
    try:
        return run_maintenance(KmsDeps(store=store, root=FileRootKey.load(server.data_dir / "root.key"),
                                       clock=lambda: when))
    finally:
        store.close()


def test_purge_deletes_keys_whose_waiting_period_passed(maint_server):
    kms = own_client(maint_server)
    doomed, kept = kms.create_key()["KeyMetadata"], kms.create_key()["KeyMetadata"]
    name = alias_name()
    kms.create_alias(AliasName=name, TargetKeyId=doomed["KeyId"])
    blob = kms.encrypt(KeyId=doomed["KeyId"], Plaintext=b"gone soon")["CiphertextBlob"]
    kms.schedule_key_deletion(KeyId=doomed["KeyId"], PendingWindowInDays=7)
    kms.schedule_key_deletion(KeyId=kept["KeyId"], PendingWindowInDays=30)
    assert run_maintenance_at(maint_server, time.time() + 6 * DAY)[0] == 0
    assert run_maintenance_at(maint_server, time.time() + 8 * DAY)[0] == 1
    fails("NotFoundException", kms.describe_key, KeyId=doomed["KeyId"])
    fails("NotFoundException", kms.describe_key, KeyId=name)
    msg = fails("AccessDeniedException", kms.decrypt, CiphertextBlob=blob)
    assert "does not exist" in msg
    assert kms.describe_key(KeyId=kept["KeyId"])["KeyMetadata"]["KeyState"] == "PendingDeletion"


def test_automatic_rotation_when_due_keeps_old_ciphertexts(maint_server):
    kms = own_client(maint_server)
    key = kms.create_key()["KeyMetadata"]
    kms.enable_key_rotation(KeyId=key["KeyId"], RotationPeriodInDays=90)
    old = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"before rotation")["CiphertextBlob"]
    run_maintenance_at(maint_server, time.time() + 89 * DAY)
    assert kms.list_key_rotations(KeyId=key["KeyId"])["Rotations"] == []
    run_maintenance_at(maint_server, time.time() + 91 * DAY)
    [rotation] = kms.list_key_rotations(KeyId=key["KeyId"])["Rotations"]
    assert rotation["RotationType"] == "AUTOMATIC"
    status = kms.get_key_rotation_status(KeyId=key["KeyId"])
    assert status["NextRotationDate"] - dt.datetime.now(dt.timezone.utc) > dt.timedelta(days=170)
    assert kms.decrypt(CiphertextBlob=old)["Plaintext"] == b"before rotation"
    new = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"after")
    assert kms.decrypt(CiphertextBlob=new["CiphertextBlob"])["KeyMaterialId"] == rotation["KeyMaterialId"]
