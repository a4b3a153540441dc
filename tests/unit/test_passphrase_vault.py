"""The passphrase vault: root keys wrapped under a KEK from a passphrase (scrypt) or from shares."""

from __future__ import annotations

import json
import stat

import pytest

from strongroom.crypto.passphrase import MIN_PASSPHRASE, UnsealError, Vault
from strongroom.crypto.rootkey import RootKeyError


def test_passphrase_vault_opens_with_the_passphrase_only(tmp_path):
    path = tmp_path / "root-passphrase.json"
    vault, kek = Vault.create_with_passphrase(path, "correct horse battery")
    key = vault.add_key(kek)
    vault.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = Vault.load(path)
    opened = loaded.open(loaded.derive("correct horse battery"))
    assert opened.key_id == key.key_id
    assert opened.unwrap(key.wrap(b"data key", b"p"), b"p") == b"data key"
    with pytest.raises(UnsealError, match="wrong passphrase"):
        loaded.open(loaded.derive("correct horse battery!"))
    data = json.loads(path.read_text())
    assert data["kdf"]["name"] == "scrypt" and data["kdf"]["n"] >= 2**14 and len(data["kdf"]["salt"]) >= 20
    assert data["shares"] is None and list(data["keys"]) == [key.key_id]


def test_short_passphrases_are_refused(tmp_path):
    with pytest.raises(RootKeyError, match=str(MIN_PASSPHRASE)):
        Vault.create_with_passphrase(tmp_path / "v.json", "short")


def test_the_same_passphrase_with_another_salt_is_another_kek(tmp_path):
    a, kek_a = Vault.create_with_passphrase(tmp_path / "a.json", "the same passphrase")
    b, kek_b = Vault.create_with_passphrase(tmp_path / "b.json", "the same passphrase")
    assert a.salt != b.salt and kek_a != kek_b


def test_shares_vault_opens_with_any_threshold_of_the_shares(tmp_path):
    path = tmp_path / "root-passphrase.json"
    vault, kek, shares = Vault.create_with_shares(path, 5, 3)
    key = vault.add_key(kek)
    vault.save()
    loaded = Vault.load(path)
    assert (loaded.mode, loaded.total, loaded.threshold) == ("shares", 5, 3)
    for chosen in (shares[:3], shares[2:], [shares[0], shares[2], shares[4]]):
        assert loaded.open(loaded.combine(chosen)).key_id == key.key_id
    with pytest.raises(UnsealError, match="3 shares are needed"):
        loaded.combine(shares[:2])
    # Three shares of another vault combine to another KEK, which does not open this one.
    _, _, foreign = Vault.create_with_shares(tmp_path / "other.json", 5, 3)
    with pytest.raises(UnsealError, match="wrong shares"):
        loaded.open(loaded.combine(foreign[:3]))
    with pytest.raises(UnsealError, match="not a passphrase"):
        loaded.derive("anything at all")
    text = path.read_text()
    assert not any(s.split("-")[1] in text for s in shares), "shares must never be stored"


def test_vault_holds_several_keys_during_a_rekey(tmp_path):
    vault, kek = Vault.create_with_passphrase(tmp_path / "v.json", "passphrase one")
    old, new = vault.add_key(kek), vault.add_key(kek)
    with pytest.raises(RootKeyError, match="holds 2 root keys"):
        vault.open(kek)
    assert vault.open(kek, new.key_id).key_id == new.key_id
    vault.remove_key(old.key_id)
    assert vault.open(kek).key_id == new.key_id


def test_a_wrapped_root_key_moved_to_another_id_does_not_open(tmp_path):
    vault, kek = Vault.create_with_passphrase(tmp_path / "v.json", "passphrase one")
    a, b = vault.add_key(kek), vault.add_key(kek)
    vault.keys[a.key_id], vault.keys[b.key_id] = vault.keys[b.key_id], vault.keys[a.key_id]
    with pytest.raises(UnsealError):
        vault.open(kek, a.key_id)


def test_missing_or_foreign_files_are_clear_errors(tmp_path):
    with pytest.raises(RootKeyError, match="strongroom init --root-key passphrase"):
        Vault.load(tmp_path / "absent.json")
    (tmp_path / "x.json").write_text('{"format": "something else"}')
    with pytest.raises(RootKeyError, match="not a strongroom passphrase vault"):
        Vault.load(tmp_path / "x.json")
