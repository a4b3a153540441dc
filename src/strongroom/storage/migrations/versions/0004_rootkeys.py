"""Root keys: the durable progress marker of an online rekey

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "root_key_rekeys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("old_key_id", sa.String(256), nullable=False),
        sa.Column("new_key_id", sa.String(256), nullable=False),
        sa.Column("old_source", sa.Text, nullable=False),
        sa.Column("new_source", sa.Text, nullable=False),
        sa.Column("phase", sa.String(64), nullable=False),
        sa.Column("cursor", sa.Text),
        sa.Column("rewrapped", sa.Integer, nullable=False),
        sa.Column("started_date", sa.Float, nullable=False),
        sa.Column("updated_date", sa.Float, nullable=False),
        sa.Column("finished_date", sa.Float),
    )


def downgrade() -> None:
    op.drop_table("root_key_rekeys")
