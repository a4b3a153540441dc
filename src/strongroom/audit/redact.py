"""Make request parameters and response elements safe to record.

Two independent nets, both applied recursively: the botocore model's `sensitive` trait
(on the member or its shape), and a deny-list of member names for what the model does not
mark (STS's SessionToken, KMS's CiphertextBlob) or what arrives outside any shape. Every
blob is hidden whatever its name: an audit trail never needs key material or ciphertext.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape

HIDDEN = "HIDDEN_DUE_TO_SECURITY_REASONS"

# Compared case-insensitively, ignoring '_' and '-' (so session_token, sessionToken match).
DENY = frozenset(n.lower() for n in (
    "SecretString", "SecretBinary", "SecretValue", "Plaintext", "CiphertextBlob", "CiphertextForRecipient",
    "SessionToken", "SecurityToken", "SecretAccessKey", "RawSecretAccessKey", "RandomPassword", "Password",
    "NewPassword", "OldPassword", "KeyStorePassword", "PrivateKey", "PrivateKeyPlaintext",
    "PrivateKeyCiphertextBlob", "AddPrivateKey", "SharedSecret", "SAMLAssertion", "WebIdentityToken",
    "TradeInToken", "TokenCode", "RotationToken", "ServicePassword", "ServiceCredentialSecret",
    "Base32StringSeed", "QRCodePNG", "KeyMaterial", "EncryptedKeyMaterial", "ImportToken", "Authorization",
    "MasterUserPassword", "ClientSecret",
    # strongroom's own admin endpoint (unseal): key shares and passphrases.
    "Share", "Passphrase", "Shares",
))


@lru_cache(maxsize=4096)  # member names repeat: the same few hundred across every request
def _denied(name: str) -> bool:
    return name.replace("_", "").replace("-", "").lower() in DENY


def camel(name: str) -> str:
    """CloudTrail's member names: lowerCamelCase (SecretId -> secretId, ARN -> arn)."""
    return name.lower() if name.isupper() else name[:1].lower() + name[1:]


@lru_cache(maxsize=None)
def _service_model(name: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(name)


@lru_cache(maxsize=2048)
def operation_model(model_name: str, operation: str) -> OperationModel | None:
    try:
        return _service_model(model_name).operation_model(operation)
    except Exception:  # noqa: BLE001 - an unknown service or operation is recorded without a model
        return None


class Redactor:
    """One pass over a value; remembers each hidden string so error messages can be scrubbed too."""

    def __init__(self) -> None:
        self.hidden: list[str] = []

    def _hide(self, value: Any) -> str:
        if isinstance(value, str) and len(value) >= 4:
            self.hidden.append(value)
        return HIDDEN

    def walk(self, shape: Shape | None, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, (bytes, bytearray, memoryview)):
            return self._hide(value)
        if shape is not None and shape.metadata.get("sensitive"):
            return self._hide(value)
        if isinstance(value, dict):
            members = shape.members if shape is not None and shape.type_name == "structure" else None
            inner = shape.value if shape is not None and shape.type_name == "map" else None
            out: dict[str, Any] = {}
            for key, item in value.items():
                key = str(key)
                if _denied(key):
                    out[camel(key) if members is not None else key] = self._hide(item)
                elif members is not None:
                    out[camel(key)] = self.walk(members.get(key), item)
                else:
                    out[key] = self.walk(inner, item)
            return out
        if isinstance(value, (list, tuple)):
            member = shape.member if shape is not None and shape.type_name == "list" else None
            return [self.walk(member, v) for v in value]
        if isinstance(value, dt.datetime):
            return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        if isinstance(value, (str, int, float, bool)):
            return value
        return str(value)

    def scrub(self, text: str | None) -> str | None:
        """An error message without any hidden value quoted in it."""
        if not text:
            return text
        for secret in self.hidden:
            if secret in text:
                text = text.replace(secret, HIDDEN)
        return text


def request_parameters(redactor: Redactor, op: OperationModel | None, params: dict[str, Any] | None) -> Any:
    if params is None:
        return None
    return redactor.walk(op.input_shape if op is not None else None, params)


def response_elements(redactor: Redactor, op: OperationModel | None, result: dict[str, Any] | None) -> Any:
    if not result:
        return None
    return redactor.walk(op.output_shape if op is not None else None, result)
