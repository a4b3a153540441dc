"""Wildcard matching for actions, resources and ARNs, and Principal matching (pure).

- Actions: `*` and `?` wildcards, case-insensitive (`secretsmanager:get*`).
- Resources: case-sensitive; `*` that ends an ARN segment (followed by `:` or the end)
  may span colons, a `*` inside a segment may not, as the IAM reference describes.
- ARN condition operators: each of the six colon-separated components is matched on its
  own; the sixth (resource) component keeps any further colons.
- Principals: the caller is seen as the set of identities AWS checks in turn (account,
  then role, then session or user), so NotPrincipal exempts a caller only when every one
  of those identities is listed, exactly as AWS documents for Deny with NotPrincipal.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from strongroom.auth.variables import Piece, Template, plain

_ACCOUNT_ID = re.compile(r"^\d{12}$")
_PRINCIPAL_KINDS = ("AWS", "Service", "Federated", "CanonicalUser")


@lru_cache(maxsize=4096)
def glob_regex(template: Template, *, ignore_case: bool = False,
               segments: bool = False) -> re.Pattern[str]:
    """Compile a template into an anchored regex (pattern text has wildcards, literal none)."""
    chars = [(c, p.literal) for p in template for c in p.text]
    out: list[str] = []
    for i, (c, literal) in enumerate(chars):
        if literal or c not in "*?":
            out.append(re.escape(c))
        elif c == "?":
            out.append("[^:]" if segments else ".")
        elif segments and i + 1 < len(chars) and chars[i + 1][0] != ":":
            out.append("[^:]*")
        else:
            out.append(".*")
    return re.compile("".join(out), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def action_matches(pattern: str, action: str) -> bool:
    """IAM action match: `service:Name` with wildcards, case-insensitive."""
    return glob_regex(plain(pattern), ignore_case=True).fullmatch(action) is not None


def resource_matches(template: Template, resource: str) -> bool:
    """IAM Resource match: case-sensitive wildcards, `*` spans colons only at a segment end."""
    return glob_regex(template, segments=True).fullmatch(resource) is not None


@dataclass(frozen=True, slots=True)
class ArnPattern:
    """An ARN condition value: six component regexes, or one whole-string regex for a
    value that is not ARN-shaped (such as a bare `*`)."""

    components: tuple[re.Pattern[str], ...]


def arn_pattern(template: Template) -> ArnPattern:
    parts: list[list[Piece]] = [[]]
    for piece in template:
        for c in piece.text:
            if c == ":" and len(parts) < 6:
                parts.append([])
            else:
                parts[-1].append(Piece(c, piece.literal))
    if len(parts) < 6:
        return ArnPattern((glob_regex(template),))
    return ArnPattern(tuple(glob_regex(tuple(p)) for p in parts))


def arn_matches(pattern: ArnPattern, value: str) -> bool:
    """ArnEquals/ArnLike: every component of `value` matches its pattern component."""
    if len(pattern.components) == 1:
        return pattern.components[0].fullmatch(value) is not None
    parts = value.split(":", 5)
    if len(parts) != 6:
        return False
    return all(rx.fullmatch(part) is not None for rx, part in zip(pattern.components, parts))


# --- principals ------------------------------------------------------------------------

Identity = tuple[str, str]  # (kind, key): account, role, arn, service


class PrincipalMatch(enum.Enum):
    """How a Principal element matched: not at all, only through the caller's account
    (which delegates to the account's identity policies), or naming the caller directly."""

    NONE = "none"
    ACCOUNT = "account"
    DIRECT = "direct"


def caller_identities(principal_arn: str, principal_account: str,
                      service: str | None = None) -> tuple[Identity, ...]:
    """The identities a policy can name for this caller, outermost (account) first."""
    if service:
        return (("service", service.lower()),)
    if not principal_arn:
        return ()
    parts = principal_arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "iam" and parts[5] == "root":
        return (("account", parts[4]),)
    out: list[Identity] = [("account", principal_account)]
    if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        role = parts[5].split("/")
        if len(role) >= 3:
            out.append(("role", f"{parts[1]}|{parts[4]}|{role[1]}"))
    out.append(("arn", principal_arn))
    return tuple(out)


def _entry(kind: str, value: str) -> Identity:
    if kind == "Service":
        return ("service", value.lower())
    if kind != "AWS":
        return (kind.lower(), value)  # Federated, CanonicalUser: never a SigV4 caller here
    if _ACCOUNT_ID.match(value):
        return ("account", value)
    parts = value.split(":", 5)
    if len(parts) == 6 and parts[2] == "iam":
        if parts[5] == "root":
            return ("account", parts[4])
        if parts[5].startswith("role/"):
            return ("role", f"{parts[1]}|{parts[4]}|{parts[5].rsplit('/', 1)[-1]}")
    return ("arn", value)


def principal_entries(element: Any) -> tuple[bool, frozenset[Identity]] | None:
    """Parse a Principal/NotPrincipal element: (wildcard?, named identities); None if malformed."""
    if element == "*":
        return True, frozenset()
    if not isinstance(element, dict) or not element:
        return None
    wildcard = False
    named: set[Identity] = set()
    for kind, raw in element.items():
        values: Any = [raw] if isinstance(raw, str) else raw
        if kind not in _PRINCIPAL_KINDS or not isinstance(values, list) or not values \
                or not all(isinstance(v, str) for v in values):
            return None
        for value in values:
            if kind == "AWS" and value == "*":
                wildcard = True
            else:
                named.add(_entry(kind, value))
    return wildcard, frozenset(named)


def principal_match(element: Any, identities: Iterable[Identity]) -> PrincipalMatch | None:
    """Match a Principal element; None when the element is malformed."""
    parsed = principal_entries(element)
    if parsed is None:
        return None
    wildcard, named = parsed
    ids = tuple(identities)
    if wildcard:
        return PrincipalMatch.DIRECT
    hits = [i for i in ids if i in named]
    if not hits:
        return PrincipalMatch.NONE
    if any(kind != "account" for kind, _ in hits) or len(ids) == 1:
        return PrincipalMatch.DIRECT  # a named user/role/session, or the account root itself
    return PrincipalMatch.ACCOUNT


def not_principal_applies(element: Any, identities: Iterable[Identity]) -> bool | None:
    """NotPrincipal applies unless every identity of the caller is listed; None if malformed."""
    parsed = principal_entries(element)
    if parsed is None:
        return None
    wildcard, named = parsed
    if wildcard:
        return False
    ids = tuple(identities)
    return not ids or any(i not in named for i in ids)
