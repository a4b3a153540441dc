"""GetRandomPassword through the API."""

from __future__ import annotations

import string

import pytest
from botocore.exceptions import ClientError

from tests.e2e.support import call, code


def test_default_password(sm):
    password = sm.get_random_password()["RandomPassword"]
    assert len(password) == 32
    for kind in (string.ascii_lowercase, string.ascii_uppercase, string.digits, string.punctuation):
        assert set(password) & set(kind)
    assert " " not in password


def test_passwords_differ(sm):
    assert len({sm.get_random_password()["RandomPassword"] for _ in range(5)}) == 5


def test_every_option(sm):
    password = sm.get_random_password(PasswordLength=100, ExcludeCharacters="abcXYZ", ExcludePunctuation=True,
                                      IncludeSpace=True)["RandomPassword"]
    assert len(password) == 100
    assert not set(password) & set("abcXYZ" + string.punctuation)
    digits_only = sm.get_random_password(PasswordLength=20, ExcludeLowercase=True, ExcludeUppercase=True,
                                         ExcludePunctuation=True)["RandomPassword"]
    assert digits_only.isdigit()
    letters = sm.get_random_password(PasswordLength=50, ExcludeNumbers=True, ExcludePunctuation=True,
                                     RequireEachIncludedType=False)["RandomPassword"]
    assert letters.isalpha()


def test_longest_and_shortest(sm):
    assert len(sm.get_random_password(PasswordLength=4096)["RandomPassword"]) == 4096
    assert len(sm.get_random_password(PasswordLength=1, RequireEachIncludedType=False)["RandomPassword"]) == 1


def test_refusals(sm):
    with pytest.raises(ClientError) as exc:
        sm.get_random_password(ExcludeLowercase=True, ExcludeUppercase=True, ExcludeNumbers=True,
                               ExcludePunctuation=True)
    assert code(exc) == "InvalidParameterException"
    with pytest.raises(ClientError) as exc:
        sm.get_random_password(PasswordLength=3)  # four required types can't fit
    assert code(exc) == "InvalidParameterException"


@pytest.mark.parametrize("payload", [{"PasswordLength": 0}, {"PasswordLength": 4097},
                                     {"ExcludeCharacters": "x" * 4097}])
def test_model_limits(server, payload):
    reply = call(server, "secretsmanager.GetRandomPassword", payload)
    assert (reply.status, reply.error) == (400, "ValidationException")
