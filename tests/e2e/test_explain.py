"""`strongroom iam explain` answers "why was I denied?" from the stored policies."""

from __future__ import annotations

import json
import uuid

from tests.conftest import Server, strongroom


def test_explain_names_the_deciding_statement(server: Server, sm, name):
    iam = server.client("iam")
    user = f"explained-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    arn = sm.create_secret(Name=name, SecretString="v")["ARN"]
    iam.put_user_policy(UserName=user, PolicyName="read-but-not-this", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadAll", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"},
            {"Sid": "NotThisOne", "Effect": "Deny", "Action": "secretsmanager:*", "Resource": arn},
        ],
    }))
    user_arn = iam.get_user(UserName=user)["User"]["Arn"]
    denied = strongroom("iam", "explain", "--principal", user_arn, "--action", "secretsmanager:GetSecretValue",
                        "--resource", arn, env=server.env, check=False)
    assert denied.returncode == 1
    assert "ExplicitDeny" in denied.stdout
    assert 'Sid "NotThisOne"' in denied.stdout and "read-but-not-this" in denied.stdout
    assert "with an explicit deny in an identity-based policy" in denied.stdout

    other = arn.replace(name, name + "-other")
    allowed = strongroom("iam", "explain", "--principal", user_arn, "--action", "secretsmanager:GetSecretValue",
                         "--resource", other, env=server.env, check=False)
    assert allowed.returncode == 0
    assert "Decision: Allow" in allowed.stdout and 'Sid "ReadAll"' in allowed.stdout


def test_explain_uses_context_keys(server: Server):
    iam = server.client("iam")
    user = f"ipbound-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="office", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "secretsmanager:ListSecrets", "Resource": "*",
                       "Condition": {"IpAddress": {"aws:SourceIp": "10.1.0.0/16"}}}],
    }))
    user_arn = iam.get_user(UserName=user)["User"]["Arn"]
    args = ("iam", "explain", "--principal", user_arn, "--action", "secretsmanager:ListSecrets", "--resource", "*")
    assert strongroom(*args, "--context", "aws:SourceIp=10.1.2.3", env=server.env, check=False).returncode == 0
    assert strongroom(*args, "--context", "aws:SourceIp=192.0.2.1", env=server.env, check=False).returncode == 1
