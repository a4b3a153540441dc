"""A passphrase root key: the server starts sealed, answers every API request with a clear error,
and serves once `strongroom unseal` gives it the passphrase (or enough Shamir shares)."""

from __future__ import annotations

import json
import stat
import tomllib
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.conftest import Backend, strongroom
from tests.e2e.keys_support import SHARE, assert_absent, client, env_for, http_get, init, serve

PASSPHRASE = "a long passphrase for the vault"


def sealed_everywhere(srv) -> None:  # type: ignore[no-untyped-def]
    assert http_get(srv.url + "/health")[0] == 200
    assert http_get(srv.url + "/ready") == (503, {"status": "unavailable", "reason": "sealed"})
    for service, call in (("secretsmanager", "list_secrets"), ("kms", "list_keys"), ("sts", "get_caller_identity"),
                          ("iam", "list_users")):
        with pytest.raises(ClientError) as exc:
            getattr(client(srv, service, retries=False), call)()
        err = exc.value.response
        # IAM and STS (query protocol) name the same error ServiceUnavailable, as AWS does.
        assert err["Error"]["Code"] in ("ServiceUnavailableException", "ServiceUnavailable"), (service, err)
        assert err["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert err["Error"]["Message"] == "strongroom is sealed; run `strongroom unseal`"


def test_passphrase_server_starts_sealed_and_unseals(tmp_path: Path, backend: Backend):
    url = backend.new_database()
    pf = tmp_path / "passphrase"
    pf.write_text(PASSPHRASE + "\n")
    init(tmp_path, "--root-key", "passphrase", "--passphrase-file", str(pf), database_url=url)
    data = tmp_path / "data"
    assert tomllib.loads((data / "config.toml").read_text())["root_key"]["source"] == "passphrase"
    assert not (data / "root.key").exists()
    assert stat.S_IMODE((data / "root-passphrase.json").stat().st_mode) == 0o600
    srv = serve(tmp_path, database_url=url)
    try:
        sealed_everywhere(srv)
        admin = json.loads((data / "admin.json").read_text())
        assert admin["url"] == srv.url and stat.S_IMODE((data / "admin.json").stat().st_mode) == 0o600
        wrong = tmp_path / "wrong"
        wrong.write_text("not the passphrase at all\n")
        out = strongroom("unseal", "--passphrase-file", str(wrong), env=srv.env, check=False)
        assert out.returncode == 1 and "wrong passphrase" in out.stderr
        sealed_everywhere(srv)
        out = strongroom("unseal", env=srv.env, input=PASSPHRASE + "\n")  # from stdin
        assert "unsealed (root key passphrase:" in out.stderr
        assert http_get(srv.url + "/ready")[0] == 200
        sm = client(srv, "secretsmanager")
        sm.create_secret(Name="app/db", SecretString="behind a passphrase")
        assert strongroom("unseal", env=srv.env).stderr.startswith("unsealed")  # nothing to do
        strongroom("seal", env=srv.env)
        sealed_everywhere(srv)
        strongroom("unseal", "--passphrase-file", str(pf), env=srv.env)
        assert sm.get_secret_value(SecretId="app/db")["SecretString"] == "behind a passphrase"
    finally:
        srv.stop()
    log = srv.log_text()
    srv = serve(tmp_path, database_url=url)  # a restart forgets the key
    try:
        sealed_everywhere(srv)
        strongroom("unseal", "--passphrase-file", str(pf), env=srv.env)
        assert client(srv, "secretsmanager").get_secret_value(SecretId="app/db")["SecretString"] == \
            "behind a passphrase"
        assert not (data / "admin.json").read_text().count(PASSPHRASE)
    finally:
        srv.stop()
    assert_absent([PASSPHRASE.encode()], [*data.glob("*"), *srv.database_files()], [log, srv.log_text()])


def test_admin_endpoint_needs_the_token(tmp_path: Path, backend: Backend):
    url = backend.new_database()
    pf = tmp_path / "passphrase"
    pf.write_text(PASSPHRASE)
    init(tmp_path, "--root-key", "passphrase", "--passphrase-file", str(pf), database_url=url)
    srv = serve(tmp_path, database_url=url)
    try:
        import urllib.error
        import urllib.request

        token = json.loads((tmp_path / "data" / "admin.json").read_text())["token"]
        for headers in ({}, {"x-strongroom-admin-token": "guess"},
                        {"x-strongroom-admin-token": token, "x-forwarded-for": "203.0.113.9"},
                        {"x-strongroom-admin-token": token, "X-Forwarded-Proto": "https"},
                        {"x-strongroom-admin-token": token, "X-Forwarded-Host": "vault.example.com"}):
            req = urllib.request.Request(srv.url + "/_strongroom/unseal", method="POST", headers=headers,
                                         data=json.dumps({"passphrase": PASSPHRASE}).encode())
            with pytest.raises(urllib.error.HTTPError) as exc:
                urllib.request.urlopen(req, timeout=5)
            assert exc.value.code == 403
            assert json.loads(exc.value.read())["__type"] == "AccessDeniedException"
        assert http_get(srv.url + "/ready")[0] == 503
    finally:
        srv.stop()
    assert not (tmp_path / "data" / "admin.json").exists()  # withdrawn at shutdown


def test_shamir_shares_unseal_one_at_a_time(tmp_path: Path, backend: Backend):
    url = backend.new_database()
    out = init(tmp_path, "--root-key", "passphrase", "--shares", "5", "--threshold", "3", database_url=url)
    shares = [line for line in out.stdout.splitlines() if SHARE.match(line)]
    assert len(shares) == 5 and len(set(shares)) == 5
    assert "shown only this once" in out.stderr
    data = tmp_path / "data"
    srv = serve(tmp_path, database_url=url)
    try:
        sealed_everywhere(srv)
        assert "1 of 3 shares given" in strongroom("unseal", env=srv.env, input=shares[4]).stderr
        dup = strongroom("unseal", env=srv.env, input=shares[4], check=False)
        assert dup.returncode == 1 and "already given" in dup.stderr
        typo = shares[0][:-6] + ("0" if shares[0][-6] != "0" else "1") + shares[0][-5:]
        bad = strongroom("unseal", env=srv.env, input=typo, check=False)
        assert bad.returncode == 1 and "mistyped" in bad.stderr
        assert "2 of 3 shares given" in strongroom("unseal", env=srv.env, input=shares[1]).stderr
        sealed_everywhere(srv)
        # --reset alone forgets the shares given and asks for none (input would be ignored).
        assert "0 of 3 shares given" in strongroom("unseal", "--reset", env=srv.env, input=shares[2]).stderr
        strongroom("unseal", env=srv.env, input=shares[4] + "\n" + shares[1])
        assert "unsealed" in strongroom("unseal", env=srv.env, input=shares[2]).stderr
        sm = client(srv, "secretsmanager")
        sm.create_secret(Name="shared", SecretString="three of five")
    finally:
        srv.stop()
    log = srv.log_text()
    srv = serve(tmp_path, database_url=url)
    try:
        # Shares of another deployment combine into a wrong key: refused, and the count starts over.
        other = init(tmp_path / "other", "--root-key", "passphrase", "--shares", "3", "--threshold", "2").stdout
        foreign = [line for line in other.splitlines() if SHARE.match(line)]
        strongroom("unseal", env=srv.env, input=shares[0])
        wrong = strongroom("unseal", env=srv.env, input=foreign[1] + "\n" + foreign[2], check=False)
        assert wrong.returncode == 1 and "wrong shares" in wrong.stderr
        sealed_everywhere(srv)
        strongroom("unseal", env=srv.env, input="\n".join(shares[2:5]))  # several at once, from a file or pipe
        assert client(srv, "secretsmanager").get_secret_value(SecretId="shared")["SecretString"] == "three of five"
    finally:
        srv.stop()
    secrets = [s.split("-")[1].encode() for s in shares] + [s.encode() for s in shares]
    assert_absent(secrets, [*data.glob("*"), *srv.database_files()], [log, srv.log_text()])


# Not per backend: the option is refused before any database is opened.
def test_passphrase_server_refuses_several_workers(tmp_path: Path):
    pf = tmp_path / "passphrase"
    pf.write_text(PASSPHRASE)
    init(tmp_path, "--root-key", "passphrase", "--passphrase-file", str(pf))
    out = strongroom("serve", "--workers", "2", "--port", "1", env=env_for(tmp_path), check=False)
    assert out.returncode == 1 and "--workers 1" in out.stderr


def test_local_commands_unseal_from_a_passphrase_file(tmp_path: Path, backend: Backend):
    url = backend.new_database()
    pf = tmp_path / "passphrase"
    pf.write_text(PASSPHRASE)
    init(tmp_path, "--root-key", "passphrase", "--passphrase-file", str(pf), database_url=url)
    env = env_for(tmp_path, database_url=url)
    out = strongroom("iam", "create-user", "carol", env=env, check=False)
    assert out.returncode == 1 and "sealed" in out.stderr
    strongroom("iam", "create-user", "carol", env={**env, "STRONGROOM_PASSPHRASE_FILE": str(pf)})
    # Initializing again changes nothing, and needs no passphrase.
    assert "already initialized" in init(tmp_path, database_url=url).stderr


def test_a_key_file_server_sealed_by_hand_unseals_without_a_restart(tmp_path: Path, backend: Backend):
    url = backend.new_database()
    init(tmp_path, database_url=url)  # the embedded default: a root key file
    srv = serve(tmp_path, database_url=url)
    try:
        sm = client(srv, "secretsmanager")
        sm.create_secret(Name="app/file", SecretString="sealed and back")
        assert strongroom("seal", env=srv.env).stderr.startswith("sealed")
        sealed_everywhere(srv)
        # Nothing to type: no prompt (no input is given), the key file is read again.
        out = strongroom("unseal", env=srv.env)
        assert out.stderr.startswith("unsealed (root key"), out.stderr
        assert http_get(srv.url + "/ready")[0] == 200
        assert sm.get_secret_value(SecretId="app/file")["SecretString"] == "sealed and back"
    finally:
        srv.stop()


def test_offline_rekey_unseals_from_the_passphrase_file(tmp_path: Path):
    pf = tmp_path / "passphrase"
    pf.write_text(PASSPHRASE)
    init(tmp_path, "--root-key", "passphrase", "--passphrase-file", str(pf))
    env = {**env_for(tmp_path), "STRONGROOM_PASSPHRASE_FILE": str(pf)}
    strongroom("iam", "create-user", "dave", env=env)
    before = tomllib.loads((tmp_path / "data" / "config.toml").read_text())["root_key"]
    out = strongroom("rekey", "--offline", env=env, input="")  # no prompt: the file unseals
    assert "done" in out.stderr, out.stderr
    assert "dave" in strongroom("iam", "list-users", env=env).stdout  # the new key opens with the same file
    assert tomllib.loads((tmp_path / "data" / "config.toml").read_text())["root_key"]["source"] == before["source"]
    short = tmp_path / "short"
    short.write_text("not it\n")
    wrong = strongroom("iam", "list-users", env={**env, "STRONGROOM_PASSPHRASE_FILE": str(short)}, check=False)
    assert wrong.returncode == 1 and "wrong passphrase" in wrong.stderr and "Traceback" not in wrong.stderr
