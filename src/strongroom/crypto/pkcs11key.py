"""The PKCS#11 root-key source: an AES-256 key inside an HSM that never leaves it.

Wrapping is AES-GCM performed by the token (CKM_AES_GCM, a random 96-bit IV,
the purpose as authenticated data); strongroom stores `iv || ciphertext || tag`
and never sees the key. The key is created non-extractable and sensitive, so
even the token's own API refuses to export it.

One logged-in session per token is shared by every key of the process (PKCS#11
login state belongs to the application, so a second login fails), used under a
lock: a session must not be used by two threads at once, and the KMS material
cache keeps HSM round trips rare. A session the token dropped is reopened once
per call.
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
_tokens: dict[tuple[str, str], "_Token"] = {}  # (module, token label) -> its shared session
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


def _open_session(config: Pkcs11Config) -> Any:
    pkcs11 = _pkcs11()
    try:
        token = _lib(config.module).get_token(token_label=config.token_label)
        return token.open(user_pin=config.pin, rw=True)
    except pkcs11.exceptions.NoSuchToken:
        raise RootKeyError(f"no PKCS#11 token labelled {config.token_label!r}") from None
    except pkcs11.exceptions.PinIncorrect:
        raise RootKeyError(f"wrong PIN for PKCS#11 token {config.token_label!r}") from None
    except pkcs11.exceptions.PKCS11Error as exc:
        raise RootKeyError(f"cannot open PKCS#11 token {config.token_label!r}: {type(exc).__name__}") from None


class _Token:
    """The process's one session with a token, and the handles of the keys found in it."""

    def __init__(self, config: Pkcs11Config):
        self.config = config
        self.lock = threading.Lock()
        self.session: Any = _open_session(config)
        self.keys: dict[str, Any] = {}

    def reopen(self) -> None:
        try:
            self.session.close()
        except Exception:  # noqa: BLE001 - a dead session may fail to close; it is replaced anyway
            pass
        self.keys.clear()
        self.session = _open_session(self.config)

    def key(self, label: str) -> Any:
        """The AES key labelled `label` (call with the lock held)."""
        if label not in self.keys:
            pkcs11 = _pkcs11()
            try:
                self.keys[label] = self.session.get_key(label=label, key_type=pkcs11.KeyType.AES,
                                                        object_class=pkcs11.ObjectClass.SECRET_KEY)
            except pkcs11.exceptions.NoSuchKey:
                raise RootKeyError(f"no AES key labelled {label!r} on token {self.config.token_label!r}") from None
            except pkcs11.exceptions.MultipleObjectsReturned:
                raise RootKeyError(f"several keys are labelled {label!r} on token "
                                   f"{self.config.token_label!r}") from None
        return self.keys[label]


def _token(config: Pkcs11Config) -> _Token:
    with _libs_lock:
        token = _tokens.get((config.module, config.token_label))
    if token is None:
        token = _Token(config)  # outside the lock: opening may take a while; a racing duplicate is dropped
        with _libs_lock:
            token = _tokens.setdefault((config.module, config.token_label), token)
    return token


def generate(config: Pkcs11Config) -> None:
    """Create the AES-256 root key in the token (sensitive, non-extractable); refuse if the label is taken."""
    pkcs11 = _pkcs11()
    token = _token(config)
    with token.lock:
        try:
            token.key(config.key_label)
        except RootKeyError:
            pass
        else:
            raise RootKeyError(f"token {config.token_label!r} already holds a key labelled {config.key_label!r}")
        attr = pkcs11.Attribute
        try:
            token.session.generate_key(pkcs11.KeyType.AES, 256, label=config.key_label, store=True, template={
                attr.SENSITIVE: True, attr.EXTRACTABLE: False, attr.ENCRYPT: True, attr.DECRYPT: True,
                attr.WRAP: False, attr.UNWRAP: False, attr.TOKEN: True, attr.PRIVATE: True,
            })
        except pkcs11.exceptions.PKCS11Error as exc:
            raise RootKeyError(f"the PKCS#11 token refused to create the key: {type(exc).__name__}") from None


class Pkcs11RootKey:
    """Wraps and unwraps inside the token; `key_id` is `pkcs11:<token label>/<key label>`."""

    def __init__(self, config: Pkcs11Config):
        self.config = config
        self.key_id = config.key_id
        self._token = _token(config)
        with self._token.lock:
            self._token.key(config.key_label)  # RootKeyError now, not at the first request

    def _call(self, op: str, data: bytes, iv: bytes, aad: bytes) -> bytes:
        pkcs11 = _pkcs11()
        params = pkcs11.mechanisms.GCMParams(iv, aad, 128)
        token = self._token
        with token.lock:
            for attempt in (1, 2):
                try:
                    key = token.key(self.config.key_label)
                    fn = key.encrypt if op == "encrypt" else key.decrypt
                    return bytes(fn(data, mechanism=pkcs11.Mechanism.AES_GCM, mechanism_param=params))
                except (pkcs11.exceptions.SessionHandleInvalid, pkcs11.exceptions.SessionClosed,
                        pkcs11.exceptions.DeviceRemoved, pkcs11.exceptions.TokenNotPresent):
                    if attempt == 2:
                        raise RootKeyError("the PKCS#11 token is unavailable") from None
                    token.reopen()
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
