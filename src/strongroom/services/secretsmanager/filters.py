"""ListSecrets / BatchGetSecretValue filters, with AWS's matching rules (pure).

- name, tag-key, tag-value, primary-region, owning-service: prefix, case-sensitive
- description: each word of the value prefixes a word of the description, any case
- all: the value is split into words; any word prefixing a word of the name,
  description, a tag key or a tag value matches, any case
- a value starting with "!" negates: the secret must not match it
Values of one key are ORed (negations ANDed); different keys are ANDed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from strongroom.storage.records import SecretRecord

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def words(text: str) -> list[str]:
    """Split like AWS search: at case changes, letter/digit changes and punctuation."""
    return [w.lower() for w in _WORD.findall(text)]


def _prefix_any(value: str, candidates: Iterable[str | None]) -> bool:
    return any(c is not None and c.startswith(value) for c in candidates)


def _words_all_prefix(value: str, text: str | None) -> bool:
    wanted = words(value)
    have = words(text or "")
    return bool(wanted) and all(any(h.startswith(w) for h in have) for w in wanted)


def _matches_one(key: str, value: str, secret: SecretRecord) -> bool:
    if key == "name":
        return secret.name.startswith(value)
    if key == "description":
        return _words_all_prefix(value, secret.description)
    if key == "tag-key":
        return _prefix_any(value, (t["Key"] for t in secret.tags))
    if key == "tag-value":
        return _prefix_any(value, (t["Value"] for t in secret.tags))
    if key == "primary-region":
        return _prefix_any(value, [secret.primary_region or secret.region])
    if key == "owning-service":
        return _prefix_any(value, [secret.owning_service])
    if key == "all":
        haystack = words(secret.name) + words(secret.description or "")
        for tag in secret.tags:
            haystack += words(tag["Key"]) + words(tag["Value"])
        return any(any(h.startswith(w) for h in haystack) for w in words(value))
    return False


def matches(filters: list[dict[str, Any]], secret: SecretRecord) -> bool:
    for f in filters:
        key = f["Key"]
        positive = [v for v in f["Values"] if not v.startswith("!")]
        negative = [v[1:] for v in f["Values"] if v.startswith("!")]
        if positive and not any(_matches_one(key, v, secret) for v in positive):
            return False
        if any(_matches_one(key, v, secret) for v in negative):
            return False
    return True
