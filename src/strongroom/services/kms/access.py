"""Key policies, enforced as AWS KMS evaluates them (the policy engine decides; this module asks).

KMS differs from other services in one rule: the key policy is always
consulted and must allow the request, either naming the caller (or `*`)
directly, or naming the key's account (`arn:aws:iam::<account>:root`), which
delegates to that account's IAM policies, so an identity-policy Allow is then
needed too. An identity policy alone never suffices. A caller of another
account needs both: the key policy must name it or its account, and its own
identity policies must allow. Any applicable Deny wins.

Session policies narrow what a role session's identity policies grant; a key
policy naming the session directly is not narrowed (AWS's rule for
resource-based policies).

Calls with no request behind them (background work, Secrets Manager acting
without a caller) are the service's own and are not evaluated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from strongroom.auth import policy
from strongroom.auth.memo import DECISIONS, parsed_policy
from strongroom.context import RequestContext
from strongroom.errors import AccessDeniedException, AwsError
from strongroom.storage.kms_store import KmsKeyRecord

if TYPE_CHECKING:
    from strongroom.services.kms.core import Caller

KEY_POLICY_NAME = "KeyPolicy"
# Operations AWS KMS lets another account perform on a key, when both policies allow.
CROSS_ACCOUNT_ACTIONS = frozenset({
    "DescribeKey", "Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo", "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext", "CreateGrant", "RetireGrant", "RevokeGrant", "ListGrants",
})
_CRYPTO = frozenset({"Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo"})


def condition_keys(ctx: RequestContext, caller: "Caller", key: KmsKeyRecord | None, action: str, *,
                   encryption_context: Mapping[str, str] | None = None,
                   request_alias: str | None = None) -> dict[str, Any]:
    """The aws:* and kms:* condition keys KMS sets for this request."""
    keys = policy.global_condition_keys(ctx)
    keys["kms:CallerAccount"] = ctx.account_id
    if caller.via_service:
        keys["kms:ViaService"] = f"{caller.via_service}.{key.region if key else ctx.region}.amazonaws.com"
    if key is not None:
        keys["kms:KeySpec"], keys["kms:KeyUsage"], keys["kms:KeyOrigin"] = key.key_spec, key.key_usage, key.origin
        for tag in key.tags:
            keys[f"aws:ResourceTag/{tag['TagKey']}"] = tag["TagValue"]
    if encryption_context is not None:
        for name, value in encryption_context.items():
            keys[f"kms:EncryptionContext:{name}"] = value
        keys["kms:EncryptionContextKeys"] = list(encryption_context)
    if action in _CRYPTO:
        keys["kms:EncryptionAlgorithm"] = "SYMMETRIC_DEFAULT"
    if request_alias:
        keys["kms:RequestAlias"] = request_alias
    return keys


def _denied(request: policy.Request, why: str) -> AwsError:
    head = (f"User: {request.principal_arn} is not authorized to perform: {request.action} "
            f"on resource: {request.resource}")
    return AccessDeniedException(f"{head} {why}")


def authorize_key(caller: "Caller", key: KmsKeyRecord, action: str, *,
                  encryption_context: Mapping[str, str] | None = None,
                  request_alias: str | None = None) -> None:
    """AccessDeniedException unless the key policy (and, where it delegates, IAM) allows `action`."""
    ctx = caller.ctx
    if ctx is None:
        return
    request = policy.Request(principal_arn=ctx.principal.arn, principal_account=ctx.account_id,
                             action=f"kms:{action}", resource=key.arn)

    def keys() -> dict[str, Any]:
        return condition_keys(ctx, caller, key, action, encryption_context=encryption_context,
                              request_alias=request_alias)

    document = parsed_policy(key.policy)
    if document is None:
        document = {}  # stored policies were validated; an unreadable one grants nothing
    result = DECISIONS.evaluate(request, ctx.identity_policies, policy.Policy(KEY_POLICY_NAME, document),
                                key.account_id, keys)
    applying = [t for t in result.statements if t.applies]
    denies = [t for t in applying if t.effect == "Deny"]
    if denies:
        kind = "identity" if any(t.policy_type == "identity" for t in denies) else "resource"
        raise _denied(request, f"with an explicit deny in {'an' if kind == 'identity' else 'a'} {kind}-based policy")
    allows = [t for t in applying if t.effect == "Allow"]
    key_direct = any(t.policy_type == "resource" and not t.via_account for t in allows)
    key_account = any(t.policy_type == "resource" and t.via_account for t in allows)
    identity = any(t.policy_type == "identity" for t in allows)
    cross = ctx.account_id != key.account_id
    if not (key_direct or key_account):
        raise _denied(request, f"because no resource-based policy allows the kms:{action} action")
    if (cross or not key_direct) and not identity:
        raise _denied(request, f"because no identity-based policy allows the kms:{action} action")
    if ctx.session_policies is not None and (cross or not key_direct):
        session = DECISIONS.evaluate(request, ctx.session_policies, None, ctx.account_id, keys)
        if not session.allowed:
            raise _denied(request, f"because no session policy allows the kms:{action} action")


def authorize_identity(ctx: RequestContext, action: str, resource: str = "*",
                       extra: Mapping[str, Any] | None = None) -> None:
    """Operations on no key (CreateKey, ListKeys, ListAliases, GenerateRandom) and on alias names
    are decided by IAM policies alone, as in AWS."""
    from strongroom.auth.authorize import decide

    keys = policy.global_condition_keys(ctx)
    keys["kms:CallerAccount"] = ctx.account_id
    keys.update(extra or {})
    request, result = decide(ctx, f"kms:{action}", resource, keys)
    if not result.allowed:
        raise AccessDeniedException(policy.access_denied_message(request, result))
