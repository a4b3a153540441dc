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


def test_explain_reads_the_principals_tags_and_ids_from_iam(server: Server, sm, name):
    iam = server.client("iam")
    arn = sm.create_secret(Name=name, SecretString="v", Tags=[{"Key": "team", "Value": "blue"}])["ARN"]
    same_team = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*",
        "Condition": {"StringEquals": {"secretsmanager:ResourceTag/team": "${aws:PrincipalTag/team}"}}}]})
    role = f"blue-{uuid.uuid4().hex[:8]}"
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust,
                               Tags=[{"Key": "team", "Value": "blue"}])["Role"]["Arn"]
    iam.put_role_policy(RoleName=role, PolicyName="same-team", PolicyDocument=same_team)
    user = f"blue-{uuid.uuid4().hex[:8]}"
    user_arn = iam.create_user(UserName=user, Tags=[{"Key": "team", "Value": "blue"}])["User"]["Arn"]
    iam.put_user_policy(UserName=user, PolicyName="same-team", PolicyDocument=same_team)
    for principal in (role_arn, user_arn):
        out = strongroom("iam", "explain", "--principal", principal, "--action", "secretsmanager:GetSecretValue",
                         "--resource", arn, env=server.env, check=False)
        assert out.returncode == 0 and "Decision: Allow" in out.stdout, (principal, out.stdout, out.stderr)
    nobody = user_arn.rsplit("/", 1)[0] + "/nobody-" + uuid.uuid4().hex[:6]
    out = strongroom("iam", "explain", "--principal", nobody, "--action", "secretsmanager:GetSecretValue",
                     "--resource", arn, env=server.env, check=False)
    assert out.returncode == 1 and "no such user" in out.stderr
