"""Rotation: engine state per secret, rotation functions

Revision ID: 0007
Revises: 0006

Additive only (new tables): nodes of the previous release keep running while it is applied.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rotation_state",
        sa.Column("secret_id", sa.Integer, primary_key=True),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("step", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt", sa.Float, nullable=False),
        sa.Column("last_error", sa.String(1024)),
        sa.Column("holder", sa.String(128)),
        sa.Column("lease_until", sa.Float, nullable=False),
        sa.Column("started_date", sa.Float, nullable=False),
        sa.Column("updated_date", sa.Float, nullable=False),
    )
    op.create_index("ix_rotation_state_due", "rotation_state", ["status", "next_attempt"])
    op.create_table(
        "functions",
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("region", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("arn", sa.String(256), nullable=False, unique=True),
        sa.Column("runtime", sa.String(32), nullable=False),
        sa.Column("handler", sa.String(128), nullable=False),
        sa.Column("role", sa.String(2048), nullable=False),
        sa.Column("description", sa.String(256), nullable=False),
        sa.Column("timeout", sa.Integer, nullable=False),
        sa.Column("memory_size", sa.Integer, nullable=False),
        sa.Column("code_wrapped", sa.LargeBinary),
        sa.Column("code_sha256", sa.String(64), nullable=False),
        sa.Column("code_size", sa.Integer, nullable=False),
        sa.Column("environment_wrapped", sa.LargeBinary),
        sa.Column("policy", sa.Text),
        sa.Column("revision_id", sa.String(64), nullable=False),
        sa.Column("last_modified", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("functions")
    op.drop_index("ix_rotation_state_due", table_name="rotation_state")
    op.drop_table("rotation_state")
