"""Values, versions and staging labels through a real server and boto3."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def test_create_and_get_string_secret(sm, name):
    created = sm.create_secret(Name=name, SecretString="s3cr3t-value")
    assert created["Name"] == name
    assert created["ARN"].startswith(f"arn:aws:secretsmanager:us-east-1:")
    assert created["ARN"].rsplit("-", 1)[1].isalnum() and len(created["ARN"].rsplit("-", 1)[1]) == 6
    got = sm.get_secret_value(SecretId=name)
    assert got["SecretString"] == "s3cr3t-value"
    assert got["VersionStages"] == ["AWSCURRENT"]
    assert got["VersionId"] == created["VersionId"]


def test_binary_secret_round_trips(sm, name):
    blob = bytes(range(256))
    sm.create_secret(Name=name, SecretBinary=blob)
    got = sm.get_secret_value(SecretId=name)
    assert got["SecretBinary"] == blob
    assert "SecretString" not in got


def test_secret_id_accepts_name_full_arn_and_partial_arn(sm, name):
    arn = sm.create_secret(Name=name, SecretString="x")["ARN"]
    for secret_id in (name, arn, arn[:-7]):
        assert sm.get_secret_value(SecretId=secret_id)["ARN"] == arn


def test_previous_version_keeps_awsprevious_after_put(sm, name):
    first = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    second = sm.put_secret_value(SecretId=name, SecretString="two")["VersionId"]
    third = sm.put_secret_value(SecretId=name, SecretString="three")["VersionId"]
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert stages == {third: ["AWSCURRENT"], second: ["AWSPREVIOUS"]}
    assert first not in stages  # deprecated: no label left
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"] == "two"
    assert sm.get_secret_value(SecretId=name, VersionId=first)["SecretString"] == "one"
    listed = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]
    assert {v["VersionId"] for v in listed} == {first, second, third}
    assert {v["VersionId"] for v in sm.list_secret_version_ids(SecretId=name)["Versions"]} == {second, third}


def test_client_request_token_is_idempotent(sm, name):
    sm.create_secret(Name=name, SecretString="v1")
    token = str(uuid.uuid4())
    a = sm.put_secret_value(SecretId=name, SecretString="v2", ClientRequestToken=token)
    b = sm.put_secret_value(SecretId=name, SecretString="v2", ClientRequestToken=token)
    assert a["VersionId"] == b["VersionId"] == token
    assert len(sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]) == 2
    with pytest.raises(ClientError) as exc:
        sm.put_secret_value(SecretId=name, SecretString="other", ClientRequestToken=token)
    assert code(exc) == "ResourceExistsException"
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v2"


def test_custom_stage_moves_between_versions(sm, name):
    v1 = sm.create_secret(Name=name, SecretString="a")["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="b", VersionStages=["MYLABEL"])["VersionId"]
    # A value put only with a custom label does not become current.
    assert sm.get_secret_value(SecretId=name)["VersionId"] == v1
    assert sm.get_secret_value(SecretId=name, VersionStage="MYLABEL")["VersionId"] == v2
    with pytest.raises(ClientError) as exc:
        sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=v2)
    assert code(exc) == "InvalidParameterException"
    sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=v2,
                                   RemoveFromVersionId=v1)
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert sorted(stages[v2]) == ["AWSCURRENT", "MYLABEL"]
    assert stages[v1] == ["AWSPREVIOUS"]


def test_awscurrent_cannot_be_removed_outright(sm, name):
    v1 = sm.create_secret(Name=name, SecretString="a")["VersionId"]
    with pytest.raises(ClientError) as exc:
        sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT", RemoveFromVersionId=v1)
    assert code(exc) == "InvalidParameterException"
    assert sm.get_secret_value(SecretId=name)["VersionId"] == v1


def test_secret_without_value_has_no_current_version(sm, name):
    created = sm.create_secret(Name=name)
    assert "VersionId" not in created
    with pytest.raises(ClientError) as exc:
        sm.get_secret_value(SecretId=name)
    assert code(exc) == "ResourceNotFoundException"
    v = sm.put_secret_value(SecretId=name, SecretString="now", VersionStages=["AWSPENDING"])
    # The first value of a secret is always AWSCURRENT.
    assert sorted(v["VersionStages"]) == ["AWSCURRENT", "AWSPENDING"]


def test_both_string_and_binary_are_refused(sm, name):
    with pytest.raises(ClientError) as exc:
        sm.create_secret(Name=name, SecretString="a", SecretBinary=b"b")
    assert code(exc) == "InvalidParameterException"
    with pytest.raises(ClientError):
        sm.describe_secret(SecretId=name)


def test_update_secret_with_value_creates_current_version(sm, name):
    sm.create_secret(Name=name, SecretString="a", Description="first")
    out = sm.update_secret(SecretId=name, SecretString="b", Description="second")
    assert "VersionId" in out
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "b"
    assert sm.describe_secret(SecretId=name)["Description"] == "second"


def test_batch_get_by_ids_reports_per_secret_errors(sm, name):
    sm.create_secret(Name=name, SecretString="batch-a")
    out = sm.batch_get_secret_value(SecretIdList=[name, name + "-missing"])
    assert [v["SecretString"] for v in out["SecretValues"]] == ["batch-a"]
    assert out["Errors"][0]["SecretId"] == name + "-missing"
    assert out["Errors"][0]["ErrorCode"] == "ResourceNotFoundException"


def test_batch_get_by_filter(sm, name):
    sm.create_secret(Name=name + "/a", SecretString="fa")
    sm.create_secret(Name=name + "/b", SecretString="fb")
    out = sm.batch_get_secret_value(Filters=[{"Key": "name", "Values": [name + "/"]}])
    assert sorted(v["SecretString"] for v in out["SecretValues"]) == ["fa", "fb"]
