"""What the audit trail knows about operations: event source, read-only, resources touched.

CloudTrail marks Get/List/Describe calls and the KMS cryptographic calls read-only; a few
read-only calls still change state (AssumeRole stores a session), which matters to the
fail-closed check made before a call acts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any

EVENT_SOURCES = {
    "secretsmanager": "secretsmanager.amazonaws.com",
    "kms": "kms.amazonaws.com",
    "iam": "iam.amazonaws.com",
    "sts": "sts.amazonaws.com",
    "cloudtrail": "cloudtrail.amazonaws.com",
    "lambda": "lambda.amazonaws.com",
}
_READ_PREFIXES = ("Get", "List", "Describe", "BatchGet", "Validate", "Lookup")
_READ_ONLY = frozenset({
    "Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext", "GenerateRandom", "Sign", "Verify",
    "GenerateMac", "VerifyMac", "AssumeRole", "AssumeRoleWithWebIdentity", "AssumeRoleWithSAML",
})
# Read-only in CloudTrail's sense, yet they write: refused up front when the audit trail is down.
_WRITES_ANYWAY = frozenset({"AssumeRole", "AssumeRoleWithWebIdentity", "AssumeRoleWithSAML"})
# Calls whose responses are the protected material itself: CloudTrail logs responseElements null.
_NULL_RESPONSE = frozenset({
    "GetSecretValue", "BatchGetSecretValue", "GetRandomPassword", "Encrypt", "Decrypt", "ReEncrypt",
    "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext", "GenerateRandom", "Sign", "GenerateMac",
})


def event_source(service: str) -> str:
    return EVENT_SOURCES.get(service, f"{service or 'unknown'}.amazonaws.com")


def is_read_only(operation: str) -> bool:
    return operation in _READ_ONLY or operation.startswith(_READ_PREFIXES)


def changes_state(operation: str) -> bool:
    """Whether a call may write: such calls first check that their audit record can be written."""
    return not is_read_only(operation) or operation in _WRITES_ANYWAY


def logs_response(operation: str) -> bool:
    """CloudTrail records responseElements for calls that change things, null for reads."""
    return not is_read_only(operation) and operation not in _NULL_RESPONSE


# -- resources -----------------------------------------------------------------------------------
_DENIED_ON = re.compile(r"on resource: (arn:[^\s]+)")
_TYPES = (
    ("secretsmanager", "secret:", "AWS::SecretsManager::Secret"),
    ("kms", "key/", "AWS::KMS::Key"),
    ("kms", "alias/", "AWS::KMS::Alias"),
    ("iam", "user/", "AWS::IAM::User"),
    ("iam", "role/", "AWS::IAM::Role"),
    ("iam", "policy/", "AWS::IAM::Policy"),
    ("sts", "assumed-role/", "AWS::STS::AssumedRole"),
)
_REQUEST_ARNS = ("SecretId", "ARN", "KeyId", "TargetKeyId", "DestinationKeyId", "SourceKeyId", "RoleArn",
                 "PolicyArn", "ResourceArn")
# Not a top-level "Arn": that is GetCallerIdentity's caller, not a resource acted on.
_RESULT_PATHS = (("ARN",), ("KeyId",), ("KeyMetadata", "Arn"), ("Role", "Arn"), ("User", "Arn"),
                 ("Policy", "Arn"), ("AssumedRoleUser", "Arn"))


@lru_cache(maxsize=4096)  # the same ARNs come back request after request
def resource_type(arn: str) -> str | None:
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return None
    for service, prefix, kind in _TYPES:
        if parts[2] == service and parts[5].startswith(prefix):
            return kind
    return None


@lru_cache(maxsize=4096)
def secret_name(arn: str) -> str | None:
    """The secret's name: the ARN's last part without the 6-character random suffix."""
    parts = arn.split(":", 6)
    if len(parts) == 7 and parts[2] == "secretsmanager" and parts[5] == "secret":
        name = parts[6]
        return name[:-7] if len(name) > 7 and name[-7] == "-" else name
    return None


def _dig(value: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _arns(request: dict[str, Any] | None, result: dict[str, Any] | None, error: str | None) -> Iterator[str]:
    if request:
        for key in _REQUEST_ARNS:
            value = request.get(key)
            if isinstance(value, str) and value.startswith("arn:"):
                yield value
    if result:
        for path in _RESULT_PATHS:
            if path[0] in result:
                value = _dig(result, path)
                if isinstance(value, str) and value.startswith("arn:"):
                    yield value
        for item in result.get("SecretValues") or ():
            if isinstance(item, dict) and isinstance(item.get("ARN"), str):
                yield item["ARN"]
    if error:
        found = _DENIED_ON.search(error)
        if found and found.group(1) != "*":
            yield found.group(1)


def resources(request: dict[str, Any] | None, result: dict[str, Any] | None,
              error_message: str | None = None) -> list[dict[str, str]]:
    """CloudTrail `resources`: each ARN the call named or returned, once, with its type."""
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for arn in _arns(request, result, error_message):
        kind = resource_type(arn)
        if kind is None or arn in seen:
            continue
        seen.add(arn)
        out.append({"ARN": arn, "accountId": arn.split(":")[4], "type": kind})
    return out


def lookup_names(request: dict[str, Any] | None, found: Iterable[dict[str, str]]) -> list[str]:
    """Names a ResourceName lookup should match: each ARN, a secret's name, the SecretId given."""
    names: list[str] = []
    for res in found:
        names.append(res["ARN"])
        name = secret_name(res["ARN"])
        if name:
            names.append(name)
    for key in ("SecretId", "Name", "KeyId", "AliasName", "UserName", "RoleName", "PolicyName"):
        value = (request or {}).get(key)
        if isinstance(value, str) and value not in names:
            names.append(value)
    return names
