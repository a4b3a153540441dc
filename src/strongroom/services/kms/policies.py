"""Key policies: the defaults AWS writes, checks on documents callers send, and the getter
the policy engine reads them through."""

from __future__ import annotations

import fnmatch
import json
from typing import Any

from strongroom.auth.policy_document import parse, statements
from strongroom.context import RequestContext
from strongroom.errors import MalformedPolicyDocumentException, NotFoundException
from strongroom.services.kms.core import Caller, KmsDeps, require_customer_managed, resolve_key
from strongroom.storage import Store
from strongroom.storage import kms_store as ks

POLICY_NAME = "default"
LOCKOUT = "The new key policy will not allow you to update the key policy in the future."


def default_key_policy(account_id: str) -> str:
    """What CreateKey writes without a Policy: the account (and so its IAM policies) may do anything."""
    return json.dumps({
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [{
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }],
    }, indent=2)


def managed_key_policy(account_id: str, region: str, service: str = "secretsmanager") -> str:
    """The policy AWS gives aws/<service>: cryptography only through the service, metadata for all."""
    via = f"{service}.{region}.amazonaws.com"
    sid = (f"Allow access through AWS {'Secrets Manager' if service == 'secretsmanager' else service} "
           "for all principals in the account that are authorized to use it")
    return json.dumps({
        "Version": "2012-10-17",
        "Id": f"auto-{service}-2",
        "Statement": [
            {
                "Sid": sid,
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:CreateGrant", "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:ViaService": via, "kms:CallerAccount": account_id}},
            },
            {
                "Sid": sid,
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": "kms:GenerateDataKey*",
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:CallerAccount": account_id},
                              "StringLike": {"kms:ViaService": via}},
            },
            {
                "Sid": "Allow direct access to key metadata to the account",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant"],
                "Resource": "*",
            },
        ],
    }, indent=2)


def check_policy(text: str, *, account_id: str, caller_arn: str, bypass_lockout: bool) -> None:
    """MalformedPolicyDocumentException unless `text` is a key policy KMS would accept.

    The lockout check is AWS's: unless bypassed, the new policy must still let
    the account (or the caller) change the policy later, judged here without
    conditions, which is what the check needs to catch the common mistake.
    """
    doc, findings = parse(text)
    if doc is None or findings:
        raise MalformedPolicyDocumentException(findings[0].message if findings else "The policy is malformed.")
    if not bypass_lockout and not _allows_put_policy(doc, account_id, caller_arn):
        raise MalformedPolicyDocumentException(LOCKOUT)


def _as_list(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value) if isinstance(value, list) else []


def _allows_put_policy(doc: dict[str, Any], account_id: str, caller_arn: str) -> bool:
    principals_ok = {"*", account_id, f"arn:aws:iam::{account_id}:root", caller_arn}
    for st in statements(doc):
        if not isinstance(st, dict) or st.get("Effect") != "Allow" or "Action" not in st:
            continue
        principal = st.get("Principal")
        names = ["*"] if principal == "*" else _as_list(principal.get("AWS")) if isinstance(principal, dict) else []
        if not principals_ok.intersection(names):
            continue
        if any(fnmatch.fnmatchcase("kms:putkeypolicy", a.lower()) for a in _as_list(st["Action"])):
            return True
    return False


def key_policy_document(store: Store, key: str) -> str | None:
    """The key policy (JSON text) of a key, by key id or key ARN; for the policy engine to evaluate.

    Returns None when the key does not exist. Aliases are not followed: the
    engine evaluates the policy of the key an operation resolved to.
    """
    key_id = key.split(":key/", 1)[1] if key.startswith("arn:") and ":key/" in key else key
    with store.read() as tx:
        record = ks.get_key(tx, key_id)
    if record is None or (key.startswith("arn:") and record.arn != key):
        return None
    return record.policy


def _check_name(req: dict[str, Any]) -> None:
    if req.get("PolicyName", POLICY_NAME) != POLICY_NAME:
        raise NotFoundException("No such policy exists")


def get_key_policy(deps: KmsDeps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    _check_name(req)
    with deps.store.read() as tx:
        key = resolve_key(tx, Caller.of(ctx), req["KeyId"], action="GetKeyPolicy", aliases=False)
    return {"Policy": key.policy, "PolicyName": POLICY_NAME}


def put_key_policy(deps: KmsDeps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    _check_name(req)
    caller = Caller.of(ctx)
    with deps.store.write() as tx:
        key = resolve_key(tx, caller, req["KeyId"], action="PutKeyPolicy", aliases=False)
        require_customer_managed(key, caller, "PutKeyPolicy")  # a pending key's policy may change (KMS allows it)
        check_policy(req["Policy"], account_id=ctx.account_id, caller_arn=ctx.principal.arn,
                     bypass_lockout=req.get("BypassPolicyLockoutSafetyCheck", False))
        key.policy = req["Policy"]
        ks.update_key(tx, key)
    return {}


def list_key_policies(deps: KmsDeps, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    with deps.store.read() as tx:
        resolve_key(tx, Caller.of(ctx), req["KeyId"], action="ListKeyPolicies", aliases=False)
    return {"PolicyNames": [POLICY_NAME], "Truncated": False}
