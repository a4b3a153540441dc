"""Plain records exchanged between services and the store."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class SecretRecord:
    account_id: str
    region: str
    name: str
    arn: str
    created_date: float
    last_changed_date: float
    id: int | None = None
    description: str | None = None
    kms_key_id: str | None = None
    secret_type: str | None = None
    owning_service: str | None = None
    primary_region: str | None = None
    last_accessed_date: float | None = None
    deleted_date: float | None = None
    deletion_date: float | None = None
    rotation_enabled: bool = False
    rotation_lambda_arn: str | None = None
    rotation_rules: dict[str, Any] | None = None
    last_rotated_date: float | None = None
    next_rotation_date: float | None = None
    tags: list[dict[str, str]] = field(default_factory=list)
    resource_policy: str | None = None
    version_seq: int = 0

    def to_row(self) -> dict[str, Any]:
        row = {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]
        row["tags"] = json.dumps(self.tags)
        row["rotation_rules"] = json.dumps(self.rotation_rules) if self.rotation_rules else None
        if row["id"] is None:
            del row["id"]
        return row

    @classmethod
    def from_row(cls, row: Any) -> "SecretRecord":
        data = dict(row._mapping)
        data["tags"] = json.loads(data["tags"] or "[]")
        data["rotation_rules"] = json.loads(data["rotation_rules"]) if data["rotation_rules"] else None
        data["rotation_enabled"] = bool(data["rotation_enabled"])
        return cls(**data)


@dataclass(slots=True)
class VersionRecord:
    secret_id: int
    version_id: str
    seq: int
    created_date: float
    value_type: str | None = None
    key_id: str | None = None
    wrapped_key: bytes | None = None
    ciphertext: bytes | None = None
    last_accessed_date: float | None = None
    stages: list[str] = field(default_factory=list)

    def to_row(self) -> dict[str, Any]:
        return {n: getattr(self, n) for n in self.__slots__ if n != "stages"}  # type: ignore[attr-defined]

    @classmethod
    def from_row(cls, row: Any) -> "VersionRecord":
        return cls(**dict(row._mapping))


@dataclass(frozen=True, slots=True)
class AccessKeyRecord:
    access_key_id: str
    account_id: str
    user_name: str
    secret_wrapped: bytes
    status: str
    created_date: float


@dataclass(frozen=True, slots=True)
class UserRecord:
    account_id: str
    user_name: str
    user_id: str
    path: str
    is_admin: bool
    tags: str
    created_date: float
