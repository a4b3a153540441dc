"""Events as JSON lines on standard output (for container log collectors)."""

from __future__ import annotations

import sys


class StdoutSink:
    def __init__(self, name: str | None = None):
        self.name = name or "stdout"

    def write(self, records: list[str]) -> None:
        sys.stdout.write("".join(r + "\n" for r in records))
        sys.stdout.flush()

    def close(self) -> None:
        pass
