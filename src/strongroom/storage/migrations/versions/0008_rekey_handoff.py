"""Root keys: the hand-off of a rekey's new key to the other nodes of a shared database

Revision ID: 0008_rekey_handoff
Revises: 0008

A rekey makes its new root key on one node. The other nodes sharing the database learn of
it from the rekey marker, and fetch the key itself from here: wrapped by the old root key
(which every node holds), never in plaintext. `strongroom rekey --finish` deletes the row.

Additive only (a new table): nodes of the previous release keep running while it is applied.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_rekey_handoff"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "root_key_handoffs",
        sa.Column("rekey_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("old_key_id", sa.String(256), nullable=False),
        sa.Column("new_key_id", sa.String(256), nullable=False),
        sa.Column("wrapped", sa.LargeBinary, nullable=False),
        sa.Column("created_date", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("root_key_handoffs")
