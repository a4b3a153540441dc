"""What IAM (and STS) operations share: collaborators, names and ARNs, tags, paging, policy checks."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from strongroom.auth import policy_document
from strongroom.context import RequestContext
from strongroom.crypto.rootkey import RootKey
from strongroom.errors import (
    InvalidInput,
    LimitExceeded,
    MalformedPolicyDocument,
    NoSuchEntity,
    ValidationError,
)
from strongroom.storage import Store, Tx, UserRecord

T = TypeVar("T")
MAX_TAGS = 50
NON_USER = "Must specify userName when calling with non-User credentials"


@dataclass
class Deps:
    """The collaborators of IAM and STS, passed in explicitly."""

    store: Store
    root: RootKey  # wraps access-key and session secrets
    clock: Callable[[], float] = time.time
    # Called with an access key id whose status or existence changed (credential caches drop it).
    on_key_changed: list[Callable[[str], None]] = field(default_factory=list)


def key_changed(deps: Deps, access_key_id: str) -> None:
    for hook in deps.on_key_changed:
        hook(access_key_id)


IAM_CHANGED = "iam"  # change-event topic: an account's users, keys, roles or policies changed


@contextmanager
def writing(deps: Deps, account_id: str) -> Iterator[Tx]:
    """A write transaction for an IAM change in `account_id`.

    IAM changes check then write across rows (a name free in any case, at most
    two access keys, a policy's next version number), so they run one at a time
    per account: PostgreSQL takes the account row's lock, as SQLite's single
    writer would. The change is announced at commit so every node's credential
    and policy caches drop what they hold for the account.
    """
    with deps.store.write() as tx:
        tx.lock_account(account_id)
        yield tx
        tx.publish(IAM_CHANGED, account_id)


def ts(value: float | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromtimestamp(value, dt.timezone.utc)


# -- names and ARNs --------------------------------------------------------------------------
def user_arn(account_id: str, path: str, name: str) -> str:
    return f"arn:aws:iam::{account_id}:user{path}{name}"


def role_arn(account_id: str, path: str, name: str) -> str:
    return f"arn:aws:iam::{account_id}:role{path}{name}"


def policy_arn(account_id: str, path: str, name: str) -> str:
    return f"arn:aws:iam::{account_id}:policy{path}{name}"


def caller_user_name(ctx: RequestContext, req: dict[str, Any]) -> str:
    """UserName from the request, else the calling IAM user's own name."""
    if "UserName" in req:
        return str(req["UserName"])
    if ctx.principal.type != "IAMUser" or not ctx.principal.name:
        raise ValidationError(NON_USER)
    return ctx.principal.name


def require_user(tx: Tx, ctx: RequestContext, user_name: str) -> UserRecord:
    user = tx.get_user(ctx.account_id, user_name)
    if user is None:
        raise NoSuchEntity(f"The user with name {user_name} cannot be found.")
    return user


def name_taken(existing: Sequence[str], name: str) -> bool:
    """IAM names are unique without regard to case."""
    lowered = name.lower()
    return any(e.lower() == lowered for e in existing)


def path_matches(path: str, prefix: str | None) -> bool:
    return prefix is None or path.startswith(prefix)


# -- tags ------------------------------------------------------------------------------------
def check_tags(tags: list[dict[str, str]]) -> None:
    seen: set[str] = set()
    for tag in tags:
        key = tag["Key"].lower()
        if key in seen:
            raise InvalidInput("Duplicate tag keys found. Please note that Tag keys are case insensitive.")
        if key.startswith("aws:"):
            raise InvalidInput("User-defined tag keys can't start with 'aws:'.")
        seen.add(key)


def merge_tags(current: list[dict[str, str]], new: list[dict[str, str]]) -> list[dict[str, str]]:
    check_tags(new)
    replaced = {t["Key"].lower() for t in new}
    merged = [t for t in current if t["Key"].lower() not in replaced] + [dict(t) for t in new]
    if len(merged) > MAX_TAGS:
        raise LimitExceeded(f"The number of tags has reached the maximum limit of {MAX_TAGS}.")
    return merged


def remove_tags(current: list[dict[str, str]], keys: list[str]) -> list[dict[str, str]]:
    gone = {k.lower() for k in keys}
    return [t for t in current if t["Key"].lower() not in gone]


# -- paging (Marker / MaxItems / IsTruncated) ------------------------------------------------
def page(items: list[T], key: Callable[[T], str], req: dict[str, Any], result_key: str,
         shape: Callable[[T], Any]) -> dict[str, Any]:
    """One page of `items` (sorted by `key`); the Marker names the last item returned."""
    items = sorted(items, key=key)
    if "Marker" in req:
        try:
            after = base64.urlsafe_b64decode(req["Marker"].encode()).decode()
        except (ValueError, UnicodeError):
            raise ValidationError("Invalid Marker.") from None
        items = [i for i in items if key(i) > after]
    limit = req.get("MaxItems", 100)
    out: dict[str, Any] = {result_key: [shape(i) for i in items[:limit]], "IsTruncated": len(items) > limit}
    if len(items) > limit:
        out["Marker"] = base64.urlsafe_b64encode(key(items[limit - 1]).encode()).decode()
    return out


# -- policy documents ------------------------------------------------------------------------
def _load(text: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise MalformedPolicyDocument("Syntax errors in policy.") from None
    if not isinstance(doc, dict):
        raise MalformedPolicyDocument("Syntax errors in policy.")
    return doc


def check_identity_policy(text: str) -> dict[str, Any]:
    """An identity (or session) policy: no Principal, a Resource in every statement."""
    doc = _load(text)
    findings = policy_document.grammar_findings(doc, resource_policy=False)
    if findings:
        raise MalformedPolicyDocument(" ".join(f.message for f in findings))
    return doc


def check_trust_policy(text: str) -> dict[str, Any]:
    """A role trust policy: a Principal in every statement, no Resource."""
    doc = _load(text)
    findings = [f.message for f in policy_document.grammar_findings(doc, resource_policy=True)]
    for st in policy_document.statements(doc):
        if isinstance(st, dict) and ("Resource" in st or "NotResource" in st):
            findings.append("Has prohibited field Resource.")
    if findings:
        raise MalformedPolicyDocument(" ".join(findings))
    return doc


def policy_size(text: str) -> int:
    """Policy size as IAM's quotas count it: characters other than whitespace."""
    return sum(1 for c in text if not c.isspace())
