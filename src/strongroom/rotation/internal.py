"""The Secrets Manager operations a built-in rotator needs, called in process.

Built-in (managed) rotators act as the secret's account on behalf of Secrets Manager
itself, as AWS's managed rotation does; the calls go through the same operations,
validation and audit-free internal path as a request would, minus HTTP and SigV4.
"""

from __future__ import annotations

import uuid
from typing import Any

from strongroom.auth.authorize import ROOT_POLICIES
from strongroom.context import Principal, RequestContext
from strongroom.services.secretsmanager.core import Deps
from strongroom.services.secretsmanager.service import OPERATIONS
from strongroom.storage.retry import retrying


class InternalSecrets:
    """A boto3-shaped Secrets Manager client bound to one account and region."""

    def __init__(self, deps: Deps, account_id: str, region: str):
        self.deps = deps
        principal = Principal(account_id=account_id, arn=f"arn:aws:iam::{account_id}:root",
                              principal_id=account_id, access_key_id="", type="Root", is_admin=True,
                              name="secretsmanager.amazonaws.com")
        self.ctx = RequestContext(principal=principal, region=region, request_id=str(uuid.uuid4()),
                                  user_agent="strongroom-rotation", identity_policies=ROOT_POLICIES)

    def _call(self, op: str, req: dict[str, Any]) -> dict[str, Any]:
        return retrying(OPERATIONS[op])(self.deps, self.ctx, req)

    def describe_secret(self, **req: Any) -> dict[str, Any]:
        return self._call("DescribeSecret", req)

    def get_secret_value(self, **req: Any) -> dict[str, Any]:
        return self._call("GetSecretValue", req)

    def put_secret_value(self, **req: Any) -> dict[str, Any]:
        return self._call("PutSecretValue", req)

    def update_secret_version_stage(self, **req: Any) -> dict[str, Any]:
        return self._call("UpdateSecretVersionStage", req)
