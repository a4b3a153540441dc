"""The [audit] section of config.toml."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strongroom.audit.signing import KEY_FILE

FAIL_MODES = ("closed", "open")


@dataclass(frozen=True)
class AuditSettings:
    signing_key_path: Path
    fail_mode: str = "closed"  # closed: a call whose record can't be written fails; open: it proceeds
    digest_every_events: int = 1000
    digest_interval_seconds: float = 300.0
    max_batch: int = 512
    forward_poll_seconds: float = 1.0
    forward_retry_seconds: float = 5.0  # a sink that failed is retried after this long
    sinks: tuple[dict[str, Any], ...] = field(default_factory=tuple)


def audit_settings(cfg: dict[str, Any], data_dir: Path) -> AuditSettings:
    mode = cfg.get("fail_mode", "closed")
    if mode not in FAIL_MODES:
        raise ValueError(f"[audit] fail_mode must be one of {', '.join(FAIL_MODES)}, not {mode!r}")
    key = Path(cfg.get("signing_key", KEY_FILE))
    return AuditSettings(
        signing_key_path=key if key.is_absolute() else data_dir / key,
        fail_mode=mode,
        digest_every_events=int(cfg.get("digest_every_events", 1000)),
        digest_interval_seconds=float(cfg.get("digest_interval_seconds", 300.0)),
        max_batch=int(cfg.get("max_batch", 512)),
        forward_poll_seconds=float(cfg.get("forward_poll_seconds", 1.0)),
        forward_retry_seconds=float(cfg.get("forward_retry_seconds", 5.0)),
        sinks=tuple(dict(s) for s in cfg.get("sinks", [])),
    )
