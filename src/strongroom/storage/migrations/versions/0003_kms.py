"""KMS: customer and AWS-managed keys, aliases, key material

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kms_keys",
        sa.Column("key_id", sa.String(36), primary_key=True),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("arn", sa.String(2048), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("key_usage", sa.String(32), nullable=False),
        sa.Column("key_spec", sa.String(32), nullable=False),
        sa.Column("origin", sa.String(32), nullable=False),
        sa.Column("key_manager", sa.String(16), nullable=False),
        sa.Column("key_state", sa.String(32), nullable=False),
        sa.Column("creation_date", sa.Float, nullable=False),
        sa.Column("deletion_date", sa.Float),
        sa.Column("pending_window_days", sa.Integer),
        sa.Column("rotation_enabled", sa.Boolean, nullable=False),
        sa.Column("rotation_period_days", sa.Integer),
        sa.Column("next_rotation_date", sa.Float),
        sa.Column("current_material", sa.Integer, nullable=False),
        sa.Column("policy", sa.Text, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
    )
    op.create_index("ix_kms_keys_account_region", "kms_keys", ["account_id", "region"])
    op.create_table(
        "kms_key_materials",
        sa.Column("key_id", sa.String(36), sa.ForeignKey("kms_keys.key_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("created_date", sa.Float, nullable=False),
        sa.Column("rotation_type", sa.String(16)),
        sa.Column("material_wrapped", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "kms_aliases",
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("region", sa.String(32), primary_key=True),
        sa.Column("alias_name", sa.String(256), primary_key=True),
        sa.Column("key_id", sa.String(36), sa.ForeignKey("kms_keys.key_id", ondelete="CASCADE"), nullable=False),
        sa.Column("creation_date", sa.Float, nullable=False),
        sa.Column("last_updated_date", sa.Float, nullable=False),
    )
    op.create_index("ix_kms_aliases_key", "kms_aliases", ["key_id"])


def downgrade() -> None:
    op.drop_index("ix_kms_aliases_key", table_name="kms_aliases")
    op.drop_table("kms_aliases")
    op.drop_table("kms_key_materials")
    op.drop_index("ix_kms_keys_account_region", table_name="kms_keys")
    op.drop_table("kms_keys")
