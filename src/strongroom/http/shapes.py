"""Check and convert request parameters against botocore's service model.

Incoming JSON becomes the Python values botocore's input shapes describe
(blobs as bytes, timestamps as datetimes); outgoing values go back to the wire
form. Type mismatches are SerializationException, constraint violations
ValidationException, worded the way AWS words them.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import math
import re
import unicodedata
from functools import lru_cache
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape

from strongroom.errors import SerializationException, ValidationException


@lru_cache(maxsize=None)
def service_model(name: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(name)


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _type_error(expected: str, value: Any) -> SerializationException:
    kinds = {dict: "Start of structure or map", list: "Start of list", str: "STRING_VALUE",
             bool: "Boolean value", int: "NUMBER_VALUE", float: "NUMBER_VALUE", type(None): "null"}
    found = kinds.get(type(value), "Value")
    if found in ("Start of structure or map", "Start of list"):
        return SerializationException(f"{found} found where not expected.")
    return SerializationException(f"{found} can not be converted to {expected}")


class _Checker:
    def __init__(self, anchored: bool = True) -> None:
        self.errors: list[str] = []
        # AWS checks patterns against the whole value in every protocol (DynamoDB answers
        # "Value 'my table' ... Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"),
        # although the model's patterns are not anchored themselves.
        self.anchored = anchored

    def fail(self, path: str, value: Any, constraint: str) -> None:
        shown = "null" if value is None else f"'{value}'"
        if isinstance(value, (bytes, list, dict)) or (isinstance(value, str) and len(value) > 256):
            shown = "'***'"
        self.errors.append(f"Value {shown} at '{path}' failed to satisfy constraint: {constraint}")

    def _present(self, shape: Shape, value: Any, path: str) -> Any:
        """A list item or map value: null is not a value there (a structure's null member is absent)."""
        if value is None:
            self.fail(path, None, "Member must not be null")
        return self.convert(shape, value, path)

    def convert(self, shape: Shape, value: Any, path: str) -> Any:
        t = shape.type_name
        m = shape.metadata
        if value is None:
            return None
        if t == "structure":
            if not isinstance(value, dict):
                raise _type_error("a structure", value)
            out = {}
            for name, member in shape.members.items():
                if name in value and value[name] is not None:
                    out[name] = self.convert(member, value[name], f"{path}.{_camel(name)}" if path else _camel(name))
            for name in shape.required_members:
                if name not in out:
                    self.fail(f"{path}.{_camel(name)}" if path else _camel(name), None, "Member must not be null")
            return out
        if t == "list":
            if not isinstance(value, list):
                raise _type_error("a list", value)
            self._length(len(value), m, path, value)
            return [self._present(shape.member, v, f"{path}.{i + 1}.member") for i, v in enumerate(value)]
        if t == "map":
            if not isinstance(value, dict):
                raise _type_error("a map", value)
            return {k: self._present(shape.value, v, f"{path}.{k}") for k, v in value.items()}
        if t == "string":
            if not isinstance(value, str):
                raise _type_error("String", value)
            self._length(len(value), m, path, "***" if m.get("sensitive") else value)
            if shape.enum and value not in shape.enum:
                self.fail(path, value, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
            if "pattern" in m and not self._matches(m["pattern"], value):
                self.fail(path, "***" if m.get("sensitive") else value,
                          f"Member must satisfy regular expression pattern: {m['pattern']}")
            return value
        if t in ("integer", "long"):
            # JSON numbers can be fractional, non-finite (NaN, Infinity) or wider than the shape's
            # 32/64 bits; none of those is an Integer/Long.
            limit = 2**31 if t == "integer" else 2**63
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or (isinstance(value, float) and not math.isfinite(value))  # an int may not fit a float
                    or value != int(value) or not -limit <= int(value) < limit):
                raise _type_error("an Integer" if t == "integer" else "a Long", value)
            value = int(value)
            if "min" in m and value < m["min"]:
                self.fail(path, value, f"Member must have value greater than or equal to {m['min']}")
            if "max" in m and value > m["max"]:
                self.fail(path, value, f"Member must have value less than or equal to {m['max']}")
            return value
        if t in ("double", "float"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise _type_error("a Double", value)
            return float(value)
        if t == "boolean":
            if not isinstance(value, bool):
                raise _type_error("a Boolean", value)
            return value
        if t == "blob":
            if not isinstance(value, str):
                raise _type_error("a Blob", value)
            try:
                raw = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise SerializationException("Base64 encoded value could not be decoded.") from None
            self._length(len(raw), m, path, "***")
            return raw
        if t == "timestamp":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise _type_error("a Timestamp", value)
            try:
                return dt.datetime.fromtimestamp(value, dt.timezone.utc)
            except (OverflowError, OSError, ValueError):  # NaN, Infinity, or beyond year 9999
                raise _type_error("a Timestamp", value) from None
        return value

    def _matches(self, pattern: str, value: str) -> bool:
        compiled = _pattern(pattern)
        return bool(compiled.fullmatch(value) if self.anchored else compiled.search(value))

    def _length(self, n: int, m: dict[str, Any], path: str, shown: Any) -> None:
        if "min" in m and n < m["min"]:
            self.fail(path, shown, f"Member must have length greater than or equal to {m['min']}")
        if "max" in m and n > m["max"]:
            self.fail(path, shown, f"Member must have length less than or equal to {m['max']}")


class _CategoryClass:
    """`[...]+` or `[...]*` whose class names Unicode categories (\\p{L}), which `re` lacks."""

    _SHAPE = re.compile(r"\[((?:\\p\{[A-Z]\}|\\.|[^\]\\])*)\]([+*])")
    _ITEM = re.compile(r"\\p\{([A-Z])\}|\\(.)|(.)", re.DOTALL)

    def __init__(self, body: str, repeat: str):
        cats, lits = set(), set()
        for m in self._ITEM.finditer(body):
            if m.group(1):
                cats.add(m.group(1))
            else:
                lits.add(m.group(2) or m.group(3))
        self.categories, self.literals, self.repeat = frozenset(cats), frozenset(lits), repeat

    def _ok(self, ch: str) -> bool:
        return ch in self.literals or unicodedata.category(ch)[0] in self.categories

    def fullmatch(self, value: str) -> bool:
        return (self.repeat == "*" or bool(value)) and all(self._ok(c) for c in value)

    def search(self, value: str) -> bool:
        return self.repeat == "*" or any(self._ok(c) for c in value)


@lru_cache(maxsize=512)
def _pattern(p: str) -> Any:
    try:
        return re.compile(p, re.DOTALL)
    except re.error:
        m = _CategoryClass._SHAPE.fullmatch(p)
        if m is None:
            raise
        return _CategoryClass(m.group(1), m.group(2))


def parse_input(op: OperationModel, body: Any, *, anchored: bool = True) -> dict[str, Any]:
    """Validated, converted request parameters for `op` (`anchored`: patterns match whole values)."""
    if op.input_shape is None:
        return {}
    if not isinstance(body, dict):
        raise SerializationException("Start of structure or map expected.")
    checker = _Checker(anchored)
    out = checker.convert(op.input_shape, body, "")
    if checker.errors:
        n = len(checker.errors)
        raise ValidationException(
            f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(checker.errors)
        )
    return out  # type: ignore[no-any-return]


_AS_IS = frozenset({str, int, float, bool})


def to_wire(value: Any) -> Any:
    """Response values as AWS JSON carries them."""
    kind = type(value)  # exact types first: a page of ListSecrets walks thousands of values
    if kind in _AS_IS:
        return value
    if kind is dict or isinstance(value, dict):
        return {k: to_wire(v) for k, v in value.items() if v is not None}
    if kind is list or isinstance(value, list):
        return [to_wire(v) for v in value]
    if isinstance(value, dt.datetime):
        return round(value.timestamp(), 3)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    return value
