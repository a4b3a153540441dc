"""Secret ARNs: arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 characters>."""

from __future__ import annotations

import secrets
import string

_SUFFIX_ALPHABET = string.ascii_letters + string.digits


def secret_arn(region: str, account_id: str, name: str) -> str:
    suffix = "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(6))
    return f"{base_arn(region, account_id, name)}-{suffix}"


def base_arn(region: str, account_id: str, name: str) -> str:
    """The ARN of a secret name without its random suffix (a partial ARN)."""
    return f"arn:aws:secretsmanager:{region}:{account_id}:secret:{name}"


def is_arn(secret_id: str) -> bool:
    return secret_id.startswith("arn:")


def parse(arn: str) -> tuple[str, str, str] | None:
    """(region, account, resource name part) of a Secrets Manager ARN, or None."""
    parts = arn.split(":", 6)
    if len(parts) != 7 or parts[2] != "secretsmanager" or parts[5] != "secret":
        return None
    return parts[3], parts[4], parts[6]
