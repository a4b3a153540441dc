"""The schema, as SQLAlchemy Core tables shared by every backend.

Timestamps are epoch seconds (float), the form AWS's JSON protocol uses.
Columns named *_wrapped or ciphertext hold only encrypted bytes.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("created_date", Float, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("account_id", String(12), ForeignKey("accounts.account_id"), primary_key=True),
    Column("user_name", String(64), primary_key=True),
    Column("user_id", String(32), nullable=False, unique=True),
    Column("path", String(512), nullable=False, default="/"),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("tags", Text, nullable=False, default="[]"),
    Column("created_date", Float, nullable=False),
)

access_keys = Table(
    "access_keys",
    metadata,
    Column("access_key_id", String(32), primary_key=True),
    Column("account_id", String(12), nullable=False),
    Column("user_name", String(64), nullable=False),
    Column("secret_wrapped", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False, default="Active"),
    Column("created_date", Float, nullable=False),
)

secrets = Table(
    "secrets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", String(12), nullable=False),
    Column("region", String(32), nullable=False),
    Column("name", String(512), nullable=False),
    Column("arn", String(2048), nullable=False, unique=True),
    Column("description", Text),
    Column("kms_key_id", String(2048)),
    Column("secret_type", String(256)),
    Column("owning_service", String(128)),
    Column("primary_region", String(32)),
    Column("created_date", Float, nullable=False),
    Column("last_changed_date", Float, nullable=False),
    Column("last_accessed_date", Float),
    Column("deleted_date", Float),
    Column("deletion_date", Float),
    Column("rotation_enabled", Boolean, nullable=False, default=False),
    Column("rotation_lambda_arn", String(2048)),
    Column("rotation_rules", Text),
    Column("last_rotated_date", Float),
    Column("next_rotation_date", Float),
    Column("tags", Text, nullable=False, default="[]"),
    Column("resource_policy", Text),
    Column("version_seq", Integer, nullable=False, default=0),
    UniqueConstraint("account_id", "region", "name", name="uq_secrets_name"),
)
Index("ix_secrets_account_region", secrets.c.account_id, secrets.c.region, secrets.c.name)

secret_versions = Table(
    "secret_versions",
    metadata,
    Column("secret_id", Integer, ForeignKey("secrets.id", ondelete="CASCADE"), primary_key=True),
    Column("version_id", String(64), primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("created_date", Float, nullable=False),
    Column("last_accessed_date", Float),
    # "string", "binary", or NULL for a version created by a rotation before it holds a value.
    Column("value_type", String(8)),
    Column("key_id", String(256)),
    Column("wrapped_key", LargeBinary),
    Column("ciphertext", LargeBinary),
)

version_stages = Table(
    "version_stages",
    metadata,
    Column("secret_id", Integer, ForeignKey("secrets.id", ondelete="CASCADE"), primary_key=True),
    Column("stage", String(256), primary_key=True),
    Column("version_id", String(64), nullable=False),
)
Index("ix_version_stages_version", version_stages.c.secret_id, version_stages.c.version_id)
