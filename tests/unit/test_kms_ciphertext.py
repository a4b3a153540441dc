"""The KMS ciphertext blob: self-describing header, authenticated context, tamper evidence."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.crypto import aead
from strongroom.crypto.kms_ciphertext import (
    FORMAT_VERSION,
    HEADER_SIZE,
    CiphertextError,
    canonical_context,
    open_blob,
    pack_header,
    parse_header,
    seal,
)

KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
MATERIAL = bytes(range(32))
CONTEXT = {"SecretARN": "arn:aws:secretsmanager:us-east-1:111122223333:secret:db-AbCdEf", "SecretVersionId": "v1"}


def test_blob_layout_is_version_key_id_material_version_nonce_ciphertext_tag():
    blob = seal(MATERIAL, KEY_ID, 7, b"hello", CONTEXT)
    assert blob[0] == FORMAT_VERSION == 1
    assert blob[1:17] == uuid.UUID(KEY_ID).bytes
    assert int.from_bytes(blob[17:21], "big") == 7
    assert len(blob) == HEADER_SIZE + aead.NONCE_SIZE + len(b"hello") + 16
    assert b"hello" not in blob


def test_header_names_key_and_material_version():
    header = parse_header(seal(MATERIAL, KEY_ID, 3, b"x", None))
    assert (header.key_id, header.material_version) == (KEY_ID, 3)


def test_round_trip_with_and_without_context():
    assert open_blob(MATERIAL, seal(MATERIAL, KEY_ID, 1, b"data", CONTEXT), CONTEXT) == b"data"
    assert open_blob(MATERIAL, seal(MATERIAL, KEY_ID, 1, b"data", None), {}) == b"data"


def test_each_encryption_uses_a_fresh_nonce():
    assert seal(MATERIAL, KEY_ID, 1, b"same", None) != seal(MATERIAL, KEY_ID, 1, b"same", None)


@pytest.mark.parametrize("context", [
    None,
    {"SecretARN": CONTEXT["SecretARN"]},
    {**CONTEXT, "SecretVersionId": "v2"},
    {**CONTEXT, "extra": ""},
])
def test_wrong_encryption_context_is_refused(context):
    blob = seal(MATERIAL, KEY_ID, 1, b"data", CONTEXT)
    with pytest.raises(CiphertextError):
        open_blob(MATERIAL, blob, context)


def test_context_order_does_not_matter():
    reordered = dict(reversed(list(CONTEXT.items())))
    assert open_blob(MATERIAL, seal(MATERIAL, KEY_ID, 1, b"data", CONTEXT), reordered) == b"data"


def test_context_encoding_is_unambiguous():
    assert canonical_context({"ab": "c"}) != canonical_context({"a": "bc"})
    assert canonical_context({"a": "b", "c": ""}) != canonical_context({"a": "b\x00\x00\x00\x01c"})
    assert canonical_context({}) == canonical_context(None)


@pytest.mark.parametrize("offset", [0, 1, 16, 17, 20, 21, 33, -17, -1])
def test_any_flipped_byte_is_refused(offset):
    blob = bytearray(seal(MATERIAL, KEY_ID, 1, b"some plaintext", CONTEXT))
    blob[offset] ^= 0x01
    with pytest.raises(CiphertextError):
        open_blob(MATERIAL, bytes(blob), CONTEXT)


def test_header_pointing_at_another_material_version_is_refused():
    blob = bytearray(seal(MATERIAL, KEY_ID, 1, b"data", None))
    blob[17:21] = (2).to_bytes(4, "big")
    with pytest.raises(CiphertextError):
        open_blob(MATERIAL, bytes(blob), None)


def test_wrong_material_is_refused():
    with pytest.raises(CiphertextError):
        open_blob(bytes(32), seal(MATERIAL, KEY_ID, 1, b"data", None), None)


@pytest.mark.parametrize("blob", [b"", b"\x01" * 20, b"\x02" + bytes(60), bytes(HEADER_SIZE + 27)])
def test_garbage_is_not_a_ciphertext(blob):
    with pytest.raises(CiphertextError):
        parse_header(blob)


def test_truncated_blob_is_refused():
    blob = seal(MATERIAL, KEY_ID, 1, b"data", None)
    with pytest.raises(CiphertextError):
        open_blob(MATERIAL, blob[:-1], None)


def test_header_rejects_out_of_range_versions():
    with pytest.raises(ValueError):
        pack_header(KEY_ID, 2**32)


@given(plaintext=st.binary(min_size=1, max_size=4096),
       context=st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=20), max_size=4),
       version=st.integers(min_value=0, max_value=2**32 - 1))
def test_round_trip_property(plaintext, context, version):
    blob = seal(MATERIAL, KEY_ID, version, plaintext, context)
    assert parse_header(blob).material_version == version
    assert open_blob(MATERIAL, blob, context) == plaintext
