"""The root keys of one strongroom process: loading, sealing, unsealing, and rekeys.

Every component holds the same RootKeyChain (`RootKeys.chain`); this class
decides what the chain holds:

- at start, the key config.toml names, plus both keys of a rekey the
  progress marker says is running (wrapping with the new one);
- nothing while sealed: a passphrase source waits for `unseal` (a passphrase,
  or shares one at a time until the threshold), then loads as above;
- on `refresh` (every second, from the server's background loop), whatever
  a rekey started or finished by another process changed.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import inspect

from strongroom.config import Settings
from strongroom.crypto import passphrase, shamir
from strongroom.crypto.rootchain import SEALED_MESSAGE, RootKeyChain, SealedError
from strongroom.crypto.rootkey import RootKeyError
from strongroom.rootkeys import configfile, rekey, sources
from strongroom.rootkeys.sources import Spec
from strongroom.storage import Store
from strongroom.storage import rootkey_store as rk
from strongroom.storage.rootkey_store import RekeyRecord

log = logging.getLogger("strongroom.rootkeys")


class RekeyRefused(RootKeyError):
    """A rekey cannot start as asked (sealed, or one with another target is running)."""


@dataclass
class RekeyJob:
    marker_id: int
    thread: threading.Thread
    stop: threading.Event = field(default_factory=threading.Event)
    error: str | None = None
    notes: list[str] = field(default_factory=list)


class RootKeys:
    def __init__(self, settings: Settings, store: Store | None = None):
        self.settings = settings
        self.store = store
        self.data_dir = settings.data_dir
        self.spec: Spec = sources.normalize(settings.root_key)
        self.chain = RootKeyChain()
        self._kek: bytes | None = None
        self._shares: list[str] = []
        self._seen: tuple[int | None, str | None] = (None, None)  # (marker id, state) last loaded
        self._lock = threading.RLock()
        self.job: RekeyJob | None = None
        self.notes: list[str] = []
        self._schema_checked = False

    # -- loading ------------------------------------------------------------------
    def _marker(self) -> RekeyRecord | None:
        if self.store is None:
            return None
        if not self._schema_checked:
            # A local command may run against a database not migrated yet: no rekey can be running there.
            if not inspect(self.store.engine).has_table("root_key_rekeys"):
                return None
            self._schema_checked = True
        with self.store.read() as tx:
            return rk.latest_rekey(tx)

    def load(self) -> None:
        """Load what config.toml and the rekey marker name; stay sealed while a KEK is missing."""
        with self._lock:
            marker = self._marker()
            running = marker is not None and marker.state == "running"
            specs = [marker.new_source, marker.old_source, self.spec] if running and marker else [self.spec]
            try:
                keys, seen = [], set()
                for spec in specs:
                    key_id = spec.get("root_key_id")
                    if key_id in seen:
                        continue
                    key = sources.load(spec, self.data_dir, self._kek)
                    if key.key_id not in seen:
                        keys.append(key)
                        seen.add(key.key_id)
            except SealedError:
                self.chain.seal()
                return
            self.chain.set_keys(keys, marker.new_key_id if running and marker else None)
            self._seen = (marker.id, marker.state) if marker else (None, None)

    def refresh(self) -> None:
        """Follow a rekey another process started or finished (cheap when nothing changed)."""
        if self.sealed or self.store is None:
            return
        marker = self._marker()
        if marker is None or (marker.id, marker.state) == self._seen:
            return
        with self._lock:
            if marker.state == "done":
                self.spec = sources.normalize(marker.new_source)
            self.load()
        log.info("root keys reloaded after a rekey changed", extra={"rekey_state": marker.state,
                                                                    "root_key_id": self.chain.key_id})

    # -- sealing ----------------------------------------------------------------
    @property
    def sealed(self) -> bool:
        return self.chain.sealed

    def _vault(self) -> passphrase.Vault | None:
        marker = self._marker()
        specs = [self.spec]
        if marker is not None and marker.state == "running":
            specs = [marker.new_source, marker.old_source]
        for spec in specs:
            if sources.needs_unseal(spec):
                return sources.vault_of(spec, self.data_dir)
        return None

    def unseal(self, *, passphrase_text: str | None = None, share: str | None = None,
               reset: bool = False, resume: bool = True) -> dict[str, Any]:
        """Offer a passphrase or one share; loads the keys once the vault opens. Returns the status."""
        with self._lock:
            if reset:
                self._shares = []
            if not self.sealed or (passphrase_text is None and share is None):
                return self.status()
            vault = self._vault()
            if vault is None:
                raise RootKeyError("this strongroom's root key source has nothing to unseal")
            if share is not None:
                parsed = shamir.decode_share(share)  # ShareError for a mistyped share: nothing is kept
                if vault.mode != "shares":
                    raise passphrase.UnsealError("this strongroom is unsealed with a passphrase, not shares")
                if any(shamir.decode_share(s)[0] == parsed[0] for s in self._shares):
                    raise passphrase.UnsealError(f"share {parsed[0]} was already given")
                self._shares.append(share.strip())
                if len(self._shares) < vault.threshold:
                    return self.status()
                kek = vault.combine(self._shares)
                self._shares = []  # right or wrong, a full set is used once
            else:
                kek = vault.derive(passphrase_text or "")
            vault.check(kek)
            self._kek = kek
            self.load()
        log.info("unsealed", extra={"root_key_id": self.chain.key_id})
        if resume:
            self.resume_rekey()
        return self.status()

    def seal(self) -> None:
        with self._lock:
            if self.job is not None:
                self.job.stop.set()
            self.chain.seal()
            self._kek = None
            self._shares = []
        log.info("sealed")

    # -- rekey --------------------------------------------------------------------
    def start_rekey(self, options: Spec | None, *, batch_size: int = 100, pause: float = 0.0,
                    launch: bool = True) -> dict[str, Any]:
        """Start (or resume) a rekey; returns the status, with new unseal shares if any were made.

        With `launch` False only the new key and the marker are made; the caller drives rekey.run.
        """
        with self._lock:
            if self.sealed:
                raise SealedError(SEALED_MESSAGE)
            assert self.store is not None
            marker = self._marker()
            if marker is not None and marker.state == "running":
                if options and sources.normalize(options)["source"] != marker.new_source["source"]:
                    raise RekeyRefused("a rekey to another source is already running; let it finish first")
                if launch:
                    self._launch(marker.id, batch_size, pause)  # type: ignore[arg-type]
                return self.status()
            fresh = bool(options and (options.get("passphrase") or options.get("shares")))
            if self.spec["source"] == "passphrase" and fresh:
                raise RekeyRefused("changing the passphrase or the shares is not supported by rekey; "
                                   "rekey keeps them and changes the root key")
            old_id = self.chain.key_id
            old_spec = dict(self.spec)
            if old_spec["source"] == "passphrase":
                old_spec["root_key_id"] = old_id
            created = sources.create(options or {"source": self.spec["source"]}, self.data_dir,
                                     current=self.spec, kek=self._kek)
            if created.kek is not None:
                self._kek = created.kek
            now = time.time()
            record = RekeyRecord("running", old_id, created.key.key_id, old_spec, created.spec, rekey.PHASES[0],
                                 None, 0, now, now)
            with self.store.write() as tx:
                rk.insert_rekey(tx, record)
            # Wrap with the new key from now on; the old one still opens what is not re-wrapped yet.
            self.chain.set_keys([created.key, *self.chain.keys()], created.key.key_id)
            self._seen = (record.id, record.state)
            log.info("rekey started", extra={"old_root_key_id": old_id, "new_root_key_id": created.key.key_id,
                                             "new_source": sources.describe(created.spec)})
            if launch:
                self._launch(record.id, batch_size, pause)  # type: ignore[arg-type]
            status = self.status()
            if created.shares:
                status["shares"] = created.shares
            return status

    def resume_rekey(self, *, batch_size: int = 100, pause: float = 0.0) -> None:
        """Pick up a rekey a previous process left running (after a crash or a restart)."""
        if self.sealed or self.store is None:
            return
        marker = self._marker()
        if marker is not None and marker.state == "running":
            log.info("resuming an interrupted rekey", extra={"phase": marker.phase, "rewrapped": marker.rewrapped})
            self._launch(marker.id, batch_size, pause)  # type: ignore[arg-type]

    def _launch(self, marker_id: int, batch_size: int, pause: float) -> None:
        if self.job is not None and self.job.thread.is_alive():
            return
        stop = threading.Event()
        job = RekeyJob(marker_id, threading.Thread(target=lambda: self._work(job, batch_size, pause),
                                                   name="strongroom-rekey", daemon=True), stop)
        self.job = job
        job.thread.start()

    def _work(self, job: RekeyJob, batch_size: int, pause: float) -> None:
        assert self.store is not None
        try:
            rec = rekey.run(self.store, self.chain, job.marker_id, batch_size=batch_size, pause=pause,
                            stop=job.stop)
            if rec.state == "running":
                job.notes = self.finish_rekey(rec)
        except rekey.Interrupted:
            log.info("rekey paused; it resumes at the next start or `strongroom rekey`")
        except Exception as exc:  # noqa: BLE001 - reported in status and the log; the marker keeps the place
            job.error = str(exc) if isinstance(exc, (RootKeyError, rekey.RekeyError)) else type(exc).__name__
            log.error("rekey stopped: %s", job.error)

    def finish_rekey(self, rec: RekeyRecord) -> list[str]:
        """Make the new key the one config.toml names, mark the rekey done, retire the old key."""
        assert self.store is not None
        with self._lock:
            configfile.write_root_key(self.settings.config_path, rec.new_source)
            with self.store.write() as tx:
                current = rk.latest_rekey(tx)
                if current is None or current.id != rec.id or current.state != "running":
                    return []
                current.state, current.finished_date = "done", time.time()
                rk.update_rekey(tx, current)
            self.spec = sources.normalize(rec.new_source)
            new = self.chain.get(rec.new_key_id)
            if new is not None:
                self.chain.set_keys([new])
            self._seen = (rec.id, "done")
            notes = sources.retire(rec.old_source, rec.old_key_id, rec.new_source, self.data_dir)
            self.notes = notes
        log.info("rekey done; old root key retired", extra={"old_root_key_id": rec.old_key_id,
                                                             "new_root_key_id": rec.new_key_id,
                                                             "rewrapped": rec.rewrapped})
        return notes

    def stop(self) -> None:
        if self.job is not None:
            self.job.stop.set()
            self.job.thread.join(timeout=10)

    # -- reporting ----------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"sealed": self.sealed, "source": self.spec["source"],
                               "description": sources.describe(self.spec)}
        if not self.sealed:
            out["root_key_id"] = self.chain.key_id
            out["loaded_key_ids"] = self.chain.key_ids()
        else:
            try:
                vault = self._vault()
            except RootKeyError:
                vault = None
            if vault is not None:
                out["unseal"] = {"mode": vault.mode, "threshold": vault.threshold if vault.mode == "shares" else 1,
                                 "progress": len(self._shares)}
        marker = self._marker() if self.store is not None else None
        if marker is not None:
            out["rekey"] = {
                "id": marker.id, "state": marker.state, "phase": marker.phase, "rewrapped": marker.rewrapped,
                "old_root_key_id": marker.old_key_id, "new_root_key_id": marker.new_key_id,
                "new_source": sources.describe(marker.new_source), "started": marker.started_date,
                "finished": marker.finished_date,
                "active": bool(self.job and self.job.thread.is_alive() and self.job.marker_id == marker.id),
            }
            if self.job is not None and self.job.marker_id == marker.id:
                if self.job.error:
                    out["rekey"]["error"] = self.job.error
                if self.job.notes:
                    out["rekey"]["notes"] = self.job.notes
        return out
