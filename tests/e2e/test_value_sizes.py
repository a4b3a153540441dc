"""Secret value sizes and contents: 64 KiB limits, and any text or bytes round-trip exactly."""

from __future__ import annotations

import base64

import pytest

from tests.e2e.support import call


def test_largest_values_are_accepted(sm, name):
    sm.create_secret(Name=name, SecretString="s" * 65536)
    assert len(sm.get_secret_value(SecretId=name)["SecretString"]) == 65536
    sm.create_secret(Name=name + "-b", SecretBinary=bytes(range(256)) * 256)
    assert sm.get_secret_value(SecretId=name + "-b")["SecretBinary"] == bytes(range(256)) * 256


@pytest.mark.parametrize(
    "payload",
    [
        {"SecretString": "s" * 65537},
        {"SecretBinary": base64.b64encode(b"b" * 65537).decode()},
        {"SecretString": ""},
        {"SecretBinary": ""},
    ],
)
def test_values_outside_the_limits_are_refused(server, sm, name, payload):
    sm.create_secret(Name=name, SecretString="kept")
    for target, body in (("secretsmanager.PutSecretValue", {"SecretId": name, **payload}),
                         ("secretsmanager.UpdateSecret", {"SecretId": name, **payload}),
                         ("secretsmanager.CreateSecret", {"Name": name + "-new", **payload})):
        reply = call(server, target, body)
        assert (reply.status, reply.error) == (400, "ValidationException")
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "kept"
    assert len(sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]) == 1


@pytest.mark.parametrize(
    "text",
    ["emoji 🔐 and 漢字", "nul\x00inside", "quotes \" ' and \\ backslash", "line\nbreaks\r\n\ttabs",
     '{"json": ["inside", 1]}', "\u202eright-to-left", " leading and trailing spaces "],
)
def test_any_text_round_trips(sm, name, text):
    sm.create_secret(Name=name, SecretString=text)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == text
    batch = sm.batch_get_secret_value(SecretIdList=[name])["SecretValues"][0]
    assert batch["SecretString"] == text
