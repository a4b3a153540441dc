"""Events as JSON lines in a file, rotated by size and age, old files removed.

A rotated file is renamed `<name>.<UTC timestamp>`; `keep` and `max_age_days` bound how
many stay. Files are created mode 0600: they hold who accessed what, if never a value.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path
from typing import IO


class FileSink:
    def __init__(self, path: Path, *, name: str | None = None, max_bytes: int = 100 * 1024 * 1024,
                 rotate_seconds: float = 86400.0, keep: int = 14, max_age_days: float | None = None,
                 fsync: bool = False):
        self.path = path
        self.name = name or f"file:{path}"
        self.max_bytes = max_bytes
        self.rotate_seconds = rotate_seconds
        self.keep = keep
        self.max_age_days = max_age_days
        self.fsync = fsync
        self._file: IO[bytes] | None = None
        self._size = 0
        self._opened = 0.0

    def _open(self) -> IO[bytes]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        f = os.fdopen(fd, "ab")
        self._size = os.fstat(fd).st_size
        self._opened = time.time()
        return f

    def _rotate(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.path.exists() and self.path.stat().st_size > 0:
            stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
            os.replace(self.path, self.path.with_name(f"{self.path.name}.{stamp}"))
        self._prune()

    def _prune(self) -> None:
        rotated = sorted(self.path.parent.glob(f"{self.path.name}.*"), reverse=True)  # newest first
        cutoff = time.time() - self.max_age_days * 86400 if self.max_age_days is not None else None
        for i, old in enumerate(rotated):
            if i >= self.keep or (cutoff is not None and old.stat().st_mtime < cutoff):
                old.unlink(missing_ok=True)

    def write(self, records: list[str]) -> None:
        data = "".join(r + "\n" for r in records).encode("utf-8")
        if self._file is None:
            self._file = self._open()
        due = self.rotate_seconds > 0 and time.time() - self._opened >= self.rotate_seconds
        if self._size > 0 and (due or self._size + len(data) > self.max_bytes):
            self._rotate()
            self._file = self._open()
        self._file.write(data)
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())
        self._size += len(data)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
