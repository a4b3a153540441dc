"""Policy variable substitution: `${key}`, defaults, escapes, unresolvable variables."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from strongroom.auth.conditions import normalize_context
from strongroom.auth.variables import (
    Piece,
    plain,
    scalar_text,
    substitute,
    template_text,
    variables_enabled,
)


def lookup(**context: Any) -> Any:
    return normalize_context({k.replace("__", ":"): v for k, v in context.items()}).get


def test_no_variables_is_plain_text() -> None:
    assert substitute("arn:aws:s3:::bucket/*", lookup()) == (Piece("arn:aws:s3:::bucket/*", False),)


def test_disabled_lookup_leaves_variables_as_text() -> None:
    assert substitute("home/${aws:username}/*", None) == plain("home/${aws:username}/*")


def test_value_is_literal_and_surrounding_text_is_pattern() -> None:
    assert substitute("home/${aws:username}/*", lookup(aws__username="a*b")) == (
        Piece("home/", False), Piece("a*b", True), Piece("/*", False))


@pytest.mark.parametrize("text, expected", [
    ("${*}", "*"), ("${?}", "?"), ("${$}", "$"), ("a${*}b${?}c${$}", "a*b?c$"),
])
def test_escapes_are_literal(text: str, expected: str) -> None:
    template = substitute(text, lookup())
    assert template is not None and template_text(template) == expected
    assert all(p.literal for p in template if p.text in "*?$")


def test_key_names_are_case_insensitive_and_trimmed() -> None:
    assert template_text(substitute("${ AWS:UserName }", lookup(aws__username="bob")) or ()) == "bob"


def test_missing_key_is_unresolvable() -> None:
    assert substitute("x/${aws:username}", lookup()) is None


def test_default_used_when_missing() -> None:
    template = substitute("${aws:username, 'anonymous'}", lookup())
    assert template == (Piece("anonymous", True),)


def test_default_ignored_when_present() -> None:
    assert template_text(substitute("${aws:username, 'anon'}", lookup(aws__username="bob")) or ()) == "bob"


def test_default_with_doubled_quote_and_spaces() -> None:
    template = substitute("${ k ,  'it''s' }", lookup())
    assert template is not None and template_text(template) == "it's"


def test_default_is_not_substituted_again() -> None:
    template = substitute("${k, '${other}'}", lookup(other="x"))
    assert template is not None and template_text(template) == "${other}"


def test_multivalued_key_is_unresolvable_unless_default() -> None:
    assert substitute("${aws:TagKeys}", lookup(aws__TagKeys=["a", "b"])) is None
    assert template_text(substitute("${aws:TagKeys, 'none'}", lookup(aws__TagKeys=["a", "b"])) or ()) == "none"


def test_single_element_list_resolves() -> None:
    assert template_text(substitute("${k}", lookup(k=["only"])) or ()) == "only"


@pytest.mark.parametrize("text", ["${aws:username", "${k, 'unterminated}", "${k, nodefault}", "$", "${"])
def test_malformed_syntax_is_text(text: str) -> None:
    assert substitute(text, lookup(aws__username="x", k="y")) == plain(text)


def test_empty_name_is_unresolvable() -> None:
    assert substitute("${}", lookup()) is None


def test_dollar_before_a_variable() -> None:
    template = substitute("$${k}", lookup(k="v"))
    assert template == (Piece("$", False), Piece("v", True))


@pytest.mark.parametrize("value, text", [
    (True, "true"), (False, "false"), (5, "5"), ("s", "s"),
    (dt.datetime(2024, 5, 1, 14, tzinfo=dt.timezone(dt.timedelta(hours=2))), "2024-05-01T12:00:00Z"),
    (dt.datetime(2024, 5, 1, 12), "2024-05-01T12:00:00Z"), (b"x", None), (None, None),
])
def test_scalar_text(value: Any, text: str | None) -> None:
    assert scalar_text(value) == text


def test_variables_only_for_2012_version() -> None:
    assert variables_enabled({"Version": "2012-10-17"})
    assert not variables_enabled({"Version": "2008-10-17"})
    assert not variables_enabled({})
    assert not variables_enabled(["not", "a", "document"])
