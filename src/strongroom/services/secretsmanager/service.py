"""The operation table: AWS operation name -> (deps, ctx, request) -> response."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from strongroom.context import RequestContext, current_request
from strongroom.services.secretsmanager import listing, policies, rotation, secrets, values
from strongroom.services.secretsmanager.access import authorize
from strongroom.services.secretsmanager.core import Deps
from strongroom.services.secretsmanager.password import generate
from strongroom.storage.retry import retrying

Operation = Callable[[Deps, RequestContext, dict[str, Any]], dict[str, Any]]


def get_random_password(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    authorize(ctx, "secretsmanager:GetRandomPassword", "*", req)
    password = generate(
        req.get("PasswordLength", 32),
        require_each_included_type=req.get("RequireEachIncludedType", True),
        exclude_characters=req.get("ExcludeCharacters", ""),
        exclude_numbers=req.get("ExcludeNumbers", False),
        exclude_punctuation=req.get("ExcludePunctuation", False),
        exclude_uppercase=req.get("ExcludeUppercase", False),
        exclude_lowercase=req.get("ExcludeLowercase", False),
        include_space=req.get("IncludeSpace", False),
    )
    return {"RandomPassword": password}


OPERATIONS: dict[str, Operation] = {
    "CreateSecret": secrets.create_secret,
    "UpdateSecret": secrets.update_secret,
    "DescribeSecret": secrets.describe_secret,
    "DeleteSecret": secrets.delete_secret,
    "RestoreSecret": secrets.restore_secret,
    "TagResource": secrets.tag_resource,
    "UntagResource": secrets.untag_resource,
    "GetSecretValue": values.get_secret_value,
    "BatchGetSecretValue": values.batch_get_secret_value,
    "PutSecretValue": values.put_secret_value,
    "ListSecretVersionIds": values.list_secret_version_ids,
    "UpdateSecretVersionStage": values.update_secret_version_stage,
    "ListSecrets": listing.list_secrets,
    "GetRandomPassword": get_random_password,
    "PutResourcePolicy": policies.put_resource_policy,
    "GetResourcePolicy": policies.get_resource_policy,
    "DeleteResourcePolicy": policies.delete_resource_policy,
    "ListResourcePolicies": policies.list_resource_policies,
    "ValidateResourcePolicy": policies.validate_resource_policy,
    "RotateSecret": rotation.rotate_secret,
    "CancelRotateSecret": rotation.cancel_rotate_secret,
    "ReplicateSecretToRegions": rotation.replicate_secret_to_regions,
    "RemoveRegionsFromReplication": rotation.remove_regions_from_replication,
    "StopReplicationToReplica": rotation.stop_replication_to_replica,
    "AssociateCrossAccountReplica": rotation.associate_cross_account_replica,
    "DisassociateCrossAccountReplica": rotation.disassociate_cross_account_replica,
}


class SecretsManager:
    """The Secrets Manager service bound to its collaborators."""

    signing_name = "secretsmanager"
    target_prefix = "secretsmanager"
    model_name = "secretsmanager"

    def __init__(self, deps: Deps):
        self.deps = deps

    def operation(self, name: str) -> Operation | None:
        return OPERATIONS.get(name)

    def call(self, name: str, ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
        token = current_request.set(ctx)  # KMS key policies are evaluated for this caller
        try:
            # A transaction ended by a concurrent one (PostgreSQL) is re-run whole: storage/retry.py.
            return retrying(OPERATIONS[name])(self.deps, ctx, request)
        finally:
            current_request.reset(token)
