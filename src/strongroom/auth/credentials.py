"""Access keys: creation, and resolving a signed request to its Principal.

Long-term keys (AKIA...) belong to users; temporary keys (ASIA...) to role sessions
created by sts:AssumeRole, which also need the session token they were issued with.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import string
import threading
import time
import uuid
from dataclasses import dataclass

from strongroom import metrics
from strongroom.context import Principal
from strongroom.crypto.rootkey import RootKey
from strongroom.errors import ExpiredTokenException, UnrecognizedClientException
from strongroom.storage import AccessKeyRecord, Store, Tx, UserRecord, iam_store
from strongroom.storage.store import WouldBlock, no_blocking

log = logging.getLogger("strongroom.auth")

_UPPER_DIGITS = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"
UNRECOGNIZED = "The security token included in the request is invalid."
EXPIRED = "The security token included in the request is expired"
LAST_USED_INTERVAL = 900.0  # seconds between writes of an access key's last-used record


def session_purpose(access_key_id: str) -> bytes:
    return b"session-secret:" + access_key_id.encode()


def token_hash(session_token: str) -> str:
    return hashlib.sha256(session_token.encode()).hexdigest()


def access_key_purpose(access_key_id: str) -> bytes:
    return b"access-key-secret:" + access_key_id.encode()


def new_access_key_id(prefix: str = "AKIA") -> str:
    return prefix + "".join(secrets.choice(_UPPER_DIGITS) for _ in range(16))


def new_user_id() -> str:
    return new_unique_id("AIDA")


def new_unique_id(prefix: str) -> str:
    """An IAM unique id: AIDA (user), AROA (role), ANPA (managed policy) + 17 characters."""
    return prefix + "".join(secrets.choice(_UPPER_DIGITS) for _ in range(17))


def new_secret_access_key() -> str:
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


def create_access_key(tx: Tx, root: RootKey, account_id: str, user_name: str, now: float) -> tuple[str, str]:
    """Create a key for a user; the secret half is returned once and stored only wrapped."""
    key_id = new_access_key_id()
    secret = new_secret_access_key()
    tx.insert_access_key(
        AccessKeyRecord(key_id, account_id, user_name, root.wrap(secret.encode(), access_key_purpose(key_id)),
                        "Active", now)
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
    token_hash: str | None = None  # set for session credentials: SHA-256 of the session token
    expiration: float | None = None


class CredentialResolver:
    """Looks up access keys, with a short-lived cache so status changes apply within `ttl` seconds."""

    def __init__(self, store: Store, root: RootKey, ttl: float = 5.0, max_entries: int = 10_000):
        self.store = store
        self.root = root
        self.ttl = ttl
        self.max_entries = max_entries
        self._cache: dict[str, tuple[float, Credential]] = {}
        self._last_used: dict[str, float] = {}
        self._lock = threading.Lock()
        self._generation = 0  # bumped by invalidate(): a load that raced with it is not kept

    def resolve(self, access_key_id: str, security_token: str | None = None) -> Credential:
        """The key's secret and Principal; the token must be the one a session key was issued with."""
        now = time.monotonic()
        with self._lock:
            hit, generation = self._cache.get(access_key_id), self._generation
        if hit is not None and hit[0] > now:
            cred = hit[1]
            metrics.cache_hit("credentials")
        else:
            metrics.cache_miss("credentials")
            cred = self._load(access_key_id)
            with self._lock:
                if len(self._cache) >= self.max_entries:
                    self._cache.clear()
                if generation == self._generation:
                    self._cache[access_key_id] = (now + self.ttl, cred)
        if cred.token_hash is None:
            if security_token is not None:
                raise UnrecognizedClientException(UNRECOGNIZED)
            return cred
        presented = token_hash(security_token) if security_token is not None else ""
        if not hmac.compare_digest(presented.encode(), cred.token_hash.encode()):
            raise UnrecognizedClientException(UNRECOGNIZED)
        if cred.expiration is not None and cred.expiration <= time.time():
            raise ExpiredTokenException(EXPIRED)
        return cred

    def note_used(self, access_key_id: str, service: str, region: str) -> None:
        """Record a long-term key's last use (after its signature verified), at most every 15 minutes."""
        if not access_key_id.startswith("AKIA"):
            return
        now = time.monotonic()
        with self._lock:
            last = self._last_used.get(access_key_id)
            if last is not None and now - last < LAST_USED_INTERVAL:
                return
            if no_blocking.get():
                raise WouldBlock()  # before noting the use: the re-run in a thread writes it
            if len(self._last_used) >= self.max_entries:
                self._last_used.clear()
            self._last_used[access_key_id] = now
        try:
            with self.store.write() as tx:
                iam_store.record_last_used(tx.conn, access_key_id, time.time(), service, region)
        except Exception as exc:  # noqa: BLE001 - bookkeeping must never fail the request it describes
            log.warning("could not record access key use: %s", type(exc).__name__)

    def invalidate(self, access_key_id: str | None = None) -> None:
        """Forget one key, or every key (None or "*": a change other nodes announced)."""
        with self._lock:
            self._generation += 1
            if access_key_id is None or access_key_id == "*":
                self._cache.clear()
            else:
                self._cache.pop(access_key_id, None)

    def _load(self, access_key_id: str) -> Credential:
        if access_key_id.startswith("ASIA"):
            return self._load_session(access_key_id)
        with self.store.read() as tx:
            key = tx.get_access_key(access_key_id)
            user = tx.get_user(key.account_id, key.user_name) if key else None
        if key is None or user is None or key.status != "Active":
            raise UnrecognizedClientException(UNRECOGNIZED)
        secret = self.root.unwrap(key.secret_wrapped, access_key_purpose(access_key_id)).decode()
        return Credential(secret, user_principal(user, access_key_id))

    def _load_session(self, access_key_id: str) -> Credential:
        with self.store.read() as tx:
            session = iam_store.get_session(tx.conn, access_key_id)
            role = iam_store.get_role(tx.conn, session.account_id, session.role_name) if session else None
        # A session outlives neither its role nor a role recreated under the same name.
        if session is None or role is None or role.role_id != session.role_id:
            raise UnrecognizedClientException(UNRECOGNIZED)
        secret = self.root.unwrap(session.secret_wrapped, session_purpose(access_key_id)).decode()
        tags = {t["Key"]: t["Value"] for t in role.tags}
        for tag in session.session_tags:  # session tags override role tags, keys compared case-insensitively
            for key in [k for k in tags if k.lower() == tag["Key"].lower()]:
                del tags[key]
            tags[tag["Key"]] = tag["Value"]
        principal = Principal(
            account_id=session.account_id,
            arn=assumed_role_arn(session.account_id, session.role_name, session.session_name),
            principal_id=f"{session.role_id}:{session.session_name}",
            access_key_id=access_key_id,
            type="AssumedRole",
            name=session.session_name,
            tags=tags,
            role_name=role.role_name,
            role_arn=role.arn,
            session_name=session.session_name,
            session_expiration=session.expiration,
            session_created=session.created_date,
            session_policy=session.session_policy,
            session_policy_arns=tuple(session.policy_arns),
            transitive_tag_keys=tuple(session.transitive_tag_keys),
        )
        return Credential(secret, principal, token_hash=session.token_hash, expiration=session.expiration)


def user_principal(user: UserRecord, access_key_id: str = "") -> Principal:
    """The caller a user's access key makes: its tags are the request's aws:PrincipalTag keys."""
    return Principal(
        account_id=user.account_id,
        arn=user_arn(user.account_id, user.path, user.user_name),
        principal_id=user.user_id,
        access_key_id=access_key_id,
        type="IAMUser",
        name=user.user_name,
        tags={t["Key"]: t["Value"] for t in json.loads(user.tags or "[]")},
        is_admin=user.is_admin,
    )


def assumed_role_arn(account_id: str, role_name: str, session_name: str) -> str:
    return f"arn:aws:sts::{account_id}:assumed-role/{role_name}/{session_name}"


def new_account_id() -> str:
    return str(uuid.uuid4().int % 10**12).zfill(12)
