"""Version pruning and access dates, on a real SQLite store with a clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.auth.authorize import ROOT_POLICIES
from strongroom.context import Principal, RequestContext
from strongroom.crypto.keyring import RootKeyring
from strongroom.crypto.rootkey import FileRootKey
from strongroom.errors import LimitExceededException
from strongroom.services.secretsmanager import secrets, values
from strongroom.services.secretsmanager.core import Deps
from strongroom.storage import open_store
from strongroom.storage.migrate import upgrade

DAY = 86400.0
START = 1_700_000_000.0  # 2023-11-14T22:13:20Z


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def deps(tmp_path: Path, clock: Clock) -> Iterator[Deps]:
    store = open_store(f"sqlite:///{tmp_path / 'strongroom.db'}")
    upgrade(store)
    yield Deps(store=store, keyring=RootKeyring(FileRootKey.create(tmp_path / "root.key")), clock=clock)
    store.close()


CTX = RequestContext(
    principal=Principal(account_id="123456789012", arn="arn:aws:iam::123456789012:user/admin",
                        principal_id="AIDAEXAMPLE", access_key_id="AKIAEXAMPLE", name="admin", is_admin=True),
    region="us-east-1", request_id="test", identity_policies=ROOT_POLICIES,
)


def put(deps: Deps, value: str, **kw: object) -> str:
    return str(values.put_secret_value(deps, CTX, {"SecretId": "s", "SecretString": value, **kw})["VersionId"])


def all_versions(deps: Deps) -> list[str]:
    out = values.list_secret_version_ids(deps, CTX, {"SecretId": "s", "IncludeDeprecated": True})
    return [v["VersionId"] for v in out["Versions"]]


def test_past_100_versions_the_oldest_unlabelled_day_old_ones_go(deps, clock):
    secrets.create_secret(deps, CTX, {"Name": "s", "SecretString": "v0"})
    old = [put(deps, f"v{i}") for i in range(1, 100)]  # 100 versions
    assert len(all_versions(deps)) == 100
    clock.now += DAY  # every version is now a day old
    newest = put(deps, "v100")
    kept = all_versions(deps)
    assert len(kept) == 100
    assert newest in kept and old[-1] in kept  # AWSCURRENT and AWSPREVIOUS
    assert old[0] in kept  # the 101st version pushed out only the oldest, v0
    got = values.get_secret_value(deps, CTX, {"SecretId": "s", "VersionStage": "AWSPREVIOUS"})
    assert got["SecretString"] == "v99"


def test_labelled_versions_are_never_pruned(deps, clock):
    first = secrets.create_secret(deps, CTX, {"Name": "s", "SecretString": "v0"})["VersionId"]
    values.update_secret_version_stage(deps, CTX, {"SecretId": "s", "VersionStage": "KEEP", "MoveToVersionId": first})
    for i in range(1, 100):
        put(deps, f"v{i}")
    clock.now += DAY
    put(deps, "v100")
    kept = all_versions(deps)
    assert first in kept and len(kept) == 100


def test_more_than_100_versions_in_a_day_is_refused(deps, clock):
    secrets.create_secret(deps, CTX, {"Name": "s", "SecretString": "v0"})
    for i in range(1, 100):
        clock.now += 60
        put(deps, f"v{i}")
    clock.now += DAY - 60 * 50  # the oldest 50 are a day old, the rest are not
    for i in range(100, 150):
        put(deps, f"v{i}")
    assert len(all_versions(deps)) == 100
    with pytest.raises(LimitExceededException):
        put(deps, "one-too-many")
    assert values.get_secret_value(deps, CTX, {"SecretId": "s"})["SecretString"] == "v149"


def test_last_accessed_date_is_the_day_not_the_time(deps, clock):
    secrets.create_secret(deps, CTX, {"Name": "s", "SecretString": "v0"})
    assert "LastAccessedDate" not in secrets.describe_secret(deps, CTX, {"SecretId": "s"})
    clock.now = START + 3600  # 2023-11-14T23:13:20Z
    values.get_secret_value(deps, CTX, {"SecretId": "s"})
    day = secrets.describe_secret(deps, CTX, {"SecretId": "s"})["LastAccessedDate"]
    assert day.isoformat() == "2023-11-14T00:00:00+00:00"
    clock.now += 7200  # past midnight
    values.get_secret_value(deps, CTX, {"SecretId": "s"})
    day = secrets.describe_secret(deps, CTX, {"SecretId": "s"})["LastAccessedDate"]
    assert day.isoformat() == "2023-11-15T00:00:00+00:00"
    (entry,) = values.list_secret_version_ids(deps, CTX, {"SecretId": "s"})["Versions"]
    assert entry["LastAccessedDate"] == day
