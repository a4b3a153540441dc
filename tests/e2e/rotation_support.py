"""Helpers for rotation tests: a server that rotates quickly, roles, zipped functions."""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import Server, start_server

FAST_ROTATION = {
    "STRONGROOM_ROTATION_INTERVAL": "0.3",
    "STRONGROOM_ROTATION_LEASE_SECONDS": "3",
    "STRONGROOM_ROTATION_RETRY_SECONDS": "1",
    "STRONGROOM_ROTATION_RETRY_MAX_SECONDS": "2",
}

# A rotation function in the shape of AWS's templates, for a plain string secret.
ROTATOR = '''
import json, os, time
import boto3

def lambda_handler(event, context):
    arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    sm = boto3.client("secretsmanager", endpoint_url=os.environ["SECRETS_MANAGER_ENDPOINT"])
    if os.environ.get("FAIL_STEP") == step:
        raise ValueError("failing on purpose at " + step)
    marker = os.environ.get("PAUSE_MARKER")
    if step == "setSecret" and marker and not os.path.exists(marker):
        open(marker, "w").close()
        time.sleep(float(os.environ.get("PAUSE_SECONDS", "6")))
    versions = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    if token not in versions:
        raise ValueError("version %s is not a version of the secret" % token)
    if "AWSCURRENT" in versions[token]:
        return
    if step == "createSecret":
        try:
            sm.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
        except sm.exceptions.ResourceNotFoundException:
            value = "rotated-" + sm.get_random_password(ExcludePunctuation=True)["RandomPassword"]
            sm.put_secret_value(SecretId=arn, ClientRequestToken=token, SecretString=value,
                                VersionStages=["AWSPENDING"], RotationToken=event["RotationToken"])
    elif step == "finishSecret":
        current = next(v for v, s in versions.items() if "AWSCURRENT" in s)
        sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token,
                                       RemoveFromVersionId=current)
    return {"step": step}
'''


def zipped(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


def rotation_server(tmp: Path, **extra: str) -> Server:
    return start_server(tmp, extra_env={**FAST_ROTATION, **extra})


def execution_role(server: Server, name: str | None = None) -> str:
    """A role lambda.amazonaws.com may assume, allowed every Secrets Manager action."""
    iam = server.client("iam")
    name = name or f"rotator-{uuid.uuid4().hex[:8]}"
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "lambda.amazonaws.com"}}]}
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:*",
                                                     "Resource": "*"}]}
    iam.put_role_policy(RoleName=name, PolicyName="rotate", PolicyDocument=json.dumps(allow))
    return str(arn)


def create_rotator(server: Server, name: str, role: str, env: dict[str, str] | None = None, *,
                   allow: bool = True) -> str:
    """Register ROTATOR; with `allow`, grant Secrets Manager the invoke permission AWS requires."""
    lam = server.client("lambda")
    fn = lam.create_function(
        FunctionName=name, Runtime="python3.11", Role=role, Handler="lambda_function.lambda_handler",
        Code={"ZipFile": zipped({"lambda_function.py": ROTATOR})}, Timeout=60,
        Environment={"Variables": env or {}})
    if allow:
        allow_secrets_manager(server, name)
    return str(fn["FunctionArn"])


def allow_secrets_manager(server: Server, function_name: str, **conditions: str) -> None:
    """AddPermission as AWS's docs show it: secretsmanager.amazonaws.com may invoke the function."""
    server.client("lambda").add_permission(
        FunctionName=function_name, StatementId="SecretsManagerAccess", Action="lambda:InvokeFunction",
        Principal="secretsmanager.amazonaws.com", **conditions)


def wait_for(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition",
             server: Server | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    detail = ""
    if server is not None:  # the engine's record of what failed
        from tests.conftest import strongroom

        detail = strongroom("rotation", "status", "--json", env=server.env, check=False).stdout
    raise AssertionError(f"timed out waiting for {what} {detail}")


def rotated(sm: Any, secret_id: str, since: float | None = None) -> Callable[[], bool]:
    """True once the secret's last rotation is done (no AWSPENDING, LastRotatedDate set after `since`)."""

    def check() -> bool:
        d = sm.describe_secret(SecretId=secret_id)
        pending = any("AWSPENDING" in s for s in d.get("VersionIdsToStages", {}).values())
        last = d.get("LastRotatedDate")
        return bool(last) and not pending and (since is None or last.timestamp() > since)

    return check


class use_profile_of:
    """Point boto3 (in this process) at a server's profile files for the duration of a block."""

    KEYS = ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")

    def __init__(self, server: Server):
        import os

        self.env, self.server, self.os = os.environ, server, os

    def __enter__(self) -> "use_profile_of":
        self.saved = {k: self.env.get(k) for k in self.KEYS}
        for k in self.KEYS:
            self.env[k] = self.server.env[k]
        return self

    def __exit__(self, *_: object) -> None:
        for k, v in self.saved.items():
            if v is None:
                self.env.pop(k, None)
            else:
                self.env[k] = v
