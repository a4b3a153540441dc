"""The operation table: KMS (TrentService) operation name -> (deps, ctx, request) -> response."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import botocore.session  # type: ignore[import-untyped]

from strongroom.context import RequestContext
from strongroom.errors import UnsupportedOperationException
from strongroom.services.kms import aliases, cryptoops, keys, policies, rotation, tags
from strongroom.services.kms.core import KmsDeps
from strongroom.storage.retry import retrying

log = logging.getLogger("strongroom.kms")
Operation = Callable[[KmsDeps, RequestContext, dict[str, Any]], dict[str, Any]]

OPERATIONS: dict[str, Operation] = {
    "CreateKey": keys.create_key,
    "DescribeKey": keys.describe_key,
    "ListKeys": keys.list_keys,
    "UpdateKeyDescription": keys.update_key_description,
    "EnableKey": keys.enable_key,
    "DisableKey": keys.disable_key,
    "ScheduleKeyDeletion": keys.schedule_key_deletion,
    "CancelKeyDeletion": keys.cancel_key_deletion,
    "CreateAlias": aliases.create_alias,
    "UpdateAlias": aliases.update_alias,
    "DeleteAlias": aliases.delete_alias,
    "ListAliases": aliases.list_aliases,
    "Encrypt": cryptoops.encrypt,
    "Decrypt": cryptoops.decrypt,
    "ReEncrypt": cryptoops.re_encrypt,
    "GenerateDataKey": cryptoops.generate_data_key,
    "GenerateDataKeyWithoutPlaintext": cryptoops.generate_data_key_without_plaintext,
    "GenerateRandom": cryptoops.generate_random,
    "EnableKeyRotation": rotation.enable_key_rotation,
    "DisableKeyRotation": rotation.disable_key_rotation,
    "GetKeyRotationStatus": rotation.get_key_rotation_status,
    "RotateKeyOnDemand": rotation.rotate_key_on_demand,
    "ListKeyRotations": rotation.list_key_rotations,
    "TagResource": tags.tag_resource,
    "UntagResource": tags.untag_resource,
    "ListResourceTags": tags.list_resource_tags,
    "GetKeyPolicy": policies.get_key_policy,
    "PutKeyPolicy": policies.put_key_policy,
    "ListKeyPolicies": policies.list_key_policies,
}


@lru_cache(maxsize=1)
def _model_operations() -> frozenset[str]:
    return frozenset(botocore.session.get_session().get_service_model("kms").operation_names)


def _unsupported(name: str) -> Operation:
    def operation(deps: KmsDeps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        raise UnsupportedOperationException(
            f"{name} isn't available on this strongroom deployment: it serves symmetric encryption keys only.")
    return operation


class Kms:
    """The KMS service bound to its collaborators; answers on the same endpoint as Secrets Manager."""

    signing_name = "kms"
    target_prefix = "TrentService"
    model_name = "kms"

    def __init__(self, deps: KmsDeps):
        self.deps = deps

    def operation(self, name: str) -> Operation | None:
        if name in OPERATIONS:
            return OPERATIONS[name]
        # Operations of the API strongroom does not implement (asymmetric keys, grants,
        # custom key stores...) answer as KMS does for unsupported key types, not as unknown.
        return _unsupported(name) if name in _model_operations() else None

    def call(self, name: str, ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
        op = self.operation(name)
        assert op is not None
        return retrying(op)(self.deps, ctx, request)  # see storage/retry.py


def run_maintenance(deps: KmsDeps) -> tuple[int, int]:
    """One pass of background work: (keys deleted after their waiting period, keys rotated).

    Safe to call from several nodes at once: each pass runs in write
    transactions, so a key is deleted or rotated once.
    """
    return keys.purge_due_keys(deps), rotation.rotate_due_keys(deps)
