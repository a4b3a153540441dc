"""The rotation engine: run a secret's rotation function through its four steps.

A rotation is requested durably (a rotation_state row written with the AWSPENDING
version, by RotateSecret or by the schedule) and run by whichever process takes the
secret's lease. Each finished step is recorded, so a process that dies mid-rotation
leaves a row another process (or itself after a restart) resumes once the lease
expires; steps are idempotent by AWS's contract, so re-running the interrupted one is
safe. A failed step leaves AWSCURRENT where it was, records the reason, and is retried
with exponential backoff.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select

from strongroom import metrics
from strongroom.services.secretsmanager import schedule, staging
from strongroom.services.secretsmanager.core import Deps, changed
from strongroom.storage import SecretRecord, VersionRecord, rotation_store
from strongroom.storage import tables as t
from strongroom.storage.notify import node_id

log = logging.getLogger("strongroom.rotation")
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


class StepFailed(Exception):
    """A rotation step did not succeed; the message is the reason recorded for operators."""


class Invoker(Protocol):
    """Runs one step of a rotation function (a Python function, a webhook, a built-in rotator)."""

    def invoke_step(self, function_arn: str, secret: SecretRecord, event: dict[str, Any]) -> None: ...


@dataclass
class EngineOptions:
    lease_seconds: float = 30.0  # renewed every third while a rotation runs; a dead holder's lapses
    retry_base: float = 30.0  # first retry after a failure; doubles each time
    retry_max: float = 3600.0


class RotationEngine:
    def __init__(self, deps: Deps, invoker: Invoker, options: EngineOptions | None = None,
                 clock: Callable[[], float] = time.time, holder: str | None = None, audit: Any = None):
        self.deps, self.invoker = deps, invoker
        self.options = options or EngineOptions()
        self.clock = clock
        self.holder = holder or node_id()
        self.audit = audit  # strongroom.audit.log.AuditLog (its service_event), or None

    # -- the audit trail ---------------------------------------------------------------------
    def _event(self, name: str, secret: SecretRecord, token: str, **details: Any) -> None:
        """Record what Secrets Manager did on its own, as CloudTrail's AwsServiceEvent.

        RotationStarted, RotationStep (one per step run, with its outcome), RotationSucceeded
        and RotationFailed (which raises the rotation_failed alert). Never a secret value: the
        details are ARNs, the token (a version id), step names and the recorded reason.
        """
        audit = self.audit
        if audit is None:
            return
        try:
            audit.service_event(
                name, source="secretsmanager.amazonaws.com", account_id=secret.account_id, region=secret.region,
                resources=[{"ARN": secret.arn, "accountId": secret.account_id,
                            "type": "AWS::SecretsManager::Secret"}],
                details={"secretId": secret.arn, "clientRequestToken": token,
                         "rotationLambdaARN": secret.rotation_lambda_arn, **details})
        except Exception as exc:  # noqa: BLE001 - a missing record is logged; the rotation's state is durable
            log.error("rotation audit event not recorded: %s", type(exc).__name__,
                      extra={"secret": secret.arn, "event": name})

    # -- finding work ----------------------------------------------------------------------
    def due(self) -> list[int]:
        """Start the rotations the schedule says are due, then list every pending one that may run."""
        now = self.clock()
        c = t.secrets.c
        with self.deps.store.read() as tx:
            scheduled = [int(r[0]) for r in tx.conn.execute(
                select(c.id).where(c.rotation_enabled.is_(True), c.next_rotation_date <= now,
                                   c.deleted_date.is_(None), c.rotation_lambda_arn.is_not(None)))]
        for secret_id in scheduled:
            self.start_scheduled(secret_id)
        with self.deps.store.read() as tx:
            return rotation_store.due(tx.conn, now)

    def start_scheduled(self, secret_id: int) -> str | None:
        """Create the AWSPENDING version for a rotation the schedule calls for (once per window).

        NextRotationDate moves to the next window in the same transaction, so a restart or a
        second node re-checking the schedule never starts a second rotation in this window.
        """
        now = self.clock()
        with self.deps.store.write() as tx:
            row = tx.conn.execute(tx.locked(select(t.secrets).where(t.secrets.c.id == secret_id))).first()
            if row is None:
                return None
            secret = SecretRecord.from_row(row)
            if (not secret.rotation_enabled or secret.deleted_date is not None
                    or secret.next_rotation_date is None or secret.next_rotation_date > now):
                return None  # another node started it, or the schedule changed meanwhile
            state = rotation_store.get(tx.conn, secret_id)
            stages = tx.stages(secret_id)
            pending = stages.get(staging.PENDING)
            if state is not None and state.status == rotation_store.PENDING:
                token = state.token  # already rotating (a RotateSecret just before the window)
            elif pending is not None and pending != stages.get(staging.CURRENT):
                token = pending  # an unfinished rotation without a request row: resume it
            else:
                token = str(uuid.uuid4())
                secret.version_seq += 1
                tx.insert_version(VersionRecord(secret_id, token, secret.version_seq, now))
                tx.replace_stages(secret_id, {**stages, staging.PENDING: token})
            rotation_store.request(tx.conn, secret_id, token, now)
            if secret.rotation_rules:
                secret.next_rotation_date = schedule.next_rotation(secret.rotation_rules, now)
            tx.update_secret(secret)
        log.info("scheduled rotation started", extra={"secret": secret.arn, "token": token})
        return token

    # -- running one rotation ----------------------------------------------------------------
    def rotate(self, secret_id: int) -> str:
        """Run (or resume) the secret's pending rotation; 'succeeded', 'failed', 'busy' or 'idle'."""
        ttl = self.options.lease_seconds
        with self.deps.store.write() as tx:
            if not rotation_store.claim(tx.conn, secret_id, self.holder, self.clock(), ttl):
                return "busy"
            state = rotation_store.get(tx.conn, secret_id)
            row = tx.conn.execute(select(t.secrets).where(t.secrets.c.id == secret_id)).first()
            secret = SecretRecord.from_row(row) if row else None
            stages = tx.stages(secret_id) if row else {}
        assert state is not None
        if secret is None or secret.deleted_date is not None or not secret.rotation_lambda_arn:
            with self.deps.store.write() as tx:
                rotation_store.finish(tx.conn, secret_id, self.holder, rotation_store.CANCELLED, self.clock(),
                                      "the secret was deleted or has no rotation function")
            return "idle"
        if stages.get(staging.CURRENT) == state.token and stages.get(staging.PENDING) in (None, state.token):
            return self._succeeded(secret, state.token, 0.0)  # finished before a crash recorded it
        if stages.get(staging.PENDING) != state.token:
            with self.deps.store.write() as tx:
                rotation_store.finish(tx.conn, secret_id, self.holder, rotation_store.CANCELLED, self.clock(),
                                      "AWSPENDING no longer names the version being rotated")
            return "idle"
        return self._run_steps(secret, state)

    def _run_steps(self, secret: SecretRecord, state: rotation_store.RotationState) -> str:
        started = time.monotonic()
        stop = threading.Event()
        keeper = threading.Thread(target=self._keep_lease, args=(secret.id, stop), daemon=True)
        keeper.start()
        step = state.step
        if state.step == STEPS[0] and state.attempts == 0:
            self._event("RotationStarted", secret, state.token)
        try:
            for step in STEPS[STEPS.index(state.step):]:
                event = {"SecretId": secret.arn, "ClientRequestToken": state.token, "Step": step,
                         "RotationToken": str(uuid.uuid4())}
                log.info("rotation step", extra={"secret": secret.arn, "token": state.token, "step": step})
                self.invoker.invoke_step(secret.rotation_lambda_arn or "", secret, event)
                metrics.ROTATION_STEPS.labels(step, "succeeded").inc()
                self._event("RotationStep", secret, state.token, step=step, outcome="succeeded")
                nxt = STEPS[STEPS.index(step) + 1] if step != STEPS[-1] else step
                with self.deps.store.write() as tx:
                    if not rotation_store.advance(tx.conn, secret.id, self.holder, nxt, self.clock()):  # type: ignore[arg-type]
                        raise StepFailed("lost the rotation lease")
            with self.deps.store.read() as tx:
                stages = tx.stages(secret.id)  # type: ignore[arg-type]
            if stages.get(staging.CURRENT) != state.token:
                step = "finishSecret"
                raise StepFailed("finishSecret did not move AWSCURRENT to the new version")
        except Exception as exc:  # noqa: BLE001 - any failure of a step is recorded and retried
            stop.set()
            return self._failed(secret, state, step, exc)
        finally:
            stop.set()
        return self._succeeded(secret, state.token, time.monotonic() - started)

    def _keep_lease(self, secret_id: int, stop: threading.Event) -> None:
        while not stop.wait(self.options.lease_seconds / 3):
            try:
                with self.deps.store.write() as tx:
                    rotation_store.claim(tx.conn, secret_id, self.holder, self.clock(), self.options.lease_seconds)
            except Exception as exc:  # noqa: BLE001 - the next renewal tries again
                log.warning("rotation lease renewal failed: %s", type(exc).__name__)

    def _failed(self, secret: SecretRecord, state: rotation_store.RotationState, step: str,
                exc: Exception) -> str:
        reason = f"{step}: {exc}" if isinstance(exc, StepFailed) else f"{step}: {type(exc).__name__}: {exc}"
        delay = min(self.options.retry_base * 2 ** state.attempts, self.options.retry_max)
        now = self.clock()
        with self.deps.store.write() as tx:
            rotation_store.fail(tx.conn, secret.id, self.holder, reason, now + delay, now)  # type: ignore[arg-type]
        metrics.ROTATION_STEPS.labels(step, "failed").inc()
        metrics.ROTATIONS.labels("failed").inc()
        self._event("RotationStep", secret, state.token, step=step, outcome="failed", reason=reason[:1000])
        self._event("RotationFailed", secret, state.token, step=step, reason=reason[:1000],
                    attempts=state.attempts + 1, nextAttemptInSeconds=delay)
        log.warning("rotation step failed", extra={"secret": secret.arn, "token": state.token, "step": step,
                                                   "reason": reason[:300], "retry_in": delay})
        return "failed"

    def _succeeded(self, secret: SecretRecord, token: str, seconds: float) -> str:
        now = self.clock()
        with self.deps.store.write() as tx:
            fresh = tx.secret_by_arn(secret.arn)
            if fresh is None:
                return "idle"
            stages = tx.stages(fresh.id)  # type: ignore[arg-type]
            if stages.get(staging.PENDING) == token:
                # As AWS does once finishSecret has moved AWSCURRENT: the rotation is over.
                tx.replace_stages(fresh.id, {k: v for k, v in stages.items() if k != staging.PENDING})  # type: ignore[arg-type]
            fresh.last_rotated_date = now
            fresh.last_changed_date = now
            if fresh.rotation_enabled and fresh.rotation_rules:
                fresh.next_rotation_date = schedule.next_rotation(fresh.rotation_rules, now)
            tx.update_secret(fresh)
            rotation_store.finish(tx.conn, fresh.id, None, rotation_store.SUCCEEDED, now)  # type: ignore[arg-type]
        changed(self.deps, fresh)
        self._event("RotationSucceeded", fresh, token)
        metrics.ROTATIONS.labels("succeeded").inc()
        metrics.ROTATION_DURATION.observe(seconds)
        log.info("rotation succeeded", extra={"secret": secret.arn, "token": token})
        return "succeeded"
