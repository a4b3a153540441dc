"""Secrets Manager's own parameter rules, beyond the model's types and lengths (pure)."""

from __future__ import annotations

import re
from typing import Any

from strongroom.errors import InvalidParameterException, InvalidRequestException, LimitExceededException

_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]+$")
_TAG_CHARS = re.compile(r"^[\w\s.:/=+\-@]*$", re.UNICODE)
MAX_TAGS = 50


def check_name(name: str) -> None:
    if not _NAME.match(name):
        raise InvalidParameterException(
            "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!"
        )


def check_value_choice(req: dict[str, Any], *, required: bool) -> None:
    if "SecretString" in req and "SecretBinary" in req:
        raise InvalidParameterException(
            "You can't specify both a binary secret value and a string secret value in the same secret."
        )
    if required and "SecretString" not in req and "SecretBinary" not in req:
        raise InvalidRequestException("You must provide either SecretString or SecretBinary.")


def check_tags(tags: list[dict[str, str]]) -> None:
    seen = set()
    for tag in tags:
        key, value = tag.get("Key"), tag.get("Value")
        if key is None or value is None:
            raise InvalidParameterException("A tag must have both a Key and a Value.")
        if key.lower().startswith("aws:"):
            raise InvalidParameterException("Invalid tag key. The aws: prefix is reserved for AWS use.")
        if not _TAG_CHARS.match(key) or not _TAG_CHARS.match(value):
            raise InvalidParameterException(
                "Invalid tag. Tags can contain letters, numbers, spaces and the following characters: _ . : / = + - @"
            )
        if key in seen:
            raise InvalidParameterException(f"Duplicate tag key: {key}.")
        seen.add(key)


def merge_tags(existing: list[dict[str, str]], new: list[dict[str, str]]) -> list[dict[str, str]]:
    merged = {t["Key"]: t["Value"] for t in existing}
    for tag in new:
        merged[tag["Key"]] = tag["Value"]
    if len(merged) > MAX_TAGS:
        raise LimitExceededException(f"The number of tags on a secret can't exceed {MAX_TAGS}.")
    return [{"Key": k, "Value": v} for k, v in merged.items()]
