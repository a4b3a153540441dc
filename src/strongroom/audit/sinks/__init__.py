"""Audit sinks: where committed events are copied (JSON-lines files, stdout, syslog).

A sink receives the stored record text, already redacted, in commit order; the forwarder
retries a failed write, so a sink sees every event at least once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from strongroom.audit.sinks.base import Sink
from strongroom.audit.sinks.file import FileSink
from strongroom.audit.sinks.stdout import StdoutSink
from strongroom.audit.sinks.syslog import SyslogSink

__all__ = ["FileSink", "Sink", "StdoutSink", "SyslogSink", "build_sink"]


def build_sink(cfg: dict[str, Any], data_dir: Path) -> Sink:
    """A sink from one [[audit.sinks]] table of config.toml."""
    kind = cfg.get("type")
    if kind == "file":
        path = Path(cfg.get("path", "audit.jsonl"))
        return FileSink(
            path if path.is_absolute() else data_dir / path,
            name=cfg.get("name"),
            max_bytes=int(cfg.get("max_bytes", 100 * 1024 * 1024)),
            rotate_seconds=float(cfg.get("rotate_seconds", 86400)),
            keep=int(cfg.get("keep", 14)),
            max_age_days=float(cfg["max_age_days"]) if "max_age_days" in cfg else None,
            fsync=bool(cfg.get("fsync", False)),
        )
    if kind == "stdout":
        return StdoutSink(name=cfg.get("name"))
    if kind == "syslog":
        return SyslogSink(address=str(cfg.get("address", "/dev/log")), facility=str(cfg.get("facility", "auth")),
                          protocol=str(cfg.get("protocol", "udp")), tag=str(cfg.get("tag", "strongroom")),
                          name=cfg.get("name"))
    raise ValueError(f"unknown audit sink type {kind!r} (file, stdout, syslog)")
