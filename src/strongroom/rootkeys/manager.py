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
from strongroom.crypto.rootkey import RootKey, RootKeyError
from strongroom.rootkeys import configfile, rekey, sources
from strongroom.rootkeys.sources import Spec
from strongroom.storage import Store
from strongroom.storage import rootkey_store as rk
from strongroom.storage.rootkey_store import RekeyRecord

log = logging.getLogger("strongroom.rootkeys")
HANDOFF_PURPOSE = b"strongroom/rekey-handoff:"


def handoff_purpose(marker: RekeyRecord) -> bytes:
    """Binds a hand-off to its rekey and new key: a copy cannot be replayed for another rekey."""
    return HANDOFF_PURPOSE + f"{marker.id}:{marker.new_key_id}".encode()


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
        self._handoffs_checked = False
        self._miss_lock = threading.Lock()
        self.chain.on_miss = self._on_miss

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
        """Load what config.toml and the rekey marker name; stay sealed while a KEK is missing.

        A rekey another node started may have made its new key in that node's data directory
        only: it is then taken from the database's hand-off (wrapped by the old key, which
        this node holds) and written into this data directory (see _new_key). A node that
        missed the end of a rekey (down, or between two polls) follows it here, at start too.
        """
        with self._lock:
            marker = self._marker()
            try:
                base = sources.load(self.spec, self.data_dir, self._kek)
                keys: list[RootKey] = [base]
                active = None
                if marker is not None and marker.state == "running":
                    old = base if base.key_id == marker.old_key_id else self._load_quietly(marker.old_source)
                    new = base if base.key_id == marker.new_key_id else self._new_key(marker, old)
                    keys = [new, *([old] if old is not None else []), base]
                    active = new.key_id
                elif marker is not None and marker.state == "done" and base.key_id == marker.old_key_id:
                    keys = [self._new_key(marker, base)]
                    self._follow_done(marker, base)
                elif marker is not None and marker.state == "done" and base.key_id != marker.new_key_id:
                    log.warning("config.toml names a root key the latest rekey neither replaced nor made",
                                extra={"root_key_id": base.key_id, "rekey_new_root_key_id": marker.new_key_id})
            except SealedError:
                self.chain.seal()
                return
            self.chain.set_keys(keys, active)
            self._seen = (marker.id, marker.state) if marker else (None, None)

    def _load_quietly(self, spec: Spec) -> RootKey | None:
        try:
            return sources.load(spec, self.data_dir, self._kek)
        except SealedError:
            raise
        except RootKeyError:
            return None

    def _new_key(self, marker: RekeyRecord, old: RootKey | None) -> RootKey:
        """The new key of `marker`: from this data directory, else adopted from the hand-off."""
        try:
            key = sources.load(marker.new_source, self.data_dir, self._kek)
            if key.key_id == marker.new_key_id:
                return key
        except RootKeyError:  # SealedError too: a new vault this node cannot open yet
            pass
        assert self.store is not None
        blob = None
        if old is not None and self._has_handoffs():
            with self.store.read() as tx:
                blob = rk.handoff(tx, marker.id)  # type: ignore[arg-type]
        if blob is None or old is None:
            raise RootKeyError(
                f"the new root key {marker.new_key_id} of rekey {marker.id} is not in this data directory, and "
                + ("the database no longer holds a copy of it (`strongroom rekey --finish` ran)" if old is not None
                   else f"this node does not hold the old root key {marker.old_key_id} that opens the database's "
                        "copy")
                + "; copy the key and config.toml's [root_key] table from the node that made it")
        try:
            handoff = old.unwrap(blob, handoff_purpose(marker))
        except RootKeyError:
            raise RootKeyError(f"the database's copy of the new root key {marker.new_key_id} does not open under "
                               f"this node's root key {old.key_id}") from None
        key = sources.adopt(marker.new_source, self.data_dir, handoff, self._kek)
        if key.key_id != marker.new_key_id:
            raise RootKeyError(f"the database's copy of the new root key is {key.key_id}, not {marker.new_key_id}")
        log.info("new root key taken from the rekey hand-off and kept in this data directory",
                 extra={"rekey_id": marker.id, "new_root_key_id": key.key_id,
                        "new_source": sources.describe(marker.new_source)})
        return key

    def _follow_done(self, marker: RekeyRecord, old: RootKey) -> None:
        """After a rekey another process finished: name the new key in this node's config.toml
        (so a restart loads it) and retire the old one here as the finishing node did there."""
        old_spec = dict(self.spec)
        configfile.write_root_key(self.settings.config_path, marker.new_source)
        self.spec = sources.normalize(marker.new_source)
        try:
            notes = sources.retire(old_spec, old.key_id, marker.new_source, self.data_dir)
        except RootKeyError as exc:  # nothing depends on it: the data no longer needs the old key
            notes = [f"the old root key could not be retired here: {exc}"]
        self.notes = notes
        log.info("followed a finished rekey: config.toml names the new root key",
                 extra={"rekey_id": marker.id, "old_root_key_id": old.key_id, "new_root_key_id": marker.new_key_id,
                        "notes": notes})

    def _has_handoffs(self) -> bool:
        if not self._handoffs_checked:
            assert self.store is not None
            # A database of a release before 0008_rekey_handoff: no rekey there made a hand-off.
            if not inspect(self.store.engine).has_table("root_key_handoffs"):
                return False
            self._handoffs_checked = True
        return True

    def refresh(self) -> None:
        """Follow a rekey another process started or finished (cheap when nothing changed)."""
        if self.sealed or self.store is None:
            return
        marker = self._marker()
        if marker is None or (marker.id, marker.state) == self._seen:
            return
        with self._lock:
            self.load()
        log.info("root keys reloaded after a rekey changed", extra={"rekey_state": marker.state,
                                                                    "root_key_id": self.chain.key_id})

    def _on_miss(self) -> bool:
        """A value no held key opens: maybe a rekey re-wrapped it before this process's next
        poll. Look now (one read of the marker when nothing changed); True when keys changed."""
        before = self.chain.key_ids()
        with self._miss_lock:  # concurrent misses share one look
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - the caller reports its own failure
                log.warning("root key refresh after a failed unwrap failed: %s", type(exc).__name__)
                return False
        return self.chain.key_ids() != before

    # -- sealing ----------------------------------------------------------------
    @property
    def sealed(self) -> bool:
        return self.chain.sealed

    def _vault(self) -> passphrase.Vault | None:
        marker = self._marker()
        specs = [self.spec]
        if marker is not None and marker.state == "running":
            specs = [self.spec, marker.new_source, marker.old_source]
        for spec in specs:
            if sources.needs_unseal(spec):
                try:
                    return sources.vault_of(spec, self.data_dir)
                except RootKeyError:
                    continue  # another node's new vault, not (yet) in this data directory
        return None

    def unseal(self, *, passphrase_text: str | None = None, share: str | None = None,
               reset: bool = False, resume: bool = True) -> dict[str, Any]:
        """Offer a passphrase or one share; loads the keys once the vault opens. Returns the status.

        A source with nothing to type (a key file, PKCS#11, an external KMS) is read again: after
        `seal`, unsealing such a server needs no restart."""
        with self._lock:
            if reset:
                self._shares = []
            if not self.sealed:
                return self.status()
            vault = self._vault()
            if vault is None:
                self.load()
                if self.sealed:
                    raise RootKeyError("the root key could not be loaded from its source")
            elif passphrase_text is None and share is None:
                return self.status()
            else:
                self._open(vault, passphrase_text, share)
                if self.sealed:
                    return self.status()
        log.info("unsealed", extra={"root_key_id": self.chain.key_id})
        if resume:
            self.resume_rekey()
        return self.status()

    def _open(self, vault: passphrase.Vault, passphrase_text: str | None, share: str | None) -> None:
        """Open the vault with a passphrase, or with this share once enough are given; then load."""
        if share is not None:
            parsed = shamir.decode_share(share)  # ShareError for a mistyped share: nothing is kept
            if vault.mode != "shares":
                raise passphrase.UnsealError("this strongroom is unsealed with a passphrase, not shares")
            if any(shamir.decode_share(s)[0] == parsed[0] for s in self._shares):
                raise passphrase.UnsealError(f"share {parsed[0]} was already given")
            self._shares.append(share.strip())
            if len(self._shares) < vault.threshold:
                return
            kek = vault.combine(self._shares)
            self._shares = []  # right or wrong, a full set is used once
        else:
            kek = vault.derive(passphrase_text or "")
        vault.check(kek)
        self._kek = kek
        self.load()

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
            if not self._has_handoffs():  # checked before a key is made: a refusal leaves nothing behind
                raise RekeyRefused("the database schema predates the rekey hand-off; run `strongroom migrate`")
            created = sources.create(options or {"source": self.spec["source"]}, self.data_dir,
                                     current=self.spec, kek=self._kek)
            if created.kek is not None:
                self._kek = created.kek
            now = time.time()
            record = RekeyRecord("running", old_id, created.key.key_id, old_spec, created.spec, rekey.PHASES[0],
                                 None, 0, now, now)
            old_key = self.chain.get(old_id)
            assert old_key is not None
            with self.store.write() as tx:
                # An earlier rekey's copy is wrapped under a key this rekey retires: it goes now.
                rk.drop_handoffs(tx)
                rk.insert_rekey(tx, record)
                if created.handoff:
                    # The other nodes' way to the new key: wrapped by the old root key they hold.
                    wrapped = old_key.wrap(sources.encode_handoff(created.handoff), handoff_purpose(record))
                    rk.insert_handoff(tx, record.id, old_id, created.key.key_id, wrapped, now)  # type: ignore[arg-type]
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
            if self._handoff_kept(rec):
                notes.append("other nodes sharing the database take the new key from its copy in the database "
                             "(wrapped by the old key); once every node has followed (or restarted), run "
                             "`strongroom rekey --finish` to delete that copy")
            self.notes = notes
        log.info("rekey done; old root key retired", extra={"old_root_key_id": rec.old_key_id,
                                                             "new_root_key_id": rec.new_key_id,
                                                             "rewrapped": rec.rewrapped})
        return notes

    def stop(self) -> None:
        if self.job is not None:
            self.job.stop.set()
            self.job.thread.join(timeout=10)

    def _handoff_kept(self, marker: RekeyRecord) -> bool:
        if self.store is None or not self._has_handoffs():
            return False
        with self.store.read() as tx:
            return rk.handoff(tx, marker.id) is not None  # type: ignore[arg-type]

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
            else:  # sealed by `strongroom seal`: unsealing reads the key from its source again
                out["unseal"] = {"mode": "source", "threshold": 0, "progress": 0}
        marker = self._marker() if self.store is not None else None
        if marker is not None:
            out["rekey"] = {
                "id": marker.id, "state": marker.state, "phase": marker.phase, "rewrapped": marker.rewrapped,
                "old_root_key_id": marker.old_key_id, "new_root_key_id": marker.new_key_id,
                "new_source": sources.describe(marker.new_source), "started": marker.started_date,
                "finished": marker.finished_date,
                "active": bool(self.job and self.job.thread.is_alive() and self.job.marker_id == marker.id),
                "handoff": self._handoff_kept(marker),
            }
            if self.job is not None and self.job.marker_id == marker.id:
                if self.job.error:
                    out["rekey"]["error"] = self.job.error
                if self.job.notes:
                    out["rekey"]["notes"] = self.job.notes
        return out


def finish_handoff(store: Store) -> int:
    """`strongroom rekey --finish`: delete the database's copy of the new root key once every node
    has it in its own data directory. Only after the rekey is done: the copy is wrapped by the
    old key, which must not keep opening anything once retired. Returns the copies deleted."""
    if not inspect(store.engine).has_table("root_key_handoffs"):
        return 0
    with store.write() as tx:
        marker = rk.latest_rekey(tx)
        if marker is not None and marker.state == "running":
            raise RekeyRefused("the rekey is still running; --finish once it is done and every node has followed")
        if tx.is_sqlite:
            # Zero the freed pages rather than leave the deleted copy readable in the file.
            tx.conn.exec_driver_sql("PRAGMA secure_delete = ON")
        count = rk.drop_handoffs(tx)
    if count and not store.is_sqlite:
        # A deleted PostgreSQL row stays in the table's pages until vacuumed; rewrite the table.
        with store.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM FULL root_key_handoffs")
    log.info("rekey hand-off removed from the database", extra={"count": count})
    return count
