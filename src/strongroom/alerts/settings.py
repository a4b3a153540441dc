"""The [alerts] section of config.toml."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ROTATION_FAILED = "rotation_failed"
SCHEDULED_FOR_DELETION = "secret_scheduled_for_deletion"
POLICY_CHANGED = "resource_policy_changed"
ACCESS_DENIED_BURST = "access_denied_burst"
ALERT_TYPES = (ROTATION_FAILED, SCHEDULED_FOR_DELETION, POLICY_CHANGED, ACCESS_DENIED_BURST)


@dataclass(frozen=True)
class Webhook:
    url: str
    events: frozenset[str]
    secret: str | None = field(default=None, repr=False)  # the HMAC key; never logged

    def wants(self, event_type: str) -> bool:
        return "*" in self.events or event_type in self.events


@dataclass(frozen=True)
class AlertSettings:
    webhooks: tuple[Webhook, ...] = ()
    access_denied_threshold: int = 10  # AccessDenied answers for one secret ...
    access_denied_window_seconds: float = 60.0  # ... within this many seconds raise one alert
    max_attempts: int = 20
    retry_base_seconds: float = 5.0
    retry_max_seconds: float = 3600.0
    timeout_seconds: float = 10.0
    poll_seconds: float = 1.0


def alert_settings(cfg: dict[str, Any]) -> AlertSettings:
    hooks = []
    for i, hook in enumerate(cfg.get("webhooks", [])):
        url = hook.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"[[alerts.webhooks]] #{i + 1}: url must be an http(s) URL")
        events = frozenset(hook.get("events", ["*"]))
        unknown = events - set(ALERT_TYPES) - {"*"}
        if unknown:
            raise ValueError(f"[[alerts.webhooks]] #{i + 1}: unknown events {sorted(unknown)}; "
                             f"known: {', '.join(ALERT_TYPES)}")
        hooks.append(Webhook(url, events, hook.get("secret")))
    return AlertSettings(
        webhooks=tuple(hooks),
        access_denied_threshold=int(cfg.get("access_denied_threshold", 10)),
        access_denied_window_seconds=float(cfg.get("access_denied_window_seconds", 60.0)),
        max_attempts=int(cfg.get("max_attempts", 20)),
        retry_base_seconds=float(cfg.get("retry_base_seconds", 5.0)),
        retry_max_seconds=float(cfg.get("retry_max_seconds", 3600.0)),
        timeout_seconds=float(cfg.get("timeout_seconds", 10.0)),
        poll_seconds=float(cfg.get("poll_seconds", 1.0)),
    )
