"""Root-key sources as config.toml names them: load one, create one, retire one.

A *spec* is the `[root_key]` table (or the same shape recorded in a rekey's
progress marker): `source` plus that source's settings. Specs hold no secret:
a PKCS#11 PIN is named by the environment variable that holds it (`pin_env`),
or written in the file by the operator who accepts that (`pin`).

    file        path = "root.key"                   (default; relative to the data directory)
    passphrase  path = "root-passphrase.json", root_key_id = "passphrase:..."
    pkcs11      module, token_label, key_label, pin_env = "STRONGROOM_PKCS11_PIN" (or pin)
    kms         endpoint_url, key_id, region, profile, path = "root-kms.json"
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strongroom.config import ROOT_KEY_FILE
from strongroom.crypto import kmskey, passphrase, pkcs11key
from strongroom.crypto.localkey import LocalRootKey
from strongroom.crypto.passphrase import write_private
from strongroom.crypto.rootchain import SEALED_MESSAGE, SealedError
from strongroom.crypto.rootkey import FileRootKey, RootKey, RootKeyError

Spec = dict[str, Any]
SOURCES = ("file", "passphrase", "pkcs11", "kms")
DEFAULT_PIN_ENV = "STRONGROOM_PKCS11_PIN"


def normalize(spec: Spec | None) -> Spec:
    out = dict(spec or {})
    out.setdefault("source", "file")
    if out["source"] not in SOURCES:
        raise RootKeyError(f"unknown root key source {out['source']!r} (expected one of {', '.join(SOURCES)})")
    return out


def needs_unseal(spec: Spec) -> bool:
    return normalize(spec)["source"] == "passphrase"


def describe(spec: Spec) -> str:
    spec = normalize(spec)
    match spec["source"]:
        case "pkcs11":
            return f"pkcs11 (token {spec.get('token_label')!r}, key {spec.get('key_label')!r})"
        case "kms":
            return f"kms ({spec.get('key_id')} at {spec.get('endpoint_url') or 'AWS'})"
        case "passphrase":
            return f"passphrase ({spec.get('path', passphrase.VAULT_FILE)})"
        case _:
            return f"file ({spec.get('path', ROOT_KEY_FILE)})"


def _path(data_dir: Path, spec: Spec, default: str) -> Path:
    return data_dir / spec.get("path", default)  # an absolute path stays absolute


def pkcs11_config(spec: Spec) -> pkcs11key.Pkcs11Config:
    missing = [k for k in ("module", "token_label", "key_label") if not spec.get(k)]
    if missing:
        raise RootKeyError(f"[root_key] source = \"pkcs11\" needs {', '.join(missing)}")
    pin = spec.get("pin")
    if pin is None:
        env = spec.get("pin_env", DEFAULT_PIN_ENV)
        pin = os.environ.get(env)
        if pin is None:
            raise RootKeyError(f"the PKCS#11 PIN is read from ${env}, which is not set")
    return pkcs11key.Pkcs11Config(spec["module"], spec["token_label"], spec["key_label"], str(pin))


def kms_config(spec: Spec) -> kmskey.KmsConfig:
    if not spec.get("key_id"):
        raise RootKeyError('[root_key] source = "kms" needs key_id (the external KMS key)')
    return kmskey.KmsConfig(spec.get("endpoint_url"), spec["key_id"], spec.get("region", "us-east-1"),
                            spec.get("profile"))


def load(spec: Spec, data_dir: Path, kek: bytes | None = None) -> RootKey:
    """The root key `spec` names. A passphrase source needs the KEK from unsealing (else SealedError)."""
    spec = normalize(spec)
    match spec["source"]:
        case "file":
            return FileRootKey.load(_path(data_dir, spec, ROOT_KEY_FILE))
        case "passphrase":
            if kek is None:
                raise SealedError(SEALED_MESSAGE)
            vault = passphrase.Vault.load(_path(data_dir, spec, passphrase.VAULT_FILE))
            return vault.open(kek, spec.get("root_key_id"))
        case "pkcs11":
            return pkcs11key.Pkcs11RootKey(pkcs11_config(spec))
        case _:
            return kmskey.load(_path(data_dir, spec, kmskey.DATA_KEY_FILE), kms_config(spec))


def vault_of(spec: Spec, data_dir: Path) -> passphrase.Vault:
    return passphrase.Vault.load(_path(data_dir, normalize(spec), passphrase.VAULT_FILE))


@dataclass
class Created:
    """A new root key and the spec that loads it again; `shares` are shown once, never stored.

    `handoff` is what another node sharing the database needs to load the same key from its
    own data directory (see `adopt`): the raw key (file and passphrase sources) and the files
    the spec names (a new passphrase vault, a KMS data-key blob). Empty for PKCS#11, whose
    key every node reaches through the HSM. It is only ever stored wrapped by the old root key.
    """

    spec: Spec
    key: RootKey
    kek: bytes | None = None
    shares: list[str] = field(default_factory=list)
    handoff: dict[str, Any] = field(default_factory=dict)


def _raw(key: RootKey) -> bytes:
    # The one place a root key's bytes leave the object: to be wrapped, at once, by the old
    # root key for the other nodes (rekey hand-off). File and in-memory keys keep them in _key.
    return bytes(key._key)  # type: ignore[attr-defined]


def _file(data_dir: Path, name: str) -> dict[str, str]:
    return {name: base64.b64encode(_path(data_dir, {"path": name}, name).read_bytes()).decode()}


def encode_handoff(payload: dict[str, Any]) -> bytes:
    out = {"key": base64.b64encode(payload["key"]).decode() if payload.get("key") else None,
           "files": payload.get("files", {})}
    return json.dumps(out, sort_keys=True).encode()


def adopt(spec: Spec, data_dir: Path, handoff: bytes, kek: bytes | None = None) -> RootKey:
    """Load the key `spec` names from a hand-off another node made (already unwrapped), writing
    what `spec` needs into this data directory first so that the next start loads it alone.

    Files already present are kept (a node adopting twice, or a path on shared storage).
    """
    spec = normalize(spec)
    try:
        payload = json.loads(handoff)
        raw = base64.b64decode(payload["key"]) if payload.get("key") else None
        files = {name: base64.b64decode(b64) for name, b64 in (payload.get("files") or {}).items()}
    except (ValueError, KeyError, TypeError):
        raise RootKeyError("the rekey hand-off in the database is malformed") from None
    for name, content in files.items():
        path = _path(data_dir, {"path": name}, name)
        if not path.exists():
            write_private(path, content)
    match spec["source"]:
        case "file":
            path = _path(data_dir, spec, ROOT_KEY_FILE)
            if not path.exists():
                if raw is None:
                    raise RootKeyError("the rekey hand-off holds no key file")
                write_private(path, raw)
            return FileRootKey.load(path)
        case "passphrase":
            if raw is None:
                raise RootKeyError("the rekey hand-off holds no passphrase root key")
            key = LocalRootKey(raw, passphrase.SOURCE)
            vault = vault_of(spec, data_dir)
            if key.key_id not in vault.keys:
                # Same vault as this node's (a rekey within the passphrase source): add the key
                # under the KEK this node was unsealed with, so the next unseal opens it.
                if kek is None:
                    raise SealedError(SEALED_MESSAGE)
                vault.check(kek)
                vault.add_raw(kek, raw)
                vault.save()
            return key
        case _:
            return load(spec, data_dir, kek)


def _stamp() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%f")


def create(options: Spec, data_dir: Path, *, current: Spec | None = None, kek: bytes | None = None) -> Created:
    """Create a root key as `options` (a spec, plus `passphrase` / `shares` / `threshold`) say.

    Without `current` this is `strongroom init`: default file names. With
    `current` (a rekey) new files get fresh names, and a passphrase source
    that keeps its vault adds the new key to it under the KEK it was unsealed with.
    """
    spec = normalize({k: v for k, v in options.items() if k not in ("passphrase", "shares", "threshold")})
    rekey = current is not None
    match spec["source"]:
        case "file":
            name = spec.get("path") or (f"root-{_stamp()}.key" if rekey else ROOT_KEY_FILE)
            key: RootKey = FileRootKey.create(_path(data_dir, {"path": name}, ROOT_KEY_FILE))
            if name != ROOT_KEY_FILE:
                spec["path"] = name
            return Created(spec, key, handoff={"key": _raw(key)})
        case "passphrase":
            return _create_passphrase(spec, options, data_dir, current, kek)
        case "pkcs11":
            if rekey and normalize(current)["source"] == "pkcs11":
                base = normalize(current)
                spec = {**base, **spec}
                if not options.get("key_label"):  # same token, a new key beside the old one
                    spec["key_label"] = f"{base['key_label']}-{_stamp()}"
            spec.setdefault("pin_env", DEFAULT_PIN_ENV)
            config = pkcs11_config(spec)
            if not rekey:
                try:  # init adopts a key the operator already created in the token
                    return Created(spec, pkcs11key.Pkcs11RootKey(config))
                except RootKeyError:
                    pass
            pkcs11key.generate(config)
            return Created(spec, pkcs11key.Pkcs11RootKey(config))
        case _:
            if rekey and normalize(current)["source"] == "kms":
                spec = {**{k: v for k, v in normalize(current).items() if k != "path"}, **spec}
            name = spec.get("path") or (f"root-kms-{_stamp()}.json" if rekey else kmskey.DATA_KEY_FILE)
            spec["path"] = name
            created = Created(spec, kmskey.create(_path(data_dir, spec, kmskey.DATA_KEY_FILE), kms_config(spec)))
            # Only the external KMS's ciphertext: each node calls Decrypt itself, so the external
            # key keeps gating every node (the kill switch), not just the one that rekeyed.
            created.handoff = {"files": _file(data_dir, name)}
            return created


def _create_passphrase(spec: Spec, options: Spec, data_dir: Path, current: Spec | None,
                       kek: bytes | None) -> Created:
    fresh = bool(options.get("passphrase") or options.get("shares"))
    if current is not None and normalize(current)["source"] == "passphrase" and not fresh:
        # Same vault, same passphrase or shares: a new root key under the KEK already unsealed.
        if kek is None:
            raise SealedError(SEALED_MESSAGE)
        spec = {k: v for k, v in normalize(current).items() if k != "root_key_id"}
        vault = vault_of(spec, data_dir)
        vault.check(kek)
        key = vault.add_key(kek)
        vault.save()
        return Created({**spec, "root_key_id": key.key_id}, key, kek, handoff={"key": _raw(key)})
    name = spec.get("path") or passphrase.VAULT_FILE
    path = _path(data_dir, {"path": name}, passphrase.VAULT_FILE)
    if path.exists():
        if current is None or spec.get("path"):
            raise RootKeyError(f"{path} already exists")
        name = f"root-passphrase-{_stamp()}.json"
        path = data_dir / name
    shares: list[str] = []
    if options.get("shares"):
        vault, new_kek, shares = passphrase.Vault.create_with_shares(
            path, int(options["shares"]), int(options.get("threshold") or options["shares"]))
    elif options.get("passphrase"):
        vault, new_kek = passphrase.Vault.create_with_passphrase(path, str(options["passphrase"]))
    else:
        raise RootKeyError("a passphrase root key needs a passphrase, or --shares and --threshold")
    key = vault.add_key(new_kek)
    vault.save()
    out = {"source": "passphrase", "root_key_id": key.key_id}
    if name != passphrase.VAULT_FILE:
        out["path"] = name
    # The other nodes get the new vault (to unseal with the new passphrase or shares after
    # their next start) and the key itself (to follow the rekey now, without unsealing).
    return Created(out, key, new_kek, shares, handoff={"key": _raw(key), "files": _file(data_dir, name)})


def retire(old: Spec, old_key_id: str, new: Spec, data_dir: Path) -> list[str]:
    """Forget the old root key where strongroom keeps it; notes for what the operator removes."""
    old, new = normalize(old), normalize(new)
    match old["source"]:
        case "passphrase":
            old_path = _path(data_dir, old, passphrase.VAULT_FILE)
            if new["source"] == "passphrase" and old_path == _path(data_dir, new, passphrase.VAULT_FILE):
                vault = passphrase.Vault.load(old_path)
                vault.remove_key(old_key_id)
                vault.save()
                return []
            return [f"the old passphrase vault {old_path} is no longer used; remove it"]
        case "file":
            return [f"the old root key file {_path(data_dir, old, ROOT_KEY_FILE)} is no longer used; "
                    "remove it once no backup needs it"]
        case "pkcs11":
            return [f"the old key {old.get('key_label')!r} on token {old.get('token_label')!r} is no longer "
                    "used; destroy it once no backup needs it"]
        case _:
            return [f"the old data key file {_path(data_dir, old, kmskey.DATA_KEY_FILE)} is no longer used; "
                    "remove it once no backup needs it"]
