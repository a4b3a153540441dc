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
Index("ix_secrets_created", secrets.c.account_id, secrets.c.region, secrets.c.created_date, secrets.c.id)

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

# ---- IAM & STS: roles, policies, attachments, session credentials (revision 0002) ----------
# Policy documents are stored as the JSON text the caller sent. Session tokens are stored
# only as SHA-256 hex digests; session secrets only wrapped by the root key.

roles = Table(
    "iam_roles",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("role_name", String(64), primary_key=True),
    Column("role_id", String(32), nullable=False, unique=True),
    Column("path", String(512), nullable=False, default="/"),
    Column("assume_role_policy", Text, nullable=False),
    Column("description", Text),
    Column("max_session_duration", Integer, nullable=False, default=3600),
    Column("tags", Text, nullable=False, default="[]"),
    Column("created_date", Float, nullable=False),
    Column("last_used_date", Float),
    Column("last_used_region", String(32)),
)

user_policies = Table(
    "iam_user_policies",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("user_name", String(64), primary_key=True),
    Column("policy_name", String(128), primary_key=True),
    Column("document", Text, nullable=False),
)

role_policies = Table(
    "iam_role_policies",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("role_name", String(64), primary_key=True),
    Column("policy_name", String(128), primary_key=True),
    Column("document", Text, nullable=False),
)

managed_policies = Table(
    "iam_managed_policies",
    metadata,
    Column("policy_id", String(32), primary_key=True),
    Column("arn", String(2048), nullable=False, unique=True),
    Column("account_id", String(12), nullable=False),
    Column("policy_name", String(128), nullable=False),
    Column("path", String(512), nullable=False, default="/"),
    Column("description", Text),
    Column("default_version_id", String(32), nullable=False),
    Column("next_version", Integer, nullable=False, default=2),
    Column("tags", Text, nullable=False, default="[]"),
    Column("created_date", Float, nullable=False),
    Column("update_date", Float, nullable=False),
    UniqueConstraint("account_id", "policy_name", name="uq_iam_managed_policies_name"),
)

policy_versions = Table(
    "iam_policy_versions",
    metadata,
    Column("policy_id", String(32), ForeignKey("iam_managed_policies.policy_id", ondelete="CASCADE"),
           primary_key=True),
    Column("version_id", String(32), primary_key=True),
    Column("document", Text, nullable=False),
    Column("created_date", Float, nullable=False),
)

user_policy_attachments = Table(
    "iam_user_policy_attachments",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("user_name", String(64), primary_key=True),
    Column("policy_id", String(32), primary_key=True),
)
Index("ix_iam_user_attachments_policy", user_policy_attachments.c.policy_id)

role_policy_attachments = Table(
    "iam_role_policy_attachments",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("role_name", String(64), primary_key=True),
    Column("policy_id", String(32), primary_key=True),
)
Index("ix_iam_role_attachments_policy", role_policy_attachments.c.policy_id)

session_credentials = Table(
    "sts_session_credentials",
    metadata,
    Column("access_key_id", String(32), primary_key=True),
    Column("account_id", String(12), nullable=False),
    Column("secret_wrapped", LargeBinary, nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("expiration", Float, nullable=False),
    Column("role_name", String(64), nullable=False),
    Column("role_id", String(32), nullable=False),
    Column("session_name", String(64), nullable=False),
    Column("session_tags", Text, nullable=False, default="[]"),
    Column("transitive_tag_keys", Text, nullable=False, default="[]"),
    Column("session_policy", Text),
    Column("policy_arns", Text, nullable=False, default="[]"),
    Column("source_identity", String(256)),
    Column("source_arn", String(2048), nullable=False),
    Column("created_date", Float, nullable=False),
)
Index("ix_sts_sessions_expiration", session_credentials.c.expiration)

access_key_last_used = Table(
    "iam_access_key_last_used",
    metadata,
    Column("access_key_id", String(32), primary_key=True),
    Column("last_used_date", Float, nullable=False),
    Column("service_name", String(64), nullable=False),
    Column("region", String(32), nullable=False),
)
# ---- end IAM & STS -------------------------------------------------------------------------

# ---- KMS: keys, key material, aliases (revision 0003) ------------------------------------
# Key material is stored only wrapped by the root key, one row per material version
# (the original and every rotation); queries live in storage/kms_store.py.

kms_keys = Table(
    "kms_keys",
    metadata,
    Column("key_id", String(36), primary_key=True),
    Column("account_id", String(12), nullable=False),
    Column("region", String(32), nullable=False),
    Column("arn", String(2048), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("key_usage", String(32), nullable=False),
    Column("key_spec", String(32), nullable=False),
    Column("origin", String(32), nullable=False),
    Column("key_manager", String(16), nullable=False),  # CUSTOMER or AWS
    Column("key_state", String(32), nullable=False),  # Enabled, Disabled, PendingDeletion
    Column("creation_date", Float, nullable=False),
    Column("deletion_date", Float),
    Column("pending_window_days", Integer),
    Column("rotation_enabled", Boolean, nullable=False, default=False),
    Column("rotation_period_days", Integer),
    Column("next_rotation_date", Float),
    Column("current_material", Integer, nullable=False),
    Column("policy", Text, nullable=False),
    Column("tags", Text, nullable=False, default="[]"),
)
Index("ix_kms_keys_account_region", kms_keys.c.account_id, kms_keys.c.region)

kms_key_materials = Table(
    "kms_key_materials",
    metadata,
    Column("key_id", String(36), ForeignKey("kms_keys.key_id", ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("created_date", Float, nullable=False),
    Column("rotation_type", String(16)),  # NULL for the key's first material, else AUTOMATIC / ON_DEMAND
    Column("material_wrapped", LargeBinary, nullable=False),
)

kms_aliases = Table(
    "kms_aliases",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("alias_name", String(256), primary_key=True),
    Column("key_id", String(36), ForeignKey("kms_keys.key_id", ondelete="CASCADE"), nullable=False),
    Column("creation_date", Float, nullable=False),
    Column("last_updated_date", Float, nullable=False),
)
Index("ix_kms_aliases_key", kms_aliases.c.key_id)
# ---- end KMS -------------------------------------------------------------------------------

# ---- Root keys: online rekey progress (revision 0004) ------------------------------------
# One row per rekey; the newest row is the one in force. `phase` and `cursor` are the
# durable progress marker: the table being re-wrapped and the last primary key done there.
# Sources are the non-secret [root_key] settings (JSON); no key material is ever stored here.

root_key_rekeys = Table(
    "root_key_rekeys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("state", String(16), nullable=False),  # running, done
    Column("old_key_id", String(256), nullable=False),
    Column("new_key_id", String(256), nullable=False),
    Column("old_source", Text, nullable=False),
    Column("new_source", Text, nullable=False),
    Column("phase", String(64), nullable=False),
    Column("cursor", Text),
    Column("rewrapped", Integer, nullable=False, default=0),
    Column("started_date", Float, nullable=False),
    Column("updated_date", Float, nullable=False),
    Column("finished_date", Float),
)
# ---- end root keys -------------------------------------------------------------------------

# ---- Scale-out: leases on background work, change events for caches (revision 0006) ----------
# A lease names the node running one piece of background work until expires_date (database
# clock); token grows at every change of holder. change_events carries cache invalidations
# between processes sharing a SQLite file (PostgreSQL uses LISTEN/NOTIFY instead).

leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("token", Integer, nullable=False),
    Column("acquired_date", Float, nullable=False),
    Column("expires_date", Float, nullable=False),
)

change_events = Table(
    "change_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("node", String(128), nullable=False),
    Column("topic", String(64), nullable=False),
    Column("item", String(256), nullable=False),
    Column("created_date", Float, nullable=False),
    sqlite_autoincrement=True,  # sequence numbers never reused, so a reader can spot a gap
)
Index("ix_change_events_created", change_events.c.created_date)
# ---- end scale-out -------------------------------------------------------------------------

# ---- Audit & alerts: events, chain head, digests, consumer positions, alert outbox (revision 0005) ----
# Events are append-only CloudTrail records (already redacted) chained by SHA-256; `record` holds the
# exact canonical JSON bytes that were hashed. The other event columns are copies for queries.
from sqlalchemy import BigInteger  # noqa: E402 - kept inside this block so it stays self-contained

_SEQ = BigInteger().with_variant(Integer(), "sqlite")  # INTEGER PRIMARY KEY is SQLite's rowid alias

audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", _SEQ, primary_key=True, autoincrement=False),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("event_time", Float, nullable=False),
    Column("account_id", String(12)),  # recipientAccountId; NULL when the caller was never identified
    Column("event_source", String(64), nullable=False),
    Column("event_name", String(128), nullable=False),
    Column("read_only", Boolean, nullable=False),
    Column("principal_arn", String(2048)),
    Column("username", String(256)),
    Column("access_key_id", String(32)),
    Column("error_code", String(128)),
    Column("resource_names", Text, nullable=False, default=""),  # "|arn|name|" for ResourceName lookups
    Column("resource_types", Text, nullable=False, default=""),  # "|AWS::SecretsManager::Secret|"
    Column("record", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
Index("ix_audit_events_time", audit_events.c.event_time)
Index("ix_audit_events_name", audit_events.c.event_name)

# One row (id 1): the chain's last (seq, hash). Writers lock it, so nodes extend one chain.
audit_chain_head = Table(
    "audit_chain_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", _SEQ, nullable=False),
    Column("hash", String(64), nullable=False),
)

audit_digests = Table(
    "audit_digests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created", Float, nullable=False),
    Column("first_seq", _SEQ, nullable=False),
    Column("last_seq", _SEQ, nullable=False),
    Column("last_hash", String(64), nullable=False),
    Column("digest", Text, nullable=False),  # canonical JSON, the signed bytes
    Column("signature", String(128), nullable=False),  # Ed25519, hex
    Column("key_fingerprint", String(64), nullable=False),
)

# Where each consumer of the event table (a sink, the alert detector) has got to; a lease
# keeps one process per consumer at a time.
audit_positions = Table(
    "audit_positions",
    metadata,
    Column("consumer", String(128), primary_key=True),
    Column("seq", _SEQ, nullable=False),
    Column("owner", String(64)),
    Column("lease_until", Float),
    Column("updated", Float, nullable=False),
)

alert_outbox = Table(
    "alert_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", String(36), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("target", String(2048), nullable=False),  # the webhook URL (its secret stays in config)
    Column("payload", Text, nullable=False),
    Column("created", Float, nullable=False),
    Column("status", String(16), nullable=False),  # pending, delivered, failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt", Float, nullable=False),
    Column("delivered", Float),
    Column("last_error", String(256)),
)
Index("ix_alert_outbox_due", alert_outbox.c.status, alert_outbox.c.next_attempt)
# ---- end Audit & alerts ------------------------------------------------------------------------

# ---- Rotation (engine state, rotation functions) -------------------------------------------
# One row per secret with a rotation in progress or last attempted: the token being rotated,
# the next step to run, the failure of the last attempt, and the per-secret lease (holder,
# lease_until) that keeps one rotation of a secret at a time across processes and nodes.
rotation_state = Table(
    "rotation_state",
    metadata,
    Column("secret_id", Integer, primary_key=True),
    Column("token", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # pending, succeeded, failed, cancelled
    Column("step", String(16), nullable=False),  # the next step to run (createSecret...finishSecret)
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt", Float, nullable=False),
    Column("last_error", String(1024)),
    Column("holder", String(128)),
    Column("lease_until", Float, nullable=False, default=0.0),
    Column("started_date", Float, nullable=False),
    Column("updated_date", Float, nullable=False),
)
Index("ix_rotation_state_due", rotation_state.c.status, rotation_state.c.next_attempt)

# Rotation functions (a Lambda-compatible subset). The zip and the environment variables are
# stored wrapped by the root key: environment variables commonly carry credentials.
functions = Table(
    "functions",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("arn", String(256), nullable=False, unique=True),
    Column("runtime", String(32), nullable=False),
    Column("handler", String(128), nullable=False),
    Column("role", String(2048), nullable=False),
    Column("description", String(256), nullable=False, default=""),
    Column("timeout", Integer, nullable=False),
    Column("memory_size", Integer, nullable=False),
    Column("code_wrapped", LargeBinary),
    Column("code_sha256", String(64), nullable=False),
    Column("code_size", Integer, nullable=False),
    Column("environment_wrapped", LargeBinary),
    Column("policy", Text),
    Column("revision_id", String(64), nullable=False),
    Column("last_modified", Float, nullable=False),
)
# ---- end Rotation ----------------------------------------------------------------------------
