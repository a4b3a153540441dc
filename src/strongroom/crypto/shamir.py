"""Shamir secret sharing over GF(2^8), byte by byte (pure).

`split` turns a secret into `total` shares such that any `threshold` of them
give the secret back (`combine`) and fewer reveal nothing about it: each byte
of the secret is the constant term of its own random polynomial of degree
threshold - 1, and share x holds every polynomial's value at x (x = 1..255).

Arithmetic is in GF(2^8) with AES's reduction polynomial x^8 + x^4 + x^3 + x + 1,
through log/antilog tables of the generator 3. Shares are written for people as
`<x>-<hex of the values>-<checksum>`; the checksum catches a mistyped share
before it is combined into a wrong secret.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence

Share = tuple[int, bytes]  # (x, the polynomials' values at x)

_EXP = [0] * 510
_LOG = [0] * 256


def _build_tables() -> None:
    value = 1
    for power in range(255):
        _EXP[power] = value
        _LOG[value] = power
        # Multiply by the generator 3 = x + 1: value * 2 (reduced) XOR value.
        doubled = value << 1
        if doubled & 0x100:
            doubled ^= 0x11B
        value = doubled ^ value
    for power in range(255, 510):  # so _mul can index log a + log b without a modulo
        _EXP[power] = _EXP[power - 255]


_build_tables()


class ShareError(ValueError):
    """Shares that cannot be combined: too few, duplicated, mistyped or of different lengths."""


def gf_mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


def gf_div(a: int, b: int) -> int:
    if b == 0:
        raise ZeroDivisionError("division by zero in GF(256)")
    if a == 0:
        return 0
    return _EXP[_LOG[a] - _LOG[b] + 255]


def _evaluate(coefficients: Sequence[int], x: int) -> int:
    """Horner's rule; coefficients[0] is the constant term."""
    result = 0
    for c in reversed(coefficients):
        result = gf_mul(result, x) ^ c
    return result


def split(secret: bytes, total: int, threshold: int, *,
          random_bytes: Callable[[int], bytes] = os.urandom) -> list[Share]:
    """`total` shares of `secret`, any `threshold` of which recover it."""
    if not secret:
        raise ValueError("the secret must not be empty")
    if not 1 <= threshold <= total <= 255:
        raise ValueError("need 1 <= threshold <= shares <= 255")
    polys = []
    for byte in secret:
        polys.append([byte, *random_bytes(threshold - 1)])
    return [(x, bytes(_evaluate(p, x) for p in polys)) for x in range(1, total + 1)]


def combine(shares: Sequence[Share]) -> bytes:
    """The secret from `threshold` (or more) distinct shares, by Lagrange interpolation at 0.

    With fewer shares than the threshold the result is a wrong secret, not an
    error: nothing in the shares says how many are needed. Callers check the
    result (strongroom's vault does, by authenticating a wrapped key with it).
    """
    if not shares:
        raise ShareError("no shares")
    xs = [x for x, _ in shares]
    if len(set(xs)) != len(xs):
        raise ShareError("the same share was given twice")
    if any(not 1 <= x <= 255 for x in xs):
        raise ShareError("share index out of range")
    length = len(shares[0][1])
    if any(len(y) != length for _, y in shares):
        raise ShareError("shares of different lengths")
    # Lagrange basis at 0: l_i = prod_{j != i} x_j / (x_j - x_i); subtraction is XOR.
    weights = []
    for i, xi in enumerate(xs):
        num, den = 1, 1
        for j, xj in enumerate(xs):
            if i != j:
                num = gf_mul(num, xj)
                den = gf_mul(den, xj ^ xi)
        weights.append(gf_div(num, den))
    out = bytearray(length)
    for w, (_, y) in zip(weights, shares):
        for k in range(length):
            out[k] ^= gf_mul(w, y[k])
    return bytes(out)


def _checksum(x: int, y: bytes) -> bytes:
    return hashlib.sha256(b"strongroom/share/v1" + bytes([x]) + y).digest()[:2]


def encode_share(share: Share) -> str:
    x, y = share
    return f"{x}-{y.hex()}-{_checksum(x, y).hex()}"


def decode_share(text: str) -> Share:
    """Parse a share written by `encode_share`; ShareError when it is malformed or mistyped."""
    parts = text.strip().lower().split("-")
    if len(parts) != 3 or not parts[0].isdigit():
        raise ShareError("not a strongroom unseal share")
    try:
        x, y, check = int(parts[0]), bytes.fromhex(parts[1]), bytes.fromhex(parts[2])
    except ValueError:
        raise ShareError("not a strongroom unseal share") from None
    if not 1 <= x <= 255 or not y:
        raise ShareError("not a strongroom unseal share")
    if check != _checksum(x, y):
        raise ShareError("the share is mistyped (its checksum does not match)")
    return x, y
