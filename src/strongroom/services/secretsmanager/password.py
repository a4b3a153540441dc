"""GetRandomPassword: a cryptographically secure password generator (pure)."""

from __future__ import annotations

import secrets
import string
from typing import Any

from strongroom.errors import InvalidParameterException

PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
DEFAULT_LENGTH = 32


def character_classes(
    *,
    exclude_characters: str = "",
    exclude_numbers: bool = False,
    exclude_punctuation: bool = False,
    exclude_uppercase: bool = False,
    exclude_lowercase: bool = False,
) -> list[str]:
    """The character types RequireEachIncludedType asks for, minus excluded characters.

    AWS names lowercase, uppercase, numbers and punctuation; the space that
    IncludeSpace allows is a permitted character, not a required type.
    """
    classes = []
    for excluded, chars in (
        (exclude_lowercase, string.ascii_lowercase),
        (exclude_uppercase, string.ascii_uppercase),
        (exclude_numbers, string.digits),
        (exclude_punctuation, PUNCTUATION),
    ):
        if excluded:
            continue
        kept = "".join(c for c in chars if c not in exclude_characters)
        if kept:
            classes.append(kept)
    return classes


def generate(
    length: int = DEFAULT_LENGTH,
    *,
    require_each_included_type: bool = True,
    include_space: bool = False,
    **exclusions: Any,
) -> str:
    classes = character_classes(**exclusions)
    alphabet = "".join(classes)
    if include_space and " " not in exclusions.get("exclude_characters", ""):
        alphabet += " "
    if not alphabet:
        raise InvalidParameterException("The password can't be generated because all character types are excluded.")
    if require_each_included_type and length < len(classes):
        raise InvalidParameterException(
            f"The password length {length} is too short to include a character from each of "
            f"the {len(classes)} included character types."
        )
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        # Rejection sampling keeps the distribution uniform over valid passwords.
        if not require_each_included_type or all(any(c in cls for c in password) for cls in classes):
            return password
