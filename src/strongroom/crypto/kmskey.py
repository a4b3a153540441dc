"""The external-KMS root-key source: a data key from an AWS-KMS-compatible service.

At init strongroom asks the external KMS (AWS KMS, or another strongroom) for
a data key (GenerateDataKey, AES_256) and stores only the ciphertext blob in
the data directory; at start it asks the KMS to Decrypt that blob and keeps
the plaintext data key in memory, wrapping locally with it. The KMS key
therefore gates every start: disabling it, or revoking kms:Decrypt in its
key policy, keeps strongroom from starting (a kill switch held outside).

The encryption context binds the blob to its purpose, so a data key made for
something else under the same KMS key is refused.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strongroom.crypto.localkey import LocalRootKey
from strongroom.crypto.passphrase import write_private
from strongroom.crypto.rootkey import RootKeyError

SOURCE = "kms"
DATA_KEY_FILE = "root-kms.json"
FORMAT = "strongroom-kms-data-key/1"
CONTEXT = {"strongroom:purpose": "root-key"}


@dataclass(frozen=True)
class KmsConfig:
    endpoint_url: str | None
    kms_key_id: str
    region: str
    profile: str | None = None

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        session = boto3.Session(profile_name=self.profile) if self.profile else boto3.Session()
        return session.client("kms", endpoint_url=self.endpoint_url or None, region_name=self.region,
                              config=Config(retries={"max_attempts": 5, "mode": "standard"},
                                            connect_timeout=5, read_timeout=30))


def _kms_failure(action: str, exc: Exception) -> RootKeyError:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
    return RootKeyError(f"the external KMS refused {action}: {code or type(exc).__name__}")


def create(path: Path, config: KmsConfig) -> LocalRootKey:
    """GenerateDataKey under the external key; store its ciphertext at `path` (refuse to overwrite)."""
    if path.exists():
        raise RootKeyError(f"{path} already exists")
    try:
        out = config.client().generate_data_key(KeyId=config.kms_key_id, KeySpec="AES_256",
                                                EncryptionContext=CONTEXT)
    except Exception as exc:  # noqa: BLE001 - botocore raises many types; all mean "no key"
        raise _kms_failure("GenerateDataKey", exc) from None
    key = LocalRootKey(out["Plaintext"], SOURCE)
    write_private(path, json.dumps({
        "format": FORMAT, "kms_key_id": out["KeyId"], "key_id": key.key_id,
        "ciphertext": base64.b64encode(out["CiphertextBlob"]).decode(),
    }, indent=2).encode())
    return key


def load(path: Path, config: KmsConfig) -> LocalRootKey:
    """Decrypt the stored data key through the external KMS."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise RootKeyError(f"{path} does not exist; run `strongroom init --root-key kms`") from None
    except (OSError, ValueError) as exc:
        raise RootKeyError(f"cannot read {path}: {type(exc).__name__}") from None
    if data.get("format") != FORMAT:
        raise RootKeyError(f"{path} is not a strongroom KMS data key file")
    try:
        out = config.client().decrypt(CiphertextBlob=base64.b64decode(data["ciphertext"]),
                                      EncryptionContext=CONTEXT, KeyId=data["kms_key_id"])
    except Exception as exc:  # noqa: BLE001 - see create
        raise _kms_failure("Decrypt", exc) from None
    key = LocalRootKey(out["Plaintext"], SOURCE)
    if key.key_id != data.get("key_id"):
        raise RootKeyError(f"{path} does not match the data key the external KMS returned")
    return key
