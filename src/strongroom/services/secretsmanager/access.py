"""Authorization for Secrets Manager: the actions and condition keys AWS checks.

Each operation asks `authorize` before it acts. The caller's identity policies come
with the request context; the secret's resource policy and tags come from the secret.
"""

from __future__ import annotations

from typing import Any

from strongroom.auth import policy
from strongroom.auth.authorize import decide
from strongroom.auth.memo import parsed_policy
from strongroom.context import RequestContext
from strongroom.errors import AccessDeniedException
from strongroom.storage import SecretRecord

# Request parameters that AWS exposes as secretsmanager:* condition keys.
_REQUEST_KEYS = {
    "Name": "secretsmanager:Name",
    "Description": "secretsmanager:Description",
    "KmsKeyId": "secretsmanager:KmsKeyId",
    "VersionId": "secretsmanager:VersionId",
    "VersionStage": "secretsmanager:VersionStage",
    "RotationLambdaARN": "secretsmanager:RotationLambdaARN",
    "BlockPublicPolicy": "secretsmanager:BlockPublicPolicy",
    "RecoveryWindowInDays": "secretsmanager:RecoveryWindowInDays",
    "ForceDeleteWithoutRecovery": "secretsmanager:ForceDeleteWithoutRecovery",
    "ForceOverwriteReplicaSecret": "secretsmanager:ForceOverwriteReplicaSecret",
    "RotateImmediately": "secretsmanager:RotateImmediately",
}


def condition_context(ctx: RequestContext, req: dict[str, Any], secret: SecretRecord | None,
                      resource: str) -> dict[str, Any]:
    keys = policy.global_condition_keys(ctx)
    keys["secretsmanager:SecretId"] = resource
    for param, key in _REQUEST_KEYS.items():
        if param in req:
            keys[key] = req[param]
    if "Tags" in req:
        for tag in req["Tags"]:
            keys[f"aws:RequestTag/{tag['Key']}"] = tag["Value"]
        keys["aws:TagKeys"] = [t["Key"] for t in req["Tags"]]
    if "TagKeys" in req:
        keys["aws:TagKeys"] = list(req["TagKeys"])
    if "AddReplicaRegions" in req:
        keys["secretsmanager:AddReplicaRegions"] = [r.get("Region") for r in req["AddReplicaRegions"]]
    if "RotationRules" in req:
        keys["secretsmanager:ModifyRotationRules"] = True
    if secret is not None:
        keys["secretsmanager:SecretPrimaryRegion"] = secret.primary_region or secret.region
        for tag in secret.tags:
            keys[f"secretsmanager:ResourceTag/{tag['Key']}"] = tag["Value"]
            keys[f"aws:ResourceTag/{tag['Key']}"] = tag["Value"]
        if secret.rotation_lambda_arn:
            keys["secretsmanager:resource/AllowRotationLambdaArn"] = secret.rotation_lambda_arn
    return keys


def authorize(ctx: RequestContext, action: str, resource: str, req: dict[str, Any],
              secret: SecretRecord | None = None) -> None:
    """Raise AccessDeniedException unless the caller may perform `action` on `resource`."""
    resource_policy = None
    if secret is not None and secret.resource_policy:
        resource_policy = parsed_policy(secret.resource_policy)  # None if unreadable: grants nothing
    request, result = decide(ctx, action, resource, lambda: condition_context(ctx, req, secret, resource),
                             resource_policy, secret.account_id if secret is not None else None)
    if not result.allowed:
        raise AccessDeniedException(policy.access_denied_message(request, result))
