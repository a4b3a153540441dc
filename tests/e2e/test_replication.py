"""Multi-Region and cross-account replication: not offered, and said so clearly, changing nothing."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.e2e.support import code, message, snapshot

REPLICA = "arn:aws:secretsmanager:us-west-2:210987654321:secret:replica-AbCdEf"
OPERATIONS = [
    ("replicate_secret_to_regions", {"AddReplicaRegions": [{"Region": "eu-west-1"}]}),
    ("remove_regions_from_replication", {"RemoveReplicaRegions": ["eu-west-1"]}),
    ("stop_replication_to_replica", {}),
    ("associate_cross_account_replica", {"CrossAccountReplicaARN": REPLICA}),
    ("disassociate_cross_account_replica", {"CrossAccountReplicaARN": REPLICA}),
]


@pytest.mark.parametrize(("operation", "kwargs"), OPERATIONS)
def test_replication_is_refused_clearly_and_changes_nothing(sm, name, operation, kwargs):
    sm.create_secret(Name=name, SecretString="v")
    before = snapshot(sm, name)
    with pytest.raises(ClientError) as exc:
        getattr(sm, operation)(SecretId=name, **kwargs)
    assert code(exc) == "InvalidRequestException"
    assert "Replication" in message(exc) or "replica" in message(exc).lower()
    assert snapshot(sm, name) == before
    assert "ReplicationStatus" not in sm.describe_secret(SecretId=name)


@pytest.mark.parametrize(("operation", "kwargs"), OPERATIONS)
def test_replication_of_a_missing_secret_is_not_found(sm, operation, kwargs):
    with pytest.raises(ClientError) as exc:
        getattr(sm, operation)(SecretId="no/such/secret/to/replicate", **kwargs)
    assert code(exc) == "ResourceNotFoundException"


def test_create_secret_with_replica_regions_is_refused_and_creates_nothing(sm, name):
    with pytest.raises(ClientError) as exc:
        sm.create_secret(Name=name, SecretString="v", AddReplicaRegions=[{"Region": "eu-west-1"}])
    assert code(exc) == "InvalidRequestException"
    with pytest.raises(ClientError) as exc:
        sm.describe_secret(SecretId=name)
    assert code(exc) == "ResourceNotFoundException"
