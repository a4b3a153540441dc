"""Records of administrative actions that do not go through the API.

`strongroom iam ...`, `iam apply` and `account create` act on the database directly, and the
local admin endpoint (unseal, seal, rekey, status) is not an AWS operation: none of them
passes the gateway's observer, so each records itself here, in the same CloudTrail shape,
appended to the same hash chain.

A command-line process is short-lived, so it runs its own `AuditWriter`: appends lock the
chain head row exactly as a server's writer does, so a CLI and running servers extend one
chain without forking it. The CLI process signs a digest when it closes if it can read the
signing key (it can read the data directory, so normally it can); otherwise the next digest
a server writes covers its events.

The same rule as for API calls holds: a change first checks that its record can be written
(fail closed), so with the trail down the command refuses before it acts.
"""

from __future__ import annotations

import datetime as dt
import getpass
import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strongroom.audit.record import Call, Event, build
from strongroom.ids import unique_id
from strongroom.audit.signing import SigningKeyError, load_private
from strongroom.audit.writer import AuditUnavailable, AuditWriter
from strongroom.context import Principal
from strongroom.storage import Store

log = logging.getLogger("strongroom.audit")

CLI_USER_AGENT = "strongroom-cli"
# Where a local command ran: CloudTrail's sourceIPAddress is a network address, and these
# actions have none; the host and OS user go to additionalEventData.
LOCAL_SOURCE = "localhost"
ADMIN_SOURCE = "strongroom.amazonaws.com"  # the eventSource of admin-endpoint actions


def root_principal(account_id: str) -> Principal:
    """The account's root, as CloudTrail names it: who the local IAM commands act as."""
    return Principal(account_id=account_id, arn=f"arn:aws:iam::{account_id}:root", principal_id=account_id,
                     access_key_id="", type="Root", name="root", is_admin=True)


def local_context(command: str | None = None) -> dict[str, Any]:
    """additionalEventData of a local action: which machine, which OS user, which command."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in this environment (containers)
        user = str(os.getuid()) if hasattr(os, "getuid") else ""
    out: dict[str, Any] = {"host": socket.gethostname(), "osUser": user, "pid": os.getpid()}
    if command:
        out["command"] = command
    return out


def local_event(*, service: str, operation: str, region: str, principal: Principal | None,
                params: dict[str, Any] | None, result: dict[str, Any] | None = None,
                error_code: str | None = None, error_message: str | None = None, model_name: str | None = None,
                user_agent: str = CLI_USER_AGENT, source_ip: str = LOCAL_SOURCE,
                identity: dict[str, Any] | None = None, details: dict[str, Any] | None = None) -> Event:
    """A CloudTrail record of a local action, built (and redacted) exactly as an API call's is."""
    event = build(Call(service=service, operation=operation, region=region, request_id=unique_id(),
                       time=dt.datetime.now(dt.timezone.utc), source_ip=source_ip, user_agent=user_agent,
                       principal=principal, model_name=model_name, params=params, result=result,
                       error_code=error_code, error_message=error_message))
    if identity is not None:  # an actor that is not an account principal (the admin token's holder)
        event.record["userIdentity"] = identity
    if details:
        event.record["additionalEventData"] = details
    return event


@dataclass
class LocalTrail:
    """A short-lived writer for one process's local actions (see the module docstring)."""

    store: Store
    key: Any = None  # Ed25519PrivateKey, or None to leave signing to the servers
    fail_closed: bool = True
    command: str | None = None
    _writer: AuditWriter | None = field(default=None, repr=False)

    @classmethod
    def for_settings(cls, store: Store, settings: Any, command: str | None = None) -> "LocalTrail":
        """The trail as the data directory's config.toml describes it ([audit] fail_mode, signing key)."""
        from strongroom.audit.settings import audit_settings

        audit = audit_settings(settings.audit, settings.data_dir)
        return cls(store, key=_signing_key(audit.signing_key_path), fail_closed=audit.fail_mode == "closed",
                   command=command)

    def _running(self) -> AuditWriter:
        if self._writer is None:
            # digest_every: a command writes a handful of events; its one digest comes at close.
            self._writer = AuditWriter(self.store, self.key, digest_every=1_000_000, digest_interval=3600.0)
            self._writer.start()
        return self._writer

    def preflight(self) -> None:
        """Before a change acts: AuditUnavailable unless its record could be written (fail closed)."""
        if self.fail_closed:
            self._running().probe()

    def append(self, event: Event) -> None:
        if self.command and "additionalEventData" not in event.record:
            event.record["additionalEventData"] = local_context(self.command)
        try:
            self._running().append_sync(event)
        except AuditUnavailable as exc:
            if self.fail_closed:
                raise
            log.critical("AUDIT RECORD LOST (fail_mode=open): event_id=%s event=%s cause=%s", event.event_id,
                         event.event_name, exc)

    def close(self) -> None:
        """Commit what is queued and sign a digest over it (when the key is at hand)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.stop()


def _signing_key(path: Path) -> Any:
    """The server's signing key when this process can read it; else None (a server signs later).
    Never created here: a CLI run before `init` must not invent the deployment's key."""
    try:
        return load_private(path) if path.exists() else None
    except (SigningKeyError, OSError):
        return None
