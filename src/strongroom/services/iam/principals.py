"""The identity policies that apply to a Principal, for the policy engine.

A user's policies are its inline policies and the default versions of the managed
policies attached to it; a role session's are its role's. Session policies (passed to
AssumeRole) are returned apart: they only narrow what the identity policies allow.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

from strongroom import metrics
from strongroom.auth import policy
from strongroom.context import Principal
from strongroom.storage import Store, Tx, iam_store
from strongroom.storage.iam_store import Kind


@dataclass(frozen=True, slots=True)
class NamedPolicy:
    name: str  # the inline policy's name, or the managed policy's ARN
    document: str  # JSON text
    kind: str  # "inline", "managed" or "session"
    attached_to: str  # ARN of the user or role that holds it ("" for session policies)


def _owner(principal: Principal) -> tuple[Kind, str, str] | None:
    if principal.type == "IAMUser" and principal.name:
        return "user", principal.name, principal.arn
    if principal.type == "AssumedRole" and principal.role_name:
        return "role", principal.role_name, principal.role_arn
    return None


def identity_policies(tx: Tx, principal: Principal) -> list[NamedPolicy]:
    """Inline, then attached managed policies of the principal's user or role (empty for others)."""
    owner = _owner(principal)
    if owner is None:
        return []
    kind, name, arn = owner
    conn, account = tx.conn, principal.account_id
    out = [NamedPolicy(n, doc, "inline", arn) for n, doc in iam_store.list_inline_policies(conn, kind, account, name)]
    attached = iam_store.attached_policies(conn, kind, account, name)
    docs = iam_store.default_documents(conn, [p.policy_id for p in attached])
    out += [NamedPolicy(p.arn, docs[p.policy_id], "managed", arn) for p in attached if p.policy_id in docs]
    return out


def session_policies(tx: Tx, principal: Principal) -> list[NamedPolicy] | None:
    """The session's policies, or None when the session was not narrowed by any."""
    if principal.session_policy is None and not principal.session_policy_arns:
        return None
    out = []
    if principal.session_policy is not None:
        out.append(NamedPolicy("session-policy", principal.session_policy, "session", ""))
    for arn in principal.session_policy_arns:
        policy = iam_store.get_managed_policy(tx.conn, arn)
        if policy is not None:
            docs = iam_store.default_documents(tx.conn, [policy.policy_id])
            if policy.policy_id in docs:
                out.append(NamedPolicy(arn, docs[policy.policy_id], "session", ""))
    return out


def load_policies(store: Store, principal: Principal) -> tuple[list[NamedPolicy], list[NamedPolicy] | None]:
    """(identity policies, session policies or None) in one read transaction."""
    with store.read() as tx:
        return identity_policies(tx, principal), session_policies(tx, principal)


def to_engine(policies: list[NamedPolicy]) -> tuple[policy.Policy, ...]:
    """The policies as auth.policy evaluates them (documents parsed; stored ones were validated)."""
    out = []
    for p in policies:
        try:
            out.append(policy.Policy(p.name, json.loads(p.document)))
        except ValueError:
            continue  # unreadable: grants nothing
    return tuple(out)


class PolicyCache:
    """Identity and session policies per principal, kept `ttl` seconds (like credentials), so
    policy changes apply within that time without a database read on every request."""

    def __init__(self, store: Store, ttl: float = 5.0, max_entries: int = 10_000):
        self.store, self.ttl, self.max_entries = store, ttl, max_entries
        self._entries: dict[tuple[str, str], tuple[float, tuple[policy.Policy, ...],
                                                   tuple[policy.Policy, ...] | None]] = {}
        self._lock = threading.Lock()
        self._generation = 0  # bumped by invalidate(): a load that raced with it is not kept

    def get(self, principal: Principal) -> tuple[tuple[policy.Policy, ...], tuple[policy.Policy, ...] | None]:
        """(identity policies, session policies or None when the session is not narrowed)."""
        key, now = (principal.arn, principal.access_key_id), time.monotonic()
        with self._lock:
            hit, generation = self._entries.get(key), self._generation
        if hit is not None and hit[0] > now:
            metrics.cache_hit("policies")
            return hit[1], hit[2]
        metrics.cache_miss("policies")
        identity, session = load_policies(self.store, principal)
        value = (to_engine(identity), None if session is None else to_engine(session))
        if hit is not None and hit[1:] == value:
            # Unchanged: keep handing out the same objects, which the decision memo
            # (auth/memo.py) recognizes by identity, so its decisions outlive the TTL.
            value = (hit[1], hit[2])
        with self._lock:
            if generation != self._generation:
                return value
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (now + self.ttl, *value)
        return value

    def invalidate(self, _key: str | None = None) -> None:
        """Forget every principal's policies (an IAM change anywhere in the deployment)."""
        with self._lock:
            self._entries.clear()
            self._generation += 1
