"""RotateSecret / CancelRotateSecret as API mechanics: the AWSPENDING version, its filling, the rules."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.e2e.support import call, code, snapshot

# A built-in rotator (managed rotation): RotateSecret checks that a function may be invoked,
# and a managed one needs no permission. These tests are about the API, not the rotation.
LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:strongroom-builtin-postgresql-single-user"


@pytest.fixture
def secret(sm, name):  # type: ignore[no-untyped-def]
    return name, sm.create_secret(Name=name, SecretString="old")["VersionId"]


def rotate(sm, name: str, **kw):  # type: ignore[no-untyped-def]
    return sm.rotate_secret(SecretId=name, RotationLambdaARN=LAMBDA,
                            RotationRules=kw.pop("RotationRules", {"AutomaticallyAfterDays": 30}), **kw)


def test_rotate_creates_a_pending_version_without_a_value(sm, secret):
    name, current = secret
    out = rotate(sm, name)
    pending = out["VersionId"]
    assert out["Name"] == name and pending != current
    described = sm.describe_secret(SecretId=name)
    assert described["VersionIdsToStages"] == {current: ["AWSCURRENT"], pending: ["AWSPENDING"]}
    assert described["RotationEnabled"] is True
    assert described["RotationLambdaARN"] == LAMBDA
    assert described["RotationRules"]["AutomaticallyAfterDays"] == 30
    for kw in ({"VersionStage": "AWSPENDING"}, {"VersionId": pending}):
        with pytest.raises(ClientError) as exc:
            sm.get_secret_value(SecretId=name, **kw)
        assert code(exc) == "ResourceNotFoundException"
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "old"


def test_put_with_the_rotation_token_fills_the_pending_version(sm, secret):
    name, current = secret
    pending = rotate(sm, name, ClientRequestToken=str(uuid.uuid4()))["VersionId"]
    put = sm.put_secret_value(SecretId=name, ClientRequestToken=pending, SecretString="new",
                              VersionStages=["AWSPENDING"])
    assert put["VersionId"] == pending and put["VersionStages"] == ["AWSPENDING"]
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPENDING")["SecretString"] == "new"
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "old"  # not current until finishSecret
    # The same call again is an idempotent retry; a different value for it is refused.
    sm.put_secret_value(SecretId=name, ClientRequestToken=pending, SecretString="new", VersionStages=["AWSPENDING"])
    with pytest.raises(ClientError) as exc:
        sm.put_secret_value(SecretId=name, ClientRequestToken=pending, SecretString="other",
                            VersionStages=["AWSPENDING"])
    assert code(exc) == "ResourceExistsException"
    # finishSecret: AWSCURRENT moves, AWSPREVIOUS follows, AWSPENDING is cleared.
    sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=pending,
                                   RemoveFromVersionId=current)
    sm.update_secret_version_stage(SecretId=name, VersionStage="AWSPENDING", RemoveFromVersionId=pending)
    assert sm.describe_secret(SecretId=name)["VersionIdsToStages"] == {pending: ["AWSCURRENT"],
                                                                       current: ["AWSPREVIOUS"]}
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "new"
    # With no rotation in progress, a new one may start.
    assert rotate(sm, name)["VersionId"] not in (pending, current)


def test_second_rotation_while_one_is_pending_is_refused(sm, secret):
    name, _ = secret
    rotate(sm, name)
    before = snapshot(sm, name)
    with pytest.raises(ClientError) as exc:
        rotate(sm, name)
    assert code(exc) == "InvalidRequestException"
    assert snapshot(sm, name) == before


def test_retrying_the_same_rotate_call_is_idempotent(sm, secret):
    name, _ = secret
    token = str(uuid.uuid4())
    first = rotate(sm, name, ClientRequestToken=token)
    again = rotate(sm, name, ClientRequestToken=token)
    assert first["VersionId"] == again["VersionId"] == token
    assert len(sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]) == 2


def test_rotation_may_start_when_awspending_sits_on_awscurrent(sm, secret):
    name, current = secret
    sm.update_secret_version_stage(SecretId=name, VersionStage="AWSPENDING", MoveToVersionId=current)
    pending = rotate(sm, name)["VersionId"]
    assert sm.describe_secret(SecretId=name)["VersionIdsToStages"] == {current: ["AWSCURRENT"],
                                                                       pending: ["AWSPENDING"]}


def test_rotate_later_only_sets_the_schedule(sm, secret):
    name, current = secret
    out = rotate(sm, name, RotateImmediately=False, RotationRules={"ScheduleExpression": "cron(0 16 1,15 * ? *)"})
    assert "VersionId" not in out
    described = sm.describe_secret(SecretId=name)
    assert described["VersionIdsToStages"] == {current: ["AWSCURRENT"]}
    assert described["RotationRules"]["ScheduleExpression"] == "cron(0 16 1,15 * ? *)"
    nxt = described["NextRotationDate"].astimezone(dt.timezone.utc)
    assert (nxt.day, nxt.hour, nxt.minute) in {(1, 16, 0), (15, 16, 0)}


def test_next_rotation_date_for_days_is_midnight_utc(sm, secret):
    name, _ = secret
    before = dt.datetime.now(dt.timezone.utc)
    rotate(sm, name, RotateImmediately=False, RotationRules={"AutomaticallyAfterDays": 7})
    after = dt.datetime.now(dt.timezone.utc)
    nxt = sm.describe_secret(SecretId=name)["NextRotationDate"].astimezone(dt.timezone.utc)
    expected = {(t.replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=7)) for t in (before, after)}
    assert nxt in expected


def test_rules_without_a_new_lambda_reuse_the_stored_one(sm, secret):
    name, _ = secret
    rotate(sm, name, RotateImmediately=False)
    sm.rotate_secret(SecretId=name, RotationRules={"ScheduleExpression": "rate(10 days)"}, RotateImmediately=False)
    described = sm.describe_secret(SecretId=name)
    assert described["RotationLambdaARN"] == LAMBDA
    assert described["RotationRules"]["ScheduleExpression"] == "rate(10 days)"


@pytest.mark.parametrize(
    "rules",
    [
        {"AutomaticallyAfterDays": 30, "ScheduleExpression": "rate(30 days)"},
        {"ScheduleExpression": "rate(1 hours)"},
        {"ScheduleExpression": "rate(1000 days)"},
        {"ScheduleExpression": "cron(30 10 * * ? *)"},
        {"ScheduleExpression": "cron(0 10 * * ? 2030)"},
        {"ScheduleExpression": "cron(0 10 1 * MON *)"},
        {"ScheduleExpression": "cron(0 22 * * ? *)", "Duration": "4h"},
        {"ScheduleExpression": "rate(4 hours)", "Duration": "6h"},
        {},
    ],
)
def test_invalid_rotation_rules_are_refused(sm, secret, rules):
    name, _ = secret
    before = snapshot(sm, name)
    with pytest.raises(ClientError) as exc:
        rotate(sm, name, RotationRules=rules)
    assert code(exc) == "InvalidParameterException"
    assert snapshot(sm, name) == before


@pytest.mark.parametrize(
    "rules",
    [{"AutomaticallyAfterDays": 0}, {"AutomaticallyAfterDays": 1001}, {"ScheduleExpression": "rate(1 day);"},
     {"ScheduleExpression": "rate(1 day)", "Duration": "1d"}],
)
def test_rules_outside_the_model_are_validation_errors(server, sm, secret, rules):
    name, _ = secret
    reply = call(server, "secretsmanager.RotateSecret",
                 {"SecretId": name, "RotationLambdaARN": LAMBDA, "RotationRules": rules})
    assert (reply.status, reply.error) == (400, "ValidationException")
    assert "RotationEnabled" not in sm.describe_secret(SecretId=name)


def test_rotation_needs_a_lambda(sm, secret):
    name, _ = secret
    before = snapshot(sm, name)
    with pytest.raises(ClientError) as exc:
        sm.rotate_secret(SecretId=name, RotationRules={"AutomaticallyAfterDays": 1})
    assert code(exc) == "InvalidRequestException"
    with pytest.raises(ClientError) as exc:
        sm.rotate_secret(SecretId=name, RotationLambdaARN="arn:aws:s3:::bucket")
    assert code(exc) == "InvalidParameterException"
    assert snapshot(sm, name) == before


@pytest.mark.parametrize("immediately", [True, False])
def test_rotation_with_a_function_secrets_manager_cannot_invoke_is_refused(sm, secret, immediately):
    name, _ = secret
    before = snapshot(sm, name)
    described = sm.describe_secret(SecretId=name)
    missing = f"arn:aws:lambda:us-east-1:123456789012:function:absent-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ClientError) as exc:
        sm.rotate_secret(SecretId=name, RotationLambdaARN=missing, RotateImmediately=immediately,
                         RotationRules={"AutomaticallyAfterDays": 1})
    assert code(exc) == "AccessDeniedException"
    assert exc.value.response["Error"]["Message"] == (
        "Secrets Manager cannot invoke the specified Lambda function. Ensure that the function policy "
        "grants access to the principal secretsmanager.amazonaws.com.")
    assert snapshot(sm, name) == before  # no pending version, no rotation configured
    after = sm.describe_secret(SecretId=name)
    assert after.get("RotationLambdaARN") == described.get("RotationLambdaARN") is None
    assert "RotationEnabled" not in after


def test_rotate_missing_or_deleted_secret(sm, secret):
    name, _ = secret
    with pytest.raises(ClientError) as exc:
        rotate(sm, name + "/missing")
    assert code(exc) == "ResourceNotFoundException"
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    before = snapshot(sm, name)
    with pytest.raises(ClientError) as exc:
        rotate(sm, name)
    assert code(exc) == "InvalidRequestException"
    assert snapshot(sm, name) == before


def test_cancel_rotation_keeps_the_labels_and_names_the_pending_version(sm, secret):
    name, current = secret
    pending = rotate(sm, name)["VersionId"]
    out = sm.cancel_rotate_secret(SecretId=name)
    assert out["VersionId"] == pending and out["Name"] == name
    described = sm.describe_secret(SecretId=name)
    assert described["RotationEnabled"] is False
    assert "NextRotationDate" not in described
    # AWS leaves AWSPENDING where it is; the caller removes it.
    assert described["VersionIdsToStages"] == {current: ["AWSCURRENT"], pending: ["AWSPENDING"]}


def test_cancel_without_a_rotation_in_progress(sm, secret):
    name, _ = secret
    rotate(sm, name, RotateImmediately=False)
    out = sm.cancel_rotate_secret(SecretId=name)
    assert "VersionId" not in out
    assert sm.describe_secret(SecretId=name)["RotationEnabled"] is False


def test_cancel_errors(sm, secret):
    name, _ = secret
    before = snapshot(sm, name)
    with pytest.raises(ClientError) as exc:
        sm.cancel_rotate_secret(SecretId=name)  # rotation never configured
    assert code(exc) == "InvalidRequestException"
    assert snapshot(sm, name) == before
    with pytest.raises(ClientError) as exc:
        sm.cancel_rotate_secret(SecretId=name + "/missing")
    assert code(exc) == "ResourceNotFoundException"
    rotate(sm, name, RotateImmediately=False)
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    before = snapshot(sm, name)
    with pytest.raises(ClientError) as exc:
        sm.cancel_rotate_secret(SecretId=name)
    assert code(exc) == "InvalidRequestException"
    assert snapshot(sm, name) == before
    assert before["described"]["RotationEnabled"] is True
