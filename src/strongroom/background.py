"""Background work, run by exactly one node of a deployment at a time.

Every node runs a BackgroundWork; only the node holding the "background"
lease (storage/leases.py) runs the jobs. The holder renews the lease every
third of its lifetime; when the holder dies, the lease expires and the next
node to ask takes the work over. A node that cannot renew (database
unreachable, event loop stalled) stops running jobs as soon as its local
clock says the lease may have expired, before any other node could take it.

Jobs are plain blocking functions (one pass each), run in a worker thread:
purging deleted secrets, and KMS key deletion and rotation (server.py).

Two kinds of background work are deliberately not jobs here, because they
share out per item rather than per deployment: secret rotations, which every
process's scheduler claims one secret at a time with a lease on that secret's
rotation_state row (rotation/scheduler.py, storage/rotation_store.py), and
audit digests, which whichever process extends the audit chain signs under the
chain head's row lock (audit/writer.py). docs/deployment.md, "Background work".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from strongroom.storage import Store
from strongroom.storage.leases import Lease
from strongroom.storage.retry import retrying

log = logging.getLogger("strongroom.background")
LEASE_NAME = "background"


@dataclass
class Job:
    name: str
    run: Callable[[], object]  # one pass; what it returns is logged at debug level
    interval: float  # seconds between the starts of two passes
    next_run: float = 0.0  # time.monotonic() of the next pass


class BackgroundWork:
    def __init__(self, store: Store, jobs: list[Job], *, lease_ttl: float = 15.0, tick: float = 0.2):
        self.lease = Lease(store, LEASE_NAME, lease_ttl)
        self.jobs = jobs
        self.tick = min(tick, lease_ttl / 10)
        self._valid_until = 0.0  # local monotonic time up to which our hold is certain

    @property
    def leader(self) -> bool:
        return self.lease.held and time.monotonic() < self._valid_until

    async def run(self) -> None:
        """Keep (or wait for) the lease and run due jobs while held; until cancelled."""
        keeper = asyncio.create_task(self._keep_lease())
        try:
            while True:
                for job in self.jobs:
                    if self.leader and time.monotonic() >= job.next_run:
                        job.next_run = time.monotonic() + job.interval
                        await self._run_job(job)
                await asyncio.sleep(self.tick)
        finally:
            keeper.cancel()
            try:
                await asyncio.to_thread(self.lease.release)  # hand over now rather than at expiry
            except Exception as exc:  # noqa: BLE001 - shutting down; the lease expires anyway
                log.warning("could not release the background lease: %s", type(exc).__name__)

    async def _keep_lease(self) -> None:
        while True:
            started = time.monotonic()  # the lease runs from when we asked, at the latest
            try:
                if await asyncio.to_thread(self.lease.acquire):
                    self._valid_until = started + self.lease.ttl * 0.9
                else:
                    for job in self.jobs:
                        job.next_run = 0.0  # a node that takes over runs every job at once
            except Exception as exc:  # noqa: BLE001 - unsure whether we hold it: behave as if not
                self.lease.token, self._valid_until = None, 0.0
                log.warning("could not renew the background lease: %s", type(exc).__name__)
            await asyncio.sleep(self.lease.ttl / 3)

    async def _run_job(self, job: Job) -> None:
        try:
            result = await asyncio.to_thread(retrying(job.run))
            log.debug("background job ran", extra={"job": job.name, "result": result, "token": self.lease.token,
                                                   "holder": self.lease.holder})
        except Exception as exc:  # noqa: BLE001 - a failed pass is retried at the next interval
            log.error("background job failed: %s", type(exc).__name__, extra={"job": job.name})
