"""Root keys kept outside the data directory: in an HSM (PKCS#11, SoftHSM2 here) and in an external
AWS-KMS-compatible service (a second strongroom here)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tomllib
from pathlib import Path

import pytest

from strongroom.crypto import kmskey
from tests.conftest import REQUIRE_SERVICES, Server, need_binary, start_server, strongroom
from tests.e2e.keys_support import assert_absent, client, env_for, init, serve

SOFTHSM_MODULES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
                   "/usr/local/lib/softhsm/libsofthsm2.so", "/usr/lib64/pkcs11/libsofthsm2.so")
PIN = "5678"


@pytest.fixture
def softhsm(tmp_path: Path) -> dict[str, str]:
    """A fresh SoftHSM2 token 'strongroom' in its own directory; the environment that reaches it."""
    util = need_binary("softhsm2-util")
    module = next((m for m in SOFTHSM_MODULES if os.path.exists(m)), None)
    if module is None:
        need_binary("libsofthsm2.so")  # skips (or fails under STRONGROOM_REQUIRE_SERVICES=1)
    try:
        import pkcs11  # noqa: F401
    except ImportError:
        if REQUIRE_SERVICES:
            pytest.fail("needs python-pkcs11 (pip install -e '.[pkcs11]')")
        pytest.skip("needs python-pkcs11 (pip install -e '.[pkcs11]')")
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    subprocess.run([util, "--init-token", "--free", "--label", "strongroom", "--so-pin", "1234", "--pin", PIN],
                   env=env, check=True, capture_output=True)
    return {"SOFTHSM2_CONF": str(conf), "STRONGROOM_PKCS11_PIN": PIN, "MODULE": str(module)}


def test_pkcs11_root_key_lives_in_the_hsm(tmp_path: Path, softhsm: dict[str, str]):
    module = softhsm.pop("MODULE")
    init(tmp_path, "--root-key", "pkcs11", "--pkcs11-module", module, "--pkcs11-token-label", "strongroom",
         extra=softhsm)
    data = tmp_path / "data"
    config = tomllib.loads((data / "config.toml").read_text())["root_key"]
    assert config == {"source": "pkcs11", "module": module, "token_label": "strongroom",
                      "key_label": "strongroom-root", "pin_env": "STRONGROOM_PKCS11_PIN"}
    assert not (data / "root.key").exists() and PIN not in (data / "config.toml").read_text()
    srv = serve(tmp_path, softhsm)
    try:
        sm, kms = client(srv, "secretsmanager"), client(srv, "kms")
        key = kms.create_key()["KeyMetadata"]
        blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"under the hsm")["CiphertextBlob"]
        sm.create_secret(Name="hsm/one", SecretString="sealed by a key that never leaves the token")
    finally:
        srv.stop()
    # The key is in the token: the same data directory with the token's PIN wrong does not start.
    with pytest.raises(RuntimeError, match="wrong PIN"):
        serve(tmp_path, {**softhsm, "STRONGROOM_PKCS11_PIN": "0000"})
    srv = serve(tmp_path, softhsm)
    try:
        assert client(srv, "secretsmanager").get_secret_value(SecretId="hsm/one")["SecretString"] == \
            "sealed by a key that never leaves the token"
        assert client(srv, "kms").decrypt(CiphertextBlob=blob)["Plaintext"] == b"under the hsm"
        assert "pkcs11:strongroom/strongroom-root" in strongroom("rekey", "--status", env=srv.env).stderr
    finally:
        srv.stop()
    assert_absent([PIN.encode() * 2], [*data.glob("*")], [srv.log_text()])  # the PIN, long enough to search


def test_pkcs11_without_its_token_is_a_clear_error(tmp_path: Path, softhsm: dict[str, str]):
    module = softhsm.pop("MODULE")
    out = init(tmp_path, "--root-key", "pkcs11", "--pkcs11-module", module, "--pkcs11-token-label", "absent",
               extra=softhsm, check=False)
    assert out.returncode == 1 and "no PKCS#11 token labelled 'absent'" in out.stderr


@pytest.fixture
def external_kms(tmp_path: Path) -> Server:
    srv = start_server(tmp_path / "external")
    yield srv
    srv.stop()


def grant_profile(external: Server, tmp: Path, key_arn: str) -> None:
    """A user of the external KMS allowed only GenerateDataKey and Decrypt on one key, written as the
    profile 'external' into the AWS files strongroom (in `tmp`) will read."""
    iam = client(external, "iam")
    iam.create_user(UserName="strongroom-root")
    iam.put_user_policy(UserName="strongroom-root", PolicyName="root-key", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                                                "Resource": key_arn}]}))
    access = iam.create_access_key(UserName="strongroom-root")["AccessKey"]
    (tmp / "aws").mkdir(parents=True, exist_ok=True)
    (tmp / "aws" / "credentials").write_text(
        f"[external]\naws_access_key_id = {access['AccessKeyId']}\n"
        f"aws_secret_access_key = {access['SecretAccessKey']}\n")
    (tmp / "aws" / "config").write_text("[profile external]\nregion = us-east-1\n")


def test_external_kms_root_key(tmp_path: Path, external_kms: Server):
    ext_kms = client(external_kms, "kms")
    key = ext_kms.create_key(Description="root of another strongroom")["KeyMetadata"]
    ext_kms.create_alias(AliasName="alias/strongroom-root", TargetKeyId=key["KeyId"])
    grant_profile(external_kms, tmp_path, key["Arn"])
    init(tmp_path, "--root-key", "kms", "--kms-endpoint-url", external_kms.url, "--kms-key-id",
         "alias/strongroom-root", "--kms-profile", "external")
    data = tmp_path / "data"
    config = tomllib.loads((data / "config.toml").read_text())["root_key"]
    assert config == {"source": "kms", "endpoint_url": external_kms.url, "key_id": "alias/strongroom-root",
                      "profile": "external", "path": "root-kms.json"}
    stored = json.loads((data / "root-kms.json").read_text())
    assert stored["kms_key_id"] == key["Arn"] and "ciphertext" in stored and "plaintext" not in json.dumps(stored)
    srv = serve(tmp_path)
    try:
        sm = client(srv, "secretsmanager")
        sm.create_secret(Name="kms/one", SecretString="root key held by another service")
        own_kms = client(srv, "kms")
        blob = own_kms.encrypt(KeyId=own_kms.create_key()["KeyMetadata"]["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    finally:
        srv.stop()
    srv = serve(tmp_path)
    try:
        assert client(srv, "secretsmanager").get_secret_value(SecretId="kms/one")["SecretString"] == \
            "root key held by another service"
        assert client(srv, "kms").decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    finally:
        srv.stop()
    # The external key is a kill switch: disabled, strongroom cannot start; enabled again, it can.
    ext_kms.disable_key(KeyId=key["KeyId"])
    with pytest.raises(RuntimeError, match="the external KMS refused Decrypt: DisabledException"):
        serve(tmp_path)
    ext_kms.enable_key(KeyId=key["KeyId"])
    srv = serve(tmp_path)
    srv.stop()
    # The data key never appears in plaintext: not in our files, nor the external server's.
    raw = ext_kms.decrypt(CiphertextBlob=base64.b64decode(stored["ciphertext"]),
                          EncryptionContext=kmskey.CONTEXT)["Plaintext"]
    assert_absent([raw], [*data.glob("*"), *external_kms.database_files()],
                  [srv.log_text(), external_kms.log_text()])


def test_external_kms_refusing_init_is_a_clear_error(tmp_path: Path, external_kms: Server):
    key = client(external_kms, "kms").create_key()["KeyMetadata"]
    grant_profile(external_kms, tmp_path, "arn:aws:kms:us-east-1:000000000000:key/other")  # not this key
    out = init(tmp_path, "--root-key", "kms", "--kms-endpoint-url", external_kms.url, "--kms-key-id", key["Arn"],
               "--kms-profile", "external", check=False)
    assert out.returncode == 1 and "the external KMS refused GenerateDataKey: AccessDeniedException" in out.stderr
    assert not (tmp_path / "data" / "root-kms.json").exists()
    assert env_for(tmp_path)  # nothing else was written that a retry would trip over
