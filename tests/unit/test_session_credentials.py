"""Role sessions without HTTP: AssumeRole's credentials, the resolver, trust, identity policies."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from strongroom.auth import policy
from strongroom.auth.credentials import CredentialResolver, create_access_key, create_user
from strongroom.auth.authorize import ROOT_POLICIES
from strongroom.context import Principal, RequestContext
from strongroom.crypto.rootkey import FileRootKey
from strongroom.errors import AccessDenied, AwsError, ExpiredTokenException, UnrecognizedClientException
from strongroom.services.iam import IAM, Deps
from strongroom.services.iam.principals import identity_policies, load_policies, session_policies
from strongroom.services.sts import STS
from strongroom.storage import Store, open_store
from strongroom.storage import tables as t
from strongroom.storage.migrate import upgrade

ACCOUNT = "123456789012"
ALLOW_ALL_SECRETS = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}]})


@dataclass
class Env:
    store: Store
    deps: Deps
    iam: IAM
    sts: STS
    resolver: CredentialResolver
    admin: RequestContext

    def ctx_for(self, key_id: str, token: str | None = None) -> RequestContext:
        principal = self.resolver.resolve(key_id, token).principal
        return RequestContext(principal=principal, region="us-east-1", request_id="test")


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    store = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(store)
    root = FileRootKey.create(tmp_path / "root.key")
    now = time.time()
    with store.write() as tx:
        tx.insert_account(ACCOUNT, "main", now)
        create_user(tx, ACCOUNT, "admin", now, is_admin=True)
        key_id, _ = create_access_key(tx, root, ACCOUNT, "admin", now)
    deps = Deps(store=store, root=root)
    resolver = CredentialResolver(store, root, ttl=0)
    env = Env(store, deps, IAM(deps), STS(deps), resolver, RequestContext(
        principal=resolver.resolve(key_id).principal, region="us-east-1", request_id="test",
        identity_policies=ROOT_POLICIES))
    yield env
    store.close()


def trust(*principals: str, **statement: Any) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": list(principals)}, "Action": ["sts:AssumeRole", "sts:TagSession"],
         **statement}]})


def make_role(env: Env, name: str = "app", document: str | None = None, **extra: Any) -> str:
    role = env.iam.call("CreateRole", env.admin, {"RoleName": name, "Path": "/",
                                                   "AssumeRolePolicyDocument": document or trust(ACCOUNT), **extra})
    return str(role["Role"]["Arn"])


def assume(env: Env, arn: str, ctx: RequestContext | None = None, **extra: Any) -> dict[str, Any]:
    return env.sts.call("AssumeRole", ctx or env.admin, {"RoleArn": arn, "RoleSessionName": "sess", **extra})


def test_session_resolves_to_an_assumed_role_principal(env: Env) -> None:
    arn = make_role(env, Tags=[{"Key": "team", "Value": "role"}, {"Key": "tier", "Value": "gold"}])
    out = assume(env, arn, Tags=[{"Key": "Team", "Value": "session"}], Policy=ALLOW_ALL_SECRETS)
    creds = out["Credentials"]
    cred = env.resolver.resolve(creds["AccessKeyId"], creds["SessionToken"])
    p = cred.principal
    assert cred.secret == creds["SecretAccessKey"]
    assert p.type == "AssumedRole" and p.arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/app/sess"
    assert p.principal_id == out["AssumedRoleUser"]["AssumedRoleId"] and p.principal_id.endswith(":sess")
    assert p.tags == {"tier": "gold", "Team": "session"}  # session tags override role tags, any case
    assert p.role_arn == arn and p.role_name == "app" and p.session_policy == ALLOW_ALL_SECRETS
    assert not p.is_admin


@pytest.mark.parametrize("token", [None, "", "not-the-token"])
def test_session_key_needs_its_own_token(env: Env, token: str | None) -> None:
    creds = assume(env, make_role(env))["Credentials"]
    with pytest.raises(UnrecognizedClientException):
        env.resolver.resolve(creds["AccessKeyId"], token)


def test_long_term_key_with_a_token_is_rejected(env: Env) -> None:
    with pytest.raises(UnrecognizedClientException):
        env.resolver.resolve(env.admin.principal.access_key_id, "some-token")


def test_expired_session_is_expired_token(env: Env) -> None:
    arn = make_role(env)
    env.deps.clock = lambda: time.time() - 7200
    creds = assume(env, arn)["Credentials"]
    with pytest.raises(ExpiredTokenException) as exc:
        env.resolver.resolve(creds["AccessKeyId"], creds["SessionToken"])
    assert exc.value.message == "The security token included in the request is expired"


def test_store_keeps_only_the_token_digest_and_wrapped_secret(env: Env) -> None:
    creds = assume(env, make_role(env))["Credentials"]
    with env.store.read() as tx:
        row = tx.conn.execute(select(t.session_credentials)).one()._mapping
    assert row["token_hash"] == hashlib.sha256(creds["SessionToken"].encode()).hexdigest()
    for value in row.values():
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        assert creds["SessionToken"] not in text and creds["SecretAccessKey"] not in text


def test_deleted_or_recreated_role_ends_its_sessions(env: Env) -> None:
    arn = make_role(env)
    creds = assume(env, arn)["Credentials"]
    env.iam.call("DeleteRole", env.admin, {"RoleName": "app"})
    make_role(env)
    with pytest.raises(UnrecognizedClientException):
        env.resolver.resolve(creds["AccessKeyId"], creds["SessionToken"])


def test_duration_limits(env: Env) -> None:
    arn = make_role(env, MaxSessionDuration=3600)
    with pytest.raises(AwsError) as exc:
        assume(env, arn, DurationSeconds=3601)
    assert exc.value.code == "ValidationError"
    out = assume(env, arn, DurationSeconds=900)
    assert 890 < out["Credentials"]["Expiration"].timestamp() - time.time() <= 900


def test_session_policy_must_be_an_identity_policy(env: Env) -> None:
    with pytest.raises(AwsError) as exc:
        assume(env, make_role(env), Policy=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}]}))
    assert exc.value.code == "MalformedPolicyDocument"


# -- trust -----------------------------------------------------------------------------------
def user_ctx(env: Env, name: str, policies: tuple[policy.Policy, ...] = ()) -> RequestContext:
    env.iam.call("CreateUser", env.admin, {"UserName": name})
    key = env.iam.call("CreateAccessKey", env.admin, {"UserName": name})["AccessKey"]
    return replace(env.ctx_for(key["AccessKeyId"]), identity_policies=policies)


def test_trust_naming_the_account_delegates_to_identity_policies(env: Env) -> None:
    arn = make_role(env, document=trust(f"arn:aws:iam::{ACCOUNT}:root"))
    plain = user_ctx(env, "plain")
    with pytest.raises(AccessDenied):
        assume(env, arn, plain)
    allowed = policy.Policy("assume", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": arn}]})
    assert assume(env, arn, replace(plain, identity_policies=(allowed,)))["Credentials"]
    assert assume(env, arn)["Credentials"]  # administrators need no identity policy


def test_trust_naming_the_user_suffices(env: Env) -> None:
    arn = make_role(env, document=trust(f"arn:aws:iam::{ACCOUNT}:user/named"))
    assert assume(env, arn, user_ctx(env, "named"))["Credentials"]
    with pytest.raises(AccessDenied):  # an administrator the trust policy does not name
        assume(env, arn)


def test_trust_conditions_are_evaluated(env: Env) -> None:
    arn = make_role(env, document=trust(ACCOUNT, Condition={"StringEquals": {"sts:ExternalId": "ext-123"}}))
    with pytest.raises(AccessDenied):
        assume(env, arn)
    with pytest.raises(AccessDenied):
        assume(env, arn, ExternalId="wrong")
    assert assume(env, arn, ExternalId="ext-123")["Credentials"]


def test_session_tags_need_tag_session_in_the_trust_policy(env: Env) -> None:
    only_assume = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}]})
    arn = make_role(env, document=only_assume)
    assert assume(env, arn)["Credentials"]
    with pytest.raises(AccessDenied) as exc:
        assume(env, arn, Tags=[{"Key": "k", "Value": "v"}])
    assert "sts:TagSession" in exc.value.message


# -- identity policies for the engine ----------------------------------------------------------
def test_identity_policies_of_users_and_role_sessions(env: Env) -> None:
    iam, admin = env.iam, env.admin
    managed = iam.call("CreatePolicy", admin, {"PolicyName": "managed", "PolicyDocument": ALLOW_ALL_SECRETS})
    managed_arn = managed["Policy"]["Arn"]
    ctx = user_ctx(env, "dev")
    iam.call("PutUserPolicy", admin, {"UserName": "dev", "PolicyName": "inline", "PolicyDocument": ALLOW_ALL_SECRETS})
    iam.call("AttachUserPolicy", admin, {"UserName": "dev", "PolicyArn": managed_arn})
    with env.store.read() as tx:
        found = identity_policies(tx, ctx.principal)
        assert session_policies(tx, ctx.principal) is None
    assert [(p.name, p.kind) for p in found] == [("inline", "inline"), (managed_arn, "managed")]
    assert all(p.document == ALLOW_ALL_SECRETS and p.attached_to.endswith(":user/dev") for p in found)

    arn = make_role(env)
    iam.call("AttachRolePolicy", admin, {"RoleName": "app", "PolicyArn": managed_arn})
    creds = assume(env, arn, Policy=ALLOW_ALL_SECRETS, PolicyArns=[{"arn": managed_arn}])["Credentials"]
    session = env.ctx_for(creds["AccessKeyId"], creds["SessionToken"]).principal
    ids, narrowing = load_policies(env.store, session)
    assert [(p.name, p.attached_to) for p in ids] == [(managed_arn, arn)]
    assert narrowing is not None and [p.name for p in narrowing] == ["session-policy", managed_arn]


def test_principals_without_iam_identity_have_no_policies(env: Env) -> None:
    root = Principal(account_id=ACCOUNT, arn=f"arn:aws:iam::{ACCOUNT}:root", principal_id=ACCOUNT,
                     access_key_id="", type="Root")
    assert load_policies(env.store, root) == ([], None)


def test_policy_cache_serves_engine_policies(env: Env) -> None:
    from strongroom.services.iam.principals import PolicyCache

    ctx = user_ctx(env, "cached")
    env.iam.call("PutUserPolicy", env.admin, {"UserName": "cached", "PolicyName": "p",
                                              "PolicyDocument": ALLOW_ALL_SECRETS})
    cache = PolicyCache(env.store, ttl=60)
    identity, session = cache.get(ctx.principal)
    assert session is None and [p.name for p in identity] == ["p"]
    assert identity[0].document == json.loads(ALLOW_ALL_SECRETS)
    request = policy.Request(principal_arn=ctx.principal.arn, principal_account=ACCOUNT,
                             action="secretsmanager:GetSecretValue", resource="*")
    assert policy.evaluate(request, identity).allowed
    env.iam.call("DeleteUserPolicy", env.admin, {"UserName": "cached", "PolicyName": "p"})
    assert cache.get(ctx.principal)[0] == identity  # cached until the ttl passes
    assert PolicyCache(env.store).get(ctx.principal)[0] == ()
