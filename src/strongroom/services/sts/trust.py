"""May this caller assume the role? The trust policy, judged by the policy engine.

AWS's rule for roles: the trust policy must allow the caller, and nothing may deny it.
A trust policy that names the caller (its ARN, or for a role session its role) suffices
in the role's own account; one that names only the caller's account delegates to that
account, so the caller's identity policies must allow the action too, as they must for
any cross-account assumption. Administrators' identity side is an allow-everything.
"""

from __future__ import annotations

from typing import Any

from strongroom.auth import policy
from strongroom.context import RequestContext

TRUST_POLICY_NAME = "TrustPolicy"
_ADMIN = policy.Policy("strongroom-administrator", {
    "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})


def condition_keys(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    """The condition keys an AssumeRole request carries."""
    keys = policy.global_condition_keys(ctx)
    keys["sts:RoleSessionName"] = req.get("RoleSessionName")
    for param, key in (("ExternalId", "sts:ExternalId"), ("SourceIdentity", "sts:SourceIdentity")):
        if param in req:
            keys[key] = req[param]
    if req.get("Tags"):
        for tag in req["Tags"]:
            keys[f"aws:RequestTag/{tag['Key']}"] = tag["Value"]
        keys["aws:TagKeys"] = [t["Key"] for t in req["Tags"]]
    if req.get("TransitiveTagKeys"):
        keys["sts:TransitiveTagKeys"] = list(req["TransitiveTagKeys"])
    return keys


def evaluate(trust_policy: dict[str, Any], ctx: RequestContext, action: str, role_arn: str,
             role_account: str, req: dict[str, Any]) -> tuple[policy.Request, policy.EvaluationResult, bool]:
    """(request, engine result, whether the trust policy itself has an Allow for the caller)."""
    request = policy.Request(principal_arn=ctx.principal.arn, principal_account=ctx.account_id,
                             action=action, resource=role_arn, context=condition_keys(ctx, req))
    identity = list(ctx.identity_policies)
    if ctx.principal.is_admin:
        identity.append(_ADMIN)
    result = policy.evaluate(request, identity, policy.Policy(TRUST_POLICY_NAME, trust_policy), role_account)
    trusted = any(t.policy_type == "resource" and t.applies and t.effect == "Allow" for t in result.statements)
    return request, result, trusted


def allows(trust_policy: dict[str, Any], ctx: RequestContext, action: str, role_arn: str, role_account: str,
           req: dict[str, Any]) -> bool:
    _, result, trusted = evaluate(trust_policy, ctx, action, role_arn, role_account, req)
    return result.allowed and trusted


def service_may_assume(trust_policy: dict[str, Any], service: str, role_arn: str, role_account: str) -> bool:
    """Whether the trust policy lets an AWS service principal (lambda.amazonaws.com) assume the role."""
    request = policy.Request(principal_arn="", principal_account=role_account, action="sts:AssumeRole",
                             resource=role_arn, principal_service=service)
    return policy.evaluate(request, resource_policy=policy.Policy(TRUST_POLICY_NAME, trust_policy)).allowed
