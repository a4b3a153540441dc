"""Deciding one request for a RequestContext: identity, resource and session policies (pure)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from strongroom.auth import policy
from strongroom.auth.memo import DECISIONS
from strongroom.context import RequestContext

# The account root may do anything in its account (used by local administrative commands).
ROOT_POLICIES = (policy.Policy("AccountRoot", {"Version": "2012-10-17",
                                               "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),)


def decide(ctx: RequestContext, action: str, resource: str,
           context: Mapping[str, Any] | Callable[[], Mapping[str, Any]],
           resource_policy: Mapping[str, Any] | None = None,
           resource_account: str | None = None) -> tuple[policy.Request, policy.EvaluationResult]:
    """Evaluate `action` on `resource` for the caller; a role session's policies can only narrow.

    `context` is the condition keys, or a function building them when a decision needs them."""
    keys = context if callable(context) else None
    request = policy.Request(principal_arn=ctx.principal.arn, principal_account=ctx.account_id,
                             action=action, resource=resource, context={} if keys else context)  # type: ignore[arg-type]
    rp = None if resource_policy is None else policy.Policy(policy.RESOURCE_POLICY_NAME, resource_policy)
    owner = resource_account or ctx.account_id
    result = DECISIONS.evaluate(request, ctx.identity_policies, rp, owner, keys)
    if result.allowed and ctx.session_policies is not None:
        session = DECISIONS.evaluate(request, ctx.session_policies, None, owner, keys)
        if not session.allowed:
            result = session
    return request, result
