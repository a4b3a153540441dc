"""Secrets: an index for ListSecrets' default order

Revision ID: 0009_list_order
Revises: 0008_rekey_handoff

ListSecrets pages newest first by default: (account, region, created date, id) lets a page
be read from the index in order instead of sorting every secret of the account.

Additive only (a new index): nodes of the previous release keep running while it is applied.
"""

from alembic import op

revision = "0009_list_order"
down_revision = "0008_rekey_handoff"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_secrets_created", "secrets", ["account_id", "region", "created_date", "id"])


def downgrade() -> None:
    op.drop_index("ix_secrets_created", table_name="secrets")
