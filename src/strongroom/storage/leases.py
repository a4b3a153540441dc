"""Leases: which node runs a piece of background work, handed over when its holder dies.

A lease is a row (name, holder, expires_date). The holder renews it well before
it expires; any node may take it once it has expired. Times come from the
database's clock, so nodes whose clocks disagree still agree on who holds a
lease. Taking and renewing are single conditional UPDATEs, atomic on both
backends: at most one node holds a lease at any instant of the database's clock.

A lease alone cannot stop a holder that stalls past its expiry (a long GC pause,
a suspended VM) from finishing a pass it already started, so the jobs it guards
are written to be safe when run twice at once (they lock the rows they change
and re-check the condition that selected them). The lease makes the work run
once, the row locks make a rare overlap harmless.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import case, insert, literal_column, or_, select, update
from sqlalchemy.exc import IntegrityError

from strongroom.storage import tables as t
from strongroom.storage.notify import node_id
from strongroom.storage.store import Store

log = logging.getLogger("strongroom.leases")


def db_now(store: Store) -> Any:
    """The database's clock in epoch seconds, as an SQL expression."""
    if store.is_sqlite:
        return literal_column("((julianday('now') - 2440587.5) * 86400.0)")
    return literal_column("extract(epoch from clock_timestamp())::float8")


class Lease:
    """One named lease as seen by this node."""

    def __init__(self, store: Store, name: str, ttl: float, holder: str | None = None):
        self.store, self.name, self.ttl = store, name, ttl
        self.holder = holder or node_id()
        self.token: int | None = None  # the fencing token while held: it grows at every handover

    @property
    def held(self) -> bool:
        return self.token is not None

    def acquire(self) -> bool:
        """Take the lease if it is free or expired, renew it if ours; True while we hold it."""
        c = t.leases.c
        now = db_now(self.store)
        ours = c.holder == self.holder
        with self.store.write(announce=False) as tx:
            done = tx.conn.execute(
                update(t.leases)
                .where(c.name == self.name, or_(ours, c.expires_date < now))
                .values(token=case((ours, c.token), else_=c.token + 1),
                        acquired_date=case((ours, c.acquired_date), else_=now),
                        holder=self.holder, expires_date=now + self.ttl)
            ).rowcount
            if not done:
                try:
                    with tx.conn.begin_nested():  # the first node ever to ask creates the row
                        tx.conn.execute(insert(t.leases).values(name=self.name, holder=self.holder, token=1,
                                                                acquired_date=now, expires_date=now + self.ttl))
                    done = 1
                except IntegrityError:
                    done = 0  # it exists: another node holds it
            token = tx.conn.execute(select(c.token).where(c.name == self.name, ours)).scalar() if done else None
        was = self.token
        self.token = int(token) if token is not None else None
        if self.token is not None and was != self.token:
            log.info("lease acquired", extra={"lease": self.name, "holder": self.holder, "token": self.token})
        elif self.token is None and was is not None:
            log.warning("lease lost", extra={"lease": self.name, "holder": self.holder, "token": was})
        return self.held

    def release(self) -> None:
        """Give the lease up now (a clean shutdown), so another node need not wait for its expiry."""
        if self.token is None:
            return
        c = t.leases.c
        with self.store.write(announce=False) as tx:
            tx.conn.execute(update(t.leases).where(c.name == self.name, c.holder == self.holder)
                            .values(expires_date=0.0))
        log.info("lease released", extra={"lease": self.name, "holder": self.holder, "token": self.token})
        self.token = None


def holders(store: Store) -> dict[str, tuple[str, int, float]]:
    """Every lease: name -> (holder, token, seconds until it expires; negative once expired)."""
    c = t.leases.c
    with store.read() as tx:
        rows = tx.conn.execute(select(c.name, c.holder, c.token, c.expires_date - db_now(store))).all()
    return {r[0]: (r[1], int(r[2]), float(r[3])) for r in rows}
