"""ListSecrets: every filter key, negation, sorting, planned deletion, and pagination under change."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

from tests.e2e.support import call, code

P = f"list/{uuid.uuid4().hex[:8]}/"
SECRETS = {
    # name suffix: (description, tags)
    "DatabaseSecret": ("Primary database credentials", {"Owner": "alice", "Env": "prod"}),
    "databaseSecret": ("Replica database", {"Owner": "bob", "Env": "dev"}),
    "MyData": ("My basic description", {"Team": "blue"}),
    "api/key": ("Description of my secret", {}),
    "credsApi892": (None, {"env": "Prod"}),
}


@pytest.fixture(scope="module")
def listed(_sm_client):  # type: ignore[no-untyped-def]
    sm = _sm_client
    for suffix, (description, tags) in SECRETS.items():
        kw = {"Description": description} if description else {}
        sm.create_secret(Name=P + suffix, SecretString="v", Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
                         **kw)
    return sm


def names(sm, *filters, **kw) -> list[str]:  # type: ignore[no-untyped-def]
    """Names (without the module prefix) of the module's secrets matching `filters`, every page."""
    flt = [{"Key": "name", "Values": [P]}, *[{"Key": k, "Values": v} for k, v in filters]]
    out, token = [], None
    for _ in range(50):
        page = sm.list_secrets(Filters=flt, **kw, **({"NextToken": token} if token else {}))
        out += [s["Name"][len(P):] for s in page["SecretList"]]
        token = page.get("NextToken")
        if not token:
            return out
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize(
    ("key", "values", "expected"),
    [
        ("name", [P + "Data"], {"DatabaseSecret"}),  # prefix, case-sensitive
        ("name", [P + "data"], {"databaseSecret"}),
        ("name", [P + "api/", P + "My"], {"api/key", "MyData"}),  # values are ORed
        ("name", ["!" + P + "d"], {"DatabaseSecret", "MyData", "api/key", "credsApi892"}),
        ("description", ["My Description"], {"MyData", "api/key"}),  # words, any case, any order
        ("description", ["DATABASE"], {"DatabaseSecret", "databaseSecret"}),
        ("description", ["!database"], {"MyData", "api/key", "credsApi892"}),
        ("tag-key", ["Own"], {"DatabaseSecret", "databaseSecret"}),
        ("tag-key", ["env"], {"credsApi892"}),  # case-sensitive
        ("tag-key", ["!Owner"], {"MyData", "api/key", "credsApi892"}),
        ("tag-value", ["prod"], {"DatabaseSecret"}),
        ("tag-value", ["Prod"], {"credsApi892"}),
        ("tag-value", ["b"], {"databaseSecret", "MyData"}),
        ("primary-region", ["us-east-1"], set(SECRETS)),
        ("primary-region", ["eu-"], set()),
        ("primary-region", ["!us-"], set()),
        ("owning-service", ["rds"], set()),
        ("owning-service", ["!rds"], set(SECRETS)),
        ("all", ["credsDatabase/892"], {"DatabaseSecret", "databaseSecret", "credsApi892"}),
        ("all", ["PROD"], {"DatabaseSecret", "credsApi892"}),  # tag values, any case
        ("all", ["blue"], {"MyData"}),
        ("all", ["team"], {"MyData"}),  # tag keys
        ("all", ["replica"], {"databaseSecret"}),  # descriptions
        ("all", ["!database"], {"MyData", "api/key", "credsApi892"}),
    ],
)
def test_filters(listed, key, values, expected):
    assert set(names(listed, (key, values))) == expected


def test_different_keys_are_anded(listed):
    assert set(names(listed, ("tag-key", ["Owner"]), ("tag-value", ["alice"]))) == {"DatabaseSecret"}
    assert names(listed, ("tag-key", ["Team"]), ("description", ["database"])) == []


def test_without_filters_every_secret_is_listed(listed):
    seen, token = set(), None
    for _ in range(1000):
        page = listed.list_secrets(MaxResults=100, **({"NextToken": token} if token else {}))
        seen |= {s["Name"] for s in page["SecretList"]}
        token = page.get("NextToken")
        if not token:
            break
    assert {P + n for n in SECRETS} <= seen


def test_entries_describe_the_secret(listed):
    entry = listed.list_secrets(Filters=[{"Key": "name", "Values": [P + "DatabaseSecret"]}])["SecretList"][0]
    assert entry["Description"] == "Primary database credentials"
    assert {t["Key"] for t in entry["Tags"]} == {"Owner", "Env"}
    assert list(entry["SecretVersionsToStages"].values()) == [["AWSCURRENT"]]
    assert entry["ARN"].startswith("arn:aws:secretsmanager:us-east-1:")
    assert {"CreatedDate", "LastChangedDate"} <= set(entry)


def test_sort_by_name(listed):
    ordered = sorted(SECRETS)
    assert names(listed, SortBy="name", SortOrder="asc") == ordered
    assert names(listed, SortBy="name", SortOrder="desc") == ordered[::-1]
    assert names(listed, SortBy="name", SortOrder="asc", MaxResults=2) == ordered


def test_sort_by_created_date_is_the_default_newest_first(listed):
    creation_order = list(SECRETS)
    assert names(listed) == creation_order[::-1]
    assert names(listed, SortBy="created-date", SortOrder="asc") == creation_order
    assert names(listed, SortOrder="asc", MaxResults=1) == creation_order


def test_sort_by_last_changed_date(sm, name):
    for suffix in ("a", "b", "c"):
        sm.create_secret(Name=f"{name}/{suffix}", SecretString="v")
    sm.tag_resource(SecretId=f"{name}/a", Tags=[{"Key": "touched", "Value": "yes"}])
    flt = [{"Key": "name", "Values": [name + "/"]}]
    order = [s["Name"][-1] for s in sm.list_secrets(Filters=flt, SortBy="last-changed-date")["SecretList"]]
    assert order == ["a", "c", "b"]
    order = [s["Name"][-1] for s in sm.list_secrets(Filters=flt, SortBy="last-changed-date",
                                                    SortOrder="asc")["SecretList"]]
    assert order == ["b", "c", "a"]


def test_sort_by_last_accessed_date_puts_never_read_secrets_first_ascending(sm, name):
    for suffix in ("a", "b", "c"):
        sm.create_secret(Name=f"{name}/{suffix}", SecretString="v")
    sm.get_secret_value(SecretId=f"{name}/b")
    flt = [{"Key": "name", "Values": [name + "/"]}]
    asc = [s["Name"][-1] for s in sm.list_secrets(Filters=flt, SortBy="last-accessed-date",
                                                  SortOrder="asc")["SecretList"]]
    assert asc[-1] == "b" and sorted(asc) == ["a", "b", "c"]
    desc = [s["Name"][-1] for s in sm.list_secrets(Filters=flt, SortBy="last-accessed-date",
                                                   SortOrder="desc")["SecretList"]]
    assert desc[0] == "b"


def test_include_planned_deletion(sm, name):
    sm.create_secret(Name=f"{name}/kept", SecretString="v")
    sm.create_secret(Name=f"{name}/gone", SecretString="v")
    sm.delete_secret(SecretId=f"{name}/gone", RecoveryWindowInDays=7)
    flt = [{"Key": "name", "Values": [name + "/"]}]
    assert [s["Name"] for s in sm.list_secrets(Filters=flt)["SecretList"]] == [f"{name}/kept"]
    listed = sm.list_secrets(Filters=flt, IncludePlannedDeletion=True, SortBy="name", SortOrder="asc")["SecretList"]
    assert [s["Name"] for s in listed] == [f"{name}/gone", f"{name}/kept"]
    assert "DeletedDate" in listed[0] and "DeletedDate" not in listed[1]


def _page_through(sm, flt, changes, **kw):  # type: ignore[no-untyped-def]
    """List page by page, running changes[i] after page i; returns every name seen, in order."""
    seen, token = [], None
    for i in range(100):
        page = sm.list_secrets(Filters=flt, MaxResults=5, **kw, **({"NextToken": token} if token else {}))
        seen += [s["Name"].rsplit("/", 1)[1] for s in page["SecretList"]]
        if i < len(changes):
            changes[i]()
        token = page.get("NextToken")
        if not token:
            return seen
    raise AssertionError("pagination did not end")


def test_pagination_stays_correct_while_secrets_come_and_go(sm, name):
    base = [f"s{i:02}" for i in range(12)]
    for n in base:
        sm.create_secret(Name=f"{name}/{n}", SecretString="v")
    flt = [{"Key": "name", "Values": [name + "/"]}]

    def after_first_page() -> None:
        sm.delete_secret(SecretId=f"{name}/s02", ForceDeleteWithoutRecovery=True)  # already returned
        sm.delete_secret(SecretId=f"{name}/s07", ForceDeleteWithoutRecovery=True)  # not yet returned
        sm.create_secret(Name=f"{name}/s05a", SecretString="v")  # sorts after the last returned name
        sm.create_secret(Name=f"{name}/s01a", SecretString="v")  # sorts before it: not on later pages

    def after_second_page() -> None:
        sm.delete_secret(SecretId=f"{name}/s11", RecoveryWindowInDays=7)  # scheduled deletion hides it

    seen = _page_through(sm, flt, [after_first_page, after_second_page], SortBy="name", SortOrder="asc")
    assert seen == ["s00", "s01", "s02", "s03", "s04", "s05", "s05a", "s06", "s08", "s09", "s10"]


def test_pagination_by_creation_date_never_repeats_or_skips(sm, name):
    base = [f"s{i:02}" for i in range(11)]
    for n in base:
        sm.create_secret(Name=f"{name}/{n}", SecretString="v")
    flt = [{"Key": "name", "Values": [name + "/"]}]
    created = iter(range(100))

    def churn() -> None:
        sm.create_secret(Name=f"{name}/new{next(created)}", SecretString="v")  # newest: before the marker
        sm.delete_secret(SecretId=f"{name}/s00", ForceDeleteWithoutRecovery=True) if "s00" in pending else None
        pending.discard("s00")

    pending = {"s00"}
    seen = _page_through(sm, flt, [churn, churn])
    assert seen == [f"s{i:02}" for i in range(10, 0, -1)]  # newest first, s00 deleted before its page


def test_max_results_pages_and_last_page_has_no_token(sm, name):
    for i in range(3):
        sm.create_secret(Name=f"{name}/{i}", SecretString="v")
    flt = [{"Key": "name", "Values": [name + "/"]}]
    first = sm.list_secrets(Filters=flt, MaxResults=2)
    assert len(first["SecretList"]) == 2 and first["NextToken"]
    second = sm.list_secrets(Filters=flt, MaxResults=2, NextToken=first["NextToken"])
    assert len(second["SecretList"]) == 1 and "NextToken" not in second
    exact = sm.list_secrets(Filters=flt, MaxResults=3)
    assert len(exact["SecretList"]) == 3 and "NextToken" not in exact


def test_paginator_walks_every_page(sm, name):
    for i in range(7):
        sm.create_secret(Name=f"{name}/{i}", SecretString="v")
    pages = list(sm.get_paginator("list_secrets").paginate(
        Filters=[{"Key": "name", "Values": [name + "/"]}], PaginationConfig={"PageSize": 3}))
    assert [len(p["SecretList"]) for p in pages] == [3, 3, 1]


@pytest.mark.parametrize("token", ["garbage", "eyJrIjoibGlzdCJ9", "A" * 200])
def test_invalid_next_token(sm, token):
    with pytest.raises(ClientError) as exc:
        sm.list_secrets(NextToken=token)
    assert code(exc) == "InvalidNextTokenException"


def test_token_of_another_listing_is_invalid(sm, name):
    sm.create_secret(Name=name, SecretString="v")
    sm.put_secret_value(SecretId=name, SecretString="w")
    sm.put_secret_value(SecretId=name, SecretString="x")
    token = sm.list_secret_version_ids(SecretId=name, MaxResults=1)["NextToken"]
    with pytest.raises(ClientError) as exc:
        sm.list_secrets(NextToken=token)
    assert code(exc) == "InvalidNextTokenException"


def test_token_with_a_different_sort_is_refused(sm, name):
    for i in range(3):
        sm.create_secret(Name=f"{name}/{i}", SecretString="v")
    flt = [{"Key": "name", "Values": [name + "/"]}]
    token = sm.list_secrets(Filters=flt, MaxResults=1, SortBy="name")["NextToken"]
    with pytest.raises(ClientError) as exc:
        sm.list_secrets(Filters=flt, MaxResults=1, SortBy="created-date", NextToken=token)
    assert code(exc) == "InvalidParameterException"


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"Filters": [{"Key": "name", "Values": []}]}, "ValidationException"),
        ({"Filters": [{"Key": "name"}]}, "InvalidParameterException"),
        ({"Filters": [{"Values": ["x"]}]}, "InvalidParameterException"),
        ({"Filters": [{"Key": "colour", "Values": ["x"]}]}, "ValidationException"),
        ({"Filters": [{"Key": "name", "Values": ["a*"]}]}, "ValidationException"),
        ({"Filters": [{"Key": "name", "Values": ["x"]}] * 11}, "ValidationException"),
        ({"Filters": [{"Key": "name", "Values": ["x"] * 11}]}, "ValidationException"),
        ({"MaxResults": 0}, "ValidationException"),
        ({"MaxResults": 101}, "ValidationException"),
        ({"SortBy": "size"}, "ValidationException"),
        ({"SortOrder": "sideways"}, "ValidationException"),
    ],
)
def test_invalid_requests(server, payload, error):
    reply = call(server, "secretsmanager.ListSecrets", payload)
    assert (reply.status, reply.error) == (400, error)
