"""GetRandomPassword: every option, exclusions honoured, RequireEachIncludedType, errors."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.errors import InvalidParameterException
from strongroom.services.secretsmanager.password import DEFAULT_LENGTH, PUNCTUATION, generate

LOWER, UPPER, DIGITS = string.ascii_lowercase, string.ascii_uppercase, string.digits
EVERYTHING = LOWER + UPPER + DIGITS + PUNCTUATION


def test_punctuation_is_the_documented_set():
    assert PUNCTUATION == "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    assert set(PUNCTUATION) == set(string.punctuation)


def test_defaults_are_32_characters_of_every_type_without_space():
    for _ in range(20):
        password = generate()
        assert len(password) == DEFAULT_LENGTH == 32
        assert set(password) <= set(EVERYTHING)
        assert " " not in password
        for kind in (LOWER, UPPER, DIGITS, PUNCTUATION):
            assert set(password) & set(kind)


@pytest.mark.parametrize(
    ("option", "forbidden"),
    [
        ({"exclude_lowercase": True}, LOWER),
        ({"exclude_uppercase": True}, UPPER),
        ({"exclude_numbers": True}, DIGITS),
        ({"exclude_punctuation": True}, PUNCTUATION),
        ({"exclude_characters": "aeiouAEIOU01!"}, "aeiouAEIOU01!"),
    ],
)
def test_each_exclusion_is_honoured(option, forbidden):
    for _ in range(20):
        password = generate(200, **option)
        assert not set(password) & set(forbidden)


def test_include_space_allows_space():
    seen_space = any(" " in generate(200, include_space=True) for _ in range(10))
    assert seen_space  # 2000 draws from 95 characters: a miss has probability < 1e-9


def test_excluding_space_beats_include_space():
    assert all(" " not in generate(200, include_space=True, exclude_characters=" ") for _ in range(5))


def test_only_digits():
    password = generate(64, exclude_lowercase=True, exclude_uppercase=True, exclude_punctuation=True)
    assert password.isdigit() and len(password) == 64


def test_require_each_type_with_a_one_character_type_left():
    # Only "7" remains of the digits; each password must still contain it.
    others = DIGITS.replace("7", "")
    for _ in range(20):
        assert "7" in generate(4, exclude_characters=others)


def test_without_require_each_type_short_passwords_are_allowed():
    assert len(generate(1, require_each_included_type=False)) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"exclude_lowercase": True, "exclude_uppercase": True, "exclude_numbers": True,
          "exclude_punctuation": True}, "all character types are excluded"),
        ({"exclude_characters": EVERYTHING}, "all character types are excluded"),
        ({"length": 3}, "too short"),  # four types need four characters
    ],
)
def test_errors(kwargs, message):
    length = kwargs.pop("length", 32)
    with pytest.raises(InvalidParameterException) as exc:
        generate(length, **kwargs)
    assert message in exc.value.message


def test_space_is_not_a_required_type():
    # Four required types fit in four characters even with IncludeSpace.
    assert len(generate(4, include_space=True)) == 4


options = st.fixed_dictionaries(
    {},
    optional={
        "exclude_lowercase": st.booleans(),
        "exclude_uppercase": st.booleans(),
        "exclude_numbers": st.booleans(),
        "exclude_punctuation": st.booleans(),
        "include_space": st.booleans(),
        "exclude_characters": st.text(alphabet=EVERYTHING + " ", max_size=40),
    },
)


def _allowed(opts: dict) -> tuple[list[str], str]:
    kinds = [chars for flag, chars in (("exclude_lowercase", LOWER), ("exclude_uppercase", UPPER),
                                       ("exclude_numbers", DIGITS), ("exclude_punctuation", PUNCTUATION))
             if not opts.get(flag)]
    excluded = set(opts.get("exclude_characters", ""))
    kinds = [k for k in ("".join(c for c in kind if c not in excluded) for kind in kinds) if k]
    alphabet = "".join(kinds) + (" " if opts.get("include_space") and " " not in excluded else "")
    return kinds, alphabet


@settings(max_examples=200)
@given(options, st.integers(min_value=1, max_value=80), st.booleans())
def test_property_passwords_respect_every_option(opts, length, require_each):
    kinds, alphabet = _allowed(opts)
    if not alphabet or (require_each and length < len(kinds)):
        with pytest.raises(InvalidParameterException):
            generate(length, require_each_included_type=require_each, **opts)
        return
    password = generate(length, require_each_included_type=require_each, **opts)
    assert len(password) == length
    assert set(password) <= set(alphabet)
    if require_each:
        assert all(set(password) & set(kind) for kind in kinds)
