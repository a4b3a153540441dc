"""Root keys kept outside the data directory: in an HSM (PKCS#11, SoftHSM2 here) and in an external
AWS-KMS-compatible service (a second strongroom here)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import pytest

from strongroom.crypto import kmskey
from tests.conftest import REQUIRE_SERVICES, Backend, Server, need_binary, start_server, strongroom
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


# Read in a child process: a PKCS#11 module is initialized once per process, with the token
# directory SOFTHSM2_CONF named then, and each test has a token directory of its own.
READ_ATTRIBUTES = """
import json, sys
import pkcs11
from pkcs11 import Attribute, KeyType, ObjectClass
module, pin = sys.argv[1:3]
token = pkcs11.lib(module).get_token(token_label="strongroom")
with token.open(user_pin=pin) as session:
    key = session.get_key(label="strongroom-root", key_type=KeyType.AES, object_class=ObjectClass.SECRET_KEY)
    out = {name: bool(key[getattr(Attribute, name)])
           for name in ("SENSITIVE", "EXTRACTABLE", "ALWAYS_SENSITIVE", "NEVER_EXTRACTABLE")}
    try:
        key[Attribute.VALUE]
        out["value"] = "readable"
    except pkcs11.exceptions.PKCS11Error as exc:
        out["value"] = type(exc).__name__
print(json.dumps(out))
"""


def test_pkcs11_root_key_lives_in_the_hsm(tmp_path: Path, softhsm: dict[str, str], backend: Backend):
    module = softhsm.pop("MODULE")
    url = backend.new_database()
    init(tmp_path, "--root-key", "pkcs11", "--pkcs11-module", module, "--pkcs11-token-label", "strongroom",
         extra=softhsm, database_url=url)
    data = tmp_path / "data"
    config = tomllib.loads((data / "config.toml").read_text())["root_key"]
    assert config == {"source": "pkcs11", "module": module, "token_label": "strongroom",
                      "key_label": "strongroom-root", "pin_env": "STRONGROOM_PKCS11_PIN"}
    assert not (data / "root.key").exists() and PIN not in (data / "config.toml").read_text()
    srv = serve(tmp_path, softhsm, database_url=url)
    try:
        sm, kms = client(srv, "secretsmanager"), client(srv, "kms")
        key = kms.create_key()["KeyMetadata"]
        blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"under the hsm")["CiphertextBlob"]
        sm.create_secret(Name="hsm/one", SecretString="sealed by a key that never leaves the token")
    finally:
        srv.stop()
    # The key is in the token: the same data directory with the token's PIN wrong does not start.
    with pytest.raises(RuntimeError, match="wrong PIN"):
        serve(tmp_path, {**softhsm, "STRONGROOM_PKCS11_PIN": "0000"}, database_url=url)
    srv = serve(tmp_path, softhsm, database_url=url)
    try:
        assert client(srv, "secretsmanager").get_secret_value(SecretId="hsm/one")["SecretString"] == \
            "sealed by a key that never leaves the token"
        assert client(srv, "kms").decrypt(CiphertextBlob=blob)["Plaintext"] == b"under the hsm"
        assert "pkcs11:strongroom/strongroom-root" in strongroom("rekey", "--status", env=srv.env).stderr
    finally:
        srv.stop()
    assert_absent([PIN.encode() * 2], [*data.glob("*")], [srv.log_text()])  # the PIN, long enough to search
    # The token itself says the key cannot leave it: sensitive, never extractable, value refused.
    read = subprocess.run([sys.executable, "-c", READ_ATTRIBUTES, module, PIN], env={**os.environ, **softhsm},
                          capture_output=True, text=True, check=True, timeout=60)
    attributes = json.loads(read.stdout)
    assert attributes == {"SENSITIVE": True, "EXTRACTABLE": False, "ALWAYS_SENSITIVE": True,
                          "NEVER_EXTRACTABLE": True, "value": "AttributeSensitive"}, attributes


# Not per backend: refused at the token, before any database matters.
def test_pkcs11_without_its_token_is_a_clear_error(tmp_path: Path, softhsm: dict[str, str]):
    module = softhsm.pop("MODULE")
    out = init(tmp_path, "--root-key", "pkcs11", "--pkcs11-module", module, "--pkcs11-token-label", "absent",
               extra=softhsm, check=False)
    assert out.returncode == 1 and "no PKCS#11 token labelled 'absent'" in out.stderr


@pytest.fixture(scope="module")
def external_kms(tmp_path_factory: pytest.TempPathFactory) -> Server:
    """The external service (a strongroom on SQLite), shared by the module: each test makes its own
    key and user in it."""
    srv = start_server(tmp_path_factory.mktemp("external"))
    yield srv
    srv.stop()


def grant_profile(external: Server, tmp: Path, key_arn: str) -> None:
    """A user of the external KMS allowed only GenerateDataKey and Decrypt on one key, written as the
    profile 'external' into the AWS files strongroom (in `tmp`) will read."""
    iam = client(external, "iam")
    user = f"strongroom-root-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="root-key", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                                                "Resource": key_arn}]}))
    access = iam.create_access_key(UserName=user)["AccessKey"]
    (tmp / "aws").mkdir(parents=True, exist_ok=True)
    (tmp / "aws" / "credentials").write_text(
        f"[external]\naws_access_key_id = {access['AccessKeyId']}\n"
        f"aws_secret_access_key = {access['SecretAccessKey']}\n")
    (tmp / "aws" / "config").write_text("[profile external]\nregion = us-east-1\n")


def test_external_kms_root_key(tmp_path: Path, external_kms: Server, backend: Backend):
    ext_kms = client(external_kms, "kms")
    key = ext_kms.create_key(Description="root of another strongroom")["KeyMetadata"]
    alias = f"alias/strongroom-root-{backend.name}"
    ext_kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    grant_profile(external_kms, tmp_path, key["Arn"])
    url = backend.new_database()
    init(tmp_path, "--root-key", "kms", "--kms-endpoint-url", external_kms.url, "--kms-key-id",
         alias, "--kms-profile", "external", database_url=url)
    data = tmp_path / "data"
    config = tomllib.loads((data / "config.toml").read_text())["root_key"]
    assert config == {"source": "kms", "endpoint_url": external_kms.url, "key_id": alias,
                      "profile": "external", "path": "root-kms.json"}
    stored = json.loads((data / "root-kms.json").read_text())
    assert stored["kms_key_id"] == key["Arn"] and "ciphertext" in stored and "plaintext" not in json.dumps(stored)
    srv = serve(tmp_path, database_url=url)
    try:
        sm = client(srv, "secretsmanager")
        sm.create_secret(Name="kms/one", SecretString="root key held by another service")
        own_kms = client(srv, "kms")
        blob = own_kms.encrypt(KeyId=own_kms.create_key()["KeyMetadata"]["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    finally:
        srv.stop()
    srv = serve(tmp_path, database_url=url)
    try:
        assert client(srv, "secretsmanager").get_secret_value(SecretId="kms/one")["SecretString"] == \
            "root key held by another service"
        assert client(srv, "kms").decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    finally:
        srv.stop()
    # The external key is a kill switch: disabled, strongroom cannot start; enabled again, it can.
    ext_kms.disable_key(KeyId=key["KeyId"])
    with pytest.raises(RuntimeError, match="the external KMS refused Decrypt: DisabledException"):
        serve(tmp_path, database_url=url)
    ext_kms.enable_key(KeyId=key["KeyId"])
    srv = serve(tmp_path, database_url=url)
    srv.stop()
    # The data key never appears in plaintext: not in our files, nor the external server's.
    raw = ext_kms.decrypt(CiphertextBlob=base64.b64decode(stored["ciphertext"]),
                          EncryptionContext=kmskey.CONTEXT)["Plaintext"]
    assert_absent([raw], [*data.glob("*"), *srv.database_files(), *external_kms.database_files()],
                  [srv.log_text(), external_kms.log_text()])


# Not per backend: refused by the external service, before any database matters.
def test_external_kms_refusing_init_is_a_clear_error(tmp_path: Path, external_kms: Server):
    key = client(external_kms, "kms").create_key()["KeyMetadata"]
    grant_profile(external_kms, tmp_path, "arn:aws:kms:us-east-1:000000000000:key/other")  # not this key
    out = init(tmp_path, "--root-key", "kms", "--kms-endpoint-url", external_kms.url, "--kms-key-id", key["Arn"],
               "--kms-profile", "external", check=False)
    assert out.returncode == 1 and "the external KMS refused GenerateDataKey: AccessDeniedException" in out.stderr
    assert not (tmp_path / "data" / "root-kms.json").exists()
    assert env_for(tmp_path)  # nothing else was written that a retry would trip over
