"""What the gateway learns about one request as it travels, for the audit record and metrics.

Both protocol paths (AWS JSON in app.py, AWS query in query.py) fill one Exchange: the
service and operation once routed, the RequestContext once authenticated, the parameters
once validated, then the result or the error. Whatever step a request fails at, the
Exchange holds what was known by then.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request

from strongroom.context import RequestContext
from strongroom.errors import AwsError
from strongroom.ids import unique_id

_CREDENTIAL = re.compile(r"Credential=([^/,\s]{1,128})/\d{8}/([^/,\s]{1,32})/([^/,\s]{1,32})/")


@dataclass(eq=False)
class Exchange:
    request_id: str
    started: float
    source_ip: str = ""
    user_agent: str = ""
    service: str = ""  # SigV4 signing name of the service that answered ("" until routed)
    op_name: str = "-"
    principal_arn: str = "-"
    namespace: str = ""  # XML namespace of a query-protocol service
    ctx: RequestContext | None = None
    params: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: AwsError | None = None
    # From the credential scope, before (or without) a verified signature.
    scope_key_id: str | None = None
    scope_region: str | None = None
    scope_service: str | None = None

    @classmethod
    def begin(cls, request: Request) -> "Exchange":
        client = request.client
        ex = cls(unique_id(), time.perf_counter(), client.host if client else "",
                 request.headers.get("user-agent", ""))
        auth = request.headers.get("authorization", "")
        scope = request.scope.get("query_string", b"")
        if "Credential=" not in auth and b"X-Amz-Credential" in scope:
            values = parse_qs(scope.decode("latin-1")).get("X-Amz-Credential", [""])
            auth = "Credential=" + values[0]
        found = _CREDENTIAL.search(auth)
        if found:
            ex.scope_key_id, ex.scope_region, ex.scope_service = found.groups()
        return ex
