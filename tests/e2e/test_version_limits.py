"""The 100-version quota: versions under a day old are never pruned, so the 101st is refused."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.e2e.support import code, no_retry, snapshot


def test_a_hundred_versions_in_a_day_and_no_more(server, name):
    sm = no_retry(server)
    ids = [sm.create_secret(Name=name, SecretString="v0")["VersionId"]]
    for i in range(1, 100):  # bounded: exactly the quota
        ids.append(sm.put_secret_value(SecretId=name, SecretString=f"v{i}")["VersionId"])
    versions = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True, MaxResults=100)
    assert len(versions["Versions"]) == 100 and "NextToken" not in versions
    before = snapshot(sm, name)
    with pytest.raises(ClientError) as exc:
        sm.put_secret_value(SecretId=name, SecretString="v100")
    assert code(exc) == "LimitExceededException"
    with pytest.raises(ClientError) as exc:
        sm.update_secret(SecretId=name, SecretString="v100")
    assert code(exc) == "LimitExceededException"
    assert snapshot(sm, name) == before
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v99"
    # Moving labels between existing versions creates none, so it still works at the quota.
    sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=ids[0],
                                   RemoveFromVersionId=ids[-1])
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v0"
