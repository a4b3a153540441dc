"""What the gateway learns about one request as it travels, for the audit record and metrics.

Every protocol path (AWS JSON in app.py, AWS query in query.py, Lambda's REST routes in
rest.py) fills one Exchange: the request's facts read once from the ASGI scope, the
service and operation once routed, the RequestContext once authenticated, the parameters
once validated, then the result or the error. Whatever step a request fails at, the
Exchange holds what was known by then.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from strongroom.auth.sigv4 import WireRequest
from strongroom.context import RequestContext
from strongroom.errors import AwsError
from strongroom.ids import unique_id

_CREDENTIAL = re.compile(r"Credential=([^/,\s]{1,128})/\d{8}/([^/,\s]{1,32})/([^/,\s]{1,32})/")


@dataclass(eq=False, slots=True)
class Exchange:
    request_id: str
    started: float
    method: str = "POST"
    path: str = "/"
    query_string: str = ""  # raw, percent-encoded
    headers: list[tuple[str, str]] | None = None  # as they arrived (ASGI names are lower-case)
    header: dict[str, str] | None = None  # name -> value (the last, if repeated)
    secure: bool = False
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

    @classmethod
    def begin(cls, scope: Mapping[str, Any]) -> "Exchange":
        """The request's facts from its ASGI scope, decoded once for every later step."""
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        header = dict(headers)
        client = scope.get("client")
        return cls(unique_id(), time.perf_counter(), scope["method"], scope.get("root_path", "") + scope["path"],
                   scope.get("query_string", b"").decode("latin-1"), headers, header,
                   scope.get("scheme") == "https", client[0] if client else "", header.get("user-agent", ""))

    def wire(self, body: bytes) -> WireRequest:
        """The request as SigV4 sees it."""
        return WireRequest(self.method, self.path, self.query_string, self.headers or [], body)

    def credential_scope(self) -> tuple[str, str, str] | None:
        """(access key id, region, service) from the credential scope, verified or not: what the
        audit record names when the signature never verified."""
        auth = (self.header or {}).get("authorization", "")
        if "Credential=" not in auth and "X-Amz-Credential" in self.query_string:
            values = parse_qs(self.query_string).get("X-Amz-Credential", [""])
            auth = "Credential=" + values[0]
        found = _CREDENTIAL.search(auth)
        return found.groups() if found else None  # type: ignore[return-value]
