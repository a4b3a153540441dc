"""Resource policies on secrets: Put/Get/Delete/List/Validate."""

from __future__ import annotations

from typing import Any

from strongroom.auth import policy_document
from strongroom.context import RequestContext
from strongroom.errors import (
    InvalidParameterException,
    MalformedPolicyDocumentException,
    PublicPolicyException,
    ResourceNotFoundException,
)
from strongroom.services.secretsmanager import paging
from strongroom.services.secretsmanager.access import authorize
from strongroom.services.secretsmanager.core import Deps, changed, find, require_live

DEFAULT = "default"


def _policy_name(req: dict[str, Any], *, modifying: bool) -> str:
    name = req.get("PolicyName", DEFAULT)
    if name != DEFAULT:
        if modifying:
            raise InvalidParameterException("You can only modify the default resource policy.")
        raise ResourceNotFoundException(f"Secrets Manager can't find the resource policy {name}.")
    return name


def put_resource_policy(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    name = _policy_name(req, modifying=True)
    doc, findings = policy_document.parse(req["ResourcePolicy"])
    if findings or doc is None:
        raise MalformedPolicyDocumentException(
            "This resource policy contains a syntax error. " + " ".join(f.message for f in findings)
        )
    if req.get("BlockPublicPolicy", False) and policy_document.grants_public_access(doc):
        raise PublicPolicyException("This resource policy will grant public access to the secret.")
    with deps.store.write() as tx:
        secret = find(tx, ctx, req["SecretId"], "PutResourcePolicy", req)
        require_live(secret)
        secret.resource_policy = req["ResourcePolicy"]
        secret.last_changed_date = deps.clock()
        tx.update_secret(secret)
    changed(deps, secret)
    return {"ARN": secret.arn, "Name": secret.name, "PolicyName": name}


def get_resource_policy(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    name = _policy_name(req, modifying=False)
    with deps.store.read() as tx:
        secret = find(tx, ctx, req["SecretId"], "GetResourcePolicy", req)
    out: dict[str, Any] = {"ARN": secret.arn, "Name": secret.name}
    if secret.resource_policy is not None:
        out.update(ResourcePolicy=secret.resource_policy, PolicyName=name)
    return out


def delete_resource_policy(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    _policy_name(req, modifying=True)
    with deps.store.write() as tx:
        secret = find(tx, ctx, req["SecretId"], "DeleteResourcePolicy", req)
        require_live(secret)
        if secret.resource_policy is not None:
            secret.resource_policy = None
            secret.last_changed_date = deps.clock()
            tx.update_secret(secret)
    changed(deps, secret)
    return {"ARN": secret.arn, "Name": secret.name}


def list_resource_policies(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    with deps.store.read() as tx:
        secret = find(tx, ctx, req["SecretId"], "ListResourcePolicies", req)
    if "NextToken" in req:
        paging.decode(req["NextToken"], "policies")  # never issued: one policy fits on a page
    return {"ResourcePolicies": [{"PolicyName": DEFAULT}] if secret.resource_policy is not None else []}


def validate_resource_policy(deps: Deps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    if "SecretId" in req:
        with deps.store.read() as tx:
            find(tx, ctx, req["SecretId"], "ValidateResourcePolicy", req)
    else:
        authorize(ctx, "secretsmanager:ValidateResourcePolicy", "*", req)
    doc, findings = policy_document.parse(req["ResourcePolicy"])
    errors = [{"CheckName": f.check, "ErrorMessage": f.message} for f in findings]
    if doc is not None and not findings and policy_document.grants_public_access(doc):
        errors.append({"CheckName": "Public access",
                       "ErrorMessage": "This policy grants public access to the secret."})
    return {"PolicyValidationPassed": not errors, "ValidationErrors": errors}
