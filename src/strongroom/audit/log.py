"""The audit log of a running server: writer, forwarder, sinks and alerts, started and stopped together."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from strongroom import metrics
from strongroom.alerts.outbox import Deliverer
from strongroom.alerts.rules import Detector
from strongroom.alerts.settings import AlertSettings
from strongroom.audit import catalog
from strongroom.audit.forwarder import Consumer, Forwarder, SinkConsumer
from strongroom.audit.record import EVENT_VERSION, Event, iso
from strongroom.audit.redact import Redactor
from strongroom.audit.settings import AuditSettings
from strongroom.audit.signing import load_or_create
from strongroom.audit.sinks import build_sink
from strongroom.audit.writer import AuditUnavailable, AuditWriter
from strongroom.ids import ordered_id
from strongroom.storage import Store
from strongroom.storage.store import WouldBlock, no_blocking

log = logging.getLogger("strongroom.audit")


class AuditLog:
    def __init__(self, store: Store, settings: AuditSettings, alerts: AlertSettings, data_dir: Any):
        self.settings = settings
        self.fail_closed = settings.fail_mode == "closed"
        key = load_or_create(settings.signing_key_path)
        consumers: list[Consumer] = [SinkConsumer(build_sink(s, data_dir)) for s in settings.sinks]
        if alerts.webhooks:
            consumers.append(Detector(alerts))
        self.forwarder = Forwarder(store, consumers, poll=settings.forward_poll_seconds,
                                   retry=settings.forward_retry_seconds)
        self.writer = AuditWriter(store, key, digest_every=settings.digest_every_events,
                                  digest_interval=settings.digest_interval_seconds, max_batch=settings.max_batch,
                                  on_commit=self.forwarder.wake)
        self.deliverer = Deliverer(store, alerts)

    def start(self) -> None:
        self.writer.start()
        self.forwarder.start()
        self.deliverer.start()

    def stop(self) -> None:
        self.writer.stop()  # commits the queue and signs a final digest
        self.forwarder.stop()
        self.deliverer.stop()

    def alive(self) -> bool:
        return self.writer.alive()

    async def append(self, event: Event) -> bool:
        """Make `event` durable; False when it could not be and the call must fail (fail closed)."""
        try:
            await self.writer.append(event)
            return True
        except AuditUnavailable as exc:
            return self._unwritten(event, exc)

    def preflight(self, operation: str) -> bool:
        """Before a call acts: can its record be written? Asked for calls that write, and for every
        call while the last commit failed (so even a read's bookkeeping waits for the trail)."""
        if not self.fail_closed:
            return True
        if not catalog.changes_state(operation) and self.writer.last_error is None:
            return True
        if no_blocking.get():
            raise WouldBlock()  # the probe waits for the writer: not on the event loop
        try:
            self.writer.probe()
            return True
        except AuditUnavailable:
            return False

    def _unwritten(self, event: Event, exc: AuditUnavailable) -> bool:
        if self.fail_closed:
            return False
        metrics.AUDIT_FAIL_OPEN.inc()
        log.critical("AUDIT RECORD LOST (fail_mode=open): event_id=%s event=%s request_id=%s cause=%s",
                     event.event_id, event.event_name, event.record.get("requestID"), exc)
        return True

    def service_event(self, event_name: str, *, source: str, account_id: str, region: str,
                      resources: list[dict[str, str]] | None = None, details: dict[str, Any] | None = None,
                      error_code: str | None = None) -> None:
        """Record what the service did on its own (RotationFailed, a purge): an AwsServiceEvent."""
        now = dt.datetime.now(dt.timezone.utc)
        event_id = ordered_id()
        record: dict[str, Any] = {
            "eventVersion": EVENT_VERSION, "userIdentity": {"accountId": account_id, "invokedBy": source},
            "eventTime": iso(now), "eventSource": source, "eventName": event_name, "awsRegion": region,
            "sourceIPAddress": source, "userAgent": source, "requestParameters": None, "responseElements": None,
            "eventID": event_id, "readOnly": False, "eventType": "AwsServiceEvent", "managementEvent": True,
            "recipientAccountId": account_id, "eventCategory": "Management",
            "serviceEventDetails": Redactor().walk(None, details or {}),
        }
        if resources:
            record["resources"] = resources
        if error_code:
            record["errorCode"] = error_code
        names = [r["ARN"] for r in resources or ()]
        self.writer.append_sync(Event(record, event_id, now.timestamp(), account_id, source, event_name, False,
                                      None, None, None, error_code, names,
                                      sorted({r["type"] for r in resources or ()})))
