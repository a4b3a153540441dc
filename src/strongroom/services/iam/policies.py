"""IAM identity policies: inline policies of users and roles, managed policies and their
versions, and attachments of managed policies to users and roles."""

from __future__ import annotations

from typing import Any

from strongroom.auth.credentials import new_unique_id
from strongroom.context import RequestContext
from strongroom.errors import DeleteConflict, EntityAlreadyExists, LimitExceeded, NoSuchEntity
from strongroom.services.iam.core import (
    Deps,
    check_identity_policy,
    check_tags,
    name_taken,
    page,
    path_matches,
    policy_arn,
    policy_size,
    require_user,
    ts,
    writing,
)
from strongroom.services.iam.roles import require_role
from strongroom.storage import Tx, iam_store
from strongroom.storage.iam_store import Kind, ManagedPolicyRecord, PolicyVersionRecord

INLINE_LIMIT = {"user": 2048, "role": 10240}  # aggregate inline policy size per user / role
MANAGED_LIMIT = 6144
MAX_VERSIONS = 5
MAX_ATTACHED = 10


def _owner(kind: Kind, req: dict[str, Any]) -> str:
    return str(req["UserName"] if kind == "user" else req["RoleName"])


def _require_owner(tx: Tx, ctx: RequestContext, kind: Kind, name: str) -> None:
    if kind == "user":
        require_user(tx, ctx, name)
    else:
        require_role(tx, ctx, name)


# -- inline policies -------------------------------------------------------------------------
def put_inline(kind: Kind, deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    owner, name, doc = _owner(kind, req), req["PolicyName"], req["PolicyDocument"]
    check_identity_policy(doc)
    with writing(deps, ctx.account_id) as tx:
        _require_owner(tx, ctx, kind, owner)
        others = [d for n, d in iam_store.list_inline_policies(tx.conn, kind, ctx.account_id, owner) if n != name]
        if sum(map(policy_size, others)) + policy_size(doc) > INLINE_LIMIT[kind]:
            raise LimitExceeded(f"Maximum policy size of {INLINE_LIMIT[kind]} bytes exceeded for {kind} {owner}")
        iam_store.put_inline_policy(tx.conn, kind, ctx.account_id, owner, name, doc)
    return {}


def get_inline(kind: Kind, deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    owner, name = _owner(kind, req), req["PolicyName"]
    with deps.store.read() as tx:
        _require_owner(tx, ctx, kind, owner)
        doc = iam_store.get_inline_policy(tx.conn, kind, ctx.account_id, owner, name)
    if doc is None:
        raise NoSuchEntity(f"The {kind} policy with name {name} cannot be found.")
    owner_key = "UserName" if kind == "user" else "RoleName"
    return {owner_key: owner, "PolicyName": name, "PolicyDocument": doc}


def list_inline(kind: Kind, deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    owner = _owner(kind, req)
    with deps.store.read() as tx:
        _require_owner(tx, ctx, kind, owner)
        names = [n for n, _ in iam_store.list_inline_policies(tx.conn, kind, ctx.account_id, owner)]
    return page(names, str, req, "PolicyNames", str)


def delete_inline(kind: Kind, deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    owner, name = _owner(kind, req), req["PolicyName"]
    with writing(deps, ctx.account_id) as tx:
        _require_owner(tx, ctx, kind, owner)
        if not iam_store.delete_inline_policy(tx.conn, kind, ctx.account_id, owner, name):
            raise NoSuchEntity(f"The {kind} policy with name {name} cannot be found.")
    return {}


# -- managed policies ------------------------------------------------------------------------
def policy_shape(tx: Tx, policy: ManagedPolicyRecord, *, detail: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "PolicyName": policy.policy_name,
        "PolicyId": policy.policy_id,
        "Arn": policy.arn,
        "Path": policy.path,
        "DefaultVersionId": policy.default_version_id,
        "AttachmentCount": iam_store.attachment_count(tx.conn, policy.policy_id),
        "PermissionsBoundaryUsageCount": 0,
        "IsAttachable": True,
        "CreateDate": ts(policy.created_date),
        "UpdateDate": ts(policy.update_date),
    }
    if detail:
        out["Description"] = policy.description
        if policy.tags:
            out["Tags"] = list(policy.tags)
    return out


def require_policy(tx: Tx, ctx: RequestContext, arn: str) -> ManagedPolicyRecord:
    policy = iam_store.get_managed_policy(tx.conn, arn)
    if policy is None or policy.account_id != ctx.account_id:
        raise NoSuchEntity(f"Policy {arn} was not found.")
    return policy


def _check_managed(doc: str) -> None:
    check_identity_policy(doc)
    if policy_size(doc) > MANAGED_LIMIT:
        raise LimitExceeded(f"Cannot exceed quota for PolicySize: {MANAGED_LIMIT}")


def create_policy(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    name, path, doc, tags = req["PolicyName"], req.get("Path", "/"), req["PolicyDocument"], req.get("Tags", [])
    _check_managed(doc)
    check_tags(tags)
    now = deps.clock()
    policy = ManagedPolicyRecord(
        policy_id=new_unique_id("ANPA"), arn=policy_arn(ctx.account_id, path, name), account_id=ctx.account_id,
        policy_name=name, path=path, default_version_id="v1", created_date=now, update_date=now,
        description=req.get("Description"), tags=list(tags),
    )
    exists = EntityAlreadyExists(f"A policy called {name} already exists. Duplicate names are not allowed.")
    try:
        with iam_store.conflicts(), writing(deps, ctx.account_id) as tx:
            if name_taken([p.policy_name for p in iam_store.list_managed_policies(tx.conn, ctx.account_id)], name):
                raise exists
            iam_store.insert_managed_policy(tx.conn, policy, doc)
            out = policy_shape(tx, policy)
    except iam_store.Conflict:
        raise exists from None
    if tags:
        out["Tags"] = list(tags)
    return {"Policy": out}


def get_policy(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    with deps.store.read() as tx:
        return {"Policy": policy_shape(tx, require_policy(tx, ctx, req["PolicyArn"]), detail=True)}


def list_policies(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    scope = req.get("Scope", "All")
    with deps.store.read() as tx:
        policies = [] if scope == "AWS" else iam_store.list_managed_policies(tx.conn, ctx.account_id)
        shaped = {p.policy_id: policy_shape(tx, p) for p in policies if path_matches(p.path, req.get("PathPrefix"))}
    if req.get("OnlyAttached"):
        shaped = {k: v for k, v in shaped.items() if v["AttachmentCount"] > 0}
    return page(list(shaped.values()), lambda p: p["PolicyName"], req, "Policies", dict)


def delete_policy(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    with writing(deps, ctx.account_id) as tx:
        policy = require_policy(tx, ctx, req["PolicyArn"])
        if iam_store.attachment_count(tx.conn, policy.policy_id):
            raise DeleteConflict("Cannot delete a policy attached to entities.")
        if len(iam_store.list_policy_versions(tx.conn, policy.policy_id)) > 1:
            raise DeleteConflict("This policy has more than one version. Before you delete a policy, you must "
                                 "delete the policy's versions. The default version is deleted with the policy.")
        iam_store.delete_managed_policy(tx.conn, policy.policy_id)
    return {}


def _version_shape(policy: ManagedPolicyRecord, v: PolicyVersionRecord, *, document: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"VersionId": v.version_id, "IsDefaultVersion": v.version_id == policy.default_version_id,
                           "CreateDate": ts(v.created_date)}
    if document:
        out["Document"] = v.document
    return out


def _require_version(tx: Tx, policy: ManagedPolicyRecord, version_id: str) -> PolicyVersionRecord:
    version = iam_store.get_policy_version(tx.conn, policy.policy_id, version_id)
    if version is None:
        raise NoSuchEntity(f"Policy {policy.arn} version {version_id} does not exist or is not attachable.")
    return version


def get_policy_version(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    with deps.store.read() as tx:
        policy = require_policy(tx, ctx, req["PolicyArn"])
        version = _require_version(tx, policy, req["VersionId"])
    return {"PolicyVersion": _version_shape(policy, version, document=True)}


def create_policy_version(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    _check_managed(req["PolicyDocument"])
    now = deps.clock()
    with writing(deps, ctx.account_id) as tx:
        policy = require_policy(tx, ctx, req["PolicyArn"])
        if len(iam_store.list_policy_versions(tx.conn, policy.policy_id)) >= MAX_VERSIONS:
            raise LimitExceeded(f"A managed policy can have up to {MAX_VERSIONS} versions. Before you create a new "
                                "version, you must delete an existing version.")
        version = PolicyVersionRecord(policy.policy_id, f"v{policy.next_version}", req["PolicyDocument"], now)
        iam_store.insert_policy_version(tx.conn, version)
        policy.next_version += 1
        policy.update_date = now
        if req.get("SetAsDefault"):
            policy.default_version_id = version.version_id
        iam_store.update_managed_policy(tx.conn, policy)
    return {"PolicyVersion": _version_shape(policy, version, document=False)}


def list_policy_versions(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    with deps.store.read() as tx:
        policy = require_policy(tx, ctx, req["PolicyArn"])
        versions = iam_store.list_policy_versions(tx.conn, policy.policy_id)
    out = page(versions, lambda v: f"{int(v.version_id[1:].split('.')[0]):08d}", req, "Versions",
               lambda v: _version_shape(policy, v, document=False))
    out["Versions"].reverse()  # newest first, as IAM lists them
    return out


def delete_policy_version(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    with writing(deps, ctx.account_id) as tx:
        policy = require_policy(tx, ctx, req["PolicyArn"])
        version = _require_version(tx, policy, req["VersionId"])
        if version.version_id == policy.default_version_id:
            raise DeleteConflict("Cannot delete the default version of a policy.")
        iam_store.delete_policy_version(tx.conn, policy.policy_id, version.version_id)
    return {}


def set_default_policy_version(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    with writing(deps, ctx.account_id) as tx:
        policy = require_policy(tx, ctx, req["PolicyArn"])
        policy.default_version_id = _require_version(tx, policy, req["VersionId"]).version_id
        policy.update_date = deps.clock()
        iam_store.update_managed_policy(tx.conn, policy)
    return {}


# -- attachments -----------------------------------------------------------------------------
def attach(kind: Kind, deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    owner, arn = _owner(kind, req), req["PolicyArn"]
    with writing(deps, ctx.account_id) as tx:
        _require_owner(tx, ctx, kind, owner)
        policy = iam_store.get_managed_policy(tx.conn, arn)
        if policy is None or policy.account_id != ctx.account_id:
            raise NoSuchEntity(f"Policy {arn} does not exist or is not attachable.")
        attached = iam_store.attached_policies(tx.conn, kind, ctx.account_id, owner)
        if len(attached) >= MAX_ATTACHED and policy.policy_id not in {p.policy_id for p in attached}:
            raise LimitExceeded(f"Cannot exceed quota for PoliciesPer{kind.capitalize()}: {MAX_ATTACHED}")
        iam_store.attach_policy(tx.conn, kind, ctx.account_id, owner, policy.policy_id)
    return {}


def detach(kind: Kind, deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    owner, arn = _owner(kind, req), req["PolicyArn"]
    with writing(deps, ctx.account_id) as tx:
        _require_owner(tx, ctx, kind, owner)
        policy = iam_store.get_managed_policy(tx.conn, arn)
        if policy is None or policy.account_id != ctx.account_id:
            raise NoSuchEntity(f"Policy {arn} was not found.")
        if not iam_store.detach_policy(tx.conn, kind, ctx.account_id, owner, policy.policy_id):
            raise NoSuchEntity(f"Policy {arn} is not attached to {kind} {owner}.")
    return {}


def list_attached(kind: Kind, deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    owner = _owner(kind, req)
    with deps.store.read() as tx:
        _require_owner(tx, ctx, kind, owner)
        policies = [p for p in iam_store.attached_policies(tx.conn, kind, ctx.account_id, owner)
                    if path_matches(p.path, req.get("PathPrefix"))]
    return page(policies, lambda p: p.policy_name, req, "AttachedPolicies",
                lambda p: {"PolicyName": p.policy_name, "PolicyArn": p.arn})
