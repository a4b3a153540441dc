"""Secrets scheduled for deletion are purged for good once their deletion date passes."""

from __future__ import annotations

import pytest

from strongroom.errors import InvalidRequestException, ResourceNotFoundException
from strongroom.services.secretsmanager import secrets, values
from tests.unit.test_values import CTX, DAY, clock, deps  # noqa: F401 - fixtures


def test_purge_waits_for_the_recovery_window(deps, clock):  # noqa: F811
    secrets.create_secret(deps, CTX, {"Name": "doomed", "SecretString": "v"})
    secrets.create_secret(deps, CTX, {"Name": "kept", "SecretString": "v"})
    secrets.delete_secret(deps, CTX, {"SecretId": "doomed", "RecoveryWindowInDays": 7})
    clock.now += 7 * DAY - 60
    assert secrets.purge_deleted(deps) == 0
    with pytest.raises(InvalidRequestException):
        values.get_secret_value(deps, CTX, {"SecretId": "doomed"})
    clock.now += 120
    assert secrets.purge_deleted(deps) == 1
    with pytest.raises(ResourceNotFoundException):
        secrets.describe_secret(deps, CTX, {"SecretId": "doomed"})
    assert values.get_secret_value(deps, CTX, {"SecretId": "kept"})["SecretString"] == "v"
    # The name is free again once the secret is gone.
    secrets.create_secret(deps, CTX, {"Name": "doomed", "SecretString": "new"})


def test_restored_secret_is_never_purged(deps, clock):  # noqa: F811
    secrets.create_secret(deps, CTX, {"Name": "saved", "SecretString": "v"})
    secrets.delete_secret(deps, CTX, {"SecretId": "saved", "RecoveryWindowInDays": 7})
    secrets.restore_secret(deps, CTX, {"SecretId": "saved"})
    clock.now += 31 * DAY
    assert secrets.purge_deleted(deps) == 0
    assert values.get_secret_value(deps, CTX, {"SecretId": "saved"})["SecretString"] == "v"
