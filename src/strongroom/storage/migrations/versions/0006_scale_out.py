"""Scale-out: leases on background work, change events for cache invalidation

Revision ID: 0006
Revises: 0005

Additive only (new tables), so nodes of the previous release keep running while
it is applied: the expand step of a rolling upgrade (docs/deployment.md).
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("token", sa.Integer, nullable=False),
        sa.Column("acquired_date", sa.Float, nullable=False),
        sa.Column("expires_date", sa.Float, nullable=False),
    )
    op.create_table(
        "change_events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("node", sa.String(128), nullable=False),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("item", sa.String(256), nullable=False),
        sa.Column("created_date", sa.Float, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_change_events_created", "change_events", ["created_date"])


def downgrade() -> None:
    op.drop_index("ix_change_events_created", table_name="change_events")
    op.drop_table("change_events")
    op.drop_table("leases")
