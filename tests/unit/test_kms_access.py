"""Key policies as AWS KMS evaluates them: the key policy must allow, directly or by delegating
to the account (then IAM must allow too); across accounts both sides must allow."""

from __future__ import annotations

import json
from typing import Any

import pytest

from strongroom.auth import policy
from strongroom.context import Principal, RequestContext
from strongroom.errors import AccessDeniedException
from strongroom.services.kms.access import authorize_key
from strongroom.services.kms.core import Caller
from strongroom.storage.kms_store import KmsKeyRecord

OWNER, OTHER = "111111111111", "222222222222"
KEY_ARN = f"arn:aws:kms:us-east-1:{OWNER}:key/0b6a5a9c-9f51-4a8e-8f0f-3c3f8f2c4a11"
ALICE = f"arn:aws:iam::{OWNER}:user/alice"
BOB = f"arn:aws:iam::{OTHER}:user/bob"


def key(*statements: dict[str, Any], tags: list[dict[str, str]] | None = None) -> KmsKeyRecord:
    return KmsKeyRecord(key_id=KEY_ARN.rsplit("/", 1)[1], account_id=OWNER, region="us-east-1", arn=KEY_ARN,
                        key_usage="ENCRYPT_DECRYPT", key_spec="SYMMETRIC_DEFAULT", origin="AWS_KMS",
                        key_manager="CUSTOMER", key_state="Enabled", creation_date=0.0, current_material=1,
                        policy=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}),
                        tags=tags or [])


def allow(principal: Any, action: Any = "kms:*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": action, "Resource": "*", **extra}


def identity(*statements: dict[str, Any]) -> tuple[policy.Policy, ...]:
    return (policy.Policy("p", {"Version": "2012-10-17", "Statement": list(statements)}),) if statements else ()


KMS_ALL = {"Effect": "Allow", "Action": "kms:*", "Resource": "*"}


def caller(arn: str = ALICE, policies: tuple[policy.Policy, ...] = (), *, via: str | None = None,
           session: tuple[policy.Policy, ...] | None = None) -> Caller:
    account = arn.split(":")[4]
    ctx = RequestContext(principal=Principal(account, arn, "AIDAEXAMPLE", "AKIAEXAMPLE", name=arn.rsplit("/")[-1]),
                         region="us-east-1", request_id="r", identity_policies=policies, session_policies=session)
    return Caller(OWNER if via else account, "us-east-1", arn, via_service=via, ctx=ctx)


def allowed(c: Caller, k: KmsKeyRecord, action: str = "Decrypt", **kw: Any) -> bool:
    try:
        authorize_key(c, k, action, **kw)
    except AccessDeniedException:
        return False
    return True


ROOT = f"arn:aws:iam::{OWNER}:root"


@pytest.mark.parametrize("key_policy,policies,expected", [
    # Delegation to the account: IAM decides.
    ([allow(ROOT)], (), False),
    ([allow(ROOT)], identity(KMS_ALL), True),
    ([allow(OWNER)], identity(KMS_ALL), True),
    # The key policy names the user: no IAM policy needed.
    ([allow(ALICE, "kms:Decrypt")], (), True),
    ([allow("*", "kms:Decrypt")], (), True),
    # IAM alone is never enough: the key policy must allow, even an administrator.
    ([allow(f"arn:aws:iam::{OWNER}:user/carol")], identity(KMS_ALL), False),
    ([allow(ROOT, "kms:Encrypt")], identity(KMS_ALL), False),
    # An explicit deny anywhere wins.
    ([allow(ROOT), {"Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}],
     identity(KMS_ALL), False),
    ([allow(ALICE)], identity({"Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*"}), False),
])
def test_same_account(key_policy, policies, expected):
    assert allowed(caller(ALICE, policies), key(*key_policy)) is expected


def test_denial_messages_say_which_side_is_missing():
    with pytest.raises(AccessDeniedException, match="no resource-based policy allows the kms:Decrypt action"):
        authorize_key(caller(ALICE, identity(KMS_ALL)), key(allow(f"arn:aws:iam::{OWNER}:user/x")), "Decrypt")
    with pytest.raises(AccessDeniedException, match="no identity-based policy allows the kms:Decrypt action"):
        authorize_key(caller(ALICE), key(allow(ROOT)), "Decrypt")
    with pytest.raises(AccessDeniedException, match=f"kms:Decrypt on resource: {KEY_ARN} with an explicit deny"):
        authorize_key(caller(ALICE, identity(KMS_ALL, {"Effect": "Deny", "Action": "kms:*", "Resource": "*"})),
                      key(allow(ROOT)), "Decrypt")


@pytest.mark.parametrize("key_policy,policies,expected", [
    ([allow(ROOT)], identity(KMS_ALL), False),  # the key policy does not name the other account
    ([allow(ROOT), allow(f"arn:aws:iam::{OTHER}:root", "kms:Decrypt")], (), False),  # its IAM must allow too
    ([allow(ROOT), allow(f"arn:aws:iam::{OTHER}:root", "kms:Decrypt")], identity(KMS_ALL), True),
    ([allow(ROOT), allow(BOB, "kms:Decrypt")], (), False),  # named directly, still needs its own IAM
    ([allow(ROOT), allow(BOB, "kms:Decrypt")], identity(KMS_ALL), True),
])
def test_cross_account_needs_both_sides(key_policy, policies, expected):
    assert allowed(caller(BOB, policies), key(*key_policy)) is expected


def test_condition_keys_kms_sets():
    via_sm = allow("*", "kms:Decrypt", Condition={
        "StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com", "kms:CallerAccount": OWNER,
                         "kms:EncryptionContext:SecretARN": "arn:aws:secretsmanager:us-east-1:1:secret:a-xyz"}})
    k = key(via_sm)
    context = {"SecretARN": "arn:aws:secretsmanager:us-east-1:1:secret:a-xyz", "SecretVersionId": "v"}
    assert allowed(caller(ALICE, via="secretsmanager"), k, encryption_context=context)
    assert not allowed(caller(ALICE), k, encryption_context=context)  # not through Secrets Manager
    assert not allowed(caller(ALICE, via="secretsmanager"), k,
                       encryption_context={**context, "SecretARN": "arn:aws:secretsmanager:us-east-1:1:secret:b"})
    tagged = key(allow(ROOT)), key(allow(ALICE, Condition={"StringEquals": {"aws:ResourceTag/team": "red"}}),
                                   tags=[{"TagKey": "team", "TagValue": "red"}])
    assert allowed(caller(ALICE), tagged[1])
    keys_only = key(allow(ALICE, Condition={"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["app"]}}))
    assert allowed(caller(ALICE), keys_only, encryption_context={"app": "x"})
    assert not allowed(caller(ALICE), keys_only, encryption_context={"app": "x", "other": "y"})


def test_session_policies_narrow_what_iam_grants():
    k = key(allow(ROOT))
    narrow = identity({"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*"})
    assert not allowed(caller(ALICE, identity(KMS_ALL), session=narrow), k, "Decrypt")
    assert allowed(caller(ALICE, identity(KMS_ALL), session=narrow), k, "Encrypt")


def test_calls_without_a_request_are_the_service_own():
    c = Caller(OWNER, "us-east-1", ROOT, via_service="secretsmanager", ctx=None)
    authorize_key(c, key(), "Decrypt")  # no statement at all, and no error
