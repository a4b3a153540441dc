"""Prometheus metrics: one definition of every series strongroom exports.

Metrics are module-level (prometheus-client's default registry), so any layer may count
without being handed a registry: the HTTP gateway counts requests, the audit writer its
queue, rotation its attempts. Label values are always from bounded sets (known service and
operation names, AWS error codes): a client-chosen string never becomes a label.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE_LATEST", "exposition"]

# -- requests --------------------------------------------------------------------------------
REQUESTS = Counter(
    "strongroom_requests_total", "API calls answered, by service, operation and outcome "
    "(ok, or the AWS error code).", ["service", "operation", "outcome"])
LATENCY = Histogram(
    "strongroom_request_duration_seconds", "Time from request received to response sent, "
    "including the wait for the audit record to be durable.", ["service", "operation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
THROTTLED = Counter(
    "strongroom_throttled_requests_total", "Calls refused with a throttling error.", ["service", "operation"])

# -- state (refreshed periodically from the database) ------------------------------------------
SECRETS = Gauge("strongroom_secrets", "Secrets stored, by state (active, pending_deletion).", ["state"])
SECRET_VERSIONS = Gauge("strongroom_secret_versions", "Secret versions stored.")

# -- caches: callers report hits and misses; the ratio is a PromQL expression ---------------------
CACHE = Counter("strongroom_cache_requests_total", "Cache look-ups, by cache and result (hit, miss).",
                ["cache", "result"])


_CACHE_CHILDREN: dict[tuple[str, str], Any] = {}


def _cache_child(cache: str, result: str) -> Any:
    # Label look-ups take a lock; the children are few and fixed, so keep them (hot path).
    child = _CACHE_CHILDREN.get((cache, result))
    if child is None:
        child = _CACHE_CHILDREN[(cache, result)] = CACHE.labels(cache, result)
    return child


def cache_hit(cache: str) -> None:
    _cache_child(cache, "hit").inc()


def cache_miss(cache: str) -> None:
    _cache_child(cache, "miss").inc()


_REQUEST_CHILDREN: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def request_answered(service: str, operation: str, outcome: str, seconds: float) -> None:
    """Count one answered call and its latency (label values from bounded sets, see above)."""
    children = _REQUEST_CHILDREN.get((service, operation, outcome))
    if children is None:
        children = _REQUEST_CHILDREN[(service, operation, outcome)] = (
            REQUESTS.labels(service, operation, outcome), LATENCY.labels(service, operation))
    children[0].inc()
    children[1].observe(seconds)


# -- audit -------------------------------------------------------------------------------------
AUDIT_QUEUE = Gauge("strongroom_audit_queue_depth", "Audit events waiting for the writer to commit them.")
AUDIT_EVENTS = Counter("strongroom_audit_events_total", "Audit events committed by this process.")
AUDIT_BATCH = Histogram("strongroom_audit_batch_size", "Events per group commit.",
                        buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))
AUDIT_COMMIT = Histogram("strongroom_audit_commit_seconds", "Time to commit one batch of audit events.",
                         buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0))
AUDIT_WRITE_FAILURES = Counter("strongroom_audit_write_failures_total",
                               "Batches of audit events that could not be committed.")
AUDIT_FAIL_OPEN = Counter("strongroom_audit_fail_open_total",
                          "Calls answered without a durable audit record (fail_mode = open).")
AUDIT_DIGESTS = Counter("strongroom_audit_digests_total", "Signed audit digests written by this process.")
AUDIT_SINK_LAG = Gauge("strongroom_audit_sink_lag_events",
                       "Events committed but not yet delivered to a sink (or the alert detector).", ["sink"])
AUDIT_SINK_ERRORS = Counter("strongroom_audit_sink_errors_total", "Failed deliveries to a sink (retried).",
                            ["sink"])
AUDIT_WRITER_UP = Gauge("strongroom_audit_writer_up", "1 while the audit writer thread is running.")

# -- rotation (incremented by the rotation feature) ---------------------------------------------
ROTATIONS = Counter("strongroom_rotations_total", "Secret rotations finished, by result (succeeded, failed).",
                    ["result"])
ROTATION_STEPS = Counter("strongroom_rotation_steps_total",
                         "Rotation steps run (createSecret, setSecret, testSecret, finishSecret), by result.",
                         ["step", "result"])
ROTATION_DURATION = Histogram("strongroom_rotation_duration_seconds", "Time to rotate one secret.",
                              buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))

# -- alerts --------------------------------------------------------------------------------------
ALERTS = Counter("strongroom_alerts_total", "Alerts raised, by event type.", ["event"])
ALERT_DELIVERIES = Counter("strongroom_alert_deliveries_total",
                           "Webhook delivery attempts, by result (delivered, retry, failed).", ["result"])
ALERT_OUTBOX = Gauge("strongroom_alert_outbox_pending", "Alert deliveries waiting in the outbox.")


def exposition() -> bytes:
    """The text format Prometheus scrapes."""
    return bytes(generate_latest())
