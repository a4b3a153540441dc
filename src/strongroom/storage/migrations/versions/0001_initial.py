"""Initial schema: accounts, users, access keys, secrets, versions, staging labels.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("created_date", sa.Float, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("account_id", sa.String(12), sa.ForeignKey("accounts.account_id"), primary_key=True),
        sa.Column("user_name", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(32), nullable=False, unique=True),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("is_admin", sa.Boolean, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("created_date", sa.Float, nullable=False),
    )
    op.create_table(
        "access_keys",
        sa.Column("access_key_id", sa.String(32), primary_key=True),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("user_name", sa.String(64), nullable=False),
        sa.Column("secret_wrapped", sa.LargeBinary, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_date", sa.Float, nullable=False),
    )
    op.create_table(
        "secrets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("arn", sa.String(2048), nullable=False, unique=True),
        sa.Column("description", sa.Text),
        sa.Column("kms_key_id", sa.String(2048)),
        sa.Column("secret_type", sa.String(256)),
        sa.Column("owning_service", sa.String(128)),
        sa.Column("primary_region", sa.String(32)),
        sa.Column("created_date", sa.Float, nullable=False),
        sa.Column("last_changed_date", sa.Float, nullable=False),
        sa.Column("last_accessed_date", sa.Float),
        sa.Column("deleted_date", sa.Float),
        sa.Column("deletion_date", sa.Float),
        sa.Column("rotation_enabled", sa.Boolean, nullable=False),
        sa.Column("rotation_lambda_arn", sa.String(2048)),
        sa.Column("rotation_rules", sa.Text),
        sa.Column("last_rotated_date", sa.Float),
        sa.Column("next_rotation_date", sa.Float),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("resource_policy", sa.Text),
        sa.Column("version_seq", sa.Integer, nullable=False),
        sa.UniqueConstraint("account_id", "region", "name", name="uq_secrets_name"),
    )
    op.create_index("ix_secrets_account_region", "secrets", ["account_id", "region", "name"])
    op.create_table(
        "secret_versions",
        sa.Column("secret_id", sa.Integer, sa.ForeignKey("secrets.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("version_id", sa.String(64), primary_key=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("created_date", sa.Float, nullable=False),
        sa.Column("last_accessed_date", sa.Float),
        sa.Column("value_type", sa.String(8)),
        sa.Column("key_id", sa.String(256)),
        sa.Column("wrapped_key", sa.LargeBinary),
        sa.Column("ciphertext", sa.LargeBinary),
    )
    op.create_table(
        "version_stages",
        sa.Column("secret_id", sa.Integer, sa.ForeignKey("secrets.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("stage", sa.String(256), primary_key=True),
        sa.Column("version_id", sa.String(64), nullable=False),
    )
    op.create_index("ix_version_stages_version", "version_stages", ["secret_id", "version_id"])


def downgrade() -> None:
    for name in ("version_stages", "secret_versions", "secrets", "access_keys", "users", "accounts"):
        op.drop_table(name)
