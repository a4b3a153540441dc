"""The durable outbox of webhook deliveries, and the thread that empties it.

One row per (alert, webhook). A row is claimed by moving its next attempt past the send's
timeout, so two processes never post it at the same time; it stays pending until a 2xx
answer, with exponential backoff between attempts, and is marked failed after
`max_attempts` (a metric and an error log say so).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from typing import Any

from strongroom import metrics
from strongroom.alerts.settings import AlertSettings
from strongroom.alerts.webhook import SIGNATURE_HEADER, DeliveryError, post, sign
from strongroom.storage import Store
from strongroom.storage import audit_store as q

log = logging.getLogger("strongroom.alerts")


def outbox_rows(settings: AlertSettings, alert: dict[str, Any]) -> list[dict[str, Any]]:
    now = time.time()
    payload = json.dumps(alert, separators=(",", ":"), sort_keys=True)
    return [{"alert_id": alert["id"], "event_type": alert["type"], "target": hook.url, "payload": payload,
             "created": now, "status": "pending", "attempts": 0, "next_attempt": now}
            for hook in settings.webhooks if hook.wants(alert["type"])]


def raise_alert(store: Store, settings: AlertSettings, alert: dict[str, Any]) -> None:
    """Queue an alert raised outside the audit trail (for example by a rotation runner)."""
    rows = outbox_rows(settings, alert)
    metrics.ALERTS.labels(alert["type"]).inc()
    with store.write() as tx:
        q.enqueue(tx.conn, rows)


class Deliverer:
    def __init__(self, store: Store, settings: AlertSettings):
        self.store = store
        self.settings = settings
        self.targets = {hook.url: hook for hook in settings.webhooks}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None and self.targets:
            self._thread = threading.Thread(target=self._run, name="strongroom-alerts", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.deliver_due()
            except Exception as exc:  # noqa: BLE001 - the outbox keeps the rows; try again next tick
                log.error("alert delivery pass failed: %s", type(exc).__name__)
            self._wake.wait(self.settings.poll_seconds)
            self._wake.clear()

    def backoff(self, attempts: int) -> float:
        s = self.settings
        delay = min(s.retry_base_seconds * 2 ** max(0, attempts - 1), s.retry_max_seconds)
        return float(delay * random.uniform(0.9, 1.1))

    def deliver_due(self) -> int:
        now = time.time()
        with self.store.read() as tx:
            rows = q.due(tx.conn, now, 50)
            metrics.ALERT_OUTBOX.set(q.pending_deliveries(tx.conn))
        sent = 0
        for row in rows:
            if self._stop.is_set():
                break
            with self.store.write() as tx:
                if not q.reschedule(tx.conn, row.id, row.next_attempt, now + self.settings.timeout_seconds + 30):
                    continue  # another process took it
            sent += self._attempt(row)
        return sent

    def _attempt(self, row: Any) -> int:
        hook = self.targets.get(row.target)
        attempts = int(row.attempts) + 1
        now = time.time()
        if hook is None:
            self._finish(row.id, "failed", attempts, now, None, "webhook no longer configured")
            metrics.ALERT_DELIVERIES.labels("failed").inc()
            return 0
        body = row.payload.encode()
        headers = {"X-Strongroom-Event": row.event_type, "X-Strongroom-Delivery": row.alert_id}
        if hook.secret:
            headers[SIGNATURE_HEADER] = sign(hook.secret, body)
        try:
            post(hook.url, body, headers, self.settings.timeout_seconds)
        except DeliveryError as exc:
            if attempts >= self.settings.max_attempts:
                self._finish(row.id, "failed", attempts, now, None, str(exc))
                metrics.ALERT_DELIVERIES.labels("failed").inc()
                log.error("alert %s to %s failed after %d attempts: %s", row.alert_id, hook.url, attempts, exc)
            else:
                self._finish(row.id, "pending", attempts, now + self.backoff(attempts), None, str(exc))
                metrics.ALERT_DELIVERIES.labels("retry").inc()
            return 0
        self._finish(row.id, "delivered", attempts, now, time.time(), None)
        metrics.ALERT_DELIVERIES.labels("delivered").inc()
        return 1

    def _finish(self, row_id: int, status: str, attempts: int, next_attempt: float, delivered: float | None,
                error: str | None) -> None:
        with self.store.write() as tx:
            q.finish_delivery(tx.conn, row_id, status=status, attempts=attempts, next_attempt=next_attempt,
                              delivered=delivered, error=error)
