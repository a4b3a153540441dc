"""Secrets Manager on top of KMS keys, as AWS: each version's data key comes from its KMS key."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator

import pytest

from strongroom.crypto import kms_ciphertext
from strongroom.crypto.envelope import Sealed
from strongroom.crypto.keyring import RootKeyring
from strongroom.crypto.rootkey import FileRootKey
from strongroom.services.secretsmanager.core import value_binding
from strongroom.storage import open_store
from tests.conftest import Backend, Server, start_server
from tests.e2e.test_kms import DAY, fails, other_account_client, own_client, run_maintenance_at

MANAGED = "alias/aws/secretsmanager"


def version_row(server: Server, arn: str, version_id: str) -> tuple[str, bytes, bytes]:
    [row] = server.sql(
        "SELECT v.key_id, v.wrapped_key, v.ciphertext FROM secret_versions v JOIN secrets s ON s.id = v.secret_id "
        "WHERE s.arn = :arn AND v.version_id = :version_id", arn=arn, version_id=version_id)
    return str(row[0]), bytes(row[1]), bytes(row[2])  # type: ignore[arg-type]


def write_version_row(server: Server, arn: str, version_id: str, key_id: str, wrapped: bytes, ct: bytes) -> None:
    server.sql("UPDATE secret_versions SET key_id = :key_id, wrapped_key = :wrapped, ciphertext = :ct "
               "WHERE version_id = :version_id AND secret_id = (SELECT id FROM secrets WHERE arn = :arn)",
               key_id=key_id, wrapped=wrapped, ct=ct, version_id=version_id, arn=arn)


def kms_ids(sm, name: str, **kw) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    return {v["VersionId"]: v.get("KmsKeyIds", []) for v in sm.list_secret_version_ids(SecretId=name, **kw)["Versions"]}


@pytest.fixture
def kms(server: Server):  # type: ignore[no-untyped-def]
    return server.client("kms")


@pytest.fixture
def cmk(kms) -> dict:  # type: ignore[no-untyped-def,type-arg]
    return kms.create_key(Description="secrets key")["KeyMetadata"]


# -- the AWS managed key ---------------------------------------------------------
@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory, backend: Backend) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("secrets-on-kms"), backend=backend)
    yield srv
    srv.stop()


def test_default_key_is_created_on_first_use(fresh):
    kms, sm = own_client(fresh, "kms"), own_client(fresh, "secretsmanager")
    assert kms.list_keys()["Keys"] == []
    [predefined] = [a for a in kms.list_aliases()["Aliases"] if a["AliasName"] == MANAGED]
    assert "TargetKeyId" not in predefined
    sm.create_secret(Name="first", SecretString="one")
    sm.create_secret(Name="second", SecretString="two")
    [key] = kms.list_keys()["Keys"]
    meta = kms.describe_key(KeyId=MANAGED)["KeyMetadata"]
    assert meta["KeyId"] == key["KeyId"] and meta["KeyManager"] == "AWS"
    assert "KmsKeyId" not in sm.describe_secret(SecretId="first")
    assert list(kms_ids(sm, "first").values()) == [["DefaultEncryptionKey"]]
    assert sm.get_secret_value(SecretId="second")["SecretString"] == "two"


def test_secret_without_kms_key_is_readable_after_restart(tmp_path, backend):
    srv = start_server(tmp_path, backend=backend)
    try:
        own_client(srv, "secretsmanager").create_secret(Name="survives", SecretString="still here")
        srv.stop()
        srv = start_server(tmp_path, init=False, database_url=srv.database_url)
        assert own_client(srv, "secretsmanager").get_secret_value(SecretId="survives")["SecretString"] == "still here"
    finally:
        srv.stop()


# -- customer managed keys -------------------------------------------------------
def test_kms_key_id_accepts_key_id_arn_alias_and_alias_arn(sm, kms, cmk, name):
    alias = f"alias/sm-{uuid.uuid4().hex[:8]}"
    kms.create_alias(AliasName=alias, TargetKeyId=cmk["KeyId"])
    alias_arn = cmk["Arn"].split(":key/")[0] + ":" + alias
    for i, ref in enumerate((cmk["KeyId"], cmk["Arn"], alias, alias_arn)):
        secret = f"{name}-{i}"
        created = sm.create_secret(Name=secret, SecretString=f"value {i}", KmsKeyId=ref)
        assert sm.describe_secret(SecretId=secret)["KmsKeyId"] == ref
        assert sm.get_secret_value(SecretId=secret)["SecretString"] == f"value {i}"
        assert kms_ids(sm, secret) == {created["VersionId"]: [cmk["Arn"]]}


def test_version_data_key_is_a_kms_data_key_bound_to_secret_and_version(server, sm, kms, cmk, name):
    created = sm.create_secret(Name=name, SecretString="v", KmsKeyId=cmk["KeyId"])
    key_id, wrapped, _ = version_row(server, created["ARN"], created["VersionId"])
    assert key_id == cmk["Arn"]
    context = {"SecretARN": created["ARN"], "SecretVersionId": created["VersionId"]}
    data_key = kms.decrypt(CiphertextBlob=wrapped, EncryptionContext=context)
    assert data_key["KeyId"] == cmk["Arn"] and len(data_key["Plaintext"]) == 32
    fails("InvalidCiphertextException", kms.decrypt, CiphertextBlob=wrapped,
          EncryptionContext={**context, "SecretVersionId": "another"})


@pytest.mark.parametrize("ref", ["00000000-0000-0000-0000-000000000000", "alias/no-such-alias", "not a key",
                                 "arn:aws:kms:us-east-1:000000000000:alias/x"])
def test_unknown_kms_key_id_is_refused(sm, name, ref):
    code = "AccessDeniedException" if ":000000000000:" in ref else "InvalidParameterException"
    fails(code, sm.create_secret, Name=name, SecretString="v", KmsKeyId=ref)
    fails("ResourceNotFoundException", sm.describe_secret, SecretId=name)
    sm.create_secret(Name=name, SecretString="v")
    fails(code, sm.update_secret, SecretId=name, KmsKeyId=ref)
    assert "KmsKeyId" not in sm.describe_secret(SecretId=name)


def test_key_of_another_account_is_access_denied(server, sm, name):
    foreign = other_account_client(server).create_key()["KeyMetadata"]
    assert fails("AccessDeniedException", sm.create_secret, Name=name, SecretString="v",
                 KmsKeyId=foreign["Arn"]) == "Access to KMS is not allowed"


def test_disabled_key_fails_reads_and_writes_until_enabled(sm, kms, cmk, name):
    sm.create_secret(Name=name, SecretString="guarded", KmsKeyId=cmk["Arn"])
    kms.disable_key(KeyId=cmk["KeyId"])
    msg = fails("DecryptionFailure", sm.get_secret_value, SecretId=name)
    assert f"{cmk['Arn']} is disabled." in msg and "DisabledException" in msg
    fails("EncryptionFailure", sm.put_secret_value, SecretId=name, SecretString="new")
    batch = sm.batch_get_secret_value(SecretIdList=[name])
    assert batch["Errors"][0]["ErrorCode"] == "DecryptionFailure"
    kms.enable_key(KeyId=cmk["KeyId"])
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "guarded"
    sm.put_secret_value(SecretId=name, SecretString="new")


def test_key_pending_deletion_fails_reads_until_canceled(server, sm, kms, cmk, name):
    sm.create_secret(Name=name, SecretString="precious", KmsKeyId=cmk["KeyId"])
    kms.schedule_key_deletion(KeyId=cmk["KeyId"], PendingWindowInDays=7)
    msg = fails("DecryptionFailure", sm.get_secret_value, SecretId=name)
    assert "pending deletion" in msg and "KMSInvalidStateException" in msg
    fails("EncryptionFailure", sm.put_secret_value, SecretId=name, SecretString="new")
    warnings = [json.loads(line) for line in server.log_text().splitlines()
                if line.startswith("{") and "still protects secret values" in line]
    assert any(w["key_arn"] == cmk["Arn"] and w["secrets"] == 1 and w["level"] == "warning" for w in warnings)
    kms.cancel_key_deletion(KeyId=cmk["KeyId"])
    fails("DecryptionFailure", sm.get_secret_value, SecretId=name)  # canceled keys come back Disabled
    kms.enable_key(KeyId=cmk["KeyId"])
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "precious"


def test_update_kms_key_id_reencrypts_labelled_versions(sm, kms, cmk, name):
    new_key = kms.create_key()["KeyMetadata"]
    oldest = sm.create_secret(Name=name, SecretString="v1", KmsKeyId=cmk["KeyId"])["VersionId"]
    previous = sm.put_secret_value(SecretId=name, SecretString="v2")["VersionId"]
    current = sm.put_secret_value(SecretId=name, SecretString="v3")["VersionId"]
    sm.update_secret(SecretId=name, KmsKeyId=new_key["Arn"])
    assert sm.describe_secret(SecretId=name)["KmsKeyId"] == new_key["Arn"]
    ids = kms_ids(sm, name, IncludeDeprecated=True)
    assert ids == {current: [new_key["Arn"]], previous: [new_key["Arn"]], oldest: [cmk["Arn"]]}
    # The labelled versions no longer need the old key; the unlabelled one still does.
    kms.disable_key(KeyId=cmk["KeyId"])
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v3"
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"] == "v2"
    fails("DecryptionFailure", sm.get_secret_value, SecretId=name, VersionId=oldest)
    kms.enable_key(KeyId=cmk["KeyId"])
    assert sm.get_secret_value(SecretId=name, VersionId=oldest)["SecretString"] == "v1"


def test_update_with_new_key_and_new_value(sm, kms, cmk, name):
    sm.create_secret(Name=name, SecretString="a")
    out = sm.update_secret(SecretId=name, KmsKeyId=cmk["KeyId"], SecretString="b")
    ids = kms_ids(sm, name)
    assert ids[out["VersionId"]] == [cmk["Arn"]] and all(v == [cmk["Arn"]] for v in ids.values())
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"] == "a"


def test_update_to_a_disabled_key_fails_and_changes_nothing(sm, kms, cmk, name):
    sm.create_secret(Name=name, SecretString="a")
    kms.disable_key(KeyId=cmk["KeyId"])
    fails("EncryptionFailure", sm.update_secret, SecretId=name, KmsKeyId=cmk["KeyId"])
    assert "KmsKeyId" not in sm.describe_secret(SecretId=name)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "a"


# -- tampering ---------------------------------------------------------------------
def test_ciphertext_moved_between_rows_fails(server, sm, cmk, name):
    a = sm.create_secret(Name=name + "-a", SecretString="alpha", KmsKeyId=cmk["KeyId"])
    b = sm.create_secret(Name=name + "-b", SecretString="bravo", KmsKeyId=cmk["KeyId"])
    a_row, b_row = version_row(server, a["ARN"], a["VersionId"]), version_row(server, b["ARN"], b["VersionId"])
    write_version_row(server, b["ARN"], b["VersionId"], *a_row)  # the whole sealed value
    fails("DecryptionFailure", sm.get_secret_value, SecretId=b["ARN"])
    write_version_row(server, b["ARN"], b["VersionId"], b_row[0], a_row[1], b_row[2])  # only the data key
    fails("DecryptionFailure", sm.get_secret_value, SecretId=b["ARN"])
    write_version_row(server, b["ARN"], b["VersionId"], *b_row)
    assert sm.get_secret_value(SecretId=b["ARN"])["SecretString"] == "bravo"
    assert sm.get_secret_value(SecretId=a["ARN"])["SecretString"] == "alpha"


def test_data_key_from_another_key_is_refused(server, sm, kms, cmk, name):
    other = kms.create_key()["KeyMetadata"]
    created = sm.create_secret(Name=name, SecretString="v", KmsKeyId=cmk["KeyId"])
    key_id, wrapped, ct = version_row(server, created["ARN"], created["VersionId"])
    context = {"SecretARN": created["ARN"], "SecretVersionId": created["VersionId"]}
    moved = kms.re_encrypt(CiphertextBlob=wrapped, SourceEncryptionContext=context, DestinationKeyId=other["KeyId"],
                           DestinationEncryptionContext=context)["CiphertextBlob"]
    write_version_row(server, created["ARN"], created["VersionId"], key_id, moved, ct)
    fails("DecryptionFailure", sm.get_secret_value, SecretId=name)


def test_versions_sealed_before_kms_stay_readable(server, sm, name):
    created = sm.create_secret(Name=name, SecretString="legacy value")
    arn, vid = created["ARN"], created["VersionId"]
    # Re-seal the version the way the root-key keyring did before KMS keys existed.
    root = FileRootKey.load(server.data_dir / "root.key")
    store = open_store(server.database_url)
    try:
        with store.read() as tx:
            secret = tx.secret_by_arn(arn)
        assert secret is not None
        key_id, sealed = RootKeyring(root).seal(b"legacy value", value_binding(secret, vid), None)
    finally:
        store.close()
    assert key_id.startswith("file:")
    write_version_row(server, arn, vid, key_id, sealed.wrapped_key, sealed.ciphertext)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "legacy value"
    assert kms_ids(sm, name) == {vid: ["DefaultEncryptionKey"]}
    # A legacy value altered in place still fails closed.
    write_version_row(server, arn, vid, key_id, sealed.wrapped_key, sealed.ciphertext[:-1] + b"\x00")
    fails("DecryptionFailure", sm.get_secret_value, SecretId=name)
    assert isinstance(sealed, Sealed)


# -- nothing secret at rest or in the log ---------------------------------------
def _forms(secret: bytes) -> list[bytes]:
    return [secret, secret.hex().encode(), base64.b64encode(secret), base64.b64encode(secret).rstrip(b"=")]


def test_no_kms_plaintext_key_or_material_in_database_or_log(server, sm, kms, cmk, name):
    secrets: list[bytes] = []
    for spec in ("AES_256", "AES_128"):
        secrets.append(kms.generate_data_key(KeyId=cmk["KeyId"], KeySpec=spec)["Plaintext"])
    secrets.append(kms.generate_random(NumberOfBytes=32)["Plaintext"])
    created = sm.create_secret(Name=name, SecretString="value", KmsKeyId=cmk["KeyId"])
    _, wrapped, _ = version_row(server, created["ARN"], created["VersionId"])
    secrets.append(kms.decrypt(CiphertextBlob=wrapped, EncryptionContext={
        "SecretARN": created["ARN"], "SecretVersionId": created["VersionId"]})["Plaintext"])
    # Every key material version in the database, unwrapped here with the root key.
    root = FileRootKey.load(server.data_dir / "root.key")
    rows = server.sql("SELECT key_id, version, material_wrapped FROM kms_key_materials")
    assert rows
    for key_id, version, blob in rows:
        secrets.append(root.unwrap(bytes(blob), f"kms-key-material:{key_id}:{version}".encode()))
    files = [p.read_bytes() for p in server.database_files()]
    log = server.log_path.read_bytes()
    for secret in secrets:
        for form in _forms(secret):
            assert all(form not in data for data in files), "key bytes found in the database files"
            assert form not in log, "key bytes found in the server log"


# -- the life of the secret's KMS key: rotation, deletion --------------------------------
def material_version(wrapped: bytes) -> tuple[str, int]:
    """(KMS key UUID, material version) from the header of a stored KMS ciphertext blob."""
    header = kms_ciphertext.parse_header(wrapped)
    return header.key_id, header.material_version


def test_rotated_key_keeps_old_versions_and_seals_new_ones_with_new_material(fresh):
    sm, kms = own_client(fresh, "secretsmanager"), own_client(fresh, "kms")
    key = kms.create_key(Description="rotated under a secret")["KeyMetadata"]
    name = f"rotated/{uuid.uuid4().hex[:8]}"
    first = sm.create_secret(Name=name, SecretString="before rotation", KmsKeyId=key["Arn"])
    _, wrapped, _ = version_row(fresh, first["ARN"], first["VersionId"])
    assert material_version(wrapped) == (key["KeyId"], 1)
    kms.rotate_key_on_demand(KeyId=key["KeyId"])
    [rotation] = kms.list_key_rotations(KeyId=key["KeyId"])["Rotations"]
    assert rotation["RotationType"] == "ON_DEMAND"
    second = sm.put_secret_value(SecretId=name, SecretString="after rotation")
    _, wrapped2, _ = version_row(fresh, first["ARN"], second["VersionId"])
    assert material_version(wrapped2) == (key["KeyId"], 2)
    assert material_version(version_row(fresh, first["ARN"], first["VersionId"])[1]) == (key["KeyId"], 1)
    assert sm.get_secret_value(SecretId=name, VersionId=first["VersionId"])["SecretString"] == "before rotation"
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"] == "before rotation"
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "after rotation"
    assert kms_ids(sm, name) == {first["VersionId"]: [key["Arn"]], second["VersionId"]: [key["Arn"]]}


def test_deleted_key_makes_the_secret_unreadable(fresh):
    sm, kms = own_client(fresh, "secretsmanager"), own_client(fresh, "kms")
    key = kms.create_key(Description="deleted under a secret")["KeyMetadata"]
    name = f"orphaned/{uuid.uuid4().hex[:8]}"
    sm.create_secret(Name=name, SecretString="lost with its key", KmsKeyId=key["Arn"])
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert run_maintenance_at(fresh, time.time() + 8 * DAY)[0] >= 1  # the waiting period passed: purged
    fails("NotFoundException", kms.describe_key, KeyId=key["KeyId"])
    # As AWS: Secrets Manager's DecryptionFailure, carrying KMS's own reason and error code.
    msg = fails("DecryptionFailure", sm.get_secret_value, SecretId=name)
    assert key["Arn"] in msg and "NotFoundException" in msg, msg
    batch = sm.batch_get_secret_value(SecretIdList=[name])
    assert batch["Errors"][0]["ErrorCode"] == "DecryptionFailure"
    fails("EncryptionFailure", sm.put_secret_value, SecretId=name, SecretString="new")
    assert "KmsKeyId" in sm.describe_secret(SecretId=name)  # the secret itself remains, unreadable
