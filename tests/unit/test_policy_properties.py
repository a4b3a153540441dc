"""Properties the policy engine must keep for every policy set (hypothesis)."""

from __future__ import annotations

import copy
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as s

from strongroom.auth.conditions import evaluate_key, normalize_context, parse_operator
from strongroom.auth.matching import action_matches
from strongroom.auth.policy import Decision, Policy, Request, evaluate

ACCT, OTHER = "111111111111", "222222222222"
PREFIX = f"arn:aws:secretsmanager:us-east-1:{ACCT}:secret:"
PRINCIPALS = [
    (f"arn:aws:iam::{ACCT}:user/alice", ACCT),
    (f"arn:aws:sts::{ACCT}:assumed-role/app/run-1", ACCT),
    (f"arn:aws:iam::{ACCT}:root", ACCT),
    (f"arn:aws:iam::{OTHER}:user/carol", OTHER),
]
ACTIONS = ["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue",
           "secretsmanager:DeleteSecret", "kms:Decrypt"]
RESOURCES = [PREFIX + "prod/db-AbCdEf", PREFIX + "dev/app-123456", "*"]
ACTION_PATTERNS = ["*", "secretsmanager:*", "secretsmanager:Get*", "secretsmanager:*Secret*",
                   "kms:*", "secretsmanager:DeleteSecret", "SecretsManager:PUT*"]
RESOURCE_PATTERNS = ["*", PREFIX + "prod/*", PREFIX + "dev/*", "arn:aws:secretsmanager:*",
                     PREFIX + "${aws:username}/*", PREFIX + "*-??????"]
CONDITIONS: list[dict[str, Any]] = [
    {"StringEquals": {"aws:username": "alice"}},
    {"Bool": {"aws:SecureTransport": "true"}},
    {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
    {"StringNotEqualsIfExists": {"aws:PrincipalTag/team": "ops"}},
    {"ForAnyValue:StringLike": {"aws:TagKeys": "t*"}},
    {"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "env"]}},
    {"Null": {"aws:PrincipalTag/team": "false"}},
]
PRINCIPAL_ELEMENTS: list[Any] = ["*", {"AWS": ACCT}, {"AWS": OTHER}, {"AWS": PRINCIPALS[0][0]},
                                 {"AWS": f"arn:aws:iam::{ACCT}:role/app"}]


@s.composite
def statements(draw: s.DrawFn, effect: str | None = None, resource_policy: bool = False) -> dict[str, Any]:
    st: dict[str, Any] = {"Effect": effect or draw(s.sampled_from(["Allow", "Deny"]))}
    st["NotAction" if draw(s.booleans()) and draw(s.booleans()) else "Action"] = \
        draw(s.lists(s.sampled_from(ACTION_PATTERNS), min_size=1, max_size=2))
    st["NotResource" if draw(s.booleans()) and draw(s.booleans()) else "Resource"] = \
        draw(s.sampled_from(RESOURCE_PATTERNS))
    if draw(s.booleans()):
        st["Condition"] = draw(s.sampled_from(CONDITIONS))
    if resource_policy:
        st["Principal"] = draw(s.sampled_from(PRINCIPAL_ELEMENTS))
    return st


def documents(resource_policy: bool = False) -> s.SearchStrategy[dict[str, Any]]:
    return s.builds(lambda sts: {"Version": "2012-10-17", "Statement": sts},
                    s.lists(statements(resource_policy=resource_policy), min_size=1, max_size=4))


contexts = s.fixed_dictionaries({}, optional={
    "aws:username": s.sampled_from(["alice", "bob", "prod"]),
    "aws:SecureTransport": s.booleans(),
    "aws:SourceIp": s.sampled_from(["10.1.2.3", "192.168.0.1", "2001:db8::1"]),
    "aws:PrincipalTag/team": s.sampled_from(["ops", "dev"]),
    "aws:TagKeys": s.lists(s.sampled_from(["team", "env", "owner"]), max_size=3),
})


@s.composite
def requests(draw: s.DrawFn) -> Request:
    arn, account = draw(s.sampled_from(PRINCIPALS))
    return Request(arn, account, draw(s.sampled_from(ACTIONS)), draw(s.sampled_from(RESOURCES)),
                   draw(contexts))


policy_sets = s.lists(documents(), max_size=3)
resource_policies = s.one_of(s.none(), documents(resource_policy=True))


def decide(req: Request, docs: list[dict[str, Any]], rp: dict[str, Any] | None) -> Decision:
    policies = [Policy(f"p{i}", d) for i, d in enumerate(docs)]
    return evaluate(req, policies, rp, ACCT).decision


@settings(max_examples=300)
@given(requests(), policy_sets, resource_policies, statements(effect="Deny"), s.booleans())
def test_adding_a_deny_never_turns_a_deny_into_an_allow(req: Request, docs: list[dict[str, Any]],
                                                        rp: dict[str, Any] | None,
                                                        deny: dict[str, Any], in_resource: bool) -> None:
    before = decide(req, docs, rp)
    if in_resource:
        deny = {**deny, "Principal": "*"}
        rp2 = copy.deepcopy(rp) if rp else {"Version": "2012-10-17", "Statement": []}
        rp2["Statement"].append(deny)
        after = decide(req, docs, rp2)
    else:
        after = decide(req, docs + [{"Version": "2012-10-17", "Statement": [deny]}], rp)
    if before is not Decision.ALLOW:
        assert after is not Decision.ALLOW
    if before is Decision.EXPLICIT_DENY:
        assert after is Decision.EXPLICIT_DENY


@settings(max_examples=300)
@given(requests(), policy_sets, resource_policies, statements(effect="Allow"))
def test_adding_an_allow_never_turns_an_allow_into_a_deny(req: Request, docs: list[dict[str, Any]],
                                                          rp: dict[str, Any] | None,
                                                          allow: dict[str, Any]) -> None:
    before = decide(req, docs, rp)
    after = decide(req, docs + [{"Version": "2012-10-17", "Statement": [allow]}], rp)
    if before is Decision.ALLOW:
        assert after is Decision.ALLOW
    if before is not Decision.EXPLICIT_DENY:
        assert after is not Decision.EXPLICIT_DENY


@settings(max_examples=300)
@given(requests(), s.lists(documents(), max_size=2))
def test_allow_star_on_star_allows_everything_absent_a_deny(req: Request, docs: list[dict[str, Any]]) -> None:
    allow_only = [{**d, "Statement": [st for st in d["Statement"] if st["Effect"] == "Allow"]} for d in docs]
    admin = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    same_account = Request(req.principal_arn, ACCT, req.action, req.resource, req.context)
    assert decide(same_account, allow_only + [admin], None) is Decision.ALLOW


@settings(max_examples=300)
@given(requests(), policy_sets, resource_policies)
def test_a_deny_on_everything_always_wins(req: Request, docs: list[dict[str, Any]],
                                          rp: dict[str, Any] | None) -> None:
    deny_all = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}
    result = evaluate(req, [Policy(str(i), d) for i, d in enumerate(docs + [deny_all])], rp, ACCT)
    assert result.decision is Decision.EXPLICIT_DENY
    assert result.deciding and all(t.applies and t.effect == "Deny" for t in result.deciding)


@settings(max_examples=200)
@given(requests(), policy_sets, resource_policies, s.randoms(use_true_random=False))
def test_decision_does_not_depend_on_order(req: Request, docs: list[dict[str, Any]],
                                           rp: dict[str, Any] | None, rnd: random.Random) -> None:
    shuffled = [{**d, "Statement": rnd.sample(d["Statement"], len(d["Statement"]))} for d in docs]
    rnd.shuffle(shuffled)
    assert decide(req, docs, rp) is decide(req, shuffled, rp)


@settings(max_examples=200)
@given(requests(), policy_sets, resource_policies, s.randoms(use_true_random=False))
def test_context_keys_are_case_insensitive(req: Request, docs: list[dict[str, Any]],
                                           rp: dict[str, Any] | None, rnd: random.Random) -> None:
    recased = {"".join(c.upper() if rnd.random() < 0.5 else c.lower() for c in k): v
               for k, v in req.context.items()}
    other = Request(req.principal_arn, req.principal_account, req.action, req.resource, recased)
    assert decide(req, docs, rp) is decide(other, docs, rp)


@settings(max_examples=200)
@given(requests(), policy_sets, resource_policies)
def test_allowed_results_have_an_applying_allow(req: Request, docs: list[dict[str, Any]],
                                                rp: dict[str, Any] | None) -> None:
    result = evaluate(req, [Policy(str(i), d) for i, d in enumerate(docs)], rp, ACCT)
    if result.allowed:
        assert result.deciding and all(t.applies and t.effect == "Allow" for t in result.deciding)
    assert not any(t.applies and t.effect == "Deny" for t in result.statements) or \
        result.decision is Decision.EXPLICIT_DENY


NEGATIONS = [("StringEquals", "StringNotEquals"), ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"),
             ("StringLike", "StringNotLike"), ("NumericEquals", "NumericNotEquals"),
             ("DateEquals", "DateNotEquals"), ("IpAddress", "NotIpAddress"),
             ("ArnLike", "ArnNotLike"), ("ArnEquals", "ArnNotEquals")]
VALUES = ["a", "A", "a*", "1", "1.0", "2", "10.0.0.0/8", "10.0.0.1", "2024-01-01",
          "1704067200", "arn:aws:iam::1:role/x", "arn:aws:iam::1:role/*"]


@settings(max_examples=400)
@given(s.sampled_from(NEGATIONS), s.lists(s.sampled_from(VALUES), min_size=1, max_size=3),
       s.one_of(s.none(), s.sampled_from(VALUES)), s.sampled_from(["", "IfExists"]))
def test_negated_operator_is_the_negation_of_its_positive(pair: tuple[str, str], policy: list[str],
                                                          value: str | None, suffix: str) -> None:
    positive, negated = (parse_operator(name + suffix) for name in pair)
    assert positive is not None and negated is not None
    context = normalize_context({"k": value})
    p = evaluate_key(positive, "k", policy, context, None).result
    n = evaluate_key(negated, "k", policy, context, None).result
    if p is None or n is None:  # a malformed policy value is malformed for both
        assert p is None and n is None
    elif value is None and suffix:
        assert p is True and n is True
    else:
        assert n is (not p)


@given(s.sampled_from(ACTIONS), s.randoms(use_true_random=False))
def test_wildcarded_action_matches_its_source_in_any_case(action: str, rnd: random.Random) -> None:
    chars = list(action)
    for i in range(len(chars)):
        roll = rnd.random()
        chars[i] = "?" if roll < 0.15 else "*" if roll < 0.25 else chars[i]
    pattern = "".join(chars)
    assert action_matches(pattern, action)
    assert action_matches(pattern.swapcase(), action.upper())
