"""NextToken values: opaque, tamper-evident, bound to the listing that issued them."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.errors import InvalidNextTokenException
from strongroom.services.secretsmanager import paging

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=10,
)


@given(st.dictionaries(st.text(max_size=8).filter(lambda k: k != "k"), json_values, max_size=5))
def test_round_trip(state):
    token = paging.encode({**state, "k": "list"})
    assert paging.decode(token, "list") == {**state, "k": "list"}
    # Tokens travel in JSON and URLs: URL-safe base64 only.
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=")


def test_a_token_is_only_valid_for_the_listing_that_issued_it():
    token = paging.encode({"k": "list", "a": [1.0, 2]})
    with pytest.raises(InvalidNextTokenException):
        paging.decode(token, "versions")


def test_every_altered_byte_is_detected():
    token = paging.encode({"k": "list", "a": ["prod/db", 7]})
    raw = base64.urlsafe_b64decode(token)
    for i in range(len(raw)):
        altered = base64.urlsafe_b64encode(raw[:i] + bytes([raw[i] ^ 1]) + raw[i + 1:]).decode()
        with pytest.raises(InvalidNextTokenException) as exc:
            paging.decode(altered, "list")
        assert exc.value.code == "InvalidNextTokenException"


@pytest.mark.parametrize("token", ["", "x", "not a token", "%%%%", "é", "AAAA", "A" * 4096,
                                   base64.urlsafe_b64encode(b"\x00" * 12 + b"[]").decode()])
def test_garbage_is_invalid_next_token(token):
    with pytest.raises(InvalidNextTokenException):
        paging.decode(token, "list")


def test_a_forged_state_without_the_key_is_refused():
    body = b'{"a":["zzz",1],"k":"list"}'
    forged = base64.urlsafe_b64encode(b"\x00" * 12 + body).decode()
    with pytest.raises(InvalidNextTokenException):
        paging.decode(forged, "list")
