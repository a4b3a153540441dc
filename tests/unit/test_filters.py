"""ListSecrets filters: every key, `!` negation, prefix and case rules, `all` word splitting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.services.secretsmanager import filters
from strongroom.storage.records import SecretRecord


def secret(name: str = "DatabaseSecret", *, description: str | None = None, tags: dict[str, str] | None = None,
           region: str = "us-east-1", primary_region: str | None = None,
           owning_service: str | None = None) -> SecretRecord:
    return SecretRecord(
        account_id="123456789012", region=region, name=name,
        arn=f"arn:aws:secretsmanager:{region}:123456789012:secret:{name}-AbCdEf",
        created_date=0.0, last_changed_date=0.0, description=description,
        tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
        primary_region=primary_region, owning_service=owning_service,
    )


def match(key: str, values: list[str], s: SecretRecord) -> bool:
    return filters.matches([{"Key": key, "Values": values}], s)


@pytest.mark.parametrize(
    ("words_of", "expected"),
    [
        ("credsDatabase#892", ["creds", "database", "892"]),
        ("My_Secret", ["my", "secret"]),
        ("prod/db-main.password", ["prod", "db", "main", "password"]),
        ("HTTPServer2", ["http", "server", "2"]),
        ("  spaces   only ", ["spaces", "only"]),
        ("#/_=", []),
    ],
)
def test_words_split_at_case_digit_and_punctuation(words_of, expected):
    assert filters.words(words_of) == expected


# name: prefix, case-sensitive (AWS: "Data" finds DatabaseSecret, not databaseSecret or MyData).
@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("DatabaseSecret", "Data", True),
        ("databaseSecret", "Data", False),
        ("MyData", "Data", False),
        ("prod/db", "prod/", True),
        ("prod/db", "prod/db", True),
        ("prod/db", "prod/db/x", False),
        ("prod/db", "", True),
    ],
)
def test_name_is_a_case_sensitive_prefix(name, value, expected):
    assert match("name", [value], secret(name)) is expected


# description: words of the value each prefix a word of the description, any case, any order.
@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("My Description", True),
        ("my description", True),
        ("My basic description", True),
        ("Description of my secret", True),
        ("Descriptions of my keys", True),  # prefixes of words match
        ("Descriptive text of my keys", False),  # "description" is not a prefix of "descriptive"
        ("A description", False),  # "my" missing
        (None, False),
    ],
)
def test_description_matches_words_in_any_case(description, expected):
    assert match("description", ["My Description"], secret(description=description)) is expected


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("tag-key", "Own", True),
        ("tag-key", "own", False),  # case-sensitive
        ("tag-key", "Owner", True),
        ("tag-key", "Team", False),
        ("tag-key", "Project", True),
        ("tag-value", "ali", True),
        ("tag-value", "Ali", False),
        ("tag-value", "ph", True),  # any tag's value
        ("tag-value", "alice2", False),
    ],
)
def test_tag_key_and_value_are_case_sensitive_prefixes(key, value, expected):
    s = secret(tags={"Owner": "alice", "Project": "phoenix"})
    assert match(key, [value], s) is expected


def test_primary_region_defaults_to_the_secret_region():
    assert match("primary-region", ["us-east"], secret())
    assert not match("primary-region", ["US-EAST"], secret())
    assert match("primary-region", ["eu-"], secret(primary_region="eu-west-1"))
    assert not match("primary-region", ["us-"], secret(primary_region="eu-west-1"))


def test_owning_service_prefix():
    assert match("owning-service", ["rds"], secret(owning_service="rds"))
    assert not match("owning-service", ["RDS"], secret(owning_service="rds"))
    assert not match("owning-service", ["rds"], secret())


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("credsDatabase#892", True),  # "database" prefixes a word of the name
        ("PROD", True),  # tag value, any case
        ("team", True),  # tag key, any case
        ("rotat", True),  # description word prefix
        ("nothing here", False),
        ("My_Other", False),
        ("other PROD", True),  # any word of the value may match
        ("", False),  # no words, nothing to match
    ],
)
def test_all_splits_the_value_into_words_and_searches_every_attribute(value, expected):
    s = secret("app/DatabaseSecret", description="Rotated nightly", tags={"Team": "prod-blue"})
    assert match("all", [value], s) is expected


def test_all_does_not_search_the_region():
    assert not match("all", ["east"], secret("plain"))


def test_negation_excludes_matches():
    s = secret("prod/db")
    assert not match("name", ["!prod"], s)
    assert match("name", ["!dev"], s)
    assert not match("all", ["!DB"], s)
    assert match("tag-key", ["!Owner"], s)  # no tags: nothing to exclude


def test_values_of_one_key_are_ored_and_negations_all_apply():
    s = secret("prod/db")
    assert match("name", ["dev", "prod"], s)
    assert not match("name", ["dev", "stage"], s)
    assert not match("name", ["prod", "!prod/d"], s)
    assert match("name", ["!dev", "!stage"], s)
    assert not match("name", ["!dev", "!prod"], s)


def test_different_keys_are_anded():
    s = secret("prod/db", tags={"Owner": "alice"})
    both = [{"Key": "name", "Values": ["prod"]}, {"Key": "tag-key", "Values": ["Owner"]}]
    assert filters.matches(both, s)
    assert not filters.matches([*both, {"Key": "tag-value", "Values": ["bob"]}], s)
    assert filters.matches([], s)


names = st.text(alphabet="abcXYZ019/_-", min_size=1, max_size=12)


@given(names, names)
def test_name_negation_is_the_complement(name, value):
    s = secret(name)
    assert match("name", [value], s) is not match("name", ["!" + value], s)


@given(names, names)
def test_all_is_case_insensitive(name, value):
    # Case changes split words, so compare spellings that keep the same word boundaries.
    lower = match("all", [value.lower()], secret(name.lower()))
    assert lower is match("all", [value.upper()], secret(name.lower()))
    assert lower is match("all", [value.lower()], secret(name.upper()))
