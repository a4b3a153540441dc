"""Online rekey: re-wrap every root-wrapped value under a new root key, in durable batches.

The walk: each table of `storage.rootkey_store.WRAPPED` in primary-key order,
`batch_size` rows per write transaction; the same transaction re-wraps the
rows and advances the progress marker (phase, cursor), so a rekey
interrupted anywhere (crash, kill, error) resumes at the first row not done
and never loses one. A row already under the new key is left alone, so a
batch repeated after a crash is harmless.

While it runs the server keeps serving: new values are wrapped by the new
key from the moment the rekey starts, and reads try the new key, then the
old (see crypto.rootchain). Other workers and nodes poll the marker every
second and load the new key (from the database's hand-off when it was made
in another data directory; see rootkeys.manager); the first batch waits
GRACE seconds after the start so they hold it before any value needs it.
Processes that learn of the rekey late may wrap a few values with the old
key meanwhile; a second, verifying pass over every table, started at least
GRACE seconds after the rekey began, re-wraps those. Only then is
the rekey marked done and the old key retired.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from strongroom.auth.credentials import access_key_purpose, session_purpose
from strongroom.crypto.keyring import ROOT_DATA_KEY_PURPOSE
from strongroom.crypto.rootchain import RootKeyChain
from strongroom.crypto.rootkey import RootKeyError
from strongroom.rotation.functions import _purpose as function_purpose  # the registry's own binding
from strongroom.services.kms.materials import material_purpose
from strongroom.services.secretsmanager.core import value_binding
from strongroom.storage import Store, Tx
from strongroom.storage import rootkey_store as rk
from strongroom.storage.rootkey_store import WRAPPED, RekeyRecord, WrappedColumn

log = logging.getLogger("strongroom.rekey")
VERIFY = "verify:"
FINISH = "finish"
PHASES = [w.phase for w in WRAPPED] + [VERIFY + w.phase for w in WRAPPED] + [FINISH]
GRACE = 2.0  # seconds: twice the interval at which other processes poll the marker
_TARGETS = {w.phase: w for w in WRAPPED}


class RekeyError(Exception):
    """The rekey cannot go on (a value no loaded key opens, or the marker changed hands)."""


class Interrupted(Exception):
    """The rekey was asked to stop; the marker says where to resume."""


def _purpose(tx: Tx, target: WrappedColumn, row: dict[str, object]) -> bytes | None:
    """The purpose the value was wrapped with (None when its secret vanished meanwhile)."""
    match target.phase:
        case "access_keys":
            return access_key_purpose(str(row["access_key_id"]))
        case "sts_session_credentials":
            return session_purpose(str(row["access_key_id"]))
        case "kms_key_materials":
            return material_purpose(str(row["key_id"]), int(row["version"]))  # type: ignore[call-overload]
        case "function_code" | "function_environment":
            return function_purpose(str(row["arn"]), "code" if target.phase == "function_code" else "env")
        case _:
            secret = rk.secret_by_id(tx, int(row["secret_id"]))  # type: ignore[call-overload]
            if secret is None:
                return None
            return ROOT_DATA_KEY_PURPOSE + value_binding(secret, str(row["version_id"]))


def step(store: Store, chain: RootKeyChain, marker_id: int, batch_size: int) -> RekeyRecord:
    """Re-wrap one batch and advance the marker, in one transaction; the marker after it."""
    with store.write() as tx:
        rec = rk.latest_rekey(tx)
        if rec is None or rec.id != marker_id:
            raise RekeyError("another rekey replaced this one")
        if rec.state != "running" or rec.phase == FINISH:
            return rec
        new = chain.get(rec.new_key_id)
        if new is None:
            raise RekeyError(f"the new root key {rec.new_key_id} is not loaded")
        target = _TARGETS[rec.phase.removeprefix(VERIFY)]
        rows = rk.batch(tx, target, rec.cursor, batch_size)
        if not rows:
            rec.phase, rec.cursor = PHASES[PHASES.index(rec.phase) + 1], None
        for row in rows:
            purpose = _purpose(tx, target, row)
            if purpose is None:
                continue
            blob = bytes(row[target.column])  # type: ignore[arg-type]
            try:
                key_id, plaintext = chain.unwrap_with_id(blob, purpose, follow=False)
            except RootKeyError:
                where = ", ".join(f"{k}={row[k]}" for k in target.pk)
                raise RekeyError(f"{target.phase} ({where}) does not unwrap under any loaded root key; "
                                 "the rekey stopped without retiring anything") from None
            if key_id != rec.new_key_id:
                extra = {"key_id": rec.new_key_id} if target.phase == "secret_versions" else {}
                rk.set_wrapped(tx, target, row, new.wrap(plaintext, purpose), **extra)
                rec.rewrapped += 1
        if rows:
            rec.cursor = [rows[-1][k] for k in target.pk]
        rec.updated_date = time.time()
        rk.update_rekey(tx, rec)
        return rec


def run(store: Store, chain: RootKeyChain, marker_id: int, *, batch_size: int = 100, pause: float = 0.0,
        stop: threading.Event | None = None,
        on_batch: Callable[[RekeyRecord], None] | None = None) -> RekeyRecord:
    """Batches until every table was walked and verified; returns the marker at phase `finish`."""
    stop = stop or threading.Event()
    while True:
        if stop.is_set():
            raise Interrupted("the rekey was stopped")
        with store.read() as tx:
            current = rk.latest_rekey(tx)
        # Before the first batch, every other process gets GRACE to load the new key (so none
        # meets a value re-wrapped under a key it does not hold); before the verifying pass,
        # to stop wrapping with the old one.
        starting = current is not None and current.phase == PHASES[0] and current.rewrapped == 0
        if current is not None and current.cursor is None and (starting or current.phase.startswith(VERIFY)):
            wait = current.started_date + GRACE - time.time()
            if wait > 0 and stop.wait(wait):
                raise Interrupted("the rekey was stopped")
        rec = step(store, chain, marker_id, batch_size)
        if on_batch is not None:
            on_batch(rec)
        if rec.state != "running" or rec.phase == FINISH:
            return rec
        if pause > 0 and stop.wait(pause):
            raise Interrupted("the rekey was stopped")
