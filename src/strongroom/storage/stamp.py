"""The change stamp: how the processes sharing one SQLite file learn, in nanoseconds, that
another of them may have changed something.

Every write transaction that may change cached state writes a fresh random word into a
small file next to the database, once it has committed; every process maps that file into
memory. A reader that finds the word as it last saw it knows no such write committed since
its last look at the change feed, and skips the database round trip; any other word (or a
read torn by a concurrent write) sends it to the feed. Random words instead of a counter:
writers need no lock, and two writers racing each write a word that differs from every
earlier one.
"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path

from strongroom.ids import random_bits

_WORD = struct.Struct("<Q")


class ChangeStamp:
    def __init__(self, path: Path):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < _WORD.size:
                os.ftruncate(fd, _WORD.size)
            self._map = mmap.mmap(fd, _WORD.size)
        finally:
            os.close(fd)

    def read(self) -> int:
        return int(_WORD.unpack_from(self._map)[0])

    def bump(self) -> None:
        _WORD.pack_into(self._map, 0, random_bits(64))

    def close(self) -> None:
        self._map.close()


def stamp_for(database: str | None) -> ChangeStamp | None:
    """The stamp of a SQLite database file (None in memory: one process, nobody to tell)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return ChangeStamp(Path(f"{database}-changes"))
