"""Identifiers that must be unique but need not be secret: request ids, audit event ids and
the change stamp's words.

`uuid.uuid4()` reads the kernel's random source on every call, and that system call lets go
of the interpreter lock: on a busy server the thread then waits to get it back, once per
id, several ids per request. These come from a generator seeded once from the kernel
(again in every forked worker, so two processes never share a sequence).
"""

from __future__ import annotations

import os
import random
import time

_rng = random.Random(os.urandom(32))


def _reseed() -> None:
    _rng.seed(os.urandom(32))


os.register_at_fork(after_in_child=_reseed)

_VERSION_4 = 0x4 << 76  # the version nibble of a random UUID
_VARIANT = 0x2 << 62  # the RFC 4122 variant bits
_KEEP = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)
_LOW_62 = (1 << 62) - 1


def _text(value: int) -> str:
    """A 128-bit UUID in its 36-character text form."""
    h = "%032x" % value
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def random_bits(n: int) -> int:
    """`n` random bits from the same generator (unique, not secret)."""
    return _rng.getrandbits(n)


def unique_id() -> str:
    """A random (version 4) UUID in its 36-character text form."""
    return _text((_rng.getrandbits(128) & _KEEP) | _VERSION_4 | _VARIANT)


def ordered_id() -> str:
    """A time-ordered (version 7, RFC 9562) UUID: the millisecond first, then random bits.

    Audit event ids: rows are appended in time order, so their unique index grows at one
    end instead of touching a random page of a large index for every event."""
    rand = _rng.getrandbits(74)
    return _text(((time.time_ns() // 1_000_000) << 80) | (0x7 << 76) | ((rand >> 62) << 64) | _VARIANT
                 | (rand & _LOW_62))
