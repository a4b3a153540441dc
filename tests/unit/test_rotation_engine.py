"""The rotation engine on a real SQLite store: schedule windows, leases, failures and resumption."""

from __future__ import annotations

import json
from typing import Any

import pytest

from strongroom.rotation.engine import EngineOptions, RotationEngine
from strongroom.rotation.internal import InternalSecrets
from strongroom.services.secretsmanager import rotation, secrets, values
from strongroom.services.secretsmanager.core import Deps
from strongroom.storage import SecretRecord, rotation_store
from tests.unit.test_values import CTX, DAY, clock, deps  # noqa: F401 - fixtures

FN = "arn:aws:lambda:us-east-1:123456789012:function:fake"


class FakeFunction:
    """A rotation function in process: records the steps it ran, fails where told."""

    def __init__(self, deps: Deps):
        self.deps, self.steps, self.fail_at = deps, [], set()  # type: ignore[var-annotated]

    def invoke_step(self, function_arn: str, secret: SecretRecord, event: dict[str, Any]) -> None:
        step, token = event["Step"], event["ClientRequestToken"]
        self.steps.append(step)
        if step in self.fail_at:
            raise RuntimeError(f"boom at {step}")
        sm = InternalSecrets(self.deps, secret.account_id, secret.region)
        if step == "createSecret":
            sm.put_secret_value(SecretId=event["SecretId"], ClientRequestToken=token, SecretString="new-" + token,
                                VersionStages=["AWSPENDING"])
        elif step == "finishSecret":
            stages = sm.describe_secret(SecretId=event["SecretId"])["VersionIdsToStages"]
            current = next(v for v, s in stages.items() if "AWSCURRENT" in s)
            sm.update_secret_version_stage(SecretId=event["SecretId"], VersionStage="AWSCURRENT",
                                           MoveToVersionId=token, RemoveFromVersionId=current)


@pytest.fixture
def fn(deps: Deps) -> FakeFunction:  # noqa: F811
    return FakeFunction(deps)


def engine(deps: Deps, fn: FakeFunction, holder: str = "node-a") -> RotationEngine:  # noqa: F811
    return RotationEngine(deps, fn, EngineOptions(lease_seconds=30, retry_base=10, retry_max=40),
                          clock=deps.clock, holder=holder)


def secret_id(deps: Deps) -> int:  # noqa: F811
    with deps.store.read() as tx:
        found = tx.secret_by_name(CTX.account_id, CTX.region, "s")
        assert found is not None and found.id is not None
        return found.id


def current(deps: Deps) -> str:  # noqa: F811
    return str(values.get_secret_value(deps, CTX, {"SecretId": "s"})["SecretString"])


def test_rotate_immediately_runs_four_steps_and_finishes(deps, fn, clock):  # noqa: F811
    secrets.create_secret(deps, CTX, {"Name": "s", "SecretString": "old"})
    token = rotation.rotate_secret(deps, CTX, {"SecretId": "s", "RotationLambdaARN": FN,
                                               "RotationRules": {"AutomaticallyAfterDays": 7}})["VersionId"]
    e = engine(deps, fn)
    assert e.due() == [secret_id(deps)]
    assert e.rotate(secret_id(deps)) == "succeeded"
    assert fn.steps == ["createSecret", "setSecret", "testSecret", "finishSecret"]
    assert current(deps) == "new-" + token
    described = secrets.describe_secret(deps, CTX, {"SecretId": "s"})
    assert all("AWSPENDING" not in s for s in described["VersionIdsToStages"].values())
    assert described["LastRotatedDate"].timestamp() == clock.now
    assert e.due() == []


def test_scheduled_rotation_starts_once_per_window(deps, fn, clock):  # noqa: F811
    secrets.create_secret(deps, CTX, {"Name": "s", "SecretString": "old"})
    rotation.rotate_secret(deps, CTX, {"SecretId": "s", "RotationLambdaARN": FN, "RotateImmediately": False,
                                       "RotationRules": {"AutomaticallyAfterDays": 1}})
    e = engine(deps, fn)
    assert e.due() == []
    nxt = secrets.describe_secret(deps, CTX, {"SecretId": "s"})["NextRotationDate"].timestamp()
    clock.now = nxt + 60
    assert e.due() == [secret_id(deps)]
    assert e.due() == [secret_id(deps)]  # asking again starts no second rotation
    versions = values.list_secret_version_ids(deps, CTX, {"SecretId": "s", "IncludeDeprecated": True})
    assert len(versions["Versions"]) == 2
    assert e.rotate(secret_id(deps)) == "succeeded"
    clock.now += 600  # later in the same window
    assert e.due() == []
    after = secrets.describe_secret(deps, CTX, {"SecretId": "s"})["NextRotationDate"].timestamp()
    assert after == nxt + DAY


def test_a_failed_step_keeps_awscurrent_and_retries_from_that_step(deps, fn, clock):  # noqa: F811
    secrets.create_secret(deps, CTX, {"Name": "s", "SecretString": "old"})
    rotation.rotate_secret(deps, CTX, {"SecretId": "s", "RotationLambdaARN": FN})
    e = engine(deps, fn)
    fn.fail_at = {"testSecret"}
    assert e.rotate(secret_id(deps)) == "failed"
    assert current(deps) == "old"
    with deps.store.read() as tx:
        state = rotation_store.get(tx.conn, secret_id(deps))
    assert state is not None and state.attempts == 1 and state.step == "testSecret"
    assert "boom at testSecret" in (state.last_error or "")
    assert state.next_attempt == clock.now + 10
    assert e.due() == []  # backing off
    clock.now += 11
    assert e.rotate(secret_id(deps)) == "failed"  # second failure: backoff doubles
    with deps.store.read() as tx:
        assert rotation_store.get(tx.conn, secret_id(deps)).next_attempt == clock.now + 20  # type: ignore[union-attr]
    fn.fail_at, fn.steps = set(), []
    clock.now += 21
    assert e.rotate(secret_id(deps)) == "succeeded"
    assert fn.steps == ["testSecret", "finishSecret"]
    assert current(deps) != "old"


def test_one_rotation_of_a_secret_at_a_time(deps, fn, clock):  # noqa: F811
    secrets.create_secret(deps, CTX, {"Name": "s", "SecretString": "old"})
    rotation.rotate_secret(deps, CTX, {"SecretId": "s", "RotationLambdaARN": FN})
    with deps.store.write() as tx:  # another node holds the lease
        assert rotation_store.claim(tx.conn, secret_id(deps), "node-b", clock.now, 30)
    assert engine(deps, fn).rotate(secret_id(deps)) == "busy"
    assert fn.steps == []
    clock.now += 31  # node-b died: its lease lapses and the rotation is taken over
    assert engine(deps, fn).rotate(secret_id(deps)) == "succeeded"


def test_cancelled_rotation_is_not_run(deps, fn):  # noqa: F811
    secrets.create_secret(deps, CTX, {"Name": "s", "SecretString": "old"})
    rotation.rotate_secret(deps, CTX, {"SecretId": "s", "RotationLambdaARN": FN})
    rotation.cancel_rotate_secret(deps, CTX, {"SecretId": "s"})
    assert engine(deps, fn).due() == []


def test_a_restarted_engine_never_rotates_twice_in_a_window(deps, fn, clock):  # noqa: F811
    secrets.create_secret(deps, CTX, {"Name": "s", "SecretString": "old"})
    rotation.rotate_secret(deps, CTX, {"SecretId": "s", "RotationLambdaARN": FN, "RotateImmediately": False,
                                       "RotationRules": {"ScheduleExpression": "rate(4 hours)"}})
    nxt = secrets.describe_secret(deps, CTX, {"SecretId": "s"})["NextRotationDate"].timestamp()
    clock.now = nxt + 1
    assert engine(deps, fn, holder="before-restart").due() == [secret_id(deps)]  # started, then "killed"
    restarted = engine(deps, fn, holder="after-restart")
    clock.now += 31  # the dead process's lease lapsed
    assert restarted.due() == [secret_id(deps)]
    assert restarted.rotate(secret_id(deps)) == "succeeded"
    for later in (60, 3600, 4 * 3600 - 120):  # the rest of the window, through yet another restart
        clock.now = nxt + later
        assert engine(deps, fn, holder=f"restart-{later}").due() == []
    versions = values.list_secret_version_ids(deps, CTX, {"SecretId": "s", "IncludeDeprecated": True})
    assert len(versions["Versions"]) == 2 and fn.steps.count("createSecret") == 1


class FakeAudit:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def service_event(self, name: str, **kw: Any) -> None:
        self.events.append((name, kw))


def test_each_step_and_outcome_is_an_audit_event(deps, fn):  # noqa: F811
    secrets.create_secret(deps, CTX, {"Name": "s", "SecretString": "old"})
    rotation.rotate_secret(deps, CTX, {"SecretId": "s", "RotationLambdaARN": FN})
    audit = FakeAudit()
    e = RotationEngine(deps, fn, EngineOptions(retry_base=10), clock=deps.clock, holder="a", audit=audit)
    fn.fail_at = {"testSecret"}
    assert e.rotate(secret_id(deps)) == "failed"
    fn.fail_at = set()
    deps.clock.now += 11  # type: ignore[attr-defined]
    assert e.rotate(secret_id(deps)) == "succeeded"
    names = [(n, kw["details"].get("step"), kw["details"].get("outcome")) for n, kw in audit.events]
    assert names == [
        ("RotationStarted", None, None),
        ("RotationStep", "createSecret", "succeeded"), ("RotationStep", "setSecret", "succeeded"),
        ("RotationStep", "testSecret", "failed"), ("RotationFailed", "testSecret", None),
        ("RotationStep", "testSecret", "succeeded"), ("RotationStep", "finishSecret", "succeeded"),
        ("RotationSucceeded", None, None),
    ]
    failed = dict(audit.events)["RotationFailed"]
    assert "boom at testSecret" in failed["details"]["reason"] and failed["source"] == "secretsmanager.amazonaws.com"
    assert all("new-" not in json.dumps(kw, default=str) for _, kw in audit.events)  # no secret value
