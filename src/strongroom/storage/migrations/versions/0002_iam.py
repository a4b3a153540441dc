"""IAM: roles, policies, attachments, session credentials

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "iam_roles",
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("role_name", sa.String(64), primary_key=True),
        sa.Column("role_id", sa.String(32), nullable=False, unique=True),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("assume_role_policy", sa.Text, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("max_session_duration", sa.Integer, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("created_date", sa.Float, nullable=False),
        sa.Column("last_used_date", sa.Float),
        sa.Column("last_used_region", sa.String(32)),
    )
    for table, owner in (("iam_user_policies", "user_name"), ("iam_role_policies", "role_name")):
        op.create_table(
            table,
            sa.Column("account_id", sa.String(12), primary_key=True),
            sa.Column(owner, sa.String(64), primary_key=True),
            sa.Column("policy_name", sa.String(128), primary_key=True),
            sa.Column("document", sa.Text, nullable=False),
        )
    op.create_table(
        "iam_managed_policies",
        sa.Column("policy_id", sa.String(32), primary_key=True),
        sa.Column("arn", sa.String(2048), nullable=False, unique=True),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("policy_name", sa.String(128), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("default_version_id", sa.String(32), nullable=False),
        sa.Column("next_version", sa.Integer, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("created_date", sa.Float, nullable=False),
        sa.Column("update_date", sa.Float, nullable=False),
        sa.UniqueConstraint("account_id", "policy_name", name="uq_iam_managed_policies_name"),
    )
    op.create_table(
        "iam_policy_versions",
        sa.Column("policy_id", sa.String(32), sa.ForeignKey("iam_managed_policies.policy_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("version_id", sa.String(32), primary_key=True),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("created_date", sa.Float, nullable=False),
    )
    for table, owner in (("iam_user_policy_attachments", "user_name"), ("iam_role_policy_attachments", "role_name")):
        op.create_table(
            table,
            sa.Column("account_id", sa.String(12), primary_key=True),
            sa.Column(owner, sa.String(64), primary_key=True),
            sa.Column("policy_id", sa.String(32), primary_key=True),
        )
    op.create_index("ix_iam_user_attachments_policy", "iam_user_policy_attachments", ["policy_id"])
    op.create_index("ix_iam_role_attachments_policy", "iam_role_policy_attachments", ["policy_id"])
    op.create_table(
        "sts_session_credentials",
        sa.Column("access_key_id", sa.String(32), primary_key=True),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("secret_wrapped", sa.LargeBinary, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("expiration", sa.Float, nullable=False),
        sa.Column("role_name", sa.String(64), nullable=False),
        sa.Column("role_id", sa.String(32), nullable=False),
        sa.Column("session_name", sa.String(64), nullable=False),
        sa.Column("session_tags", sa.Text, nullable=False),
        sa.Column("transitive_tag_keys", sa.Text, nullable=False),
        sa.Column("session_policy", sa.Text),
        sa.Column("policy_arns", sa.Text, nullable=False),
        sa.Column("source_identity", sa.String(256)),
        sa.Column("source_arn", sa.String(2048), nullable=False),
        sa.Column("created_date", sa.Float, nullable=False),
    )
    op.create_index("ix_sts_sessions_expiration", "sts_session_credentials", ["expiration"])
    op.create_table(
        "iam_access_key_last_used",
        sa.Column("access_key_id", sa.String(32), primary_key=True),
        sa.Column("last_used_date", sa.Float, nullable=False),
        sa.Column("service_name", sa.String(64), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_index("ix_sts_sessions_expiration", "sts_session_credentials")
    op.drop_index("ix_iam_role_attachments_policy", "iam_role_policy_attachments")
    op.drop_index("ix_iam_user_attachments_policy", "iam_user_policy_attachments")
    for name in ("iam_access_key_last_used", "sts_session_credentials", "iam_role_policy_attachments",
                 "iam_user_policy_attachments", "iam_policy_versions", "iam_managed_policies",
                 "iam_role_policies", "iam_user_policies", "iam_roles"):
        op.drop_table(name)
