"""LastAccessedDate: set by reads of the value, at day granularity (midnight UTC)."""

from __future__ import annotations

import datetime as dt


def today() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def test_reading_the_value_sets_the_day_it_was_read(sm, name):
    v1 = sm.create_secret(Name=name, SecretString="a")["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="b")["VersionId"]
    sm.describe_secret(SecretId=name)
    sm.list_secrets(Filters=[{"Key": "name", "Values": [name]}])
    assert "LastAccessedDate" not in sm.describe_secret(SecretId=name)  # metadata reads don't count
    before = today()
    sm.get_secret_value(SecretId=name)
    after = today()
    accessed = sm.describe_secret(SecretId=name)["LastAccessedDate"].astimezone(dt.timezone.utc)
    assert accessed in {before, after}
    assert (accessed.hour, accessed.minute, accessed.second, accessed.microsecond) == (0, 0, 0, 0)
    versions = {v["VersionId"]: v for v in sm.list_secret_version_ids(SecretId=name)["Versions"]}
    assert versions[v2]["LastAccessedDate"] == accessed
    assert "LastAccessedDate" not in versions[v1]  # AWSPREVIOUS was not read
    sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")
    versions = {v["VersionId"]: v for v in sm.list_secret_version_ids(SecretId=name)["Versions"]}
    assert versions[v1]["LastAccessedDate"] in {before, after, today()}


def test_batch_reads_count_as_access(sm, name):
    sm.create_secret(Name=name, SecretString="a")
    sm.batch_get_secret_value(SecretIdList=[name])
    accessed = sm.describe_secret(SecretId=name)["LastAccessedDate"].astimezone(dt.timezone.utc)
    assert accessed in {today(), today() - dt.timedelta(days=1)}
    listed = sm.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"][0]
    assert listed["LastAccessedDate"] == sm.describe_secret(SecretId=name)["LastAccessedDate"]


def test_failed_reads_do_not_count(sm, name):
    sm.create_secret(Name=name, SecretString="a")
    try:
        sm.get_secret_value(SecretId=name, VersionStage="NO-SUCH-LABEL")
    except sm.exceptions.ResourceNotFoundException:
        pass
    else:
        raise AssertionError("a missing label must be ResourceNotFoundException")
    assert "LastAccessedDate" not in sm.describe_secret(SecretId=name)
