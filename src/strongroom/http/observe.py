"""The gateway's observer: the audit record and metrics of every answered request.

`finish` runs after a response is built and before it is sent: it turns the Exchange into
a CloudTrail record, waits until the record is durable (group commit), and counts the
call. If the record cannot be written and the audit trail fails closed, the caller gets
InternalServiceError instead of the response. `before_call` runs just before an operation
that writes acts, so with the audit trail down such a call fails without changing state.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from strongroom import metrics
from strongroom.audit.record import Call, build
from strongroom.errors import InternalServiceError
from strongroom.http import query
from strongroom.http.app import json_error
from strongroom.http.exchange import Exchange

log = logging.getLogger("strongroom.http")
_THROTTLED = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException"})


class Observer:
    def __init__(self, audit: Any, region: str, services: dict[str, Any]):
        self.audit = audit  # strongroom.audit.log.AuditLog, or None to record nothing
        self.region = region
        self.services = services  # signing name -> service (JSON and query protocols)

    def before_call(self, ex: Exchange) -> None:
        """In the worker thread, before the operation acts."""
        if self.audit is not None and not self.audit.preflight(ex.op_name):
            log.error("audit trail unwritable: refused %s request_id=%s", ex.op_name, ex.request_id)
            raise InternalServiceError(f"An internal error occurred. Request ID: {ex.request_id}")

    def _known(self, ex: Exchange) -> tuple[Any, bool]:
        service = self.services.get(ex.service)
        return service, service is not None and service.operation(ex.op_name) is not None

    def call(self, ex: Exchange) -> Call:
        service, known = self._known(ex)
        ctx = ex.ctx
        err = ex.error
        # Without a verified signature, the credential scope is what names the caller.
        key_id, region, scope_service = (None, None, None) if ctx else (ex.credential_scope() or (None, None, None))
        return Call(
            service=ex.service or scope_service or "",
            operation=ex.op_name[:128],
            region=ctx.region if ctx else (region or self.region),
            request_id=ex.request_id,
            time=ctx.time if ctx else dt.datetime.now(dt.timezone.utc),
            source_ip=ex.source_ip,
            user_agent=ex.user_agent[:1024],
            principal=ctx.principal if ctx else None,
            access_key_id=key_id,
            model_name=service.model_name if known else None,
            params=ex.params,
            result=ex.result,
            error_code=err.code if err else None,
            error_message=err.message if err else None,
        )

    async def finish(self, ex: Exchange, response: Any) -> Any:
        outcome = ex.error.code if ex.error else "ok"
        if self.audit is not None and not await self.audit.append(build(self.call(ex))):
            response, outcome = self._internal_error(ex)
        svc, op = self._labels(ex)
        metrics.request_answered(svc, op, outcome, time.perf_counter() - ex.started)
        if outcome in _THROTTLED:
            metrics.THROTTLED.labels(svc, op).inc()
        return response

    def _labels(self, ex: Exchange) -> tuple[str, str]:
        """Metric labels from bounded sets: an operation name a client made up becomes "-"."""
        if ex.service in self.services:
            return ex.service, ex.op_name if self._known(ex)[1] else "-"
        # A service routed outside the gateway's tables (Lambda's REST routes) names its
        # operations from its own fixed route table.
        return (ex.service, ex.op_name) if ex.service else ("unknown", "-")

    def _internal_error(self, ex: Exchange) -> tuple[Any, str]:
        """The fault the caller gets instead of the response, and its code (the metric's outcome)."""
        err = InternalServiceError(f"An internal error occurred. Request ID: {ex.request_id}")
        headers = {"x-amzn-RequestId": ex.request_id}
        if ex.namespace:  # a query-protocol service (IAM, STS): XML, the code it names the fault with
            qerr = query.as_query_error(err)
            return Response(query.serialize_error(qerr, ex.request_id, ex.namespace), status_code=qerr.status,
                            media_type=query.XML_TYPE, headers=headers), qerr.code
        return json_error(err, ex.request_id), err.code


async def metrics_endpoint(_: Request) -> Response:
    return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE_LATEST)
