"""Names, descriptions and tags: limits and rules; UpdateSecret, DescribeSecret, Delete/Restore edges."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

from tests.e2e.support import call, code, no_retry, snapshot

CREATE = "secretsmanager.CreateSecret"


def test_longest_name_and_every_allowed_character(sm):
    long_name = "n/" + uuid.uuid4().hex + "x" * (512 - 34)
    assert len(long_name) == 512
    assert sm.create_secret(Name=long_name, SecretString="v")["Name"] == long_name
    odd = f"a/b_c+d=e.f@g-h/{uuid.uuid4().hex[:8]}"
    assert sm.describe_secret(SecretId=sm.create_secret(Name=odd, SecretString="v")["ARN"])["Name"] == odd


def test_name_too_long_is_a_validation_error(server):
    reply = call(server, CREATE, {"Name": "n" * 513, "SecretString": "v"})
    assert (reply.status, reply.error) == (400, "ValidationException")


@pytest.mark.parametrize("bad", ["has space", "bang!", "hash#", "star*", "colon:x", "é-accent", "tab\tname"])
def test_names_with_other_characters_are_refused(sm, bad):
    with pytest.raises(ClientError) as exc:
        sm.create_secret(Name=f"{bad}-{uuid.uuid4().hex[:6]}", SecretString="v")
    assert code(exc) == "InvalidParameterException"


def test_description_limit(server, sm, name):
    sm.create_secret(Name=name, SecretString="v", Description="d" * 2048)
    assert len(sm.describe_secret(SecretId=name)["Description"]) == 2048
    reply = call(server, CREATE, {"Name": name + "-2", "Description": "d" * 2049})
    assert (reply.status, reply.error) == (400, "ValidationException")
    reply = call(server, "secretsmanager.UpdateSecret", {"SecretId": name, "Description": "d" * 2049})
    assert (reply.status, reply.error) == (400, "ValidationException")
    assert len(sm.describe_secret(SecretId=name)["Description"]) == 2048


def tags(n: int, prefix: str = "k") -> list[dict[str, str]]:
    return [{"Key": f"{prefix}{i}", "Value": f"v{i}"} for i in range(n)]


def test_fifty_tags_and_no_more(server, name):
    sm = no_retry(server)
    sm.create_secret(Name=name, SecretString="v", Tags=tags(50))
    assert len(sm.describe_secret(SecretId=name)["Tags"]) == 50
    before = snapshot(sm, name)
    with pytest.raises(ClientError) as exc:
        sm.tag_resource(SecretId=name, Tags=[{"Key": "one-more", "Value": "x"}])
    assert code(exc) == "LimitExceededException"
    assert snapshot(sm, name) == before
    sm.tag_resource(SecretId=name, Tags=[{"Key": "k0", "Value": "replaced"}])  # replacing is not adding
    assert {"Key": "k0", "Value": "replaced"} in sm.describe_secret(SecretId=name)["Tags"]
    with pytest.raises(ClientError) as exc:
        sm.create_secret(Name=name + "-51", SecretString="v", Tags=tags(51))
    assert code(exc) == "LimitExceededException"
    with pytest.raises(ClientError):
        sm.describe_secret(SecretId=name + "-51")


def test_tag_key_and_value_lengths(server, sm, name):
    sm.create_secret(Name=name, SecretString="v",
                     Tags=[{"Key": "k" * 128, "Value": "v" * 256}, {"Key": "e", "Value": ""}])
    assert {"Key": "e", "Value": ""} in sm.describe_secret(SecretId=name)["Tags"]
    for bad in ({"Key": "k" * 129, "Value": "v"}, {"Key": "k", "Value": "v" * 257}, {"Key": "", "Value": "v"}):
        reply = call(server, "secretsmanager.TagResource", {"SecretId": name, "Tags": [bad]})
        assert (reply.status, reply.error) == (400, "ValidationException")
    assert len(sm.describe_secret(SecretId=name)["Tags"]) == 2


@pytest.mark.parametrize(
    "bad",
    [
        [{"Key": "aws:reserved", "Value": "x"}],
        [{"Key": "AWS:Reserved", "Value": "x"}],
        [{"Key": "star*", "Value": "x"}],
        [{"Key": "ok", "Value": "angle<bracket>"}],
        [{"Key": "dup", "Value": "1"}, {"Key": "dup", "Value": "2"}],
    ],
)
def test_tag_rules(sm, name, bad):
    sm.create_secret(Name=name, SecretString="v", Tags=[{"Key": "keep", "Value": "1"}])
    before = snapshot(sm, name)
    with pytest.raises(ClientError) as exc:
        sm.tag_resource(SecretId=name, Tags=bad)
    assert code(exc) == "InvalidParameterException"
    assert snapshot(sm, name) == before
    with pytest.raises(ClientError) as exc:
        sm.create_secret(Name=name + "-t", SecretString="v", Tags=bad)
    assert code(exc) == "InvalidParameterException"


def test_tags_allow_unicode_letters_spaces_and_the_documented_symbols(sm, name):
    tag = {"Key": "Équipe name_1.2:3/4=5+6-7@8", "Value": "café au lait"}
    sm.create_secret(Name=name, SecretString="v", Tags=[tag])
    assert sm.describe_secret(SecretId=name)["Tags"] == [tag]


def test_untag_missing_keys_is_harmless_and_tags_need_a_live_secret(sm, name):
    sm.create_secret(Name=name, SecretString="v", Tags=[{"Key": "a", "Value": "1"}])
    sm.untag_resource(SecretId=name, TagKeys=["not-there"])
    assert sm.describe_secret(SecretId=name)["Tags"] == [{"Key": "a", "Value": "1"}]
    for op, kw in ((sm.tag_resource, {"Tags": [{"Key": "b", "Value": "2"}]}), (sm.untag_resource, {"TagKeys": ["a"]})):
        with pytest.raises(ClientError) as exc:
            op(SecretId=name + "/missing", **kw)
        assert code(exc) == "ResourceNotFoundException"
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    for op, kw in ((sm.tag_resource, {"Tags": [{"Key": "b", "Value": "2"}]}), (sm.untag_resource, {"TagKeys": ["a"]})):
        with pytest.raises(ClientError) as exc:
            op(SecretId=name, **kw)
        assert code(exc) == "InvalidRequestException"


def test_update_metadata_only_creates_no_version(sm, name):
    v1 = sm.create_secret(Name=name, SecretString="v", Description="first")["VersionId"]
    changed = sm.describe_secret(SecretId=name)["LastChangedDate"]
    out = sm.update_secret(SecretId=name, Description="second")
    assert "VersionId" not in out and out["Name"] == name
    described = sm.describe_secret(SecretId=name)
    assert described["Description"] == "second" and described["LastChangedDate"] >= changed
    assert described["VersionIdsToStages"] == {v1: ["AWSCURRENT"]}
    sm.update_secret(SecretId=name, Description="")
    assert sm.describe_secret(SecretId=name).get("Description", "") == ""


def test_update_with_a_value_and_token_is_idempotent(sm, name):
    v1 = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    token = str(uuid.uuid4())
    a = sm.update_secret(SecretId=name, SecretString="two", ClientRequestToken=token)
    b = sm.update_secret(SecretId=name, SecretString="two", ClientRequestToken=token)
    assert a["VersionId"] == b["VersionId"] == token
    assert sm.describe_secret(SecretId=name)["VersionIdsToStages"] == {token: ["AWSCURRENT"], v1: ["AWSPREVIOUS"]}
    with pytest.raises(ClientError) as exc:
        sm.update_secret(SecretId=name, SecretString="three", ClientRequestToken=token)
    assert code(exc) == "ResourceExistsException"
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "two"


def test_update_refusals(sm, name):
    sm.create_secret(Name=name, SecretString="v", Description="kept")
    before = snapshot(sm, name)
    with pytest.raises(ClientError) as exc:
        sm.update_secret(SecretId=name, SecretString="a", SecretBinary=b"b", Description="changed")
    assert code(exc) == "InvalidParameterException"
    assert snapshot(sm, name) == before
    with pytest.raises(ClientError) as exc:
        sm.update_secret(SecretId=name + "/missing", Description="x")
    assert code(exc) == "ResourceNotFoundException"
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    before = snapshot(sm, name)
    with pytest.raises(ClientError) as exc:
        sm.update_secret(SecretId=name, Description="x")
    assert code(exc) == "InvalidRequestException"
    assert snapshot(sm, name) == before and before["described"]["Description"] == "kept"


def test_create_retry_with_the_same_token_returns_the_same_version(sm, name):
    token = str(uuid.uuid4())
    a = sm.create_secret(Name=name, SecretString="v", ClientRequestToken=token)
    b = sm.create_secret(Name=name, SecretString="v", ClientRequestToken=token)
    assert a["VersionId"] == b["VersionId"] == token and a["ARN"] == b["ARN"]
    before = snapshot(sm, name)
    with pytest.raises(ClientError) as exc:
        sm.create_secret(Name=name, SecretString="different", ClientRequestToken=token)
    assert code(exc) == "ResourceExistsException"
    assert snapshot(sm, name) == before


def test_describe_by_name_arn_and_partial_arn(sm, name):
    arn = sm.create_secret(Name=name, SecretString="v", Description="d")["ARN"]
    for secret_id in (name, arn, arn[:-7]):
        described = sm.describe_secret(SecretId=secret_id)
        assert (described["ARN"], described["Name"], described["Description"]) == (arn, name, "d")
    assert "RotationEnabled" not in described and "DeletedDate" not in described
    with pytest.raises(ClientError) as exc:
        sm.describe_secret(SecretId=arn[:-7] + "-XXXXXX")
    assert code(exc) == "ResourceNotFoundException"


def test_get_value_version_selection_errors(sm, name):
    v1 = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    sm.put_secret_value(SecretId=name, SecretString="two")
    assert sm.get_secret_value(SecretId=name, VersionId=v1, VersionStage="AWSPREVIOUS")["SecretString"] == "one"
    for kw in ({"VersionId": v1, "VersionStage": "AWSCURRENT"}, {"VersionId": "0" * 32},
               {"VersionStage": "NOPE"}):
        with pytest.raises(ClientError) as exc:
            sm.get_secret_value(SecretId=name, **kw)
        assert code(exc) == "ResourceNotFoundException"


def test_put_value_refusals(sm, name):
    sm.create_secret(Name=name, SecretString="v")
    before = snapshot(sm, name)
    with pytest.raises(ClientError) as exc:
        sm.put_secret_value(SecretId=name)
    assert code(exc) == "InvalidRequestException"
    with pytest.raises(ClientError) as exc:
        sm.put_secret_value(SecretId=name, SecretString="a", SecretBinary=b"b")
    assert code(exc) == "InvalidParameterException"
    assert snapshot(sm, name) == before
    with pytest.raises(ClientError) as exc:
        sm.put_secret_value(SecretId=name + "/missing", SecretString="v")
    assert code(exc) == "ResourceNotFoundException"
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    with pytest.raises(ClientError) as exc:
        sm.put_secret_value(SecretId=name, SecretString="v")
    assert code(exc) == "InvalidRequestException"


def test_delete_edges(sm, name):
    sm.create_secret(Name=name, SecretString="v")
    before = snapshot(sm, name)
    with pytest.raises(ClientError) as exc:
        sm.delete_secret(SecretId=name, RecoveryWindowInDays=7, ForceDeleteWithoutRecovery=True)
    assert code(exc) == "InvalidParameterException"
    assert snapshot(sm, name) == before
    out = sm.delete_secret(SecretId=name)  # default window: 30 days
    assert (out["DeletionDate"] - sm.describe_secret(SecretId=name)["DeletedDate"]).days == 30
    before = snapshot(sm, name)
    with pytest.raises(ClientError) as exc:
        sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    assert code(exc) == "InvalidRequestException"
    assert snapshot(sm, name) == before  # the 30-day deletion date stands
    # A secret scheduled for deletion can still be deleted at once.
    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    with pytest.raises(ClientError) as exc:
        sm.describe_secret(SecretId=name)
    assert code(exc) == "ResourceNotFoundException"


def test_restore_a_live_secret_changes_nothing(sm, name):
    sm.create_secret(Name=name, SecretString="v")
    before = snapshot(sm, name)
    assert sm.restore_secret(SecretId=name)["Name"] == name
    assert snapshot(sm, name) == before
