"""What every service operation knows about the request that called it."""

from __future__ import annotations

import datetime as dt
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: who signed the request."""

    account_id: str
    arn: str
    principal_id: str
    access_key_id: str
    type: str = "IAMUser"  # CloudTrail userIdentity.type: Root, IAMUser, AssumedRole
    name: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    is_admin: bool = False
    # Role sessions (type AssumedRole): the role, the session, and what the session narrows to.
    role_name: str = ""
    role_arn: str = ""
    session_name: str = ""
    session_expiration: float | None = None
    session_created: float | None = None  # when AssumeRole issued the session (CloudTrail's creationDate)
    session_policy: str | None = None  # inline session policy (JSON text) from AssumeRole
    session_policy_arns: tuple[str, ...] = ()  # managed session policies from AssumeRole
    transitive_tag_keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Request facts passed from the HTTP layer to services (no HTTP objects)."""

    principal: Principal
    region: str
    request_id: str
    source_ip: str = "127.0.0.1"
    user_agent: str = ""
    secure_transport: bool = False
    time: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    # The caller's identity policies (auth.policy.Policy), resolved with its credentials.
    identity_policies: tuple[Any, ...] = ()
    # A role session's policies (AssumeRole Policy/PolicyArns), or None when not narrowed.
    session_policies: tuple[Any, ...] | None = None

    @property
    def account_id(self) -> str:
        return self.principal.account_id


# The request a service operation is serving, for collaborators deep inside it that must act as
# the caller (the KMS keyring under Secrets Manager evaluates key policies for the caller) without
# every function between them carrying it. Set by the service's `call`; None for background work.
current_request: ContextVar[RequestContext | None] = ContextVar("strongroom_current_request", default=None)
