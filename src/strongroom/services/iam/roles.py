"""IAM roles: trust policies, session duration, tags."""

from __future__ import annotations

from typing import Any

from strongroom.auth.credentials import new_unique_id
from strongroom.context import RequestContext
from strongroom.errors import DeleteConflict, EntityAlreadyExists, LimitExceeded, NoSuchEntity
from strongroom.services.iam.core import (
    Deps,
    check_tags,
    check_trust_policy,
    merge_tags,
    name_taken,
    page,
    path_matches,
    policy_size,
    remove_tags,
    ts,
    writing,
)
from strongroom.storage import Tx, iam_store
from strongroom.storage.iam_store import RoleRecord

MAX_TRUST_POLICY_SIZE = 2048


def require_role(tx: Tx, ctx: RequestContext, role_name: str) -> RoleRecord:
    role = iam_store.get_role(tx.conn, ctx.account_id, role_name)
    if role is None:
        raise NoSuchEntity(f"The role with name {role_name} cannot be found.")
    return role


def role_shape(role: RoleRecord, *, detail: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Path": role.path,
        "RoleName": role.role_name,
        "RoleId": role.role_id,
        "Arn": role.arn,
        "CreateDate": ts(role.created_date),
        "AssumeRolePolicyDocument": role.assume_role_policy,
        "Description": role.description,
        "MaxSessionDuration": role.max_session_duration,
    }
    if detail:
        if role.tags:
            out["Tags"] = list(role.tags)
        out["RoleLastUsed"] = {}
        if role.last_used_date is not None:
            out["RoleLastUsed"] = {"LastUsedDate": ts(role.last_used_date), "Region": role.last_used_region}
    return out


def _trust_policy(text: str) -> str:
    check_trust_policy(text)
    if policy_size(text) > MAX_TRUST_POLICY_SIZE:
        raise LimitExceeded(f"Cannot exceed quota for ACLSizePerRole: {MAX_TRUST_POLICY_SIZE}")
    return text


def create_role(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    name, tags = req["RoleName"], req.get("Tags", [])
    check_tags(tags)
    role = RoleRecord(
        account_id=ctx.account_id,
        role_name=name,
        role_id=new_unique_id("AROA"),
        path=req.get("Path", "/"),
        assume_role_policy=_trust_policy(req["AssumeRolePolicyDocument"]),
        created_date=deps.clock(),
        description=req.get("Description"),
        max_session_duration=req.get("MaxSessionDuration", 3600),
        tags=list(tags),
    )
    exists = EntityAlreadyExists(f"Role with name {name} already exists.")
    try:
        with iam_store.conflicts(), writing(deps, ctx.account_id) as tx:
            if name_taken([r.role_name for r in iam_store.list_roles(tx.conn, ctx.account_id)], name):
                raise exists
            iam_store.insert_role(tx.conn, role)
    except iam_store.Conflict:
        raise exists from None
    return {"Role": role_shape(role, detail=False) | ({"Tags": list(tags)} if tags else {})}


def get_role(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    with deps.store.read() as tx:
        role = require_role(tx, ctx, req["RoleName"])
    return {"Role": role_shape(role)}


def list_roles(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    with deps.store.read() as tx:
        roles = [r for r in iam_store.list_roles(tx.conn, ctx.account_id) if path_matches(r.path, req.get("PathPrefix"))]
    return page(roles, lambda r: r.role_name, req, "Roles", lambda r: role_shape(r, detail=False))


def delete_role(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    name = req["RoleName"]
    with writing(deps, ctx.account_id) as tx:
        require_role(tx, ctx, name)
        if iam_store.list_inline_policies(tx.conn, "role", ctx.account_id, name):
            raise DeleteConflict("Cannot delete entity, must delete policies first.")
        if iam_store.attached_policies(tx.conn, "role", ctx.account_id, name):
            raise DeleteConflict("Cannot delete entity, must detach all policies first.")
        iam_store.delete_role(tx.conn, ctx.account_id, name)
    return {}


def update_assume_role_policy(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    text = _trust_policy(req["PolicyDocument"])
    with writing(deps, ctx.account_id) as tx:
        role = require_role(tx, ctx, req["RoleName"])
        role.assume_role_policy = text
        iam_store.update_role(tx.conn, role)
    return {}


def update_role(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    with writing(deps, ctx.account_id) as tx:
        role = require_role(tx, ctx, req["RoleName"])
        if "Description" in req:
            role.description = req["Description"]
        if "MaxSessionDuration" in req:
            role.max_session_duration = req["MaxSessionDuration"]
        iam_store.update_role(tx.conn, role)
    return {}


def tag_role(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    with writing(deps, ctx.account_id) as tx:
        role = require_role(tx, ctx, req["RoleName"])
        role.tags = merge_tags(role.tags, req["Tags"])
        iam_store.update_role(tx.conn, role)
    return {}


def untag_role(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    with writing(deps, ctx.account_id) as tx:
        role = require_role(tx, ctx, req["RoleName"])
        role.tags = remove_tags(role.tags, req["TagKeys"])
        iam_store.update_role(tx.conn, role)
    return {}


def list_role_tags(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    with deps.store.read() as tx:
        role = require_role(tx, ctx, req["RoleName"])
    return page(role.tags, lambda t: t["Key"], req, "Tags", dict)
