"""Condition operators in isolation: parsing, three-valued results, and reasons."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.auth.conditions import (
    and3,
    evaluate_condition,
    evaluate_key,
    normalize_context,
    parse_operator,
)


@pytest.mark.parametrize("name, negated, if_exists, qualifier", [
    ("StringEquals", False, False, None),
    ("StringNotEqualsIfExists", True, True, None),
    ("ForAllValues:StringLike", False, False, "ForAllValues"),
    ("ForAnyValue:ArnNotLikeIfExists", True, True, "ForAnyValue"),
    ("NotIpAddress", True, False, None),
    ("numericlessthanequals", False, False, None),
    ("BinaryEqualsIfExists", False, True, None),
])
def test_parse_operator(name: str, negated: bool, if_exists: bool, qualifier: str | None) -> None:
    parsed = parse_operator(name)
    assert parsed is not None and parsed.family is not None
    assert (parsed.negated, parsed.if_exists, parsed.qualifier) == (negated, if_exists, qualifier)


def test_parse_null() -> None:
    parsed = parse_operator("Null")
    assert parsed is not None and parsed.family is None


@pytest.mark.parametrize("name", ["StringEqualz", "NullIfExists", "ForAnyValue:Null", "Some:StringEquals",
                                  "IfExists", "StringEqualsIfExistsIfExists", ""])
def test_unknown_operators(name: str) -> None:
    assert parse_operator(name) is None


def test_every_documented_operator_parses_with_every_form() -> None:
    bases = ["StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase",
             "StringLike", "StringNotLike", "NumericEquals", "NumericNotEquals", "NumericLessThan",
             "NumericLessThanEquals", "NumericGreaterThan", "NumericGreaterThanEquals", "DateEquals",
             "DateNotEquals", "DateLessThan", "DateLessThanEquals", "DateGreaterThan",
             "DateGreaterThanEquals", "Bool", "BinaryEquals", "IpAddress", "NotIpAddress", "ArnEquals",
             "ArnLike", "ArnNotEquals", "ArnNotLike"]
    for base in bases:
        for prefix in ("", "ForAllValues:", "ForAnyValue:"):
            for suffix in ("", "IfExists"):
                assert parse_operator(prefix + base + suffix) is not None, prefix + base + suffix


def test_normalize_context() -> None:
    ctx = normalize_context({"AWS:UserName": "a", "aws:TagKeys": ["x", "y"], "gone": None, "empty": []})
    assert ctx == {"aws:username": ("a",), "aws:tagkeys": ("x", "y")}


@pytest.mark.parametrize("a, b, out", [
    (True, True, True), (True, None, None), (None, False, False), (False, None, False), (None, None, None),
])
def test_and3(a: bool | None, b: bool | None, out: bool | None) -> None:
    assert and3(a, b) is out and and3(b, a) is out


def key(op: str, raw: Any, **context: Any) -> bool | None:
    operator = parse_operator(op)
    assert operator is not None
    return evaluate_key(operator, "k", raw, normalize_context(context), None).result


def test_missing_key_rules() -> None:
    assert key("StringEquals", "a") is False
    assert key("StringNotEquals", "a") is True
    assert key("StringEqualsIfExists", "a") is True
    assert key("ForAllValues:StringEquals", "a") is True
    assert key("ForAnyValue:StringEquals", "a") is False
    assert key("ForAnyValue:StringNotEquals", "a") is False
    assert key("ForAnyValue:StringEqualsIfExists", "a") is True
    assert key("Null", "true") is True


def test_empty_value_list_is_malformed() -> None:
    assert key("StringEquals", [], k="a") is None


def test_numbers_compare_as_decimals() -> None:
    assert key("NumericEquals", "0.1", k=0.1) is True
    assert key("NumericLessThan", "1e3", k=999) is True
    assert key("NumericEquals", "NaN", k=1) is None
    assert key("NumericEquals", "1", k="Infinity") is False


def test_dates_accept_offsets_and_epoch() -> None:
    assert key("DateEquals", "2024-05-01T12:00:00Z", k="2024-05-01T13:00:00+01:00") is True
    assert key("DateEquals", "1714564800", k="2024-05-01T12:00:00Z") is True
    assert key("DateLessThan", "2024-05-01T12:00:00Z", k=1714564799.5) is True


def test_condition_notes_name_the_failing_test() -> None:
    block = {"StringEquals": {"aws:username": "alice"}, "Bool": {"aws:SecureTransport": "true"}}
    outcome = evaluate_condition(block, normalize_context({"aws:username": "alice",
                                                           "aws:SecureTransport": False}), None)
    assert outcome.result is False
    assert outcome.notes[-1] == "Bool aws:SecureTransport (context: 'false') failed"
    assert outcome.notes[0] == "StringEquals aws:username (context: 'alice') held"


def test_condition_not_an_object() -> None:
    assert evaluate_condition(["x"], {}, None).result is None
    assert evaluate_condition(None, {}, None).result is True
    assert evaluate_condition({"StringEquals": {}}, {}, None).result is None


def test_malformed_value_reported() -> None:
    operator = parse_operator("IpAddress")
    assert operator is not None
    outcome = evaluate_key(operator, "aws:SourceIp", "999.1.1.1", {}, None)
    assert outcome.result is None
    assert "not a valid IP address or CIDR block" in outcome.note
