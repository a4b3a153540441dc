"""The IAM operation table: AWS operation name -> (deps, ctx, request) -> response.

IAM is global: the signing region is ignored. Until the policy engine decides, only
administrators may call operations that change anything; reads are open to any
principal of the account.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from strongroom.auth import policy
from strongroom.auth.authorize import decide
from strongroom.context import RequestContext
from strongroom.errors import AccessDenied
from strongroom.services.iam import policies, roles, users
from strongroom.services.iam.core import Deps
from strongroom.storage.retry import retrying

Operation = Callable[[Deps, RequestContext, dict[str, Any]], dict[str, Any]]
Authorizer = Callable[[RequestContext, str, dict[str, Any]], None]

OPERATIONS: dict[str, Operation] = {
    "CreateUser": users.create_user,
    "GetUser": users.get_user,
    "ListUsers": users.list_users,
    "DeleteUser": users.delete_user,
    "TagUser": users.tag_user,
    "UntagUser": users.untag_user,
    "ListUserTags": users.list_user_tags,
    "CreateAccessKey": users.create_access_key,
    "ListAccessKeys": users.list_access_keys,
    "UpdateAccessKey": users.update_access_key,
    "DeleteAccessKey": users.delete_access_key,
    "GetAccessKeyLastUsed": users.get_access_key_last_used,
    "CreateRole": roles.create_role,
    "GetRole": roles.get_role,
    "ListRoles": roles.list_roles,
    "DeleteRole": roles.delete_role,
    "UpdateRole": roles.update_role,
    "UpdateAssumeRolePolicy": roles.update_assume_role_policy,
    "TagRole": roles.tag_role,
    "UntagRole": roles.untag_role,
    "ListRoleTags": roles.list_role_tags,
    "PutUserPolicy": partial(policies.put_inline, "user"),
    "GetUserPolicy": partial(policies.get_inline, "user"),
    "ListUserPolicies": partial(policies.list_inline, "user"),
    "DeleteUserPolicy": partial(policies.delete_inline, "user"),
    "PutRolePolicy": partial(policies.put_inline, "role"),
    "GetRolePolicy": partial(policies.get_inline, "role"),
    "ListRolePolicies": partial(policies.list_inline, "role"),
    "DeleteRolePolicy": partial(policies.delete_inline, "role"),
    "CreatePolicy": policies.create_policy,
    "GetPolicy": policies.get_policy,
    "ListPolicies": policies.list_policies,
    "DeletePolicy": policies.delete_policy,
    "GetPolicyVersion": policies.get_policy_version,
    "CreatePolicyVersion": policies.create_policy_version,
    "ListPolicyVersions": policies.list_policy_versions,
    "DeletePolicyVersion": policies.delete_policy_version,
    "SetDefaultPolicyVersion": policies.set_default_policy_version,
    "AttachUserPolicy": partial(policies.attach, "user"),
    "DetachUserPolicy": partial(policies.detach, "user"),
    "ListAttachedUserPolicies": partial(policies.list_attached, "user"),
    "AttachRolePolicy": partial(policies.attach, "role"),
    "DetachRolePolicy": partial(policies.detach, "role"),
    "ListAttachedRolePolicies": partial(policies.list_attached, "role"),
}



def resource_arn(ctx: RequestContext, req: dict[str, Any]) -> str:
    """The resource an operation acts on, as IAM names it in AccessDenied messages."""
    if "PolicyArn" in req:
        return str(req["PolicyArn"])
    if "RoleName" in req:
        return f"arn:aws:iam::{ctx.account_id}:role/{req['RoleName']}"
    if "UserName" in req:
        return f"arn:aws:iam::{ctx.account_id}:user/{req['UserName']}"
    if "PolicyName" in req:
        return f"arn:aws:iam::{ctx.account_id}:policy/{req['PolicyName']}"
    if ctx.principal.type == "IAMUser" and ctx.principal.arn:
        return ctx.principal.arn  # operations without a name act on the caller itself
    return "*"


def by_policy(ctx: RequestContext, operation: str, req: dict[str, Any]) -> None:
    """IAM actions are allowed by the caller's identity policies, as on AWS."""
    action, resource = f"iam:{operation}", resource_arn(ctx, req)
    request, result = decide(ctx, action, resource, policy.global_condition_keys(ctx))
    if not result.allowed:
        raise AccessDenied(policy.access_denied_message(request, result))


class IAM:
    """The IAM service bound to its collaborators (AWS query protocol)."""

    signing_name = "iam"
    model_name = "iam"

    def __init__(self, deps: Deps, authorize: Authorizer = by_policy):
        self.deps = deps
        self.authorize = authorize

    def operation(self, name: str) -> Operation | None:
        return OPERATIONS.get(name)

    def call(self, name: str, ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
        self.authorize(ctx, name, request)
        return retrying(OPERATIONS[name])(self.deps, ctx, request)  # see storage/retry.py
