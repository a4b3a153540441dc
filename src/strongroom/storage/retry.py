"""Re-running a unit of work that the database ended only because of a concurrent one.

With row locks at READ COMMITTED (see store.py), PostgreSQL still ends a
transaction in three situations that say nothing about the request itself:
a deadlock (two writers locking rows in opposite orders, 40P01), a
serialization failure (40001, from a REPEATABLE READ reader that wrote), and
a unique violation (23505) when two nodes insert the same key at once (two
CreateSecret calls for one name). Re-running the whole operation in a new
transaction gives the answer it would have had if the two had run one after
the other, which is what SQLite's single writer gives: the second CreateSecret
then sees the first and answers ResourceExistsException.

Operations are safe to re-run because the failed attempt's transaction rolled
back and their other effects (cache invalidation, audit) follow the commit.
SQLite needs none of this: its writers never overlap, so a constraint
violation there is the request's own and is not retried.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from sqlalchemy.exc import DBAPIError

log = logging.getLogger("strongroom.storage")
P = ParamSpec("P")
T = TypeVar("T")

TRANSIENT = {
    "40001": "serialization failure",
    "40P01": "deadlock",
    "23505": "concurrent insert of the same key",
}
ATTEMPTS = 8


def transient_reason(exc: BaseException) -> str | None:
    """Why `exc` is worth a retry, or None if it is not a concurrency casualty."""
    while exc is not None:
        if isinstance(exc, DBAPIError):
            state = getattr(exc.orig, "sqlstate", None)  # psycopg 3 errors carry their SQLSTATE
            if state in TRANSIENT:
                return TRANSIENT[state]
            return None
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return None


def retrying(fn: Callable[P, T], *, attempts: int = ATTEMPTS) -> Callable[P, T]:
    """`fn`, re-run (with jittered backoff) while it fails for a transient reason."""

    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        for attempt in range(1, attempts + 1):
            try:
                return fn(*args, **kwargs)
            except DBAPIError as exc:
                reason = transient_reason(exc)
                if reason is None or attempt == attempts:
                    raise
                log.info("retrying after a transient database conflict",
                         extra={"reason": reason, "attempt": attempt})
                time.sleep(random.uniform(0, 0.005 * 2 ** attempt))
        raise AssertionError("unreachable")

    return run
