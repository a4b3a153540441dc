"""The decision memo (auth/memo.py) answers exactly as the policy engine would."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as s

from strongroom.auth.memo import DecisionMemo, parsed_policy
from strongroom.auth.policy import Policy, Request, evaluate
from tests.unit.test_policy_properties import policy_sets, requests, resource_policies

ACCT = "111111111111"
SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCT}:secret:prod/db-AbCdEf"
ALICE = f"arn:aws:iam::{ACCT}:user/alice"


def _request(context: dict[str, Any], principal: str = ALICE, resource: str = SECRET) -> Request:
    return Request(principal, ACCT, "secretsmanager:GetSecretValue", resource, context)


@settings(max_examples=150, deadline=None)
@given(policy_sets, resource_policies, s.lists(requests(), min_size=1, max_size=12))
def test_the_memo_decides_every_request_as_the_engine_does(docs: list[dict[str, Any]], rp: dict[str, Any] | None,
                                                           asked: list[Request]) -> None:
    memo = DecisionMemo(max_entries=8, variants=2)  # small, so eviction paths run too
    identity = tuple(Policy(f"p{i}", d) for i, d in enumerate(docs))
    resource = None if rp is None else Policy("ResourcePolicy", rp)
    for request in asked + asked:  # each request twice: the second time may come from the memo
        direct = evaluate(request, identity, resource, ACCT)
        remembered = memo.evaluate(request, identity, resource, ACCT)
        assert remembered.decision == direct.decision, request
        assert [t.applies for t in remembered.statements] == [t.applies for t in direct.statements]


def test_a_time_condition_is_decided_at_each_instant() -> None:
    memo = DecisionMemo()
    cutoff = "2026-06-01T00:00:00Z"
    identity = (Policy("until-june", {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*",
        "Condition": {"DateLessThan": {"aws:CurrentTime": cutoff}}}]}),)
    before = dt.datetime(2026, 5, 31, 23, 59, 59, tzinfo=dt.timezone.utc)
    after = before + dt.timedelta(seconds=2)
    assert memo.evaluate(_request({"aws:CurrentTime": before}), identity).allowed
    assert not memo.evaluate(_request({"aws:CurrentTime": after}), identity).allowed
    assert memo.evaluate(_request({"aws:CurrentTime": before}), identity).allowed


def test_policy_variables_are_resolved_per_caller() -> None:
    memo = DecisionMemo()
    own = (Policy("own-secrets", {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
        "Resource": f"arn:aws:secretsmanager:us-east-1:{ACCT}:secret:${{aws:username}}/*"}]}),)
    resource = f"arn:aws:secretsmanager:us-east-1:{ACCT}:secret:alice/db-AbCdEf"
    assert memo.evaluate(_request({"aws:username": "alice"}, resource=resource), own).allowed
    # Same principal ARN, action and resource; only the variable's value differs.
    assert not memo.evaluate(_request({"aws:username": "bob"}, resource=resource), own).allowed


def test_keys_no_statement_reads_do_not_split_the_memo() -> None:
    memo = DecisionMemo(variants=1)
    identity = (Policy("all", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"}]}),)
    first = memo.evaluate(_request({"aws:CurrentTime": dt.datetime.now(dt.timezone.utc)}), identity)
    later = memo.evaluate(_request({"aws:CurrentTime": dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)}),
                          identity)
    assert later is first  # the policy reads no key: the decision holds at any time


def test_other_policy_objects_are_other_questions() -> None:
    memo = DecisionMemo()
    allow = (Policy("p", {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*",
                                                                    "Resource": "*"}]}),)
    deny = (Policy("p", {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*",
                                                                   "Resource": "*"}]}),)
    assert memo.evaluate(_request({}), allow).allowed
    assert not memo.evaluate(_request({}), deny).allowed


def test_the_memo_stays_within_its_bound() -> None:
    memo = DecisionMemo(max_entries=10, variants=2)
    identity = (Policy("all", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*",
         "Condition": {"StringEquals": {"aws:SourceIp": "10.0.0.1"}}}]}),)
    for i in range(100):
        memo.evaluate(_request({"aws:SourceIp": f"10.0.0.{i % 7}"}, resource=f"{SECRET}{i}"), identity)
        assert len(memo._entries) <= 10
        assert all(len(v) <= 2 for v in memo._entries.values())


def test_stored_policies_parse_once_per_text() -> None:
    text = '{"Version": "2012-10-17", "Statement": []}'
    assert parsed_policy(text) is parsed_policy(text)
    assert parsed_policy("{not json") is None


def test_condition_keys_are_built_only_when_a_decision_needs_them() -> None:
    memo = DecisionMemo()
    plain = (Policy("all", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"}]}),)
    guarded = (Policy("tls", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}),)
    built: list[bool] = []

    def keys(secure: bool) -> Any:
        def build() -> dict[str, Any]:
            built.append(secure)
            return {"aws:SecureTransport": secure}
        return build

    assert memo.evaluate(_request({}), plain, context=keys(True)).allowed
    assert memo.evaluate(_request({}), plain, context=keys(False)).allowed
    assert built == [True]  # the second time, the decision that read nothing stands unbuilt
    assert memo.evaluate(_request({}), guarded, context=keys(True)).allowed
    assert not memo.evaluate(_request({}), guarded, context=keys(False)).allowed
    assert memo.evaluate(_request({}), guarded, context=keys(True)).allowed
    assert built == [True, True, False, True]


def test_a_working_set_that_fits_is_kept_whole_and_the_oldest_question_leaves_first() -> None:
    memo = DecisionMemo(max_entries=50, variants=2)
    identity = (Policy("all", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"}]}),)
    built: list[int] = []

    def ask(i: int) -> None:
        def context() -> dict[str, Any]:
            built.append(i)  # a decision that reads no key is reused without it: built on a miss only
            return {"aws:SourceIp": "10.0.0.1"}
        memo.evaluate(_request({}, resource=f"{SECRET}{i}"), identity, context=context)

    for i in range(50):  # one question per secret, as many as the memo holds
        ask(i)
    built.clear()
    for _ in range(3):
        for i in range(50):
            ask(i)
    assert built == []  # every answer reused: nothing was dropped to make room
    ask(50)  # one more pushes out the oldest question only
    built.clear()
    ask(1)
    ask(50)
    assert built == []
    ask(0)
    assert built == [0]


def test_the_server_sizes_the_memo_with_the_read_cache() -> None:
    from strongroom.auth import memo

    before = memo.DECISIONS.max_entries
    try:
        memo.size_decisions(100_000)
        assert memo.DECISIONS.max_entries >= 100_000
    finally:
        memo.DECISIONS.max_entries = before
