"""Alerts: the detector's rules, webhook signatures, and the outbox deliverer's retries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from strongroom.alerts.outbox import Deliverer, raise_alert
from strongroom.alerts.rules import Detector, make_alert
from strongroom.alerts.settings import AlertSettings, Webhook, alert_settings
from strongroom.alerts.webhook import sign, verify
from strongroom.storage import Store, open_store
from strongroom.storage.migrate import upgrade
from tests.e2e.audit_support import Receiver

SM = "secretsmanager.amazonaws.com"
ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"


def record(name: str, error: str | None = None, t: str = "2024-05-01T12:00:00Z", **extra: Any) -> dict[str, Any]:
    r: dict[str, Any] = {"eventSource": SM, "eventName": name, "eventTime": t, "eventID": f"id-{name}-{t}",
                         "userIdentity": {"arn": "arn:aws:iam::123456789012:user/bob"},
                         "resources": [{"ARN": ARN, "type": "AWS::SecretsManager::Secret"}],
                         "recipientAccountId": "123456789012", "awsRegion": "us-east-1", **extra}
    if error:
        r["errorCode"] = error
    return r


def test_signature_round_trip_and_tampering():
    body = b'{"type":"x"}'
    header = sign("s3cret", body, timestamp=1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert verify("s3cret", body, header, now=1_700_000_010)
    assert not verify("s3cret", body + b" ", header, now=1_700_000_010)
    assert not verify("other", body, header, now=1_700_000_010)
    assert not verify("s3cret", body, header, now=1_700_009_999)  # stale: replay protection


def test_rules_for_deletion_policy_change_and_rotation():
    d = Detector(AlertSettings())
    [a] = d.check(record("DeleteSecret", requestParameters={"recoveryWindowInDays": 7}))
    assert a["type"] == "secret_scheduled_for_deletion" and a["resource"] == ARN
    assert a["detail"]["recoveryWindowInDays"] == 7
    [a] = d.check(record("PutResourcePolicy"))
    assert a["type"] == "resource_policy_changed"
    assert d.check(record("DeleteSecret", error="AccessDeniedException")) == []
    [a] = d.check(record("RotateSecret", error="InvalidRequestException"))
    assert a["type"] == "rotation_failed"
    assert d.check(record("RotateSecret", error="ValidationException")) == []
    [a] = d.check(record("RotationFailed", eventType="AwsServiceEvent", serviceEventDetails={"step": "setSecret"}))
    assert a["type"] == "rotation_failed" and a["detail"] == {"step": "setSecret"}


def test_access_denied_burst_alerts_once_per_window():
    d = Detector(AlertSettings(access_denied_threshold=3, access_denied_window_seconds=60))
    out = [d.check(record("GetSecretValue", "AccessDeniedException", t=f"2024-05-01T12:00:{s:02d}Z"))
           for s in (0, 10, 20, 30, 40, 50)]
    assert [len(o) for o in out] == [0, 0, 1, 0, 0, 0]  # quiet for the rest of the window
    assert out[2][0]["detail"]["count"] == 3
    spaced = Detector(AlertSettings(access_denied_threshold=3, access_denied_window_seconds=10))
    assert not any(spaced.check(record("GetSecretValue", "AccessDeniedException", t=f"2024-05-01T12:0{m}:00Z"))
                   for m in range(5))  # one a minute never makes a burst


def test_config_validation():
    s = alert_settings({"webhooks": [{"url": "http://127.0.0.1:9/h", "events": ["rotation_failed"],
                                      "secret": "hook-key-42"}]})
    assert s.webhooks[0].wants("rotation_failed") and not s.webhooks[0].wants("access_denied_burst")
    assert "hook-key-42" not in repr(s)  # the HMAC secret never shows in logs
    with pytest.raises(ValueError):
        alert_settings({"webhooks": [{"url": "ftp://x"}]})
    with pytest.raises(ValueError):
        alert_settings({"webhooks": [{"url": "http://x", "events": ["nope"]}]})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'alerts.db'}")
    upgrade(s)
    yield s
    s.close()


def test_outbox_delivery_retries_until_accepted_and_signs(store: Store):
    rx = Receiver(fail=2)
    settings = AlertSettings(webhooks=(Webhook(rx.url, frozenset({"*"}), "hook-secret"),), retry_base_seconds=0.0)
    try:
        raise_alert(store, settings, make_alert("rotation_failed", None, ARN, "rotation failed", {}, []))
        deliverer = Deliverer(store, settings)
        for _ in range(5):
            deliverer.deliver_due()
        assert len(rx.received) == 1
        headers, body = rx.received[0]
        assert verify("hook-secret", body, headers["X-Strongroom-Signature"])
        assert headers["X-Strongroom-Event"] == "rotation_failed"
        assert json.loads(body)["resource"] == ARN
        with store.engine.connect() as conn:
            status, attempts = conn.execute(text("SELECT status, attempts FROM alert_outbox")).one()
        assert (status, attempts) == ("delivered", 3)
    finally:
        rx.close()


def test_outbox_gives_up_after_max_attempts(store: Store):
    rx = Receiver(fail=100)
    settings = AlertSettings(webhooks=(Webhook(rx.url, frozenset({"*"})),), retry_base_seconds=0.0, max_attempts=3)
    try:
        raise_alert(store, settings, make_alert("rotation_failed", None, ARN, "x", {}, []))
        deliverer = Deliverer(store, settings)
        for _ in range(5):
            deliverer.deliver_due()
        with store.engine.connect() as conn:
            status, attempts, error = conn.execute(text("SELECT status, attempts, last_error FROM alert_outbox")).one()
        assert (status, attempts, error) == ("failed", 3, "HTTP 503")
    finally:
        rx.close()
