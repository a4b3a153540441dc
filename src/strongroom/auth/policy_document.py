"""Policy documents: grammar checks and the "does this grant public access" test (pure)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

VERSIONS = ("2012-10-17", "2008-10-17")
_STATEMENT_KEYS = {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction",
                   "Resource", "NotResource", "Condition"}
# Condition keys that pin a wildcard principal to known callers, so the grant is not public.
_RESTRICTING_KEYS = {
    "aws:principalaccount", "aws:principalarn", "aws:principalorgid", "aws:principalorgpaths",
    "aws:sourceaccount", "aws:sourcearn", "aws:sourceip", "aws:sourcevpc", "aws:sourcevpce",
    "aws:userid", "aws:username", "aws:sourceowner",
}


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    message: str


def parse(text: str) -> tuple[dict[str, Any] | None, list[Finding]]:
    """Parse and check grammar; returns (document or None, grammar findings)."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        return None, [Finding("Syntax", f"The policy is not valid JSON: {exc.msg} at position {exc.pos}.")]
    except RecursionError:  # nested deeper than the parser goes: no policy is
        return None, [Finding("Syntax", "The policy is nested too deeply.")]
    if not isinstance(doc, dict):
        return None, [Finding("Syntax", "The policy must be a JSON object.")]
    return doc, grammar_findings(doc, resource_policy=True)


def statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    st = doc.get("Statement", [])
    return [st] if isinstance(st, dict) else list(st) if isinstance(st, list) else []


def _strings(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, list) and bool(value)
                                     and all(isinstance(v, str) for v in value))


def _principal_ok(value: Any) -> bool:
    if value == "*":
        return True
    if not isinstance(value, dict) or not value:
        return False
    return all(k in ("AWS", "Service", "Federated", "CanonicalUser") and _strings(v) for k, v in value.items())


def grammar_findings(doc: dict[str, Any], *, resource_policy: bool) -> list[Finding]:
    out: list[Finding] = []
    unknown = set(doc) - {"Version", "Id", "Statement"}
    if unknown:
        out.append(Finding("Syntax", f"Unknown top-level field(s): {', '.join(sorted(unknown))}."))
    if "Version" in doc and doc["Version"] not in VERSIONS:
        out.append(Finding("Syntax", f"Version must be one of {', '.join(VERSIONS)}."))
    raw = doc.get("Statement")
    if not isinstance(raw, (dict, list)) or not raw:
        out.append(Finding("Syntax", "The policy must contain at least one Statement."))
        return out
    for i, st in enumerate(statements(doc)):
        where = f"Statement {i + 1}"
        if not isinstance(st, dict):
            out.append(Finding("Syntax", f"{where} must be a JSON object."))
            continue
        extra = set(st) - _STATEMENT_KEYS
        if extra:
            out.append(Finding("Syntax", f"{where} has unknown field(s): {', '.join(sorted(extra))}."))
        if st.get("Effect") not in ("Allow", "Deny"):
            out.append(Finding("Syntax", f"{where}: Effect must be Allow or Deny."))
        if ("Action" in st) == ("NotAction" in st):
            out.append(Finding("Syntax", f"{where} must contain exactly one of Action or NotAction."))
        for key in ("Action", "NotAction", "Resource", "NotResource"):
            if key in st and not _strings(st[key]):
                out.append(Finding("Syntax", f"{where}: {key} must be a string or a list of strings."))
        for key in ("Action", "NotAction"):
            for action in ([st[key]] if isinstance(st.get(key), str) else st.get(key) or []):
                if isinstance(action, str) and action != "*" and ":" not in action:
                    out.append(Finding("Syntax", f"{where}: action '{action}' must have the form service:action."))
        if "Resource" in st and "NotResource" in st:
            out.append(Finding("Syntax", f"{where} can't contain both Resource and NotResource."))
        if resource_policy:
            if ("Principal" in st) == ("NotPrincipal" in st):
                out.append(Finding("Syntax", f"{where} must contain exactly one of Principal or NotPrincipal."))
        elif "Principal" in st or "NotPrincipal" in st:
            out.append(Finding("Syntax", f"{where}: identity policies can't contain Principal or NotPrincipal."))
        elif "Resource" not in st and "NotResource" not in st:
            out.append(Finding("Syntax", f"{where} must contain Resource or NotResource."))
        for key in ("Principal", "NotPrincipal"):
            if key in st and not _principal_ok(st[key]):
                out.append(Finding("Syntax", f"{where}: {key} is not a valid principal."))
        cond = st.get("Condition")
        if cond is not None and not (
            isinstance(cond, dict)
            and all(isinstance(body, dict) and all(isinstance(v, (str, bool, int, float, list)) for v in body.values())
                    for body in cond.values())
        ):
            out.append(Finding("Syntax", f"{where}: Condition must map operators to key/value objects."))
    return out


def grants_public_access(doc: dict[str, Any]) -> bool:
    """True when an Allow reaches everyone: a wildcard principal not pinned by a condition."""
    for st in statements(doc):
        if not isinstance(st, dict) or st.get("Effect") != "Allow":
            continue
        if "NotPrincipal" in st:
            return True
        principal = st.get("Principal")
        values = [principal] if principal == "*" else []
        if isinstance(principal, dict):
            aws = principal.get("AWS", [])
            values = [aws] if isinstance(aws, str) else list(aws)
        if "*" not in values:
            continue
        cond = st.get("Condition")
        if not isinstance(cond, dict) or not any(
            _restricts(op, key, value)
            for op, body in cond.items() if isinstance(body, dict)
            for key, value in body.items()
        ):
            return True
    return False


# Values that pin nothing: any string, any address.
_UNPINNED = {"*", "0.0.0.0/0", "::/0"}


def _restricts(operator: str, key: str, value: Any) -> bool:
    """Does this condition limit callers to known ones?

    Only a positive comparison of an identifying key does: a negated operator
    (StringNotEquals) still admits everyone else, ...IfExists and ForAllValues:
    admit callers without the key, Null tests presence only, and a wildcard value matches anyone.
    """
    if operator.startswith("ForAllValues:"):  # true when the key is absent
        return False
    op = operator.split(":")[-1]
    if key.lower() not in _RESTRICTING_KEYS or op == "Null" or op.endswith("IfExists") or "Not" in op:
        return False
    values = value if isinstance(value, list) else [value]
    return bool(values) and all(isinstance(v, str) and v not in _UNPINNED for v in values)
