"""`strongroom iam apply`: principals as code, idempotent, with a dry run."""

from __future__ import annotations

import uuid

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError

from tests.conftest import Server, strongroom


def document(user: str, role: str, policy: str, account: str, action: str) -> dict:
    read = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]}
    return {"accounts": [{
        "id": account,
        "policies": [{"name": policy, "document": read}],
        "users": [{"name": user, "tags": {"team": "ops"}, "attached": [policy],
                   "policies": {"describe": {"Version": "2012-10-17", "Statement": [
                       {"Effect": "Allow", "Action": "secretsmanager:DescribeSecret", "Resource": "*"}]}}}],
        "roles": [{"name": role, "max_session_duration": 7200, "attached": [policy], "trust": {
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                    "Principal": {"AWS": f"arn:aws:iam::{account}:root"}}]}}],
    }]}


def test_apply_is_idempotent_and_dry_run_changes_nothing(server: Server, sm, name, tmp_path):
    iam = server.client("iam")
    account = server.client("sts").get_caller_identity()["Account"]
    suffix = uuid.uuid4().hex[:8]
    user, role, policy = f"coded-{suffix}", f"coded-role-{suffix}", f"coded-read-{suffix}"
    path = tmp_path / "principals.yaml"
    path.write_text(yaml.safe_dump(document(user, role, policy, account, "secretsmanager:GetSecretValue")))

    dry = strongroom("iam", "apply", str(path), "--dry-run", env=server.env)
    assert f"would create user {user}" in dry.stdout and f"would create role {role}" in dry.stdout
    with pytest.raises(ClientError):
        iam.get_user(UserName=user)

    applied = strongroom("iam", "apply", str(path), env=server.env)
    assert "change(s) applied" in applied.stdout
    assert iam.get_role(RoleName=role)["Role"]["MaxSessionDuration"] == 7200
    assert {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName=user)["Tags"]} == {"team": "ops"}

    key = iam.create_access_key(UserName=user)["AccessKey"]
    coded = boto3.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                          region_name="us-east-1").client("secretsmanager", endpoint_url=server.url)
    sm.create_secret(Name=name, SecretString="granted-by-code")
    assert coded.get_secret_value(SecretId=name)["SecretString"] == "granted-by-code"

    again = strongroom("iam", "apply", str(path), env=server.env)
    assert again.stdout.strip() == "nothing to change"

    # Changing the managed policy's document makes exactly one update.
    path.write_text(yaml.safe_dump(document(user, role, policy, account, "secretsmanager:ListSecrets")))
    changed = strongroom("iam", "apply", str(path), env=server.env)
    assert "1 change(s) applied" in changed.stdout and f"update policy" in changed.stdout


def test_apply_refuses_a_malformed_file(server: Server, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("accounts:\n  - users:\n      - tags: {}\n")
    result = strongroom("iam", "apply", str(path), env=server.env, check=False)
    assert result.returncode != 0
    assert "needs an `id` or a `name`" in result.stderr


def test_dry_run_shows_what_a_new_account_would_hold(server: Server, tmp_path):
    name = f"planned-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "new-account.yaml"
    path.write_text(yaml.safe_dump({"accounts": [{"name": name, "users": [{"name": "carol"}],
                                                  "roles": [{"name": "deployer", "trust": {
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "lambda.amazonaws.com"}}]}}]}]}))
    dry = strongroom("iam", "apply", str(path), "--dry-run", env=server.env)
    assert f"~ would create account {name}" in dry.stdout
    assert "~ would create user carol" in dry.stdout and "~ would create role deployer" in dry.stdout
    assert "3 change(s) planned" in dry.stdout and "nothing to change" not in dry.stdout
    assert name not in strongroom("account", "list", env=server.env).stdout  # nothing was made
