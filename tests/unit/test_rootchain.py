"""RootKeyChain: wraps with the active key, unwraps with whichever key did, refuses while sealed."""

from __future__ import annotations

import pytest

from strongroom.crypto import aead
from strongroom.crypto.localkey import LocalRootKey
from strongroom.crypto.rootchain import RootKeyChain, SealedError
from strongroom.crypto.rootkey import FileRootKey, RootKeyError


def test_sealed_chain_refuses_everything():
    chain = RootKeyChain()
    assert chain.sealed
    for call in (lambda: chain.key_id, lambda: chain.wrap(b"x", b"p"), lambda: chain.unwrap(b"x" * 40, b"p")):
        with pytest.raises(SealedError, match="strongroom unseal"):
            call()


def test_wraps_with_the_active_key_and_opens_with_any_held_key(tmp_path):
    old = FileRootKey.create(tmp_path / "root.key")
    new = LocalRootKey(aead.new_key(), "passphrase")
    legacy_blob = old.wrap(b"material", b"purpose")
    chain = RootKeyChain([old, new], active=new.key_id)
    assert chain.key_id == new.key_id and chain.key_ids() == [new.key_id, old.key_id]
    blob = chain.wrap(b"fresh", b"purpose")
    assert new.unwrap(blob, b"purpose") == b"fresh"
    with pytest.raises(RootKeyError):
        old.unwrap(blob, b"purpose")
    assert chain.unwrap_with_id(legacy_blob, b"purpose") == (old.key_id, b"material")
    assert chain.unwrap_with_id(blob, b"purpose") == (new.key_id, b"fresh")
    with pytest.raises(RootKeyError, match="any loaded root key"):
        chain.unwrap(legacy_blob, b"another purpose")


def test_the_file_format_is_unchanged_by_the_chain(tmp_path):
    key = FileRootKey.create(tmp_path / "root.key")
    blob = RootKeyChain([key]).wrap(b"v", b"p")
    assert key.unwrap(blob, b"p") == b"v"  # older tools reading root.key directly still work


def test_retiring_a_key_and_sealing(tmp_path):
    old, new = FileRootKey.create(tmp_path / "a.key"), FileRootKey.create(tmp_path / "b.key")
    chain = RootKeyChain([old, new])
    blob = old.wrap(b"v", b"p")
    chain.set_keys([new])
    with pytest.raises(RootKeyError):
        chain.unwrap(blob, b"p")
    with pytest.raises(RootKeyError, match="not loaded"):
        chain.set_keys([new], active=old.key_id)
    chain.seal()
    assert chain.sealed and chain.get(new.key_id) is None
