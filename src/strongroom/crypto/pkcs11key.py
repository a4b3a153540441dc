"""The PKCS#11 root-key source: an AES-256 key inside an HSM that never leaves it.

Wrapping is AES-GCM performed by the token (CKM_AES_GCM, a random 96-bit IV,
the purpose as authenticated data); strongroom stores `iv || ciphertext || tag`
and never sees the key. The key is created non-extractable and sensitive, so
even the token's own API refuses to export it.

One session is opened at start and used under a lock: PKCS#11 sessions must
not be used by two threads at once, and the KMS material cache keeps HSM
round trips rare. A session the token dropped is reopened once per call.
python-pkcs11 is an optional dependency (`pip install 'strongroom[pkcs11]'`).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

from strongroom.crypto.localkey import WRAP_AAD
from strongroom.crypto.rootkey import RootKeyError

SOURCE = "pkcs11"
IV_SIZE = 12
_libs: dict[str, Any] = {}  # module path -> pkcs11.lib: a module is initialized once per process
_libs_lock = threading.Lock()


@dataclass(frozen=True)
class Pkcs11Config:
    module: str
    token_label: str
    key_label: str
    pin: str

    @property
    def key_id(self) -> str:
        return f"{SOURCE}:{self.token_label}/{self.key_label}"


def _pkcs11() -> Any:
    try:
        import pkcs11
    except ImportError:
        raise RootKeyError("the pkcs11 root key needs python-pkcs11: pip install 'strongroom[pkcs11]'") from None
    return pkcs11


def _lib(module: str) -> Any:
    pkcs11 = _pkcs11()
    with _libs_lock:
        if module not in _libs:
            if not os.path.exists(module):
                raise RootKeyError(f"PKCS#11 module {module} does not exist")
            _libs[module] = pkcs11.lib(module)
        return _libs[module]


def _open_session(config: Pkcs11Config, *, rw: bool = False) -> Any:
    pkcs11 = _pkcs11()
    try:
        token = _lib(config.module).get_token(token_label=config.token_label)
        return token.open(user_pin=config.pin, rw=rw)
    except pkcs11.exceptions.NoSuchToken:
        raise RootKeyError(f"no PKCS#11 token labelled {config.token_label!r}") from None
    except pkcs11.exceptions.PinIncorrect:
        raise RootKeyError(f"wrong PIN for PKCS#11 token {config.token_label!r}") from None
    except pkcs11.exceptions.PKCS11Error as exc:
        raise RootKeyError(f"cannot open PKCS#11 token {config.token_label!r}: {type(exc).__name__}") from None


def _find_key(session: Any, config: Pkcs11Config) -> Any:
    pkcs11 = _pkcs11()
    try:
        return session.get_key(label=config.key_label, key_type=pkcs11.KeyType.AES,
                               object_class=pkcs11.ObjectClass.SECRET_KEY)
    except pkcs11.exceptions.NoSuchKey:
        raise RootKeyError(f"no AES key labelled {config.key_label!r} on token {config.token_label!r}") from None
    except pkcs11.exceptions.MultipleObjectsReturned:
        raise RootKeyError(f"several keys are labelled {config.key_label!r} on token {config.token_label!r}") from None


def generate(config: Pkcs11Config) -> None:
    """Create the AES-256 root key in the token (sensitive, non-extractable); refuse if the label is taken."""
    pkcs11 = _pkcs11()
    session = _open_session(config, rw=True)
    try:
        try:
            _find_key(session, config)
        except RootKeyError:
            pass
        else:
            raise RootKeyError(f"token {config.token_label!r} already holds a key labelled {config.key_label!r}")
        attr = pkcs11.Attribute
        session.generate_key(pkcs11.KeyType.AES, 256, label=config.key_label, store=True, template={
            attr.SENSITIVE: True, attr.EXTRACTABLE: False, attr.ENCRYPT: True, attr.DECRYPT: True,
            attr.WRAP: False, attr.UNWRAP: False, attr.TOKEN: True, attr.PRIVATE: True,
        })
    finally:
        session.close()


class Pkcs11RootKey:
    """Wraps and unwraps inside the token; `key_id` is `pkcs11:<token label>/<key label>`."""

    def __init__(self, config: Pkcs11Config):
        self.config = config
        self.key_id = config.key_id
        self._lock = threading.Lock()
        self._session: Any = None
        self._key: Any = None
        self._connect()

    def _connect(self) -> None:
        if self._session is not None:
            try:
                self._session.close()
            except Exception:  # noqa: BLE001 - a dead session may fail to close; it is replaced anyway
                pass
        self._session = _open_session(self.config)
        self._key = _find_key(self._session, self.config)

    def _call(self, op: str, data: bytes, iv: bytes, aad: bytes) -> bytes:
        pkcs11 = _pkcs11()
        params = pkcs11.mechanisms.GCMParams(iv, aad, 128)
        with self._lock:
            for attempt in (1, 2):
                try:
                    fn = self._key.encrypt if op == "encrypt" else self._key.decrypt
                    return bytes(fn(data, mechanism=pkcs11.Mechanism.AES_GCM, mechanism_param=params))
                except (pkcs11.exceptions.SessionHandleInvalid, pkcs11.exceptions.SessionClosed,
                        pkcs11.exceptions.DeviceRemoved, pkcs11.exceptions.TokenNotPresent):
                    if attempt == 2:
                        raise RootKeyError("the PKCS#11 token is unavailable") from None
                    self._connect()
        raise AssertionError("unreachable")

    def wrap(self, plaintext: bytes, purpose: bytes) -> bytes:
        iv = os.urandom(IV_SIZE)
        try:
            return iv + self._call("encrypt", plaintext, iv, WRAP_AAD + purpose)
        except _pkcs11().exceptions.PKCS11Error as exc:
            raise RootKeyError(f"the PKCS#11 token refused to wrap: {type(exc).__name__}") from None

    def unwrap(self, blob: bytes, purpose: bytes) -> bytes:
        if len(blob) < IV_SIZE + 16:
            raise RootKeyError("data was not wrapped by this root key (too short)")
        try:
            return self._call("decrypt", blob[IV_SIZE:], blob[:IV_SIZE], WRAP_AAD + purpose)
        except _pkcs11().exceptions.PKCS11Error:
            # The token does not say why; a tag mismatch is by far the usual reason.
            raise RootKeyError("data was not wrapped by this root key (or was altered)") from None

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None
