"""The four rotation steps for database users, as AWS's rotation templates implement them.

single-user: the user changes its own password (falling back to AWSPREVIOUS when the
current password no longer logs in, e.g. after a half-finished earlier rotation).
alternating-users: the master user sets the password of the other of two users
(`name` and `name_clone`), so the credentials clients hold keep working until the
next rotation after this one.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal, Protocol

from strongroom.errors import AwsError
from strongroom.services.secretsmanager.password import generate

log = logging.getLogger("strongroom.rotation")
Strategy = Literal["single-user", "alternating-users"]
CLONE_SUFFIX = "_clone"


class Secrets(Protocol):
    def get_secret_value(self, **req: Any) -> dict[str, Any]: ...

    def put_secret_value(self, **req: Any) -> dict[str, Any]: ...

    def describe_secret(self, **req: Any) -> dict[str, Any]: ...

    def update_secret_version_stage(self, **req: Any) -> dict[str, Any]: ...


class Engine(Protocol):
    exclude_characters: str

    def login(self, creds: dict[str, Any]) -> Any:
        """A connection for these credentials, or None if they do not log in."""

    def set_own_password(self, conn: Any, creds: dict[str, Any], password: str) -> None: ...

    def set_user_password(self, master: Any, template_user: str, creds: dict[str, Any]) -> None:
        """As the master: create the user (with the template user's privileges) if needed, set its password."""

    def check(self, conn: Any) -> None:
        """A trivial query proving the connection is usable."""

    def close(self, conn: Any) -> None: ...


class RotationError(Exception):
    pass


def _value(sm: Secrets, arn: str, **which: str) -> dict[str, Any] | None:
    try:
        return dict(json.loads(sm.get_secret_value(SecretId=arn, **which)["SecretString"]))
    except AwsError as err:
        if err.code == "ResourceNotFoundException":
            return None
        raise


def _require(value: dict[str, Any] | None, what: str) -> dict[str, Any]:
    if value is None:
        raise RotationError(f"the {what} value is missing")
    for key in ("host", "username", "password"):
        if key not in value:
            raise RotationError(f"the {what} secret has no '{key}' field (AWS's database secret JSON shape)")
    return value


def other_user(username: str) -> str:
    return username[: -len(CLONE_SUFFIX)] if username.endswith(CLONE_SUFFIX) else username + CLONE_SUFFIX


def rotate_step(engine: Engine, strategy: Strategy, sm: Secrets, event: dict[str, Any]) -> None:
    arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    if step == "createSecret":
        current = _require(_value(sm, arn, VersionStage="AWSCURRENT"), "AWSCURRENT")
        if _value(sm, arn, VersionId=token, VersionStage="AWSPENDING") is not None:
            return  # created by an earlier attempt of this rotation
        pending = dict(current)
        if strategy == "alternating-users":
            pending["username"] = other_user(current["username"])
        exclude = current.get("excludeCharacters", engine.exclude_characters)
        pending["password"] = generate(32, exclude_characters=exclude)
        sm.put_secret_value(SecretId=arn, ClientRequestToken=token, SecretString=json.dumps(pending),
                            VersionStages=["AWSPENDING"])
    elif step == "setSecret":
        pending = _require(_value(sm, arn, VersionId=token, VersionStage="AWSPENDING"), "AWSPENDING")
        current = _require(_value(sm, arn, VersionStage="AWSCURRENT"), "AWSCURRENT")
        conn = engine.login(pending)
        if conn is not None:  # already set by an earlier attempt
            engine.close(conn)
            return
        if strategy == "single-user":
            conn = engine.login(current)
            if conn is None:
                previous = _value(sm, arn, VersionStage="AWSPREVIOUS")
                conn = engine.login(previous) if previous else None
            if conn is None:
                raise RotationError("setSecret: neither the current nor the previous password logs in")
            try:
                engine.set_own_password(conn, pending, pending["password"])
            finally:
                engine.close(conn)
        else:
            if "masterarn" not in current:
                raise RotationError("alternating users need 'masterarn' in the secret")
            master_creds = _require(_value(sm, current["masterarn"], VersionStage="AWSCURRENT"), "master")
            master = engine.login({**current, "username": master_creds["username"],
                                   "password": master_creds["password"]})
            if master is None:
                raise RotationError("setSecret: the master secret's credentials do not log in")
            try:
                engine.set_user_password(master, current["username"], pending)
            finally:
                engine.close(master)
    elif step == "testSecret":
        pending = _require(_value(sm, arn, VersionId=token, VersionStage="AWSPENDING"), "AWSPENDING")
        conn = engine.login(pending)
        if conn is None:
            raise RotationError("testSecret: the new credentials do not log in")
        try:
            engine.check(conn)
        finally:
            engine.close(conn)
    elif step == "finishSecret":
        described = sm.describe_secret(SecretId=arn)
        current_version = next((vid for vid, stages in described.get("VersionIdsToStages", {}).items()
                                if "AWSCURRENT" in stages), None)
        if current_version == token:
            return
        sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token,
                                       RemoveFromVersionId=current_version)
    else:
        raise RotationError(f"unknown step {step}")
