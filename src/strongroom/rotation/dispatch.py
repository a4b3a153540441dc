"""Which runner a function ARN names: a built-in rotator, a webhook, or a Python handler."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from strongroom.crypto.rootkey import RootKey
from strongroom.rotation import builtin
from strongroom.rotation.engine import StepFailed
from strongroom.rotation.functions import ARN, FunctionRecord, FunctionRegistry
from strongroom.rotation.internal import InternalSecrets
from strongroom.rotation.invoke import CredentialError, Outcome, mint_role_credentials, run_python, run_webhook
from strongroom.rotation.permission import MESSAGE as PERMISSION_MESSAGE
from strongroom.rotation.permission import invoke_allowed
from strongroom.services.secretsmanager.core import Deps
from strongroom.storage import SecretRecord

log = logging.getLogger("strongroom.rotation")


def endpoint_from(data_dir: Path) -> Callable[[], str]:
    """This server's URL for functions: $STRONGROOM_PUBLIC_URL, else what `serve` published."""

    def endpoint() -> str:
        import os

        if os.environ.get("STRONGROOM_PUBLIC_URL"):
            return os.environ["STRONGROOM_PUBLIC_URL"]
        try:
            return str(json.loads((data_dir / "admin.json").read_text())["url"])
        except (OSError, ValueError, KeyError):
            return "http://127.0.0.1:7979"

    return endpoint


class FunctionInvoker:
    def __init__(self, registry: FunctionRegistry, deps: Deps, root: RootKey, endpoint: Callable[[], str]):
        self.registry, self.deps, self.root, self.endpoint = registry, deps, root, endpoint
        # The server's audit log (strongroom.audit.log.AuditLog), for the rotation engine that
        # shares this invoker; set where the Lambda routes are attached (http/rest.py).
        self.audit: Any = None

    def invoke(self, fn: FunctionRecord, event: Any) -> Outcome:
        """One invocation of a registered function (Lambda's Invoke, and each rotation step)."""
        if fn.webhook_url:
            return run_webhook(fn, event)
        try:
            creds = mint_role_credentials(self.deps.store, self.root, fn.role, fn.name)
        except CredentialError as err:
            return Outcome(error={"errorMessage": str(err), "errorType": "InvalidRole"})
        return run_python(self.registry, fn, event, creds, self.endpoint())

    def invoke_step(self, function_arn: str, secret: SecretRecord, event: dict[str, Any]) -> None:
        m = ARN.match(function_arn)
        if m is None:
            raise StepFailed(f"{function_arn} is not a function ARN")
        region, account, name = m.groups()
        managed = builtin.parse(name)
        if managed is not None:
            engine, strategy = managed
            sm = InternalSecrets(self.deps, secret.account_id, secret.region)
            try:
                builtin.rotate_step(builtin.ENGINES[engine], strategy, sm, event)
            except Exception as exc:  # noqa: BLE001 - the reason is recorded; never the secret value
                raise StepFailed(f"{type(exc).__name__}: {exc}") from None
            return
        fn = self.registry.get(function_arn, with_code=True)
        if fn is None:
            raise StepFailed(f"the rotation function {function_arn} does not exist")
        # As on AWS, Secrets Manager runs only a function whose resource policy (AddPermission)
        # lets it: checked before every step, so revoking the permission stops a rotation too.
        if not invoke_allowed(fn.policy, fn.arn, secret.arn):
            raise StepFailed(f"AccessDeniedException: {PERMISSION_MESSAGE}")
        outcome = self.invoke(fn, event)
        if outcome.failed:
            assert outcome.error is not None
            raise StepFailed(f"{outcome.error.get('errorType')}: {outcome.error.get('errorMessage')}")
