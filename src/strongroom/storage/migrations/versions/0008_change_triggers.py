"""Change triggers: the database announces every change to what the read path caches

Revision ID: 0008
Revises: 0007

The in-process caches of secrets and KMS key rows (strongroom/cache/) are trusted only once
every change committed before a request has been heard of. Triggers make the database
itself announce those changes (a change_events row on SQLite, a NOTIFY on PostgreSQL), so
no writer can forget to, whether it is this release, a tool, or a hand-made repair in SQL.
Touching LastAccessedDate alone is not a change worth announcing: the cached value is
refreshed by the process that writes it, and other processes write it once a day at most.

Additive only (triggers): nodes of the previous release keep running while it is applied.
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SECRET_COLUMNS = ("account_id", "region", "name", "arn", "created_date", "last_changed_date", "description",
                  "kms_key_id", "secret_type", "owning_service", "primary_region", "deleted_date", "deletion_date",
                  "rotation_enabled", "rotation_lambda_arn", "rotation_rules", "last_rotated_date",
                  "next_rotation_date", "tags", "resource_policy", "version_seq")
VALUE_COLUMNS = ("value_type", "key_id", "wrapped_key", "ciphertext")
_NOW = "(julianday('now') - 2440587.5) * 86400.0"

# (trigger, event, table, topic, item expression) for SQLite.
SQLITE = [
    ("secrets_changed", f"UPDATE OF {', '.join(SECRET_COLUMNS)}", "secrets", "secret", "NEW.id"),
    ("secrets_deleted", "DELETE", "secrets", "secret", "OLD.id"),
    ("secret_versions_changed", f"UPDATE OF {', '.join(VALUE_COLUMNS)}", "secret_versions", "secret",
     "NEW.secret_id"),
    ("secret_versions_deleted", "DELETE", "secret_versions", "secret", "OLD.secret_id"),
    ("version_stages_inserted", "INSERT", "version_stages", "secret", "NEW.secret_id"),
    ("version_stages_changed", "UPDATE", "version_stages", "secret", "NEW.secret_id"),
    ("version_stages_deleted", "DELETE", "version_stages", "secret", "OLD.secret_id"),
    ("kms_keys_changed", "UPDATE", "kms_keys", "kms-keys", "'*'"),
    ("kms_keys_deleted", "DELETE", "kms_keys", "kms-keys", "'*'"),
]

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION strongroom_announce() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    item text;
BEGIN
    IF TG_ARGV[0] = 'kms-keys' THEN
        item := '*';
    ELSIF TG_TABLE_NAME = 'secrets' THEN
        item := CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END::text;
    ELSE
        item := CASE WHEN TG_OP = 'DELETE' THEN OLD.secret_id ELSE NEW.secret_id END::text;
    END IF;
    -- Identical notifications of one transaction are folded into one by PostgreSQL.
    PERFORM pg_notify('strongroom_changes', json_build_object('n', 'db', 't', TG_ARGV[0], 'k', item)::text);
    RETURN NULL;
END
$$
"""

# (trigger, events, table, topic) for PostgreSQL.
POSTGRESQL = [
    ("strongroom_secrets_changed", f"UPDATE OF {', '.join(SECRET_COLUMNS)} OR DELETE", "secrets", "secret"),
    ("strongroom_secret_versions_changed", f"UPDATE OF {', '.join(VALUE_COLUMNS)} OR DELETE", "secret_versions",
     "secret"),
    ("strongroom_version_stages_changed", "INSERT OR UPDATE OR DELETE", "version_stages", "secret"),
    ("strongroom_kms_keys_changed", "UPDATE OR DELETE", "kms_keys", "kms-keys"),
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name, when, table, topic, item in SQLITE:
            op.execute(f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {when} ON {table} BEGIN "
                       f"INSERT INTO change_events (node, topic, item, created_date) "
                       f"VALUES ('db', '{topic}', CAST({item} AS TEXT), {_NOW}); END")
        return
    op.execute(PG_FUNCTION)
    for name, when, table, topic in POSTGRESQL:
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        op.execute(f"CREATE TRIGGER {name} AFTER {when} ON {table} FOR EACH ROW "
                   f"EXECUTE FUNCTION strongroom_announce('{topic}')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name, *_ in SQLITE:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        return
    for name, _, table, _ in POSTGRESQL:
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS strongroom_announce()")
