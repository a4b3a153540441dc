"""Access keys: creation, and resolving a signed request to its Principal."""

from __future__ import annotations

import secrets
import string
import threading
import time
import uuid
from dataclasses import dataclass

from strongroom.context import Principal
from strongroom.crypto.rootkey import RootKey
from strongroom.errors import UnrecognizedClientException
from strongroom.storage import AccessKeyRecord, Store, Tx, UserRecord

_UPPER_DIGITS = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"
UNRECOGNIZED = "The security token included in the request is invalid."


def _purpose(access_key_id: str) -> bytes:
    return b"access-key-secret:" + access_key_id.encode()


def new_access_key_id(prefix: str = "AKIA") -> str:
    return prefix + "".join(secrets.choice(_UPPER_DIGITS) for _ in range(16))


def new_user_id() -> str:
    return "AIDA" + "".join(secrets.choice(_UPPER_DIGITS) for _ in range(17))


def create_access_key(tx: Tx, root: RootKey, account_id: str, user_name: str, now: float) -> tuple[str, str]:
    """Create a key for a user; the secret half is returned once and stored only wrapped."""
    key_id = new_access_key_id()
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
    tx.insert_access_key(
        AccessKeyRecord(key_id, account_id, user_name, root.wrap(secret.encode(), _purpose(key_id)), "Active", now)
    )
    return key_id, secret


def create_user(tx: Tx, account_id: str, user_name: str, now: float, *, is_admin: bool = False,
                path: str = "/") -> UserRecord:
    user = UserRecord(account_id, user_name, new_user_id(), path, is_admin, "[]", now)
    tx.insert_user(user)
    return user


def user_arn(account_id: str, path: str, user_name: str) -> str:
    return f"arn:aws:iam::{account_id}:user{path}{user_name}"


@dataclass(frozen=True, slots=True)
class Credential:
    secret: str
    principal: Principal


class CredentialResolver:
    """Looks up access keys, with a short-lived cache so status changes apply within `ttl` seconds."""

    def __init__(self, store: Store, root: RootKey, ttl: float = 5.0, max_entries: int = 10_000):
        self.store = store
        self.root = root
        self.ttl = ttl
        self.max_entries = max_entries
        self._cache: dict[str, tuple[float, Credential]] = {}
        self._lock = threading.Lock()

    def resolve(self, access_key_id: str) -> Credential:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(access_key_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        cred = self._load(access_key_id)
        with self._lock:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[access_key_id] = (now + self.ttl, cred)
        return cred

    def invalidate(self, access_key_id: str | None = None) -> None:
        with self._lock:
            if access_key_id is None:
                self._cache.clear()
            else:
                self._cache.pop(access_key_id, None)

    def _load(self, access_key_id: str) -> Credential:
        with self.store.read() as tx:
            key = tx.get_access_key(access_key_id)
            user = tx.get_user(key.account_id, key.user_name) if key else None
        if key is None or user is None or key.status != "Active":
            raise UnrecognizedClientException(UNRECOGNIZED)
        secret = self.root.unwrap(key.secret_wrapped, _purpose(access_key_id)).decode()
        principal = Principal(
            account_id=key.account_id,
            arn=user_arn(user.account_id, user.path, user.user_name),
            principal_id=user.user_id,
            access_key_id=access_key_id,
            type="IAMUser",
            name=user.user_name,
            is_admin=user.is_admin,
        )
        return Credential(secret, principal)


def new_account_id() -> str:
    return str(uuid.uuid4().int % 10**12).zfill(12)
