"""Alerts: webhooks for events an operator must hear about, delivered at least once.

The detector reads the audit trail like a sink and writes alerts into a durable outbox in
the same transaction that moves its position; the deliverer posts each outbox row to its
webhook with an HMAC-SHA256 signature, retrying with backoff until it is accepted.
"""

from strongroom.alerts.settings import ALERT_TYPES, AlertSettings, Webhook, alert_settings

__all__ = ["ALERT_TYPES", "AlertSettings", "Webhook", "alert_settings"]
