"""Where strongroom keeps its state, and how it is configured.

Precedence: command-line option, then environment variable, then the data
directory's config.toml, then the built-in default.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

DEFAULT_PORT = 7979
DEFAULT_HOST = "127.0.0.1"
DEFAULT_REGION = "us-east-1"
CONFIG_FILE = "config.toml"
ROOT_KEY_FILE = "root.key"
DB_FILE = "strongroom.db"


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("strongroom", appauthor=False))


def resolve_data_dir(option: str | os.PathLike[str] | None) -> Path:
    if option:
        return Path(option).expanduser().resolve()
    env = os.environ.get("STRONGROOM_DATA_DIR")
    return Path(env).expanduser().resolve() if env else default_data_dir()


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    region: str = DEFAULT_REGION
    root_key_source: str = "file"
    root_key_path: Path | None = None
    purge_interval: float = 60.0
    lease_seconds: float = 15.0  # background work moves to another node this long after its holder dies
    cache_ttl: float = 5.0  # credential and policy caches: the bound on staleness if a change event is lost
    # [cache] max_secrets: most secrets the read path keeps per process (0: no cache); see cache/secrets.py.
    cache_max_secrets: int = 100_000
    # The whole [root_key] table (source and its settings), read by strongroom.rootkeys.sources.
    root_key: dict[str, Any] = field(default_factory=dict)
    # The [audit], [alerts] and [metrics] tables, read by strongroom.monitoring.
    audit: dict[str, Any] = field(default_factory=dict)
    alerts: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def config_path(self) -> Path:
        return self.data_dir / CONFIG_FILE


def load_settings(data_dir: str | os.PathLike[str] | None = None, database_url: str | None = None) -> Settings:
    root = resolve_data_dir(data_dir)
    file_cfg: dict[str, Any] = {}
    cfg_path = root / CONFIG_FILE
    if cfg_path.exists():
        try:
            file_cfg = tomllib.loads(cfg_path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{cfg_path} is not valid TOML: {exc}") from None
    server = file_cfg.get("server", {})
    root_key = file_cfg.get("root_key", {})
    url = (
        database_url
        or os.environ.get("STRONGROOM_DATABASE_URL")
        or file_cfg.get("storage", {}).get("database_url")
        or f"sqlite:///{root / DB_FILE}"
    )
    # A relative key path is relative to the data directory, so the directory can move.
    key_path = root / root_key["path"] if "path" in root_key else root / ROOT_KEY_FILE
    return Settings(
        data_dir=root,
        database_url=url,
        region=server.get("region", DEFAULT_REGION),
        root_key_source=root_key.get("source", "file"),
        root_key_path=key_path,
        purge_interval=float(server.get("purge_interval_seconds", 60.0)),
        lease_seconds=float(server.get("lease_seconds", 15.0)),
        cache_ttl=float(server.get("cache_ttl_seconds", 5.0)),
        cache_max_secrets=_non_negative_int(file_cfg.get("cache", {}).get("max_secrets", Settings.cache_max_secrets),
                                            "[cache] max_secrets"),
        root_key=dict(root_key),
        audit=dict(file_cfg.get("audit", {})),
        alerts=dict(file_cfg.get("alerts", {})),
        metrics=dict(file_cfg.get("metrics", {})),
    )


def _non_negative_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a whole number, 0 or more (got {value!r})")
    return value
