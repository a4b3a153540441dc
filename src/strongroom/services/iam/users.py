"""IAM users, their access keys and their tags."""

from __future__ import annotations

import json
from typing import Any

from strongroom.auth.credentials import create_access_key as new_access_key
from strongroom.auth.credentials import create_user as new_user
from strongroom.context import RequestContext
from strongroom.errors import (
    AccessDenied,
    DeleteConflict,
    EntityAlreadyExists,
    InvalidInput,
    LimitExceeded,
    NoSuchEntity,
)
from strongroom.services.iam.core import (
    Deps,
    caller_user_name,
    check_tags,
    key_changed,
    merge_tags,
    name_taken,
    page,
    path_matches,
    remove_tags,
    require_user,
    ts,
    user_arn,
    writing,
)
from strongroom.storage import AccessKeyRecord, Tx, UserRecord, iam_store

MAX_ACCESS_KEYS = 2


def user_shape(user: UserRecord, *, with_tags: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Path": user.path,
        "UserName": user.user_name,
        "UserId": user.user_id,
        "Arn": user_arn(user.account_id, user.path, user.user_name),
        "CreateDate": ts(user.created_date),
    }
    tags = json.loads(user.tags or "[]")
    if with_tags and tags:
        out["Tags"] = tags
    return out


def create_user(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    name, tags = req["UserName"], req.get("Tags", [])
    check_tags(tags)
    exists = EntityAlreadyExists(f"User with name {name} already exists.")
    try:
        with iam_store.conflicts(), writing(deps, ctx.account_id) as tx:
            if name_taken([u.user_name for u in iam_store.list_users(tx.conn, ctx.account_id)], name):
                raise exists
            user = new_user(tx, ctx.account_id, name, deps.clock(), path=req.get("Path", "/"))
            if tags:
                iam_store.set_user_tags(tx.conn, ctx.account_id, name, tags)
                user = tx.get_user(ctx.account_id, name) or user
    except iam_store.Conflict:
        raise exists from None
    return {"User": user_shape(user)}


def get_user(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    name = caller_user_name(ctx, req)
    with deps.store.read() as tx:
        user = require_user(tx, ctx, name)
    return {"User": user_shape(user)}


def list_users(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    with deps.store.read() as tx:
        users = [u for u in iam_store.list_users(tx.conn, ctx.account_id) if path_matches(u.path, req.get("PathPrefix"))]
    return page(users, lambda u: u.user_name, req, "Users", lambda u: user_shape(u, with_tags=False))


def delete_user(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    name = req["UserName"]
    with writing(deps, ctx.account_id) as tx:
        require_user(tx, ctx, name)
        if iam_store.list_access_keys(tx.conn, ctx.account_id, name):
            raise DeleteConflict("Cannot delete entity, must delete access keys first.")
        if iam_store.list_inline_policies(tx.conn, "user", ctx.account_id, name):
            raise DeleteConflict("Cannot delete entity, must delete policies first.")
        if iam_store.attached_policies(tx.conn, "user", ctx.account_id, name):
            raise DeleteConflict("Cannot delete entity, must detach all policies first.")
        iam_store.delete_user(tx.conn, ctx.account_id, name)
    return {}


# -- tags ------------------------------------------------------------------------------------
def tag_user(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    with writing(deps, ctx.account_id) as tx:
        user = require_user(tx, ctx, req["UserName"])
        tags = merge_tags(json.loads(user.tags or "[]"), req["Tags"])
        iam_store.set_user_tags(tx.conn, ctx.account_id, user.user_name, tags)
    return {}


def untag_user(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    with writing(deps, ctx.account_id) as tx:
        user = require_user(tx, ctx, req["UserName"])
        tags = remove_tags(json.loads(user.tags or "[]"), req["TagKeys"])
        iam_store.set_user_tags(tx.conn, ctx.account_id, user.user_name, tags)
    return {}


def list_user_tags(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    with deps.store.read() as tx:
        user = require_user(tx, ctx, req["UserName"])
    tags = json.loads(user.tags or "[]")
    return page(tags, lambda t: t["Key"], req, "Tags", dict)


# -- access keys -----------------------------------------------------------------------------
def _key_shape(key: AccessKeyRecord) -> dict[str, Any]:
    return {"UserName": key.user_name, "AccessKeyId": key.access_key_id, "Status": key.status,
            "CreateDate": ts(key.created_date)}


def _find_key(tx: Tx, ctx: RequestContext, user_name: str, access_key_id: str) -> AccessKeyRecord:
    key = tx.get_access_key(access_key_id)
    if key is None or key.account_id != ctx.account_id or key.user_name != user_name:
        raise NoSuchEntity(f"The Access Key with id {access_key_id} cannot be found.")
    return key


def create_access_key(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    name = caller_user_name(ctx, req)
    now = deps.clock()
    with writing(deps, ctx.account_id) as tx:
        require_user(tx, ctx, name)
        if len(iam_store.list_access_keys(tx.conn, ctx.account_id, name)) >= MAX_ACCESS_KEYS:
            raise LimitExceeded(f"Cannot exceed quota for AccessKeysPerUser: {MAX_ACCESS_KEYS}")
        key_id, secret = new_access_key(tx, deps.root, ctx.account_id, name, now)
    return {"AccessKey": {"UserName": name, "AccessKeyId": key_id, "Status": "Active",
                          "SecretAccessKey": secret, "CreateDate": ts(now)}}


def list_access_keys(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    name = caller_user_name(ctx, req)
    with deps.store.read() as tx:
        require_user(tx, ctx, name)
        keys = iam_store.list_access_keys(tx.conn, ctx.account_id, name)
    return page(keys, lambda k: k.access_key_id, req, "AccessKeyMetadata", _key_shape)


def update_access_key(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    name = caller_user_name(ctx, req)
    if req["Status"] not in ("Active", "Inactive"):
        raise InvalidInput("Status must be Active or Inactive.")
    with writing(deps, ctx.account_id) as tx:
        require_user(tx, ctx, name)
        key = _find_key(tx, ctx, name, req["AccessKeyId"])
        iam_store.set_access_key_status(tx.conn, key.access_key_id, req["Status"])
    key_changed(deps, key.access_key_id)
    return {}


def delete_access_key(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    name = caller_user_name(ctx, req)
    with writing(deps, ctx.account_id) as tx:
        require_user(tx, ctx, name)
        key = _find_key(tx, ctx, name, req["AccessKeyId"])
        iam_store.delete_access_key(tx.conn, key.access_key_id)
    key_changed(deps, key.access_key_id)
    return {}


def get_access_key_last_used(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    with deps.store.read() as tx:
        key = tx.get_access_key(req["AccessKeyId"])
        used = iam_store.get_last_used(tx.conn, key.access_key_id) if key else None
    if key is None or key.account_id != ctx.account_id:
        raise AccessDenied(f"User: {ctx.principal.arn} is not authorized to perform: iam:GetAccessKeyLastUsed "
                           f"on resource: access key {req['AccessKeyId']}")
    last: dict[str, Any] = {"ServiceName": "N/A", "Region": "N/A"}
    if used:
        last = {"LastUsedDate": ts(used["last_used_date"]), "ServiceName": used["service_name"],
                "Region": used["region"]}
    return {"UserName": key.user_name, "AccessKeyLastUsed": last}
