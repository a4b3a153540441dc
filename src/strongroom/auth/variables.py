"""IAM policy variables: `${aws:username}`, `${key, 'default'}`, `${*}` and friends (pure).

A policy string is turned into a *template*: a tuple of pieces, each either pattern text
(where `*` and `?` are wildcards, for the operators that have wildcards) or literal text
(substituted values and the escapes `${*}`, `${?}`, `${$}`), so a value such as a tag
containing `*` can never widen a match.

AWS substitutes variables only in policies whose Version is 2012-10-17; for older or
missing versions `${...}` is plain text. Callers pass `lookup=None` to get that behaviour.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

VARIABLES_VERSION = "2012-10-17"
_ESCAPES = {"*": "*", "?": "?", "$": "$"}


@dataclass(frozen=True, slots=True)
class Piece:
    """A run of template text; `literal` text never acts as a wildcard."""

    text: str
    literal: bool


Template = tuple[Piece, ...]
# Looks up a condition key (already case-folded); None when the key is absent.
Lookup = Callable[[str], "tuple[Any, ...] | None"]


def variables_enabled(document: Any) -> bool:
    """Policy variables apply only to documents that declare Version 2012-10-17."""
    return isinstance(document, Mapping) and document.get("Version") == VARIABLES_VERSION


def scalar_text(value: Any) -> str | None:
    """The string form IAM compares for a context value, or None when it has none."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dt.datetime):
        stamp: dt.datetime = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return stamp.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return None


def plain(text: str) -> Template:
    """A template with no substitution: all of `text` is pattern text."""
    return (Piece(text, False),) if text else ()


def template_text(template: Template) -> str:
    return "".join(p.text for p in template)


def substitute(text: str, lookup: Lookup | None) -> Template | None:
    """Replace policy variables in `text`; None when a variable has no value and no default.

    AWS: a variable whose key is absent (or multivalued) cannot be resolved, and "any attempt
    to match it fails", so the caller treats a None template as matching nothing.
    Malformed syntax (an unterminated `${`) is kept as ordinary text.
    """
    if lookup is None or "${" not in text:
        return plain(text)
    pieces: list[Piece] = []
    i = 0
    while (start := text.find("${", i)) >= 0:
        parsed = _parse_variable(text, start + 2)
        if parsed is None:  # not a variable: keep "$" as text and look further on
            pieces.append(Piece(text[i:start + 1], False))
            i = start + 1
            continue
        name, default, end = parsed
        value = _resolve(name, default, lookup)
        if value is None:
            return None
        pieces += [Piece(text[i:start], False), Piece(value, True)]
        i = end
    pieces.append(Piece(text[i:], False))
    return _merge([p for p in pieces if p.text])


def _resolve(name: str, default: str | None, lookup: Lookup) -> str | None:
    if name in _ESCAPES:
        return _ESCAPES[name]
    values = lookup(name.casefold()) if name else None
    if values is not None and len(values) == 1:
        text = scalar_text(values[0])
        if text is not None:
            return text
    return default


def _parse_variable(text: str, start: int) -> tuple[str, str | None, int] | None:
    """Parse `name}` or `name, 'default'}` from `start`; returns (name, default, end index)."""
    j = start
    while j < len(text) and text[j] not in "},":
        j += 1
    if j >= len(text):
        return None
    name = text[start:j].strip()
    if text[j] == "}":
        return name, None, j + 1
    k = j + 1
    while k < len(text) and text[k] == " ":
        k += 1
    if k >= len(text) or text[k] != "'":
        return None
    k += 1
    default: list[str] = []
    while k < len(text):
        if text[k] == "'":
            if text.startswith("''", k):  # '' is an escaped quote inside the default
                default.append("'")
                k += 2
                continue
            break
        default.append(text[k])
        k += 1
    if k >= len(text):
        return None
    k += 1
    while k < len(text) and text[k] == " ":
        k += 1
    if k >= len(text) or text[k] != "}":
        return None
    return name, "".join(default), k + 1


def _merge(pieces: list[Piece]) -> Template:
    out: list[Piece] = []
    for piece in pieces:
        if out and out[-1].literal == piece.literal:
            out[-1] = Piece(out[-1].text + piece.text, piece.literal)
        else:
            out.append(piece)
    return tuple(out)
