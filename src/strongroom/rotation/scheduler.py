"""The rotation scheduler inside `strongroom serve`: find due rotations, run a bounded number.

Every server process runs one; per-secret leases (storage/rotation_store.py) keep each
rotation to one process at a time, so processes and nodes share the work safely.
"""

from __future__ import annotations

import asyncio
import logging

from strongroom.rotation.engine import EngineOptions, RotationEngine

log = logging.getLogger("strongroom.rotation")


class RotationScheduler:
    def __init__(self, engine: RotationEngine, *, interval: float = 5.0, concurrency: int = 4):
        self.engine = engine
        self.interval = interval
        self.slots = asyncio.Semaphore(concurrency)
        self.running: set[int] = set()  # secrets this process is rotating now
        self.wake = asyncio.Event()

    async def run(self) -> None:
        """Until cancelled: every `interval` (or when poked), start the due rotations."""
        tasks: set[asyncio.Task[None]] = set()
        try:
            while True:
                try:
                    due = await asyncio.to_thread(self.engine.due)
                except Exception as exc:  # noqa: BLE001 - the next pass tries again
                    log.warning("rotation scheduling pass failed: %s", type(exc).__name__)
                    due = []
                for secret_id in due:
                    if secret_id in self.running:
                        continue
                    self.running.add(secret_id)
                    task = asyncio.create_task(self._rotate(secret_id))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                try:
                    await asyncio.wait_for(self.wake.wait(), self.interval)
                except asyncio.TimeoutError:
                    pass
                self.wake.clear()
        finally:
            for task in tasks:
                task.cancel()

    async def _rotate(self, secret_id: int) -> None:
        try:
            async with self.slots:
                await asyncio.to_thread(self.engine.rotate, secret_id)
        except Exception as exc:  # noqa: BLE001 - recorded by the engine where it can; retried later
            log.error("rotation failed unexpectedly: %s", type(exc).__name__, extra={"secret_id": secret_id})
        finally:
            self.running.discard(secret_id)


def settings_from_env() -> tuple[float, int, EngineOptions]:
    """(pass interval, concurrency, engine options) from STRONGROOM_ROTATION_* variables."""
    import os


    env = os.environ.get
    options = EngineOptions(lease_seconds=float(env("STRONGROOM_ROTATION_LEASE_SECONDS", "30")),
                            retry_base=float(env("STRONGROOM_ROTATION_RETRY_SECONDS", "30")),
                            retry_max=float(env("STRONGROOM_ROTATION_RETRY_MAX_SECONDS", "3600")))
    return (float(env("STRONGROOM_ROTATION_INTERVAL", "5")), int(env("STRONGROOM_ROTATION_CONCURRENCY", "4")),
            options)
