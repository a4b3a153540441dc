"""Storage: one small Store interface over SQLAlchemy Core (SQLite, PostgreSQL)."""

from strongroom.storage.records import AccessKeyRecord, SecretRecord, UserRecord, VersionRecord
from strongroom.storage.store import Store, Tx, open_store

__all__ = ["AccessKeyRecord", "SecretRecord", "Store", "Tx", "UserRecord", "VersionRecord", "open_store"]
