"""The Sink interface."""

from __future__ import annotations

from typing import Protocol


class Sink(Protocol):
    name: str  # stable across restarts: the forwarder keeps the sink's position under it

    def write(self, records: list[str]) -> None:
        """Deliver records (one JSON document each) in order; raise if they may not have arrived."""
        ...

    def close(self) -> None: ...
