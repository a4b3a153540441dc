"""Assembly of the audit trail, alerts and metrics (the composition root's share for them).

server.py calls `attach` once the gateway exists: it adds the CloudTrail LookupEvents
service and the gateway's observer, and returns the Monitoring whose start/stop
start the audit writer, sink forwarder, alert deliverer and gauge refresher with the
server and stops them (committing and signing what is queued) after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from starlette.routing import Route

from strongroom import metrics
from strongroom.alerts.settings import alert_settings
from strongroom.audit.log import AuditLog
from strongroom.audit.settings import audit_settings
from strongroom.config import Settings
from strongroom.http.observe import Observer, metrics_endpoint
from strongroom.services.cloudtrail import CloudTrail
from strongroom.services.cloudtrail.service import Deps as CloudTrailDeps
from strongroom.storage import Store
from strongroom.storage.stats import secret_counts

log = logging.getLogger("strongroom")


@dataclass
class Monitoring:
    audit: AuditLog
    store: Store
    refresh_seconds: float = 30.0
    expose_metrics: bool = True
    _task: asyncio.Task[None] | None = None

    def routes(self) -> list[Route]:
        return [Route("/metrics", metrics_endpoint, methods=["GET"])] if self.expose_metrics else []

    def ready(self) -> tuple[bool, str]:
        return (True, "ready") if self.audit.alive() else (False, "audit writer not running")

    def refresh_gauges(self) -> None:
        with self.store.read() as tx:
            counts = secret_counts(tx.conn)
        metrics.SECRETS.labels("active").set(counts.active)
        metrics.SECRETS.labels("pending_deletion").set(counts.pending_deletion)
        metrics.SECRET_VERSIONS.set(counts.versions)

    async def _gauges(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.refresh_gauges)
            except Exception as exc:  # noqa: BLE001 - a gauge is stale until the next pass, nothing worse
                log.warning("metrics refresh failed: %s", type(exc).__name__)
            await asyncio.sleep(self.refresh_seconds)

    async def start(self) -> None:
        await asyncio.to_thread(self.audit.start)
        self._task = asyncio.create_task(self._gauges())

    async def stop(self) -> None:
        """After the server stopped answering: commit and sign what is queued, flush the sinks."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.to_thread(self.audit.stop)


def attach(settings: Settings, store: Store, gateway: Any) -> Monitoring:
    """Audit every call the gateway answers; serve LookupEvents; return what runs with the server."""
    audit = AuditLog(store, audit_settings(settings.audit, settings.data_dir), alert_settings(settings.alerts),
                     settings.data_dir)
    trail = CloudTrail(CloudTrailDeps(store))
    gateway.services[trail.target_prefix] = trail
    services = {s.signing_name: s for s in [*gateway.services.values(), *gateway.query_services.values()]}
    gateway.observer = Observer(audit, settings.region, services)
    return Monitoring(audit, store, refresh_seconds=float(settings.metrics.get("refresh_seconds", 30.0)),
                      expose_metrics=bool(settings.metrics.get("enabled", True)))
