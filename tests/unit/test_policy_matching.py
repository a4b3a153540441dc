"""Wildcard matching for actions, resources and ARNs, and Principal matching."""

from __future__ import annotations

import pytest

from strongroom.auth.matching import (
    PrincipalMatch,
    action_matches,
    arn_matches,
    arn_pattern,
    caller_identities,
    not_principal_applies,
    principal_entries,
    principal_match,
    resource_matches,
)
from strongroom.auth.variables import Piece, plain

ACCT = "111111111111"
USER = f"arn:aws:iam::{ACCT}:user/alice"
SESSION = f"arn:aws:sts::{ACCT}:assumed-role/app/run-1"
ROOT = f"arn:aws:iam::{ACCT}:root"


@pytest.mark.parametrize("pattern, action, expected", [
    ("*", "anything:AtAll", True),
    ("secretsmanager:*", "secretsmanager:GetSecretValue", True),
    ("secretsmanager:get*", "secretsmanager:GetSecretValue", True),
    ("secretsmanager:Get?ecretValue", "secretsmanager:GetSecretValue", True),
    ("secretsmanager:Get", "secretsmanager:GetSecretValue", False),
    ("secretsmanager:*Secret", "secretsmanager:GetSecretValue", False),
    ("secrets*:*Value", "secretsmanager:GetSecretValue", True),
    ("kms:*", "secretsmanager:GetSecretValue", False),
    ("secretsmanager:Get.*", "secretsmanager:GetSecretValue", False),  # regex characters are literal
])
def test_action_matches(pattern: str, action: str, expected: bool) -> None:
    assert action_matches(pattern, action) is expected


@pytest.mark.parametrize("pattern, resource, expected", [
    ("*", "arn:aws:secretsmanager:us-east-1:1:secret:a", True),
    ("*", "*", True),
    ("arn:aws:secretsmanager:*", "arn:aws:secretsmanager:us-east-1:1:secret:a", True),
    ("arn:aws:secretsmanager:*:*:secret:*", "arn:aws:secretsmanager:us-east-1:1:secret:a", True),
    ("arn:aws:secretsmanager:us*1:1:secret:a", "arn:aws:secretsmanager:us-east-1:1:secret:a", True),
    ("arn:aws:secretsmanager:u*:secret:a", "arn:aws:secretsmanager:us-east-1:1:secret:a", True),
    ("arn:aws:secretsmanager:us-*-1:secret:a", "arn:aws:secretsmanager:us-east-1:1:secret:a", False),
    ("arn:aws:secretsmanager:us-east-?:1:secret:a", "arn:aws:secretsmanager:us-east-1:1:secret:a", True),
    ("arn:aws:secretsmanager:us-east-1:1:secret:A", "arn:aws:secretsmanager:us-east-1:1:secret:a", False),
    ("arn:aws:secretsmanager:us-east-1:1:secret:a", "*", False),
])
def test_resource_matches(pattern: str, resource: str, expected: bool) -> None:
    assert resource_matches(plain(pattern), resource) is expected


def test_literal_pieces_are_not_wildcards() -> None:
    template = (Piece("arn:aws:s3:::b/", False), Piece("*", True))
    assert resource_matches(template, "arn:aws:s3:::b/*")
    assert not resource_matches(template, "arn:aws:s3:::b/x")


@pytest.mark.parametrize("pattern, value, expected", [
    ("arn:aws:iam::1:role/*", "arn:aws:iam::1:role/a/b", True),
    ("arn:aws:iam::*:role/x", "arn:aws:iam::1:role/x", True),
    ("arn:aws:*:*:*:*", "arn:aws:iam::1:role/x", True),
    ("arn:aws:s:*:1:f/*", "arn:aws:s:r:9:store/a:1:f/d", False),
    ("arn:aws:s:r:9:store/*", "arn:aws:s:r:9:store/a:1:f/d", True),
    ("arn:aws:iam::1:role/x", "arn:aws:iam::1:role/X", False),
    ("arn:aws:iam::1:role/x", "not-an-arn", False),
    ("*", "not-an-arn", True),
])
def test_arn_matches(pattern: str, value: str, expected: bool) -> None:
    assert arn_matches(arn_pattern(plain(pattern)), value) is expected


def test_caller_identities() -> None:
    assert caller_identities(USER, ACCT) == (("account", ACCT), ("arn", USER))
    assert caller_identities(ROOT, ACCT) == (("account", ACCT),)
    assert caller_identities(SESSION, ACCT) == (("account", ACCT), ("role", f"aws|{ACCT}|app"),
                                                ("arn", SESSION))
    assert caller_identities("", ACCT, "Rotation.Internal") == (("service", "rotation.internal"),)
    assert caller_identities("", ACCT) == ()


@pytest.mark.parametrize("element, caller, expected", [
    ("*", USER, PrincipalMatch.DIRECT),
    ({"AWS": "*"}, USER, PrincipalMatch.DIRECT),
    ({"AWS": USER}, USER, PrincipalMatch.DIRECT),
    ({"AWS": ACCT}, USER, PrincipalMatch.ACCOUNT),
    ({"AWS": ROOT}, USER, PrincipalMatch.ACCOUNT),
    ({"AWS": ACCT}, ROOT, PrincipalMatch.DIRECT),
    ({"AWS": [ACCT, USER]}, USER, PrincipalMatch.DIRECT),
    ({"AWS": f"arn:aws:iam::{ACCT}:role/path/app"}, SESSION, PrincipalMatch.DIRECT),
    ({"AWS": f"arn:aws-cn:iam::{ACCT}:role/app"}, SESSION, PrincipalMatch.NONE),
    ({"AWS": "222222222222"}, USER, PrincipalMatch.NONE),
    ({"Service": "x.internal"}, USER, PrincipalMatch.NONE),
    ({"AWS": "arn:aws:iam::111111111111:user/*"}, USER, PrincipalMatch.NONE),
])
def test_principal_match(element: object, caller: str, expected: PrincipalMatch) -> None:
    assert principal_match(element, caller_identities(caller, ACCT)) is expected


@pytest.mark.parametrize("element", [None, "", "someone", {}, {"AWS": []}, {"AWS": 5}, {"Bogus": "x"}])
def test_malformed_principal(element: object) -> None:
    assert principal_entries(element) is None
    assert principal_match(element, caller_identities(USER, ACCT)) is None
    assert not_principal_applies(element, caller_identities(USER, ACCT)) is None


@pytest.mark.parametrize("element, caller, applies", [
    ({"AWS": [USER, ROOT]}, USER, False),
    ({"AWS": [USER, ACCT]}, USER, False),
    ({"AWS": USER}, USER, True),
    ({"AWS": ROOT}, USER, True),
    ({"AWS": ROOT}, ROOT, False),
    ({"AWS": "*"}, USER, False),
    ({"AWS": [SESSION, f"arn:aws:iam::{ACCT}:role/app", ROOT]}, SESSION, False),
    ({"AWS": [f"arn:aws:iam::{ACCT}:role/app", ROOT]}, SESSION, True),
    ({"Service": "x.internal"}, "", True),
])
def test_not_principal(element: object, caller: str, applies: bool) -> None:
    ids = caller_identities(caller, ACCT, None if caller else "y.internal")
    assert not_principal_applies(element, ids) is applies
