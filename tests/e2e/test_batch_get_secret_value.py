"""BatchGetSecretValue: by ids or by filters, per-secret errors, pagination, refusals."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.e2e.support import call, code


def test_by_ids_reports_values_and_errors_per_secret(sm, name):
    sm.create_secret(Name=f"{name}/a", SecretString="va")
    sm.create_secret(Name=f"{name}/b", SecretBinary=b"\x00vb")
    sm.create_secret(Name=f"{name}/gone", SecretString="vg")
    sm.delete_secret(SecretId=f"{name}/gone", RecoveryWindowInDays=7)
    sm.create_secret(Name=f"{name}/empty")
    ids = [f"{name}/a", f"{name}/b", f"{name}/a", f"{name}/gone", f"{name}/empty", f"{name}/missing"]
    out = sm.batch_get_secret_value(SecretIdList=ids)
    values = {v["Name"]: v for v in out["SecretValues"]}
    assert set(values) == {f"{name}/a", f"{name}/b"}  # a duplicate id is read once
    assert values[f"{name}/a"]["SecretString"] == "va"
    assert values[f"{name}/b"]["SecretBinary"] == b"\x00vb"
    assert values[f"{name}/a"]["VersionStages"] == ["AWSCURRENT"]
    errors = {e["SecretId"]: e["ErrorCode"] for e in out["Errors"]}
    assert errors == {f"{name}/gone": "InvalidRequestException", f"{name}/empty": "ResourceNotFoundException",
                      f"{name}/missing": "ResourceNotFoundException"}


def test_by_filters_with_pagination(sm, name):
    for i in range(5):
        sm.create_secret(Name=f"{name}/{i}", SecretString=f"v{i}")
    flt = [{"Key": "name", "Values": [name + "/"]}]
    seen, token = [], None
    for _ in range(10):
        page = sm.batch_get_secret_value(Filters=flt, MaxResults=2, **({"NextToken": token} if token else {}))
        assert len(page["SecretValues"]) <= 2
        seen += [v["SecretString"] for v in page["SecretValues"]]
        token = page.get("NextToken")
        if not token:
            break
    assert sorted(seen) == [f"v{i}" for i in range(5)]


def test_refusals(sm, name):
    sm.create_secret(Name=name, SecretString="v")
    for kw in ({}, {"SecretIdList": [name], "Filters": [{"Key": "name", "Values": [name]}]},
               {"SecretIdList": [name], "MaxResults": 5}):
        with pytest.raises(ClientError) as exc:
            sm.batch_get_secret_value(**kw)
        assert code(exc) == "InvalidParameterException"
    with pytest.raises(ClientError) as exc:
        sm.batch_get_secret_value(Filters=[{"Key": "name", "Values": [name]}], NextToken="forged")
    assert code(exc) == "InvalidNextTokenException"
    token = sm.list_secrets(MaxResults=1)["NextToken"]  # a ListSecrets token is not a batch token
    with pytest.raises(ClientError) as exc:
        sm.batch_get_secret_value(Filters=[{"Key": "name", "Values": ["test/"]}], NextToken=token)
    assert code(exc) == "InvalidNextTokenException"


@pytest.mark.parametrize("payload", [{"SecretIdList": [f"s{i}" for i in range(21)]}, {"SecretIdList": []},
                                     {"Filters": [{"Key": "name", "Values": ["x"]}], "MaxResults": 21}])
def test_model_limits(server, payload):
    reply = call(server, "secretsmanager.BatchGetSecretValue", payload)
    assert (reply.status, reply.error) == (400, "ValidationException")
