"""Shamir secret sharing over GF(256): any threshold of the shares, and only they, give the secret."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.crypto import shamir
from strongroom.crypto.shamir import ShareError, combine, decode_share, encode_share, gf_div, gf_mul, split

secrets_ = st.binary(min_size=1, max_size=48)


@st.composite
def scheme(draw: st.DrawFn) -> tuple[bytes, int, int]:
    total = draw(st.integers(1, 12))
    return draw(secrets_), total, draw(st.integers(1, total))


@given(scheme(), st.randoms(use_true_random=False))
def test_any_threshold_of_the_shares_recovers_the_secret(params, rnd):
    secret, total, threshold = params
    shares = split(secret, total, threshold)
    assert [x for x, _ in shares] == list(range(1, total + 1))
    assert all(len(y) == len(secret) for _, y in shares)
    chosen = rnd.sample(shares, rnd.randint(threshold, total))
    assert combine(chosen) == secret


@settings(max_examples=50)
@given(st.binary(min_size=16, max_size=32), st.integers(2, 8), st.randoms(use_true_random=False))
def test_fewer_shares_than_the_threshold_give_a_wrong_secret(secret, threshold, rnd):
    shares = split(secret, threshold + 2, threshold)
    assert combine(rnd.sample(shares, threshold - 1)) != secret


def test_one_share_short_reveals_nothing_about_a_byte():
    # With threshold 2, one share's value is uniform whatever the secret: every secret byte is
    # consistent with it (each line through the share meets x = 0 at a different value).
    x, y = split(b"\x2a", 3, 2)[0]
    candidates = {combine([(x, y), (x + 1, bytes([other]))]) for other in range(256)}
    assert candidates == {bytes([b]) for b in range(256)}


@given(st.integers(1, 255), st.integers(1, 255), st.integers(1, 255))
def test_gf256_is_a_field(a, b, c):
    assert gf_mul(a, b) == gf_mul(b, a)
    assert gf_mul(a, gf_mul(b, c)) == gf_mul(gf_mul(a, b), c)
    assert gf_mul(a, b ^ c) == gf_mul(a, b) ^ gf_mul(a, c)
    assert gf_mul(gf_div(a, b), b) == a
    assert gf_mul(a, 0) == 0 and gf_mul(a, 1) == a


def test_aes_field_known_product():
    assert gf_mul(0x57, 0x83) == 0xC1  # FIPS-197 section 4.2
    assert gf_mul(0x57, 0x13) == 0xFE


def test_every_subset_of_a_3_of_5_scheme():
    secret = bytes(range(32))
    shares = split(secret, 5, 3)
    for k in (3, 4, 5):
        for subset in itertools.combinations(shares, k):
            assert combine(list(subset)) == secret


@given(st.integers(1, 255), st.binary(min_size=1, max_size=40))
def test_share_text_round_trips(x, y):
    text = encode_share((x, y))
    assert decode_share(text) == (x, y)
    assert decode_share("  " + text.upper() + "\n") == (x, y)


def test_a_mistyped_share_is_caught_by_its_checksum():
    text = encode_share(split(b"secret-kek-bytes", 3, 2)[0])
    x, body, check = text.split("-")
    flipped = body[:5] + ("0" if body[5] != "0" else "1") + body[6:]
    with pytest.raises(ShareError, match="mistyped"):
        decode_share(f"{x}-{flipped}-{check}")
    with pytest.raises(ShareError):
        decode_share("not a share")
    with pytest.raises(ShareError):
        decode_share(f"0-{body}-{check}")


def test_combine_refuses_duplicates_and_mixed_lengths():
    shares = split(b"abcdef", 4, 2)
    with pytest.raises(ShareError, match="twice"):
        combine([shares[0], shares[0]])
    with pytest.raises(ShareError, match="lengths"):
        combine([shares[0], (shares[1][0], shares[1][1][:3])])
    with pytest.raises(ShareError):
        combine([])


@pytest.mark.parametrize("total,threshold", [(0, 0), (3, 4), (256, 2), (3, 0)])
def test_split_refuses_impossible_schemes(total, threshold):
    with pytest.raises(ValueError):
        split(b"x", total, threshold)


def test_coefficients_come_from_the_random_source():
    calls: list[int] = []

    def fixed(n: int) -> bytes:
        calls.append(n)
        return bytes(n)

    # Zero coefficients: every share holds the secret itself, proving the source was used.
    assert split(b"\x07\x08", 3, 3, random_bytes=fixed) == [(1, b"\x07\x08"), (2, b"\x07\x08"), (3, b"\x07\x08")]
    assert calls == [2, 2]
    assert shamir.split(b"\x07", 2, 2, random_bytes=lambda n: random.Random(1).randbytes(n)) != [(1, b"\x07")] * 2
