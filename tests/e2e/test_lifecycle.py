"""Deleting, restoring, tagging and describing secrets."""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.exceptions import ClientError

from tests.e2e.test_secret_values import code


def test_delete_with_recovery_window_then_restore(sm, name):
    sm.create_secret(Name=name, SecretString="v")
    out = sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    window = out["DeletionDate"] - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(days=6, hours=23) < window <= dt.timedelta(days=7)
    with pytest.raises(ClientError) as exc:
        sm.get_secret_value(SecretId=name)
    assert code(exc) == "InvalidRequestException"
    assert "DeletedDate" in sm.describe_secret(SecretId=name)
    names = [s["Name"] for s in sm.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"]]
    assert names == []
    names = [s["Name"] for s in sm.list_secrets(IncludePlannedDeletion=True,
                                                 Filters=[{"Key": "name", "Values": [name]}])["SecretList"]]
    assert names == [name]
    sm.restore_secret(SecretId=name)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v"


@pytest.mark.parametrize("days", [6, 31])
def test_recovery_window_out_of_range(sm, name, days):
    sm.create_secret(Name=name, SecretString="v")
    with pytest.raises(ClientError) as exc:
        sm.delete_secret(SecretId=name, RecoveryWindowInDays=days)
    assert code(exc) == "InvalidParameterException"
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v"


def test_force_delete_frees_the_name(sm, name):
    sm.create_secret(Name=name, SecretString="v")
    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    with pytest.raises(ClientError) as exc:
        sm.describe_secret(SecretId=name)
    assert code(exc) == "ResourceNotFoundException"
    sm.create_secret(Name=name, SecretString="again")


def test_name_of_secret_pending_deletion_cannot_be_reused(sm, name):
    sm.create_secret(Name=name, SecretString="v")
    sm.delete_secret(SecretId=name)
    with pytest.raises(ClientError) as exc:
        sm.create_secret(Name=name, SecretString="v")
    assert code(exc) == "InvalidRequestException"


def test_duplicate_name_is_resource_exists(sm, name):
    sm.create_secret(Name=name, SecretString="v")
    with pytest.raises(ClientError) as exc:
        sm.create_secret(Name=name, SecretString="w")
    assert code(exc) == "ResourceExistsException"
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v"


def test_tags_add_replace_and_remove(sm, name):
    sm.create_secret(Name=name, SecretString="v", Tags=[{"Key": "a", "Value": "1"}])
    sm.tag_resource(SecretId=name, Tags=[{"Key": "a", "Value": "2"}, {"Key": "b", "Value": "3"}])
    assert sm.describe_secret(SecretId=name)["Tags"] == [{"Key": "a", "Value": "2"}, {"Key": "b", "Value": "3"}]
    sm.untag_resource(SecretId=name, TagKeys=["a"])
    assert sm.describe_secret(SecretId=name)["Tags"] == [{"Key": "b", "Value": "3"}]


def test_invalid_name_is_refused(sm):
    with pytest.raises(ClientError) as exc:
        sm.create_secret(Name="bad name with spaces", SecretString="v")
    assert code(exc) == "InvalidParameterException"


def test_unknown_secret_is_not_found(sm):
    for call in (sm.describe_secret, sm.get_secret_value, sm.delete_secret, sm.restore_secret):
        with pytest.raises(ClientError) as exc:
            call(SecretId="no/such/secret")
        assert code(exc) == "ResourceNotFoundException"
