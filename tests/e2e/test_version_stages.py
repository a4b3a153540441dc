"""ListSecretVersionIds (pagination included) and UpdateSecretVersionStage's edge cases."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.e2e.support import call, code, no_retry, snapshot


def versions_of(sm, name: str, token: str | None = None, **kw) -> list[str]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(100):
        page = sm.list_secret_version_ids(SecretId=name, **kw, **({"NextToken": token} if token else {}))
        out += [v["VersionId"] for v in page["Versions"]]
        token = page.get("NextToken")
        if not token:
            return out
    raise AssertionError("pagination did not end")


@pytest.fixture
def seven(sm, name):  # type: ignore[no-untyped-def]
    """A secret with seven versions, oldest first."""
    ids = [sm.create_secret(Name=name, SecretString="v0")["VersionId"]]
    ids += [sm.put_secret_value(SecretId=name, SecretString=f"v{i}")["VersionId"] for i in range(1, 7)]
    return ids


def test_versions_are_listed_newest_first_across_pages(sm, name, seven):
    assert versions_of(sm, name, IncludeDeprecated=True, MaxResults=3) == seven[::-1]
    first = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True, MaxResults=3)
    second = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True, MaxResults=3,
                                        NextToken=first["NextToken"])
    last = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True, MaxResults=3,
                                      NextToken=second["NextToken"])
    assert [len(p["Versions"]) for p in (first, second, last)] == [3, 3, 1]
    assert "NextToken" not in last


def test_deprecated_versions_are_hidden_by_default(sm, name, seven):
    assert versions_of(sm, name) == [seven[6], seven[5]]  # AWSCURRENT, AWSPREVIOUS


def test_version_pages_stay_correct_while_values_are_put(sm, name, seven):
    first = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True, MaxResults=3)
    newer = sm.put_secret_value(SecretId=name, SecretString="during")["VersionId"]
    rest = versions_of(sm, name, first["NextToken"], IncludeDeprecated=True, MaxResults=3)
    seen = [v["VersionId"] for v in first["Versions"]] + rest
    assert seen == seven[::-1]  # each once; the newer version sorts before the first page
    assert newer not in seen


def test_version_entries(sm, name):
    v1 = sm.create_secret(Name=name, SecretString="a")["VersionId"]
    sm.get_secret_value(SecretId=name)
    (entry,) = sm.list_secret_version_ids(SecretId=name)["Versions"]
    assert entry["VersionId"] == v1 and entry["VersionStages"] == ["AWSCURRENT"]
    assert {"CreatedDate", "LastAccessedDate"} <= set(entry)
    out = sm.list_secret_version_ids(SecretId=name)
    assert out["Name"] == name and out["ARN"].endswith(name + out["ARN"][-7:])


def test_invalid_and_foreign_version_tokens(sm, name, seven):
    with pytest.raises(ClientError) as exc:
        sm.list_secret_version_ids(SecretId=name, NextToken="not-a-token")
    assert code(exc) == "InvalidNextTokenException"
    token = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True, MaxResults=1)["NextToken"]
    sm.create_secret(Name=name + "-other", SecretString="x")
    with pytest.raises(ClientError) as exc:
        sm.list_secret_version_ids(SecretId=name + "-other", NextToken=token)
    assert code(exc) == "InvalidNextTokenException"


def test_list_versions_of_unknown_secret(sm):
    with pytest.raises(ClientError) as exc:
        sm.list_secret_version_ids(SecretId="no/such/secret/here")
    assert code(exc) == "ResourceNotFoundException"


@pytest.mark.parametrize("max_results", [0, 101])
def test_list_versions_max_results_bounds(server, sm, name, max_results):
    sm.create_secret(Name=name, SecretString="v")
    reply = call(server, "secretsmanager.ListSecretVersionIds", {"SecretId": name, "MaxResults": max_results})
    assert (reply.status, reply.error) == (400, "ValidationException")


# UpdateSecretVersionStage -------------------------------------------------------------


@pytest.fixture
def two(sm, name):  # type: ignore[no-untyped-def]
    v1 = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="two")["VersionId"]
    return v1, v2


def stages(sm, name: str) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    return {k: sorted(v) for k, v in sm.describe_secret(SecretId=name)["VersionIdsToStages"].items()}


def test_roll_back_swaps_awscurrent_and_awsprevious(sm, name, two):
    v1, v2 = two
    sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=v1,
                                   RemoveFromVersionId=v2)
    assert stages(sm, name) == {v1: ["AWSCURRENT"], v2: ["AWSPREVIOUS"]}
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "one"


def test_custom_label_attach_move_and_remove(sm, name, two):
    v1, v2 = two
    sm.update_secret_version_stage(SecretId=name, VersionStage="BLUE", MoveToVersionId=v1)
    assert stages(sm, name)[v1] == ["AWSPREVIOUS", "BLUE"]
    sm.update_secret_version_stage(SecretId=name, VersionStage="BLUE", MoveToVersionId=v2, RemoveFromVersionId=v1)
    assert stages(sm, name) == {v1: ["AWSPREVIOUS"], v2: ["AWSCURRENT", "BLUE"]}
    assert sm.get_secret_value(SecretId=name, VersionStage="BLUE")["SecretString"] == "two"
    sm.update_secret_version_stage(SecretId=name, VersionStage="BLUE", RemoveFromVersionId=v2)
    assert stages(sm, name) == {v1: ["AWSPREVIOUS"], v2: ["AWSCURRENT"]}


def test_removing_the_last_label_deprecates_a_version(sm, name, two):
    v1, v2 = two
    sm.update_secret_version_stage(SecretId=name, VersionStage="AWSPREVIOUS", RemoveFromVersionId=v1)
    assert versions_of(sm, name) == [v2]
    assert set(versions_of(sm, name, IncludeDeprecated=True)) == {v1, v2}
    assert sm.get_secret_value(SecretId=name, VersionId=v1)["SecretString"] == "one"
    with pytest.raises(ClientError) as exc:
        sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")
    assert code(exc) == "ResourceNotFoundException"


def test_moving_a_label_to_its_holder_changes_nothing(sm, name, two):
    v1, v2 = two
    before = stages(sm, name)
    sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=v2,
                                   RemoveFromVersionId=v2)
    assert stages(sm, name) == before


def test_twenty_labels_per_version_and_no_more(server, name, two):
    sm = no_retry(server)
    v1, _ = two
    for i in range(19):  # AWSPREVIOUS is already one
        sm.update_secret_version_stage(SecretId=name, VersionStage=f"L{i}", MoveToVersionId=v1)
    assert len(stages(sm, name)[v1]) == 20
    before = snapshot(sm, name)
    with pytest.raises(ClientError) as exc:
        sm.update_secret_version_stage(SecretId=name, VersionStage="L19", MoveToVersionId=v1)
    assert code(exc) == "LimitExceededException"
    assert snapshot(sm, name) == before


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        (lambda v1, v2: {"VersionStage": "AWSCURRENT"}, "InvalidParameterException"),
        (lambda v1, v2: {"VersionStage": "AWSCURRENT", "RemoveFromVersionId": v2}, "InvalidParameterException"),
        (lambda v1, v2: {"VersionStage": "AWSCURRENT", "MoveToVersionId": v1}, "InvalidParameterException"),
        (lambda v1, v2: {"VersionStage": "AWSCURRENT", "MoveToVersionId": v2, "RemoveFromVersionId": v1},
         "InvalidParameterException"),
        (lambda v1, v2: {"VersionStage": "NOBODY", "RemoveFromVersionId": v1}, "InvalidParameterException"),
        (lambda v1, v2: {"VersionStage": "AWSCURRENT", "MoveToVersionId": "f" * 32, "RemoveFromVersionId": v2},
         "ResourceNotFoundException"),
        (lambda v1, v2: {"VersionStage": "BLUE", "RemoveFromVersionId": "0" * 36}, "ResourceNotFoundException"),
    ],
)
def test_refused_moves_change_nothing(sm, name, two, kwargs, error):
    before = snapshot(sm, name)
    with pytest.raises(ClientError) as exc:
        sm.update_secret_version_stage(SecretId=name, **kwargs(*two))
    assert code(exc) == error
    assert snapshot(sm, name) == before


def test_awscurrent_cannot_move_to_a_version_without_a_value(sm, name, two):
    _, v2 = two
    managed = "arn:aws:lambda:us-east-1:123456789012:function:strongroom-builtin-postgresql-single-user"
    pending = sm.rotate_secret(SecretId=name, RotationLambdaARN=managed,
                               RotationRules={"AutomaticallyAfterDays": 30})["VersionId"]
    before = snapshot(sm, name)
    with pytest.raises(ClientError) as exc:
        sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=pending,
                                       RemoveFromVersionId=v2)
    assert code(exc) == "InvalidRequestException"
    assert snapshot(sm, name) == before


def test_stage_changes_on_missing_or_deleted_secrets(sm, name, two):
    v1, v2 = two
    with pytest.raises(ClientError) as exc:
        sm.update_secret_version_stage(SecretId=name + "/missing", VersionStage="X", MoveToVersionId=v1)
    assert code(exc) == "ResourceNotFoundException"
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    with pytest.raises(ClientError) as exc:
        sm.update_secret_version_stage(SecretId=name, VersionStage="X", MoveToVersionId=v1)
    assert code(exc) == "InvalidRequestException"
    sm.restore_secret(SecretId=name)
    assert stages(sm, name) == {v1: ["AWSPREVIOUS"], v2: ["AWSCURRENT"]}
