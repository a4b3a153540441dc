"""The IAM policy engine as a specification table: (policies, request) -> decision.

Each row names the AWS behaviour it pins down. A = Allow, X = ExplicitDeny, I = ImplicitDeny.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pytest

from strongroom.auth.policy import Decision, Policy, Request, evaluate

A, X, I = Decision.ALLOW, Decision.EXPLICIT_DENY, Decision.IMPLICIT_DENY
V = "2012-10-17"
ACCT, OTHER, THIRD = "111111111111", "222222222222", "333333333333"
USER = f"arn:aws:iam::{ACCT}:user/alice"
BOB = f"arn:aws:iam::{ACCT}:user/bob"
ROOT = f"arn:aws:iam::{ACCT}:root"
ROLE = f"arn:aws:iam::{ACCT}:role/app"
SESSION = f"arn:aws:sts::{ACCT}:assumed-role/app/run-1"
X_USER = f"arn:aws:iam::{OTHER}:user/carol"
X_ROOT = f"arn:aws:iam::{OTHER}:root"
SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCT}:secret:prod/db-AbCdEf"
SECRET_PREFIX = f"arn:aws:secretsmanager:us-east-1:{ACCT}:secret:"
GET = "secretsmanager:GetSecretValue"
NOW = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)
NOW_EPOCH = 1714564800


def st(effect: str = "Allow", action: Any = GET, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    """An identity-policy statement; pass action=None / resource=None to omit the element."""
    out: dict[str, Any] = {"Effect": effect}
    if action is not None:
        out["Action"] = action
    if resource is not None:
        out["Resource"] = resource
    out.update(extra)
    return out


def rst(effect: str = "Allow", principal: Any = "*", **extra: Any) -> dict[str, Any]:
    """A resource-policy statement (Principal instead of identity scoping)."""
    out = st(effect, **extra)
    if principal is not None:
        out["Principal"] = principal
    return out


def doc(*statements: Any, version: str | None = V) -> dict[str, Any]:
    out: dict[str, Any] = {"Statement": list(statements)}
    if version:
        out["Version"] = version
    return out


@dataclass
class Case:
    id: str
    expected: Decision
    identity: list[Any] = field(default_factory=list)
    resource_policy: Any = None
    principal_arn: str = USER
    principal_account: str = ACCT
    action: str = GET
    resource: str = SECRET
    context: dict[str, Any] = field(default_factory=dict)
    service: str | None = None
    resource_account: str | None = None


def C(id: str, expected: Decision, block: dict[str, Any], ctx: dict[str, Any],
      effect: str = "Allow") -> Case:
    """A condition case: one Allow carrying the condition, or allow-all plus a Deny carrying it."""
    if effect == "Allow":
        policy = doc(st(Condition=block))
    else:
        policy = doc(st(), st("Deny", Condition=block))
    return Case(id, expected, [policy], context=ctx)


ALLOW_ALL = doc(st(action="*"))

BASICS = [
    Case("no-policies-implicit-deny", I),
    Case("exact-action-allows", A, [doc(st())]),
    Case("other-action-implicit-deny", I, [doc(st(action="secretsmanager:DeleteSecret"))]),
    Case("service-wildcard", A, [doc(st(action="secretsmanager:*"))]),
    Case("prefix-wildcard", A, [doc(st(action="secretsmanager:Get*"))]),
    Case("suffix-wildcard", A, [doc(st(action="secretsmanager:*Value"))]),
    Case("question-mark-wildcard", A, [doc(st(action="secretsmanager:Get?ecretValue"))]),
    Case("question-mark-one-char-only", I, [doc(st(action="secretsmanager:Get?SecretValue"))]),
    Case("action-case-insensitive", A, [doc(st(action="SecretsManager:getsecretvalue"))]),
    Case("action-wildcard-case-insensitive", A, [doc(st(action="SECRETSMANAGER:GET*"))]),
    Case("non-matching-wildcard", I, [doc(st(action="secretsmanager:Describe*"))]),
    Case("star-action", A, [doc(st(action="*"))]),
    Case("other-service", I, [doc(st(action="kms:*"))]),
    Case("action-list-one-match", A, [doc(st(action=["kms:Decrypt", GET]))]),
    Case("action-list-no-match", I, [doc(st(action=["kms:Decrypt", "secretsmanager:List*"]))]),
    Case("service-prefix-must-match", I, [doc(st(action="secretsmanagers:GetSecretValue"))]),
    Case("deny-beats-allow-same-policy", X, [doc(st(), st("Deny"))]),
    Case("deny-beats-allow-other-policy", X, [doc(st()), doc(st("Deny", action="secretsmanager:*"))]),
    Case("deny-only-policy", X, [doc(st("Deny"))]),
    Case("deny-other-action-leaves-allow", A, [doc(st(), st("Deny", action="secretsmanager:Delete*"))]),
    Case("deny-other-resource-leaves-allow", A, [doc(st(), st("Deny", resource=SECRET_PREFIX + "dev/*"))]),
    Case("empty-statement-list", I, [doc()]),
    Case("statement-as-single-object", A, [{"Version": V, "Statement": st()}]),
    Case("allow-in-second-policy", A, [doc(st(action="kms:*")), doc(st())]),
    Case("deny-in-first-of-many", X, [doc(st("Deny")), doc(st()), doc(st(action="*"))]),
]

NOT_ACTION = [
    Case("notaction-allows-others", A, [doc(st(action=None, NotAction="secretsmanager:Delete*"))]),
    Case("notaction-excludes-listed", I, [doc(st(action=None, NotAction="secretsmanager:Get*"))]),
    Case("notaction-case-insensitive", I, [doc(st(action=None, NotAction="SECRETSMANAGER:GETSECRETVALUE"))]),
    Case("notaction-list", I, [doc(st(action=None, NotAction=["kms:*", "secretsmanager:GetSecret*"]))]),
    Case("deny-notaction-spares-listed", A, [ALLOW_ALL, doc(st("Deny", action=None, NotAction="secretsmanager:Get*"))]),
    Case("deny-notaction-denies-others", X, [ALLOW_ALL, doc(st("Deny", action=None, NotAction="secretsmanager:Describe*"))]),
    Case("notaction-other-service", A, [doc(st(action=None, NotAction="iam:*"))]),
]

RESOURCES = [
    Case("exact-resource", A, [doc(st(resource=SECRET))]),
    Case("star-resource", A, [doc(st(resource="*"))]),
    Case("prefix-path-wildcard", A, [doc(st(resource=SECRET_PREFIX + "prod/*"))]),
    Case("other-path", I, [doc(st(resource=SECRET_PREFIX + "dev/*"))]),
    Case("resource-case-sensitive", I, [doc(st(resource=SECRET_PREFIX + "PROD/*"))]),
    Case("region-account-wildcards", A, [doc(st(resource="arn:aws:secretsmanager:*:*:secret:*"))]),
    Case("question-marks-suffix", A, [doc(st(resource=SECRET_PREFIX + "prod/db-??????"))]),
    Case("question-marks-too-few", I, [doc(st(resource=SECRET_PREFIX + "prod/db-?????"))]),
    Case("question-mark-in-region", A, [doc(st(resource=f"arn:aws:secretsmanager:us-east-?:{ACCT}:secret:*"))]),
    Case("trailing-star-spans-colons", A, [doc(st(resource="arn:aws:secretsmanager:*"))]),
    Case("mid-segment-star-stops-at-colon", I, [doc(st(resource=f"arn:aws:secretsmanager:us-east-1:{ACCT}:sec*db-AbCdEf"))]),
    Case("mid-segment-star-within-segment", A, [doc(st(resource=SECRET_PREFIX + "prod/d*f"))]),
    Case("wrong-account", I, [doc(st(resource=f"arn:aws:secretsmanager:us-east-1:{OTHER}:secret:*"))]),
    Case("resource-list-one-match", A, [doc(st(resource=[SECRET_PREFIX + "dev/*", SECRET]))]),
    Case("notresource-other", A, [doc(st(resource=None, NotResource=SECRET_PREFIX + "dev/*"))]),
    Case("notresource-excludes", I, [doc(st(resource=None, NotResource=SECRET_PREFIX + "prod/*"))]),
    Case("deny-notresource-denies-outside", X, [ALLOW_ALL, doc(st("Deny", resource=None, NotResource=SECRET_PREFIX + "dev/*"))]),
    Case("deny-notresource-spares-inside", A, [ALLOW_ALL, doc(st("Deny", resource=None, NotResource=SECRET_PREFIX + "prod/*"))]),
    Case("star-request-resource-needs-star", A, [doc(st(action="secretsmanager:ListSecrets"))],
         action="secretsmanager:ListSecrets", resource="*"),
    Case("star-request-resource-arn-pattern", I, [doc(st(action="secretsmanager:ListSecrets", resource=SECRET_PREFIX + "*"))],
         action="secretsmanager:ListSecrets", resource="*"),
]

VARIABLES = [
    Case("var-username-in-resource", A, [doc(st(resource=SECRET_PREFIX + "${aws:username}/*"))], context={"aws:username": "prod"}),
    Case("var-username-other-value", I, [doc(st(resource=SECRET_PREFIX + "${aws:username}/*"))], context={"aws:username": "dev"}),
    Case("var-missing-matches-nothing", I, [doc(st(resource=SECRET_PREFIX + "${aws:username}/*"))]),
    Case("var-default-when-missing", A, [doc(st(resource=SECRET_PREFIX + "${aws:username, 'prod'}/*"))]),
    Case("var-default-ignored-when-present", I, [doc(st(resource=SECRET_PREFIX + "${aws:username, 'prod'}/*"))], context={"aws:username": "dev"}),
    Case("var-name-case-insensitive", A, [doc(st(resource=SECRET_PREFIX + "${AWS:UserName}/*"))], context={"aws:username": "prod"}),
    Case("var-context-key-case-insensitive", A, [doc(st(resource=SECRET_PREFIX + "${aws:username}/*"))], context={"AWS:USERNAME": "prod"}),
    Case("var-old-version-literal", I, [doc(st(resource=SECRET_PREFIX + "${aws:username}/*"), version="2008-10-17")], context={"aws:username": "prod"}),
    Case("var-no-version-literal", I, [doc(st(resource=SECRET_PREFIX + "${aws:username}/*"), version=None)], context={"aws:username": "prod"}),
    Case("var-principal-tag", A, [doc(st(resource=SECRET_PREFIX + "${aws:PrincipalTag/team}/*"))], context={"aws:PrincipalTag/team": "prod"}),
    Case("var-principal-account", A, [doc(st(resource="arn:aws:secretsmanager:us-east-1:${aws:PrincipalAccount}:secret:*"))], context={"aws:PrincipalAccount": ACCT}),
    Case("var-principal-account-other", I, [doc(st(resource="arn:aws:secretsmanager:us-east-1:${aws:PrincipalAccount}:secret:*"))], context={"aws:PrincipalAccount": OTHER}),
    Case("var-value-star-is-literal", I, [doc(st(resource=SECRET_PREFIX + "${aws:PrincipalTag/team}"))], context={"aws:PrincipalTag/team": "*"}),
    Case("var-escape-star-literal", A, [doc(st(resource=SECRET_PREFIX + "prod/${*}"))], resource=SECRET_PREFIX + "prod/*"),
    Case("var-escape-star-not-wildcard", I, [doc(st(resource=SECRET_PREFIX + "prod/${*}"))]),
    Case("var-multivalued-unresolvable", I, [doc(st(resource=SECRET_PREFIX + "${aws:TagKeys}/*"))], context={"aws:TagKeys": ["prod", "dev"]}),
    C("var-in-condition-equal", A, {"StringEquals": {"aws:ResourceTag/owner": "${aws:username}"}}, {"aws:ResourceTag/owner": "alice", "aws:username": "alice"}),
    C("var-in-condition-differs", I, {"StringEquals": {"aws:ResourceTag/owner": "${aws:username}"}}, {"aws:ResourceTag/owner": "bob", "aws:username": "alice"}),
    C("var-in-condition-missing", I, {"StringEquals": {"aws:ResourceTag/owner": "${aws:username}"}}, {"aws:ResourceTag/owner": "alice"}),
    C("var-unresolvable-negated-holds", A, {"StringNotEquals": {"aws:ResourceTag/owner": "${aws:username}"}}, {"aws:ResourceTag/owner": "alice"}),
    C("var-deny-owner-mismatch", X, {"StringNotEquals": {"aws:ResourceTag/owner": "${aws:username}"}}, {"aws:ResourceTag/owner": "bob", "aws:username": "alice"}, "Deny"),
    C("var-deny-owner-match", A, {"StringNotEquals": {"aws:ResourceTag/owner": "${aws:username}"}}, {"aws:ResourceTag/owner": "alice", "aws:username": "alice"}, "Deny"),
    C("var-escape-question", A, {"StringLike": {"k": "a${?}"}}, {"k": "a?"}),
    C("var-escape-question-not-wildcard", I, {"StringLike": {"k": "a${?}"}}, {"k": "ab"}),
    C("var-escape-dollar", A, {"StringEquals": {"k": "${$}5"}}, {"k": "$5"}),
    C("var-like-prefix", A, {"StringLike": {"k": "home/${aws:username}/*"}}, {"k": "home/alice/x", "aws:username": "alice"}),
    C("var-current-time-as-text", A, {"StringEquals": {"k": "${aws:CurrentTime}"}}, {"k": "2024-05-01T12:00:00Z", "aws:CurrentTime": NOW}),
    C("var-userid", A, {"StringEquals": {"k": "${aws:userid}"}}, {"k": "AIDAEXAMPLE", "aws:userid": "AIDAEXAMPLE"}),
    C("var-default-quote-escape", A, {"StringEquals": {"k": "${aws:x, 'it''s'}"}}, {"k": "it's"}),
    C("var-not-in-numeric", I, {"NumericEquals": {"k": "${aws:EpochTime}"}}, {"k": 5, "aws:EpochTime": 5}),
    C("var-in-arn-condition", A, {"ArnEquals": {"aws:SourceArn": "arn:aws:iam::${aws:PrincipalAccount}:role/x"}}, {"aws:SourceArn": ROLE.replace("app", "x"), "aws:PrincipalAccount": ACCT}),
    C("var-unterminated-is-text", A, {"StringEquals": {"k": "${aws:username"}}, {"k": "${aws:username", "aws:username": "x"}),
]

STRINGS = [
    C("streq-match", A, {"StringEquals": {"aws:username": "alice"}}, {"aws:username": "alice"}),
    C("streq-mismatch", I, {"StringEquals": {"aws:username": "alice"}}, {"aws:username": "bob"}),
    C("streq-case-sensitive", I, {"StringEquals": {"aws:username": "alice"}}, {"aws:username": "Alice"}),
    C("streq-missing-key", I, {"StringEquals": {"aws:username": "alice"}}, {}),
    C("streq-key-case-insensitive", A, {"StringEquals": {"AWS:USERNAME": "alice"}}, {"aws:UserName": "alice"}),
    C("streq-values-ored", A, {"StringEquals": {"aws:username": ["bob", "alice"]}}, {"aws:username": "alice"}),
    C("streq-keys-anded", I, {"StringEquals": {"aws:username": "alice", "aws:PrincipalTag/team": "ops"}}, {"aws:username": "alice", "aws:PrincipalTag/team": "dev"}),
    C("streq-keys-anded-all-hold", A, {"StringEquals": {"aws:username": "alice", "aws:PrincipalTag/team": "ops"}}, {"aws:username": "alice", "aws:PrincipalTag/team": "ops"}),
    C("operators-anded", I, {"StringEquals": {"aws:username": "alice"}, "Bool": {"aws:SecureTransport": "true"}}, {"aws:username": "alice", "aws:SecureTransport": False}),
    C("operators-anded-all-hold", A, {"StringEquals": {"aws:username": "alice"}, "Bool": {"aws:SecureTransport": "true"}}, {"aws:username": "alice", "aws:SecureTransport": True}),
    C("streq-number-policy-value", A, {"StringEquals": {"k": 5}}, {"k": "5"}),
    C("streq-bool-context", A, {"StringEquals": {"k": "true"}}, {"k": True}),
    C("streq-operator-name-case-insensitive", A, {"stringequals": {"aws:username": "alice"}}, {"aws:username": "alice"}),
    C("strneq-different", A, {"StringNotEquals": {"aws:username": "bob"}}, {"aws:username": "alice"}),
    C("strneq-equal", I, {"StringNotEquals": {"aws:username": "alice"}}, {"aws:username": "alice"}),
    C("strneq-missing-key-true", A, {"StringNotEquals": {"aws:username": "alice"}}, {}),
    C("strneq-values-must-all-differ", I, {"StringNotEquals": {"aws:username": ["bob", "alice"]}}, {"aws:username": "alice"}),
    C("strneq-values-none-equal", A, {"StringNotEquals": {"aws:username": ["bob", "carol"]}}, {"aws:username": "alice"}),
    C("streqic-match", A, {"StringEqualsIgnoreCase": {"aws:username": "ALICE"}}, {"aws:username": "alice"}),
    C("streqic-mismatch", I, {"StringEqualsIgnoreCase": {"aws:username": "bob"}}, {"aws:username": "alice"}),
    C("streqic-missing", I, {"StringEqualsIgnoreCase": {"aws:username": "alice"}}, {}),
    C("strneqic-equal-ignoring-case", I, {"StringNotEqualsIgnoreCase": {"aws:username": "ALICE"}}, {"aws:username": "alice"}),
    C("strneqic-different", A, {"StringNotEqualsIgnoreCase": {"aws:username": "bob"}}, {"aws:username": "alice"}),
    C("strneqic-missing", A, {"StringNotEqualsIgnoreCase": {"aws:username": "bob"}}, {}),
    C("strlike-prefix", A, {"StringLike": {"aws:username": "al*"}}, {"aws:username": "alice"}),
    C("strlike-question", A, {"StringLike": {"aws:username": "a?ice"}}, {"aws:username": "alice"}),
    C("strlike-mismatch", I, {"StringLike": {"aws:username": "b*"}}, {"aws:username": "alice"}),
    C("strlike-case-sensitive", I, {"StringLike": {"aws:username": "AL*"}}, {"aws:username": "alice"}),
    C("strlike-star-missing-key", I, {"StringLike": {"aws:username": "*"}}, {}),
    C("strlike-star-spans-colons", A, {"StringLike": {"k": "arn:*"}}, {"k": "arn:aws:x:y:z:w"}),
    C("strlike-empty-value", A, {"StringLike": {"k": ["", "home/"]}}, {"k": ""}),
    C("strnotlike-mismatch", A, {"StringNotLike": {"aws:username": "b*"}}, {"aws:username": "alice"}),
    C("strnotlike-match", I, {"StringNotLike": {"aws:username": "al*"}}, {"aws:username": "alice"}),
    C("strnotlike-missing", A, {"StringNotLike": {"aws:username": "al*"}}, {}),
    C("streq-ifexists-missing", A, {"StringEqualsIfExists": {"aws:username": "alice"}}, {}),
    C("streq-ifexists-present-mismatch", I, {"StringEqualsIfExists": {"aws:username": "alice"}}, {"aws:username": "bob"}),
    C("streq-ifexists-present-match", A, {"StringEqualsIfExists": {"aws:username": "alice"}}, {"aws:username": "alice"}),
    C("strneq-ifexists-missing", A, {"StringNotEqualsIfExists": {"aws:username": "alice"}}, {}),
    C("strneq-ifexists-equal", I, {"StringNotEqualsIfExists": {"aws:username": "alice"}}, {"aws:username": "alice"}),
    C("strlike-ifexists-missing", A, {"StringLikeIfExists": {"k": "t2.*"}}, {}),
    C("strlike-ifexists-mismatch", I, {"StringLikeIfExists": {"k": "t2.*"}}, {"k": "m5.large"}),
    C("strnotlike-ifexists-match", I, {"StringNotLikeIfExists": {"k": "t2.*"}}, {"k": "t2.micro"}),
    C("streqic-ifexists-missing", A, {"StringEqualsIgnoreCaseIfExists": {"k": "x"}}, {}),
    C("strneqic-ifexists-present", A, {"StringNotEqualsIgnoreCaseIfExists": {"k": "x"}}, {"k": "y"}),
    C("deny-strneq-ifexists-missing-still-denies", X, {"StringNotEqualsIfExists": {"aws:ResourceTag/team": "ops"}}, {}, "Deny"),
    C("deny-streq-missing-does-not-deny", A, {"StringEquals": {"aws:ResourceTag/team": "ops"}}, {}, "Deny"),
]

NUMBERS = [
    C("numeq-int", A, {"NumericEquals": {"k": "10"}}, {"k": 10}),
    C("numeq-decimal-forms", A, {"NumericEquals": {"k": "10"}}, {"k": "10.0"}),
    C("numeq-json-number", A, {"NumericEquals": {"k": 10}}, {"k": 10}),
    C("numeq-mismatch", I, {"NumericEquals": {"k": "10"}}, {"k": 11}),
    C("numneq-different", A, {"NumericNotEquals": {"k": "10"}}, {"k": 11}),
    C("numneq-equal", I, {"NumericNotEquals": {"k": "10"}}, {"k": 10}),
    C("numneq-missing", A, {"NumericNotEquals": {"k": "10"}}, {}),
    C("numlt-true", A, {"NumericLessThan": {"k": "10"}}, {"k": 5}),
    C("numlt-equal-false", I, {"NumericLessThan": {"k": "10"}}, {"k": 10}),
    C("numlte-equal", A, {"NumericLessThanEquals": {"k": "10"}}, {"k": 10}),
    C("numlte-greater", I, {"NumericLessThanEquals": {"k": "10"}}, {"k": 11}),
    C("numgt-true", A, {"NumericGreaterThan": {"k": "10"}}, {"k": 11}),
    C("numgt-equal-false", I, {"NumericGreaterThan": {"k": "10"}}, {"k": 10}),
    C("numgte-equal", A, {"NumericGreaterThanEquals": {"k": "10"}}, {"k": 10}),
    C("numgte-less", I, {"NumericGreaterThanEquals": {"k": "10"}}, {"k": 9}),
    C("numlt-fraction", A, {"NumericLessThan": {"k": "3"}}, {"k": "2.5"}),
    C("numlt-negative", A, {"NumericLessThan": {"k": "0"}}, {"k": -1}),
    C("num-context-not-a-number", I, {"NumericLessThan": {"k": "10"}}, {"k": "abc"}),
    C("num-context-bool-not-a-number", I, {"NumericEquals": {"k": "1"}}, {"k": True}),
    C("num-missing", I, {"NumericLessThan": {"k": "10"}}, {}),
    C("num-ifexists-missing", A, {"NumericLessThanIfExists": {"k": "10"}}, {}),
    C("num-ifexists-present-false", I, {"NumericLessThanIfExists": {"k": "10"}}, {"k": 20}),
    C("num-values-ored", A, {"NumericEquals": {"k": ["1", "2", "3"]}}, {"k": 2}),
    C("num-policy-malformed-allow-grants-nothing", I, {"NumericEquals": {"k": "ten"}}, {"k": 10}),
    C("num-policy-malformed-deny-applies", X, {"NumericEquals": {"k": "ten"}}, {"k": 10}, "Deny"),
]

DATES = [
    C("datelt-before", A, {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}, {"aws:CurrentTime": NOW}),
    C("dategt-not-after", I, {"DateGreaterThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}, {"aws:CurrentTime": NOW}),
    C("dateeq-other-format-same-instant", A, {"DateEquals": {"aws:CurrentTime": "2024-05-01T14:00:00+02:00"}}, {"aws:CurrentTime": NOW}),
    C("dateeq-epoch-policy", A, {"DateEquals": {"aws:CurrentTime": str(NOW_EPOCH)}}, {"aws:CurrentTime": NOW}),
    C("dateeq-epoch-json-number", A, {"DateEquals": {"aws:CurrentTime": NOW_EPOCH}}, {"aws:CurrentTime": NOW}),
    C("dateeq-epoch-context", A, {"DateEquals": {"aws:EpochTime": "2024-05-01T12:00:00Z"}}, {"aws:EpochTime": NOW_EPOCH}),
    C("dateeq-string-context", A, {"DateEquals": {"aws:CurrentTime": "2024-05-01T12:00:00Z"}}, {"aws:CurrentTime": "2024-05-01T12:00:00Z"}),
    C("dateneq-different", A, {"DateNotEquals": {"aws:CurrentTime": "2024-05-02"}}, {"aws:CurrentTime": NOW}),
    C("dateneq-equal", I, {"DateNotEquals": {"aws:CurrentTime": "2024-05-01T12:00:00Z"}}, {"aws:CurrentTime": NOW}),
    C("dateneq-missing", A, {"DateNotEquals": {"aws:CurrentTime": "2024-05-01T12:00:00Z"}}, {}),
    C("datelte-equal", A, {"DateLessThanEquals": {"aws:CurrentTime": "2024-05-01T12:00:00Z"}}, {"aws:CurrentTime": NOW}),
    C("datelte-after", I, {"DateLessThanEquals": {"aws:CurrentTime": "2024-05-01T11:59:59Z"}}, {"aws:CurrentTime": NOW}),
    C("dategte-equal", A, {"DateGreaterThanEquals": {"aws:CurrentTime": "2024-05-01T12:00:00Z"}}, {"aws:CurrentTime": NOW}),
    C("dategt-date-only-midnight", A, {"DateGreaterThan": {"aws:CurrentTime": "2024-05-01"}}, {"aws:CurrentTime": NOW}),
    C("datelt-year-month", A, {"DateLessThan": {"aws:CurrentTime": "2024-06"}}, {"aws:CurrentTime": NOW}),
    C("datelt-fractional-seconds", A, {"DateLessThan": {"aws:CurrentTime": "2024-05-01T12:00:00.500Z"}}, {"aws:CurrentTime": NOW}),
    C("date-missing", I, {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}, {}),
    C("date-ifexists-missing", A, {"DateLessThanIfExists": {"aws:TokenIssueTime": "2020-01-01T00:00:00Z"}}, {}),
    C("date-ifexists-present-false", I, {"DateLessThanIfExists": {"aws:TokenIssueTime": "2020-01-01T00:00:00Z"}}, {"aws:TokenIssueTime": NOW}),
    C("date-context-garbage", I, {"DateLessThan": {"aws:CurrentTime": "2030-01-01"}}, {"aws:CurrentTime": "soon"}),
    C("date-policy-malformed", I, {"DateLessThan": {"aws:CurrentTime": "tomorrow"}}, {"aws:CurrentTime": NOW}),
    C("deny-after-expiry", X, {"DateGreaterThan": {"aws:CurrentTime": "2024-01-01T00:00:00Z"}}, {"aws:CurrentTime": NOW}, "Deny"),
]

BOOLS_BINARY = [
    C("bool-true", A, {"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": True}),
    C("bool-false-context", I, {"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": False}),
    C("bool-string-context", A, {"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": "true"}),
    C("bool-case-insensitive-value", A, {"Bool": {"aws:SecureTransport": "TRUE"}}, {"aws:SecureTransport": True}),
    C("bool-json-bool", A, {"Bool": {"aws:SecureTransport": True}}, {"aws:SecureTransport": True}),
    C("bool-missing", I, {"Bool": {"aws:MultiFactorAuthPresent": "true"}}, {}),
    C("bool-ifexists-missing", A, {"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}}, {}),
    C("bool-policy-malformed", I, {"Bool": {"aws:SecureTransport": "yes"}}, {"aws:SecureTransport": True}),
    C("deny-insecure-transport", X, {"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": False}, "Deny"),
    C("deny-insecure-spares-tls", A, {"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": True}, "Deny"),
    C("deny-no-mfa-ifexists-missing", X, {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}, {}, "Deny"),
    C("bin-bytes", A, {"BinaryEquals": {"k": "aGVsbG8="}}, {"k": b"hello"}),
    C("bin-other-bytes", I, {"BinaryEquals": {"k": "aGVsbG8="}}, {"k": b"world"}),
    C("bin-base64-context", A, {"BinaryEquals": {"k": "aGVsbG8="}}, {"k": "aGVsbG8="}),
    C("bin-missing", I, {"BinaryEquals": {"k": "aGVsbG8="}}, {}),
    C("bin-ifexists-missing", A, {"BinaryEqualsIfExists": {"k": "aGVsbG8="}}, {}),
    C("bin-policy-malformed", I, {"BinaryEquals": {"k": "not base64!"}}, {"k": b"x"}),
]

IPS = [
    C("ip-in-cidr", A, {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "10.1.2.3"}),
    C("ip-outside-cidr", I, {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "192.168.1.1"}),
    C("ip-single-address-is-32", A, {"IpAddress": {"aws:SourceIp": "203.0.113.5"}}, {"aws:SourceIp": "203.0.113.5"}),
    C("ip-single-address-other", I, {"IpAddress": {"aws:SourceIp": "203.0.113.5"}}, {"aws:SourceIp": "203.0.113.6"}),
    C("ip-host-bits-set", A, {"IpAddress": {"aws:SourceIp": "203.0.113.9/24"}}, {"aws:SourceIp": "203.0.113.200"}),
    C("ip-v6-in-range", A, {"IpAddress": {"aws:SourceIp": "2001:DB8:1234:5678::/64"}}, {"aws:SourceIp": "2001:db8:1234:5678::1"}),
    C("ip-v6-outside", I, {"IpAddress": {"aws:SourceIp": "2001:db8::/32"}}, {"aws:SourceIp": "2001:db9::1"}),
    C("ip-v4-against-v6-range", I, {"IpAddress": {"aws:SourceIp": "::/0"}}, {"aws:SourceIp": "10.0.0.1"}),
    C("ip-mixed-list", A, {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:db8::/32"]}}, {"aws:SourceIp": "2001:db8::5"}),
    C("ip-missing", I, {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {}),
    C("ip-context-garbage", I, {"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}, {"aws:SourceIp": "localhost"}),
    C("ip-policy-malformed", I, {"IpAddress": {"aws:SourceIp": "10.0.0.0/33"}}, {"aws:SourceIp": "10.0.0.1"}),
    C("notip-outside", A, {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "192.168.1.1"}),
    C("notip-inside", I, {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "10.1.2.3"}),
    C("notip-missing", A, {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {}),
    C("notip-list-any-range-excludes", I, {"NotIpAddress": {"aws:SourceIp": ["192.168.0.0/16", "10.0.0.0/8"]}}, {"aws:SourceIp": "10.9.9.9"}),
    C("ip-ifexists-missing", A, {"IpAddressIfExists": {"aws:SourceIp": "10.0.0.0/8"}}, {}),
    C("deny-outside-corporate-range", X, {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "198.51.100.7"}, "Deny"),
    C("deny-outside-range-spares-inside", A, {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "10.0.0.7"}, "Deny"),
]

ARNS = [
    C("arneq-exact", A, {"ArnEquals": {"aws:SourceArn": ROLE}}, {"aws:SourceArn": ROLE}),
    C("arneq-wildcards-like-arnlike", A, {"ArnEquals": {"aws:SourceArn": f"arn:aws:iam::{ACCT}:role/*"}}, {"aws:SourceArn": ROLE}),
    C("arnlike-components", A, {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/ap?"}}, {"aws:PrincipalArn": ROLE}),
    C("arnlike-mismatch", I, {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{OTHER}:role/*"}}, {"aws:PrincipalArn": ROLE}),
    C("arnlike-case-sensitive", I, {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCT}:role/APP"}}, {"aws:PrincipalArn": ROLE}),
    C("arnlike-star-does-not-cross-components", I,
      {"ArnLike": {"k": "arn:aws:someservice:*:111122223333:finance/*"}},
      {"k": "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"}),
    C("stringlike-same-pattern-crosses", A,
      {"StringLike": {"k": "arn:aws:someservice:*:111122223333:finance/*"}},
      {"k": "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"}),
    C("arnlike-resource-part-keeps-colons", A, {"ArnLike": {"k": "arn:aws:secretsmanager:*:*:secret:prod/*"}}, {"k": SECRET}),
    C("arnlike-context-not-an-arn", I, {"ArnLike": {"k": "arn:aws:*:*:*:*"}}, {"k": "not-an-arn"}),
    C("arnlike-bare-star", A, {"ArnLike": {"k": "*"}}, {"k": ROLE}),
    C("arnlike-missing", I, {"ArnLike": {"k": "arn:*:*:*:*:*"}}, {}),
    C("arnneq-different", A, {"ArnNotEquals": {"aws:SourceArn": ROLE}}, {"aws:SourceArn": SESSION}),
    C("arnneq-equal", I, {"ArnNotEquals": {"aws:SourceArn": ROLE}}, {"aws:SourceArn": ROLE}),
    C("arnneq-missing", A, {"ArnNotEquals": {"aws:SourceArn": ROLE}}, {}),
    C("arnnotlike-match", I, {"ArnNotLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCT}:role/*"}}, {"aws:PrincipalArn": ROLE}),
    C("arnnotlike-nomatch", A, {"ArnNotLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCT}:user/*"}}, {"aws:PrincipalArn": ROLE}),
    C("arnlike-ifexists-missing", A, {"ArnLikeIfExists": {"aws:SourceArn": "arn:aws:lambda:*:*:function:*"}}, {}),
    C("deny-unless-principal-arn", X, {"ArnNotLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCT}:role/admin-*"}}, {"aws:PrincipalArn": ROLE}, "Deny"),
]

NULLS = [
    C("null-true-absent", A, {"Null": {"aws:TokenIssueTime": "true"}}, {}),
    C("null-true-present", I, {"Null": {"aws:TokenIssueTime": "true"}}, {"aws:TokenIssueTime": NOW}),
    C("null-false-present", A, {"Null": {"aws:TokenIssueTime": "false"}}, {"aws:TokenIssueTime": NOW}),
    C("null-false-absent", I, {"Null": {"aws:TokenIssueTime": "false"}}, {}),
    C("null-json-bool", A, {"Null": {"aws:TokenIssueTime": True}}, {}),
    C("null-empty-list-is-absent", A, {"Null": {"aws:TagKeys": "true"}}, {"aws:TagKeys": []}),
    C("null-key-case-insensitive", I, {"Null": {"AWS:TOKENISSUETIME": "true"}}, {"aws:tokenissuetime": NOW}),
    C("null-malformed", I, {"Null": {"k": "maybe"}}, {}),
    C("null-ifexists-not-an-operator", I, {"NullIfExists": {"k": "true"}}, {}),
    C("deny-when-tag-missing", X, {"Null": {"aws:RequestTag/owner": "true"}}, {}, "Deny"),
]

SETS = [
    C("forall-subset", A, {"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}}, {"aws:TagKeys": ["env"]}),
    C("forall-equal-set", A, {"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}}, {"aws:TagKeys": ["team", "env"]}),
    C("forall-extra-value", I, {"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}}, {"aws:TagKeys": ["env", "owner"]}),
    C("forall-missing-is-true", A, {"ForAllValues:StringEquals": {"aws:TagKeys": ["env"]}}, {}),
    C("forall-empty-is-true", A, {"ForAllValues:StringEquals": {"aws:TagKeys": ["env"]}}, {"aws:TagKeys": []}),
    C("forall-single-value", A, {"ForAllValues:StringEquals": {"aws:TagKeys": "env"}}, {"aws:TagKeys": "env"}),
    C("forany-overlap", A, {"ForAnyValue:StringEquals": {"aws:TagKeys": ["env", "team"]}}, {"aws:TagKeys": ["x", "team"]}),
    C("forany-no-overlap", I, {"ForAnyValue:StringEquals": {"aws:TagKeys": ["env", "team"]}}, {"aws:TagKeys": ["x"]}),
    C("forany-missing-is-false", I, {"ForAnyValue:StringEquals": {"aws:TagKeys": ["env"]}}, {}),
    C("forany-empty-is-false", I, {"ForAnyValue:StringEquals": {"aws:TagKeys": ["env"]}}, {"aws:TagKeys": []}),
    C("forany-ifexists-missing", A, {"ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": ["env"]}}, {}),
    C("forall-like", A, {"ForAllValues:StringLike": {"aws:TagKeys": "team-*"}}, {"aws:TagKeys": ["team-a", "team-b"]}),
    C("forall-like-one-fails", I, {"ForAllValues:StringLike": {"aws:TagKeys": "team-*"}}, {"aws:TagKeys": ["team-a", "env"]}),
    C("forany-like", A, {"ForAnyValue:StringLike": {"aws:TagKeys": "team-*"}}, {"aws:TagKeys": ["env", "team-b"]}),
    C("forall-noteq-none-forbidden", A, {"ForAllValues:StringNotEquals": {"aws:TagKeys": ["secret"]}}, {"aws:TagKeys": ["a", "b"]}),
    C("forall-noteq-one-forbidden", I, {"ForAllValues:StringNotEquals": {"aws:TagKeys": ["secret"]}}, {"aws:TagKeys": ["a", "secret"]}),
    C("forany-noteq-some-other", A, {"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["secret"]}}, {"aws:TagKeys": ["secret", "a"]}),
    C("forany-noteq-only-forbidden", I, {"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["secret"]}}, {"aws:TagKeys": ["secret"]}),
    C("forany-noteq-missing", I, {"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["secret"]}}, {}),
    C("forall-ignorecase", A, {"ForAllValues:StringEqualsIgnoreCase": {"aws:TagKeys": ["ENV"]}}, {"aws:TagKeys": ["env", "Env"]}),
    C("forany-arnlike", A, {"ForAnyValue:ArnLike": {"k": f"arn:aws:iam::{ACCT}:role/*"}}, {"k": [USER, ROLE]}),
    C("forall-arnlike-one-fails", I, {"ForAllValues:ArnLike": {"k": f"arn:aws:iam::{ACCT}:role/*"}}, {"k": [USER, ROLE]}),
    C("forall-numeric", A, {"ForAllValues:NumericLessThan": {"k": "5"}}, {"k": [1, 2, 3]}),
    C("forany-ip", A, {"ForAnyValue:IpAddress": {"k": "10.0.0.0/8"}}, {"k": ["192.168.0.1", "10.0.0.1"]}),
    C("qualifier-case-insensitive", A, {"forallvalues:StringEquals": {"aws:TagKeys": ["env"]}}, {"aws:TagKeys": ["env"]}),
    C("unqualified-multivalue-any-matches", A, {"StringEquals": {"k": "b"}}, {"k": ["a", "b"]}),
    C("unqualified-negated-multivalue", I, {"StringNotEquals": {"k": "b"}}, {"k": ["a", "b"]}),
    C("unknown-qualifier-allow", I, {"ForSomeValues:StringEquals": {"k": "a"}}, {"k": ["a"]}),
    C("unknown-qualifier-deny", X, {"ForSomeValues:StringEquals": {"k": "a"}}, {"k": ["a"]}, "Deny"),
    C("qualified-null-not-an-operator", I, {"ForAnyValue:Null": {"k": "true"}}, {}),
    C("deny-restricted-tag-key", X, {"ForAnyValue:StringEquals": {"aws:TagKeys": "restricted"}}, {"aws:TagKeys": ["env", "restricted"]}, "Deny"),
    C("deny-restricted-tag-key-absent", A, {"ForAnyValue:StringEquals": {"aws:TagKeys": "restricted"}}, {"aws:TagKeys": ["env"]}, "Deny"),
    C("deny-forall-missing-key-denies", X, {"ForAllValues:StringEquals": {"aws:TagKeys": ["env"]}}, {}, "Deny"),
]

MALFORMED = [
    C("unknown-operator-allow-grants-nothing", I, {"StringEqualz": {"k": "a"}}, {"k": "a"}),
    C("unknown-operator-deny-applies", X, {"StringEqualz": {"k": "a"}}, {"k": "a"}, "Deny"),
    C("false-test-beats-unknown-operator", A, {"StringEqualz": {"k": "a"}, "StringEquals": {"k": "b"}}, {"k": "a"}, "Deny"),
    C("operator-body-not-object", I, {"StringEquals": "a"}, {}),
    C("condition-value-object", I, {"StringEquals": {"k": {"x": 1}}}, {"k": "a"}),
    Case("condition-not-object-deny", X, [ALLOW_ALL, doc(st("Deny", Condition=["x"]))]),
    Case("effect-lowercase-treated-as-deny", X, [ALLOW_ALL, doc(st("allow"))]),
    Case("effect-invalid-but-action-differs", A, [ALLOW_ALL, doc(st("Permit", action="kms:*"))]),
    Case("statement-not-object-denies", X, [{"Version": V, "Statement": [st(), "oops"]}]),
    Case("document-not-object-denies", X, [ALLOW_ALL, ["not", "a", "document"]]),
    Case("action-and-notaction", I, [doc(st(NotAction="kms:*"))]),
    Case("no-action-deny-applies", X, [ALLOW_ALL, doc(st("Deny", action=None))]),
    Case("resource-not-strings", I, [doc(st(resource=[1, 2]))]),
    Case("identity-statement-without-resource", I, [doc(st(resource=None))]),
    Case("identity-deny-without-resource-applies", X, [ALLOW_ALL, doc(st("Deny", resource=None))]),
    Case("identity-policy-with-principal", I, [doc(st(Principal="*"))]),
    Case("resource-and-notresource", I, [doc(st(NotResource="*"))]),
]

RESOURCE_POLICIES = [
    Case("rp-names-user", A, resource_policy=doc(rst(principal={"AWS": USER}))),
    Case("rp-star", A, resource_policy=doc(rst(principal="*"))),
    Case("rp-aws-star", A, resource_policy=doc(rst(principal={"AWS": "*"}))),
    Case("rp-account-id-delegates", I, resource_policy=doc(rst(principal={"AWS": ACCT}))),
    Case("rp-account-root-delegates", I, resource_policy=doc(rst(principal={"AWS": ROOT}))),
    Case("rp-account-plus-identity", A, [doc(st())], doc(rst(principal={"AWS": ACCT}))),
    Case("rp-root-caller-via-account", A, resource_policy=doc(rst(principal={"AWS": ACCT})), principal_arn=ROOT),
    Case("rp-other-user", I, resource_policy=doc(rst(principal={"AWS": BOB}))),
    Case("rp-user-list", A, resource_policy=doc(rst(principal={"AWS": [BOB, USER]}))),
    Case("rp-no-partial-principal-wildcard", I, resource_policy=doc(rst(principal={"AWS": f"arn:aws:iam::{ACCT}:user/*"}))),
    Case("rp-role-matches-session", A, resource_policy=doc(rst(principal={"AWS": ROLE})), principal_arn=SESSION),
    Case("rp-role-with-path-matches-session", A, resource_policy=doc(rst(principal={"AWS": f"arn:aws:iam::{ACCT}:role/team/app"})), principal_arn=SESSION),
    Case("rp-other-role", I, resource_policy=doc(rst(principal={"AWS": f"arn:aws:iam::{ACCT}:role/other"})), principal_arn=SESSION),
    Case("rp-exact-session", A, resource_policy=doc(rst(principal={"AWS": SESSION})), principal_arn=SESSION),
    Case("rp-other-session-name", I, resource_policy=doc(rst(principal={"AWS": SESSION.replace("run-1", "run-2")})), principal_arn=SESSION),
    Case("rp-role-same-name-other-account", I, resource_policy=doc(rst(principal={"AWS": f"arn:aws:iam::{OTHER}:role/app"})), principal_arn=SESSION),
    Case("rp-action-mismatch", I, resource_policy=doc(rst(action="secretsmanager:PutSecretValue"))),
    Case("rp-resource-mismatch", I, resource_policy=doc(rst(resource=SECRET_PREFIX + "dev/*"))),
    Case("rp-without-resource-covers-itself", A, resource_policy=doc(rst(resource=None))),
    Case("rp-condition-holds", A, resource_policy=doc(rst(Condition={"StringEquals": {"aws:PrincipalTag/team": "ops"}})), context={"aws:PrincipalTag/team": "ops"}),
    Case("rp-condition-fails", I, resource_policy=doc(rst(Condition={"StringEquals": {"aws:PrincipalTag/team": "ops"}})), context={"aws:PrincipalTag/team": "dev"}),
    Case("rp-deny-star-beats-identity", X, [doc(st())], doc(rst("Deny"))),
    Case("rp-deny-other-user-leaves-allow", A, [doc(st())], doc(rst("Deny", principal={"AWS": BOB}))),
    Case("rp-deny-account-covers-users", X, [doc(st())], doc(rst("Deny", principal={"AWS": ACCT}))),
    Case("rp-deny-beats-rp-allow", X, resource_policy=doc(rst(principal={"AWS": USER}), rst("Deny", principal={"AWS": USER}))),
    Case("rp-missing-principal-allow", I, resource_policy=doc(rst(principal=None))),
    Case("rp-missing-principal-deny", X, [doc(st())], doc(rst("Deny", principal=None))),
    Case("rp-malformed-principal", I, resource_policy=doc(rst(principal={"Users": USER}))),
    Case("rp-allow-notprincipal-unsupported", I, resource_policy=doc(rst(principal=None, NotPrincipal={"AWS": BOB}))),
    Case("rp-notprincipal-user-and-account-exempt", A, [doc(st())], doc(rst("Deny", principal=None, NotPrincipal={"AWS": [USER, ROOT]}))),
    Case("rp-notprincipal-user-only-still-denied", X, [doc(st())], doc(rst("Deny", principal=None, NotPrincipal={"AWS": [USER]}))),
    Case("rp-notprincipal-other-user", X, [doc(st())], doc(rst("Deny", principal=None, NotPrincipal={"AWS": [BOB, ROOT]}))),
    Case("rp-notprincipal-star-exempts-all", A, [doc(st())], doc(rst("Deny", principal=None, NotPrincipal={"AWS": "*"}))),
    Case("rp-notprincipal-session-role-account", A, [doc(st())], doc(rst("Deny", principal=None, NotPrincipal={"AWS": [SESSION, ROLE, ROOT]})), principal_arn=SESSION),
    Case("rp-notprincipal-session-missing", X, [doc(st())], doc(rst("Deny", principal=None, NotPrincipal={"AWS": [ROLE, ROOT]})), principal_arn=SESSION),
    Case("rp-notprincipal-role-missing", X, [doc(st())], doc(rst("Deny", principal=None, NotPrincipal={"AWS": [SESSION, ROOT]})), principal_arn=SESSION),
    Case("rp-notprincipal-root-caller", A, [doc(st())], doc(rst("Deny", principal=None, NotPrincipal={"AWS": ACCT})), principal_arn=ROOT),
    Case("rp-service-principal", A, resource_policy=doc(rst(principal={"Service": "rotation.strongroom.internal"})), principal_arn="", service="rotation.strongroom.internal"),
    Case("rp-other-service", I, resource_policy=doc(rst(principal={"Service": "other.strongroom.internal"})), principal_arn="", service="rotation.strongroom.internal"),
    Case("rp-service-list", A, resource_policy=doc(rst(principal={"Service": ["a.internal", "rotation.strongroom.internal"]})), principal_arn="", service="rotation.strongroom.internal"),
    Case("rp-star-covers-service", A, resource_policy=doc(rst()), principal_arn="", service="rotation.strongroom.internal"),
    Case("service-needs-resource-policy", I, [ALLOW_ALL], principal_arn="", service="rotation.strongroom.internal"),
    Case("service-not-matched-by-account", I, resource_policy=doc(rst(principal={"AWS": ACCT})), principal_arn="", service="rotation.strongroom.internal"),
    Case("rp-federated-never-matches", I, resource_policy=doc(rst(principal={"Federated": "cognito-identity.amazonaws.com"}))),
    Case("rp-old-version-no-variables", I, resource_policy=doc(rst(resource=SECRET_PREFIX + "${aws:username}/*"), version="2008-10-17"), context={"aws:username": "prod"}),
    Case("rp-explicit-resource-account", A, resource_policy=doc(rst()), resource="*", resource_account=ACCT),
]

CROSS_ACCOUNT = [
    Case("xa-identity-only", I, [doc(st())], principal_arn=X_USER, principal_account=OTHER),
    Case("xa-resource-only", I, resource_policy=doc(rst(principal={"AWS": X_USER})), principal_arn=X_USER, principal_account=OTHER),
    Case("xa-both", A, [doc(st())], doc(rst(principal={"AWS": X_USER})), principal_arn=X_USER, principal_account=OTHER),
    Case("xa-account-root-grant", A, [doc(st())], doc(rst(principal={"AWS": X_ROOT})), principal_arn=X_USER, principal_account=OTHER),
    Case("xa-account-id-grant", A, [doc(st())], doc(rst(principal={"AWS": OTHER})), principal_arn=X_USER, principal_account=OTHER),
    Case("xa-account-grant-no-identity", I, resource_policy=doc(rst(principal={"AWS": OTHER})), principal_arn=X_USER, principal_account=OTHER),
    Case("xa-star-grant", A, [doc(st())], doc(rst()), principal_arn=X_USER, principal_account=OTHER),
    Case("xa-star-grant-no-identity", I, resource_policy=doc(rst()), principal_arn=X_USER, principal_account=OTHER),
    Case("xa-grant-to-third-account", I, [doc(st())], doc(rst(principal={"AWS": THIRD})), principal_arn=X_USER, principal_account=OTHER),
    Case("xa-grant-to-owner-account", I, [doc(st())], doc(rst(principal={"AWS": ACCT})), principal_arn=X_USER, principal_account=OTHER),
    Case("xa-identity-deny", X, [doc(st(), st("Deny"))], doc(rst(principal={"AWS": OTHER})), principal_arn=X_USER, principal_account=OTHER),
    Case("xa-resource-deny", X, [doc(st())], doc(rst(principal={"AWS": OTHER}), rst("Deny", principal={"AWS": X_USER})), principal_arn=X_USER, principal_account=OTHER),
    Case("xa-session-role-grant", A, [doc(st())], doc(rst(principal={"AWS": f"arn:aws:iam::{OTHER}:role/app"})),
         principal_arn=f"arn:aws:sts::{OTHER}:assumed-role/app/s", principal_account=OTHER),
    Case("xa-principal-account-condition", A, [doc(st())], doc(rst(Condition={"StringEquals": {"aws:PrincipalAccount": OTHER}})),
         principal_arn=X_USER, principal_account=OTHER, context={"aws:PrincipalAccount": OTHER}),
    Case("xa-principal-account-condition-fails", I, [doc(st())], doc(rst(Condition={"StringEquals": {"aws:PrincipalAccount": THIRD}})),
         principal_arn=X_USER, principal_account=OTHER, context={"aws:PrincipalAccount": OTHER}),
    Case("xa-identity-wrong-resource", I, [doc(st(resource=SECRET_PREFIX + "dev/*"))], doc(rst(principal={"AWS": OTHER})), principal_arn=X_USER, principal_account=OTHER),
    Case("xa-resource-account-argument", I, [doc(st())], principal_arn=USER, resource="*", resource_account=OTHER),
    Case("same-account-resource-policy-absent", A, [doc(st())], None),
]

CASES = (BASICS + NOT_ACTION + RESOURCES + VARIABLES + STRINGS + NUMBERS + DATES + BOOLS_BINARY
         + IPS + ARNS + NULLS + SETS + MALFORMED + RESOURCE_POLICIES + CROSS_ACCOUNT)


def run(case: Case) -> Any:
    request = Request(case.principal_arn, case.principal_account, case.action, case.resource,
                      case.context, case.service)
    identity = [Policy(f"policy-{i}", d) for i, d in enumerate(case.identity)]
    return evaluate(request, identity, case.resource_policy, case.resource_account)


def test_table_is_large_and_ids_unique() -> None:
    assert len(CASES) >= 200
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_decision(case: Case) -> None:
    result = run(case)
    assert result.decision is case.expected, "\n" + "\n".join(t.describe() for t in result.statements)
