"""IAM policy evaluation: the decision for one request, and which statements decided it (pure).

Follows AWS's documented evaluation logic for identity-based and resource-based policies:
- every request starts implicitly denied; an applicable Deny anywhere wins;
- same account: an Allow in an identity policy, or in the resource policy naming the caller,
  suffices. A resource-policy grant to the caller's *account* (`"123456789012"`,
  `arn:aws:iam::123456789012:root`) delegates to that account's identity policies, so on its
  own it does not allow a user or role, as in AWS;
- cross-account: the identity policy and the resource policy must both allow;
- a service principal (`{"Service": ...}`) is authorized by the resource policy alone.

A statement that cannot be evaluated (malformed element, unknown condition operator) fails
closed: as an Allow it grants nothing, as a Deny it denies. No I/O happens here.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from strongroom.auth.conditions import ContextView, Tri, and3, evaluate_condition, normalize_context
from strongroom.auth.matching import (
    Identity,
    PrincipalMatch,
    action_matches,
    caller_identities,
    not_principal_applies,
    principal_match,
    resource_matches,
)
from strongroom.auth.policy_document import statements
from strongroom.auth.variables import Lookup, substitute, variables_enabled
from strongroom.context import RequestContext

PolicyType = Literal["identity", "resource"]
RESOURCE_POLICY_NAME = "ResourcePolicy"


class Decision(str, enum.Enum):
    """The three outcomes of IAM evaluation."""

    ALLOW = "Allow"
    EXPLICIT_DENY = "ExplicitDeny"
    IMPLICIT_DENY = "ImplicitDeny"


@dataclass(frozen=True, slots=True)
class Request:
    """What is being asked: who, which action, on which resource, with which condition keys.

    `context` maps condition keys (any case) to a value or a list of values. Set
    `principal_service` (e.g. "rotation.strongroom.internal") for a call made by a service.
    """

    principal_arn: str
    principal_account: str
    action: str
    resource: str
    context: Mapping[str, Any] = field(default_factory=dict)
    principal_service: str | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    """A named policy document (already parsed JSON); the name is shown in explanations."""

    name: str
    document: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class StatementTrace:
    """How one statement fared: whether it applies to the request, and why (or why not)."""

    policy_type: PolicyType
    policy_name: str
    index: int  # 0-based position in the policy's Statement list
    sid: str | None
    effect: str  # "Allow" or "Deny"; an invalid Effect is treated as "Deny"
    applies: bool
    why: str
    indeterminate: bool = False  # could not be evaluated; applied only if it is a Deny
    via_account: bool = False  # resource-policy Allow that names only the caller's account

    def describe(self) -> str:
        sid = f' (Sid "{self.sid}")' if self.sid else ""
        verdict = "applies" if self.applies else "does not apply"
        return (f'{self.policy_type} policy "{self.policy_name}" statement {self.index + 1}{sid}: '
                f"{self.effect} {verdict} — {self.why}")


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    """The decision, the statements that decided it, and every statement's trace."""

    decision: Decision
    deciding: tuple[StatementTrace, ...]
    statements: tuple[StatementTrace, ...]
    # ExplicitDeny: the type of policy that denied; ImplicitDeny: the type that lacked an Allow.
    policy_type: PolicyType | None
    reason: str
    cross_account: bool

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOW


def evaluate(request: Request, identity_policies: Sequence[Policy] = (),
             resource_policy: Policy | Mapping[str, Any] | None = None,
             resource_account: str | None = None) -> EvaluationResult:
    """Decide `request` against the caller's identity policies and the resource's policy.

    `resource_account` is the account owning the resource; when omitted it is read from the
    resource ARN, falling back to the caller's account.
    """
    return evaluate_in(normalize_context(request.context), request, identity_policies, resource_policy,
                       resource_account)


def evaluate_in(context: ContextView, request: Request, identity_policies: Sequence[Policy] = (),
                resource_policy: Policy | Mapping[str, Any] | None = None,
                resource_account: str | None = None) -> EvaluationResult:
    """`evaluate`, with the request's condition keys already normalized: every key the
    evaluation needs is read with `context.get(casefolded key)`, and nothing else of it."""
    identities = caller_identities(request.principal_arn, request.principal_account,
                                   request.principal_service)
    owner = resource_account or _arn_account(request.resource) or request.principal_account
    traces: list[StatementTrace] = []
    for policy in identity_policies:
        traces += _evaluate_policy("identity", policy, request, context, identities)
    if resource_policy is not None:
        if not isinstance(resource_policy, Policy):
            resource_policy = Policy(RESOURCE_POLICY_NAME, resource_policy)
        traces += _evaluate_policy("resource", resource_policy, request, context, identities)
    return _decide(request, tuple(traces), owner)


def _arn_account(arn: str) -> str | None:
    parts = arn.split(":", 5)
    return (parts[4] or None) if len(parts) == 6 and parts[0] == "arn" else None


def _decide(request: Request, traces: tuple[StatementTrace, ...], owner: str) -> EvaluationResult:
    applying = [t for t in traces if t.applies]
    service = request.principal_service is not None
    cross = not service and request.principal_account != owner
    denies = tuple(t for t in applying if t.effect == "Deny")
    if denies:
        in_identity = any(t.policy_type == "identity" for t in denies)
        kind: PolicyType = "identity" if in_identity else "resource"
        return EvaluationResult(Decision.EXPLICIT_DENY, denies, traces, kind,
                                f"explicitly denied by {_a(kind)} {kind}-based policy", cross)
    identity = tuple(t for t in applying if t.policy_type == "identity")
    resource = tuple(t for t in applying if t.policy_type == "resource")
    direct = tuple(t for t in resource if not t.via_account)

    def allow(deciding: tuple[StatementTrace, ...], reason: str) -> EvaluationResult:
        return EvaluationResult(Decision.ALLOW, deciding, traces, None, reason, cross)

    def deny(kind: PolicyType, reason: str,
             near: tuple[StatementTrace, ...] = ()) -> EvaluationResult:
        return EvaluationResult(Decision.IMPLICIT_DENY, near, traces, kind, reason, cross)

    if service:
        if resource:
            return allow(resource, "the resource-based policy allows the service principal")
        return deny("resource", "no resource-based policy allows the service principal")
    if cross:
        if identity and resource:
            return allow(identity + resource, "cross-account request allowed by both an "
                         "identity-based policy and the resource-based policy")
        if not identity:
            return deny("identity", "cross-account request: no identity-based policy allows it",
                        resource)
        return deny("resource", "cross-account request: the resource-based policy does not "
                    "allow it", identity)
    if identity:
        return allow(identity + resource, "allowed by an identity-based policy")
    if direct:
        return allow(direct, "allowed by the resource-based policy")
    if resource:
        return deny("identity", "the resource-based policy grants only to the caller's account, "
                    "which delegates to identity-based policies, and none allows it", resource)
    return deny("identity", "no identity-based or resource-based policy allows it")


def _a(kind: str) -> str:
    return "an" if kind[0] in "aeiou" else "a"


def _evaluate_policy(kind: PolicyType, policy: Policy, request: Request, context: ContextView,
                     identities: tuple[Identity, ...]) -> list[StatementTrace]:
    document = policy.document
    if not isinstance(document, Mapping):
        return [StatementTrace(kind, policy.name, 0, None, "Deny", True,
                               "the policy document is not a JSON object; applied as a Deny",
                               indeterminate=True)]
    lookup: Lookup | None = context.get if variables_enabled(document) else None
    return [_evaluate_statement(kind, policy.name, i, st, request, context, identities, lookup)
            for i, st in enumerate(statements(dict(document)))]


def _strings(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    return None


def _evaluate_statement(kind: PolicyType, name: str, index: int, st: Any, request: Request,
                        context: ContextView, identities: tuple[Identity, ...],
                        lookup: Lookup | None) -> StatementTrace:
    if not isinstance(st, Mapping):
        return StatementTrace(kind, name, index, None, "Deny", True,
                              "the statement is not a JSON object; applied as a Deny",
                              indeterminate=True)
    sid = st.get("Sid") if isinstance(st.get("Sid"), str) else None
    effect = st.get("Effect")
    problems: list[str] = []
    if effect not in ("Allow", "Deny"):
        problems.append(f"Effect {effect!r} is not Allow or Deny")
        effect = "Deny"
    reasons: list[str] = []
    via_account = False
    result: Tri = None if problems else True
    checks = _checks(st, kind, effect, request, context, identities, lookup)
    for outcome, why, account_only in checks:
        if outcome is False:
            return StatementTrace(kind, name, index, sid, effect, False, why)
        via_account = via_account or account_only
        (reasons if outcome else problems).append(why)
        result = and3(result, outcome)
    if result is None:
        applies = effect == "Deny"
        tail = "a Deny that cannot be evaluated is applied" if applies else \
            "an Allow that cannot be evaluated grants nothing"
        return StatementTrace(kind, name, index, sid, effect, applies,
                              f"cannot be evaluated ({'; '.join(problems)}); {tail}",
                              indeterminate=True)
    return StatementTrace(kind, name, index, sid, effect, True,
                          "; ".join(r for r in reasons if r), via_account=via_account)


Check = tuple[Tri, str, bool]  # (outcome, reason, matched only through the caller's account)


def _checks(st: Mapping[str, Any], kind: PolicyType, effect: str, request: Request,
            context: ContextView, identities: tuple[Identity, ...],
            lookup: Lookup | None) -> Iterator[Check]:
    """The statement's elements in evaluation order; lazy, so a failing one stops the rest."""
    yield _check_action(st, request.action)
    yield _check_resource(st, request.resource, kind, lookup)
    yield _check_principal(st, kind, effect, identities)
    yield _check_condition(st, context, lookup)


def _check_action(st: Mapping[str, Any], action: str) -> Check:
    key = "Action" if "Action" in st else "NotAction"
    if ("Action" in st) == ("NotAction" in st):
        return None, "a statement needs exactly one of Action or NotAction", False
    patterns = _strings(st[key])
    if patterns is None:
        return None, f"{key} must be a string or a list of strings", False
    hit = next((p for p in patterns if action_matches(p, action)), None)
    if key == "Action":
        if hit is None:
            return False, f"action {action} is not in Action", False
        return True, f'action matched "{hit}"', False
    if hit is not None:
        return False, f'action {action} is excluded by NotAction "{hit}"', False
    return True, f"action {action} is not in NotAction", False


def _check_resource(st: Mapping[str, Any], resource: str, kind: PolicyType,
                    lookup: Lookup | None) -> Check:
    if "Resource" in st and "NotResource" in st:
        return None, "a statement can't have both Resource and NotResource", False
    if "Resource" not in st and "NotResource" not in st:
        if kind == "resource":
            return True, "", False  # a resource policy covers the resource it is attached to
        return None, "an identity policy statement needs Resource or NotResource", False
    key = "Resource" if "Resource" in st else "NotResource"
    patterns = _strings(st[key])
    if patterns is None:
        return None, f"{key} must be a string or a list of strings", False
    hit = None
    for pattern in patterns:
        template = substitute(pattern, lookup)
        if template is not None and resource_matches(template, resource):
            hit = pattern
            break
    if key == "Resource":
        if hit is None:
            return False, f"resource {resource} is not in Resource", False
        return True, f'resource matched "{hit}"', False
    if hit is not None:
        return False, f'resource {resource} is excluded by NotResource "{hit}"', False
    return True, f"resource {resource} is not in NotResource", False


def _check_principal(st: Mapping[str, Any], kind: PolicyType, effect: str,
                     identities: tuple[Identity, ...]) -> Check:
    has_p, has_np = "Principal" in st, "NotPrincipal" in st
    if kind == "identity":
        if has_p or has_np:
            return None, "identity policies can't contain Principal or NotPrincipal", False
        return True, "", False
    if has_p == has_np:
        return None, ("a resource policy statement needs exactly one of Principal or "
                      "NotPrincipal"), False
    if has_p:
        match = principal_match(st["Principal"], identities)
        if match is None:
            return None, "Principal is not a valid principal", False
        if match is PrincipalMatch.NONE:
            return False, "the caller is not named in Principal", False
        if match is PrincipalMatch.ACCOUNT:
            return True, "Principal names the caller's account", True
        return True, "Principal names the caller", False
    if effect == "Allow":
        return None, "NotPrincipal is supported only with Deny", False
    applies = not_principal_applies(st["NotPrincipal"], identities)
    if applies is None:
        return None, "NotPrincipal is not a valid principal", False
    if not applies:
        return False, ("the caller (account, role and session or user) is exempted by "
                       "NotPrincipal"), False
    return True, "the caller is not fully exempted by NotPrincipal", False


def _check_condition(st: Mapping[str, Any], context: ContextView, lookup: Lookup | None) -> Check:
    if "Condition" not in st:
        return True, "", False
    outcome = evaluate_condition(st["Condition"], context, lookup)
    if outcome.result is False:
        return False, f"condition {outcome.notes[-1]}", False
    failing = [n for n in outcome.notes if not n.endswith("held")]
    notes = failing if outcome.result is None else list(outcome.notes)
    return outcome.result, "condition " + "; ".join(notes), False


def access_denied_message(request: Request, result: EvaluationResult) -> str:
    """AWS's AccessDenied wording for a denied request (raises ValueError for an Allow)."""
    if result.decision is Decision.ALLOW or result.policy_type is None:
        raise ValueError("the request was allowed")
    caller = request.principal_arn or request.principal_service or "anonymous"
    head = (f"User: {caller} is not authorized to perform: {request.action} "
            f"on resource: {request.resource}")
    kind = result.policy_type
    if result.decision is Decision.EXPLICIT_DENY:
        return f"{head} with an explicit deny in {_a(kind)} {kind}-based policy"
    return f"{head} because no {kind}-based policy allows the {request.action} action"


def explain(result: EvaluationResult, *, verbose: bool = False) -> str:
    """Human-readable account of a decision: which statements decided it, and why."""
    lines = [f"Decision: {result.decision.value} — {result.reason}"]
    if result.deciding:
        label = "Deciding statements" if result.decision is not Decision.IMPLICIT_DENY \
            else "Related statements (not sufficient on their own)"
        lines.append(f"{label}:")
        lines += [f"  {t.describe()}" for t in result.deciding]
    elif result.decision is Decision.IMPLICIT_DENY:
        lines.append("No statement allows this request.")
    if verbose:
        lines.append("All statements:")
        lines += [f"  {t.describe()}" for t in result.statements] or ["  (none)"]
    return "\n".join(lines)


_PRINCIPAL_TYPES = {"Root": "Account", "IAMUser": "User"}


def global_condition_keys(ctx: RequestContext) -> dict[str, Any]:
    """The aws:* global condition keys for a request; services add their own keys to these.

    For a role session aws:PrincipalArn is the role's ARN, as in AWS (without the role path,
    which a session ARN does not carry).
    """
    p = ctx.principal
    principal_arn = p.arn
    parts = p.arn.split(":", 5)
    if p.type == "AssumedRole" and len(parts) == 6 and parts[5].startswith("assumed-role/"):
        principal_arn = f"arn:{parts[1]}:iam::{parts[4]}:role/{parts[5].split('/')[1]}"
    keys: dict[str, Any] = {
        "aws:PrincipalArn": principal_arn,
        "aws:PrincipalAccount": p.account_id,
        "aws:PrincipalType": _PRINCIPAL_TYPES.get(p.type, p.type),
        "aws:userid": p.principal_id,
        "aws:SourceIp": ctx.source_ip,
        "aws:SecureTransport": ctx.secure_transport,
        "aws:CurrentTime": ctx.time,
        "aws:EpochTime": int(ctx.time.timestamp()),
        "aws:RequestedRegion": ctx.region,
    }
    if ctx.user_agent:
        keys["aws:UserAgent"] = ctx.user_agent
    if p.type == "IAMUser" and p.name:
        keys["aws:username"] = p.name
    for tag_key, tag_value in p.tags.items():
        keys[f"aws:PrincipalTag/{tag_key}"] = tag_value
    return keys
