"""Re-running work a concurrent transaction ended (storage/retry.py)."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from strongroom.storage.retry import retrying, transient_reason


class DriverError(Exception):
    def __init__(self, sqlstate: str | None):
        super().__init__("driver error")
        self.sqlstate = sqlstate


def db_error(sqlstate: str | None, kind: type[Exception] = OperationalError) -> Exception:
    return kind("SELECT 1", {}, DriverError(sqlstate))  # type: ignore[call-arg]


@pytest.mark.parametrize("state,reason", [("40001", "serialization failure"), ("40P01", "deadlock"),
                                          ("23505", "concurrent insert of the same key"), ("23503", None),
                                          (None, None)])
def test_transient_reasons(state: str | None, reason: str | None) -> None:
    assert transient_reason(db_error(state)) == reason


def test_a_transient_failure_is_run_again() -> None:
    calls: list[int] = []

    def work(x: int) -> int:
        calls.append(x)
        if len(calls) < 3:
            raise db_error("40P01")
        return x * 2

    assert retrying(work)(21) == 42
    assert calls == [21, 21, 21]


def test_other_failures_are_not_retried() -> None:
    calls: list[int] = []

    def work() -> None:
        calls.append(1)
        raise db_error("23503", IntegrityError)  # a foreign key violation is the request's own

    with pytest.raises(IntegrityError):
        retrying(work)()
    assert calls == [1]


def test_a_conflict_that_persists_is_raised_in_the_end() -> None:
    calls: list[int] = []

    def work() -> None:
        calls.append(1)
        raise db_error("40001")

    with pytest.raises(OperationalError):
        retrying(work, attempts=3)()
    assert len(calls) == 3
