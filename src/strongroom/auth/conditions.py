"""IAM Condition operators, evaluated against a request's condition context (pure).

Results are three-valued: True, False, or None when the condition cannot be evaluated (an
unknown operator, a malformed policy value). The policy engine fails closed on None: an
Allow that cannot be evaluated grants nothing, a Deny that cannot be evaluated denies.

AWS semantics implemented here:
- condition keys are case-insensitive; several keys in one operator, and several operators,
  are ANDed; several policy values for one key are ORed;
- a negated operator (StringNotEquals, NotIpAddress, ArnNotLike, ...) is the negation of its
  positive form, so it is true when the key is absent and, for several policy values, true
  only when the context value matches none of them;
- `...IfExists`: an absent key makes the test true; `Null` tests presence only;
- `ForAllValues:` is true when every context value satisfies the operator (vacuously true when
  the key is absent or empty); `ForAnyValue:` when at least one does (false when absent);
- an unqualified operator given a multivalued context value is true when any value matches
  (its negated form, when none does);
- policy variables are substituted in String, ARN and Bool values only; a variable that
  cannot be resolved makes that one policy value match nothing.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import operator as op
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from strongroom.auth.matching import ArnPattern, arn_matches, arn_pattern, glob_regex
from strongroom.auth.variables import Lookup, Template, scalar_text, substitute, template_text

ContextView = Mapping[str, tuple[Any, ...]]
Tri = bool | None


def normalize_context(context: Mapping[str, Any]) -> dict[str, tuple[Any, ...]]:
    """Fold keys to lower case and values to tuples; None and empty lists count as absent."""
    out: dict[str, tuple[Any, ...]] = {}
    for key, value in context.items():
        if value is None:
            continue
        values = tuple(value) if isinstance(value, (list, tuple, set, frozenset)) else (value,)
        if values:
            out[key.casefold()] = values
    return out


def and3(a: Tri, b: Tri) -> Tri:
    """Three-valued AND: False wins, then unknown, then True."""
    if a is False or b is False:
        return False
    if a is None or b is None:
        return None
    return True


# --- value conversions (context side: failure means "no match") ------------------------

def _to_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value).strip()) if isinstance(value, (int, float, str)) else None
    except InvalidOperation:
        return None
    return number if number is not None and number.is_finite() else None


_EPOCH = re.compile(r"^[+-]?\d+(\.\d+)?$")
_YEAR_MONTH = re.compile(r"^(\d{4})(?:-(\d{2}))?$")


def _to_datetime(value: Any) -> dt.datetime | None:
    """ISO 8601 (the W3C profile, Z or offset; naive means UTC) or epoch seconds."""
    if isinstance(value, dt.datetime):
        stamp = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        stamp = dt.datetime.fromtimestamp(value, dt.UTC)
    elif isinstance(value, str):
        text = value.strip()
        try:
            if _EPOCH.match(text):
                stamp = dt.datetime.fromtimestamp(float(text), dt.UTC)
            elif match := _YEAR_MONTH.match(text):
                stamp = dt.datetime(int(match[1]), int(match[2] or 1), 1)
            else:
                stamp = dt.datetime.fromisoformat(text.replace("z", "Z"))
        except (ValueError, OverflowError, OSError):
            return None
    else:
        return None
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=dt.UTC)


def _to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _to_bytes(value: Any) -> bytes | None:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return None
    return None


@lru_cache(maxsize=4096)
def _ip_address(text: str) -> Any:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _in_network(value: Any, network: Any) -> bool:
    address = _ip_address(value) if isinstance(value, str) else None
    return address is not None and address.version == network.version and address in network


# --- operator families ----------------------------------------------------------------
# prepare: policy template -> comparable value (raises ValueError when malformed);
# test: (context value, prepared policy value) -> bool.

@dataclass(frozen=True, slots=True)
class Family:
    prepare: Callable[[Template], Any]
    test: Callable[[Any, Any], bool]
    variables: bool = False


def _strict(parse: Callable[[Any], Any], what: str) -> Callable[[Template], Any]:
    def prepare(template: Template) -> Any:
        parsed = parse(template_text(template))
        if parsed is None:
            raise ValueError(f"'{template_text(template)}' is not a valid {what}")
        return parsed
    return prepare


def _ip_network(text: str) -> Any:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def _ordered(parse: Callable[[Any], Any], compare: Callable[[Any, Any], bool], what: str) -> Family:
    def test(value: Any, policy: Any) -> bool:
        parsed = parse(value)
        return parsed is not None and compare(parsed, policy)
    return Family(_strict(parse, what), test)


def _text_eq(value: Any, policy: str) -> bool:
    return scalar_text(value) == policy


def _text_ieq(value: Any, policy: str) -> bool:
    text = scalar_text(value)
    return text is not None and text.casefold() == policy


def _text_like(value: Any, policy: re.Pattern[str]) -> bool:
    text = scalar_text(value)
    return text is not None and policy.fullmatch(text) is not None


def _arn_like(value: Any, policy: ArnPattern) -> bool:
    return isinstance(value, str) and arn_matches(policy, value)


_STRING = Family(template_text, _text_eq, variables=True)
_STRING_IC = Family(lambda t: template_text(t).casefold(), _text_ieq, variables=True)
_STRING_LIKE = Family(glob_regex, _text_like, variables=True)
_ARN = Family(arn_pattern, _arn_like, variables=True)
_BOOL = Family(_strict(_to_bool, "Bool value"), lambda v, p: _to_bool(v) == p, variables=True)
_BINARY = Family(_strict(_to_bytes, "base64 value"), lambda v, p: _to_bytes(v) == p)
_IP = Family(_strict(_ip_network, "IP address or CIDR block"), _in_network)


def _numeric(compare: Callable[[Any, Any], bool]) -> Family:
    return _ordered(_to_decimal, compare, "number")


def _date(compare: Callable[[Any, Any], bool]) -> Family:
    return _ordered(_to_datetime, compare, "date")


# name -> (family, negated)
_BASE: dict[str, tuple[Family, bool]] = {
    "StringEquals": (_STRING, False), "StringNotEquals": (_STRING, True),
    "StringEqualsIgnoreCase": (_STRING_IC, False), "StringNotEqualsIgnoreCase": (_STRING_IC, True),
    "StringLike": (_STRING_LIKE, False), "StringNotLike": (_STRING_LIKE, True),
    "NumericEquals": (_numeric(op.eq), False), "NumericNotEquals": (_numeric(op.eq), True),
    "NumericLessThan": (_numeric(op.lt), False), "NumericLessThanEquals": (_numeric(op.le), False),
    "NumericGreaterThan": (_numeric(op.gt), False),
    "NumericGreaterThanEquals": (_numeric(op.ge), False),
    "DateEquals": (_date(op.eq), False), "DateNotEquals": (_date(op.eq), True),
    "DateLessThan": (_date(op.lt), False), "DateLessThanEquals": (_date(op.le), False),
    "DateGreaterThan": (_date(op.gt), False), "DateGreaterThanEquals": (_date(op.ge), False),
    "Bool": (_BOOL, False),
    "BinaryEquals": (_BINARY, False),
    "IpAddress": (_IP, False), "NotIpAddress": (_IP, True),
    "ArnEquals": (_ARN, False), "ArnLike": (_ARN, False),
    "ArnNotEquals": (_ARN, True), "ArnNotLike": (_ARN, True),
}
_BASE_FOLDED = {name.casefold(): (name, spec) for name, spec in _BASE.items()}
_QUALIFIERS = {"forallvalues": "ForAllValues", "foranyvalue": "ForAnyValue"}


@dataclass(frozen=True, slots=True)
class Operator:
    """A parsed condition operator such as `ForAnyValue:StringLikeIfExists`."""

    name: str
    family: Family | None  # None for Null
    negated: bool = False
    if_exists: bool = False
    qualifier: str | None = None


@lru_cache(maxsize=1024)
def parse_operator(name: str) -> Operator | None:
    """Parse an operator name (case-insensitively); None when IAM has no such operator."""
    qualifier = None
    base = name
    if ":" in name:
        prefix, base = name.split(":", 1)
        qualifier = _QUALIFIERS.get(prefix.casefold())
        if qualifier is None:
            return None
    if base.casefold() == "null":
        return None if qualifier else Operator(name, None)
    if_exists = base.casefold().endswith("ifexists")
    if if_exists:
        base = base[: -len("IfExists")]
    found = _BASE_FOLDED.get(base.casefold())
    if found is None:
        return None
    family, negated = found[1]
    return Operator(name, family, negated, if_exists, qualifier)


@dataclass(frozen=True, slots=True)
class KeyResult:
    """The outcome of one operator/key test, with a one-line reason for explanations."""

    result: Tri
    note: str


def evaluate_key(operator: Operator, key: str, raw: Any, context: ContextView,
                 lookup: Lookup | None) -> KeyResult:
    """Evaluate `{operator: {key: raw}}`; `lookup` is None when variables are disabled."""
    values = raw if isinstance(raw, list) else [raw]
    where = f"{operator.name} {key}"
    if not values or not all(isinstance(v, (str, bool, int, float)) for v in values):
        return KeyResult(None, f"{where}: condition values must be strings, numbers or booleans")
    present = context.get(key.casefold())
    shown = "absent" if present is None else ", ".join(repr(scalar_text(v) or v) for v in present)
    if operator.family is None:  # Null
        wanted = [_to_bool(scalar_text(v)) for v in values]
        if any(w is None for w in wanted):
            return KeyResult(None, f"{where}: Null takes true or false")
        ok = any(w == (present is None) for w in wanted)
        return KeyResult(ok, f"{where}: key is {'absent' if present is None else 'present'}")
    prepared: list[Any] = []
    for value in values:
        text = scalar_text(value) or ""
        template = substitute(text, lookup if operator.family.variables else None)
        if template is None:
            continue  # unresolvable variable: this policy value matches nothing
        try:
            prepared.append(_prepare(operator.family, template))
        except ValueError as exc:
            return KeyResult(None, f"{where}: {exc}")
    result = _apply(operator, present, prepared)
    return KeyResult(result, f"{where} (context: {shown}) {'held' if result else 'failed'}")


@lru_cache(maxsize=8192)
def _prepare(family: Family, template: Template) -> Any:
    """Policy values repeat across requests, so their parsed forms are cached."""
    return family.prepare(template)


def _apply(operator: Operator, present: tuple[Any, ...] | None, prepared: list[Any]) -> bool:
    assert operator.family is not None
    test = operator.family.test

    def matches(value: Any) -> bool:
        return any(test(value, p) for p in prepared)

    if present is None:
        if operator.if_exists or operator.qualifier == "ForAllValues":
            return True
        if operator.qualifier == "ForAnyValue":
            return False
        return operator.negated
    if operator.qualifier is None:
        hit = any(matches(v) for v in present)
        return not hit if operator.negated else hit
    satisfied = [(not matches(v)) if operator.negated else matches(v) for v in present]
    return all(satisfied) if operator.qualifier == "ForAllValues" else any(satisfied)


@dataclass(frozen=True, slots=True)
class ConditionResult:
    """The outcome of a whole Condition element, with the notes for each test evaluated."""

    result: Tri
    notes: tuple[str, ...]


def evaluate_condition(block: Any, context: ContextView, lookup: Lookup | None) -> ConditionResult:
    """Evaluate a statement's Condition element (all operators and keys ANDed).

    Stops at the first test that fails, so the last note then names the failing test.
    """
    if block is None:
        return ConditionResult(True, ())
    if not isinstance(block, dict):
        return ConditionResult(None, ("Condition must be an object",))
    result: Tri = True
    notes: list[str] = []
    for name, body in block.items():
        operator = parse_operator(name) if isinstance(name, str) else None
        if operator is None:
            result = and3(result, None)
            notes.append(f"unknown condition operator {name!r}")
            continue
        if not isinstance(body, dict) or not body:
            result = and3(result, None)
            notes.append(f"{name}: must map condition keys to values")
            continue
        for key, raw in body.items():
            outcome = evaluate_key(operator, key, raw, context, lookup)
            notes.append(outcome.note)
            result = and3(result, outcome.result)
            if result is False:
                return ConditionResult(False, tuple(notes))
    return ConditionResult(result, tuple(notes))


def context_lookup(context: ContextView) -> Lookup:
    """A variable lookup over a normalized context."""
    return context.get

