"""Rotation schedules: next-window arithmetic for AutomaticallyAfterDays, rate() and cron(), and refusals."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.errors import InvalidParameterException
from strongroom.services.secretsmanager import schedule


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc).timestamp()


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M")


@pytest.mark.parametrize(
    ("rules", "after", "expected"),
    [
        # Schedules in days: whole days from the midnight that began the day.
        ({"AutomaticallyAfterDays": 1}, "2024-01-10T10:37:00", "2024-01-11T00:00"),
        ({"AutomaticallyAfterDays": 30}, "2024-01-10T23:59:59", "2024-02-09T00:00"),
        ({"AutomaticallyAfterDays": 1}, "2024-02-28T12:00:00", "2024-02-29T00:00"),  # leap year
        ({"ScheduleExpression": "rate(10 days)"}, "2024-12-25T08:00:00", "2025-01-04T00:00"),
        ({"ScheduleExpression": "rate(1 day)"}, "2024-01-10T00:00:00", "2024-01-11T00:00"),
        # Schedules in hours: windows from midnight, restarting each day.
        ({"ScheduleExpression": "rate(4 hours)"}, "2024-01-10T10:37:00", "2024-01-10T12:00"),
        ({"ScheduleExpression": "rate(4 hours)"}, "2024-01-10T12:00:00", "2024-01-10T16:00"),  # strictly after
        ({"ScheduleExpression": "rate(12 hours)"}, "2024-01-10T12:20:00", "2024-01-11T00:00"),
        ({"ScheduleExpression": "rate(5 hours)"}, "2024-01-10T21:00:00", "2024-01-11T00:00"),  # reset at midnight
        ({"ScheduleExpression": "rate(36 hours)"}, "2024-01-10T21:00:00", "2024-01-11T12:00"),
        # cron: AWS's documented examples.
        ({"ScheduleExpression": "cron(0 10 * * ? *)"}, "2024-01-10T10:00:00", "2024-01-11T10:00"),
        ({"ScheduleExpression": "cron(0 10 * * ? *)"}, "2024-01-10T09:59:00", "2024-01-10T10:00"),
        ({"ScheduleExpression": "cron(0 18 ? * SAT *)"}, "2024-01-10T00:00:00", "2024-01-13T18:00"),
        ({"ScheduleExpression": "cron(0 18 ? * 7 *)"}, "2024-01-10T00:00:00", "2024-01-13T18:00"),  # 7 = SAT
        ({"ScheduleExpression": "cron(0 8 1 * ? *)"}, "2024-01-10T00:00:00", "2024-02-01T08:00"),
        ({"ScheduleExpression": "cron(0 1 * 1/3 SUN *)"}, "2024-01-30T00:00:00", "2024-04-07T01:00"),
        ({"ScheduleExpression": "cron(0 17 L * ? *)"}, "2024-02-10T00:00:00", "2024-02-29T17:00"),
        ({"ScheduleExpression": "cron(0 8 ? * MON-FRI *)"}, "2024-01-12T09:00:00", "2024-01-15T08:00"),
        ({"ScheduleExpression": "cron(0 8 ? * 2-6 *)"}, "2024-01-12T09:00:00", "2024-01-15T08:00"),  # 2-6 = MON-FRI
        ({"ScheduleExpression": "cron(0 16 1,15 * ? *)"}, "2024-01-10T00:00:00", "2024-01-15T16:00"),
        ({"ScheduleExpression": "cron(0 0 ? * SUN#1 *)"}, "2024-01-10T00:00:00", "2024-02-04T00:00"),
        ({"ScheduleExpression": "cron(0 0 ? * 3#2 *)"}, "2024-01-01T00:00:00", "2024-01-09T00:00"),  # 2nd TUE
        ({"ScheduleExpression": "cron(0 0 ? * FRIL *)"}, "2024-01-01T00:00:00", "2024-01-26T00:00"),  # last FRI
        ({"ScheduleExpression": "cron(0 0 ? * L *)"}, "2024-01-10T00:00:00", "2024-01-13T00:00"),  # L = SAT
        ({"ScheduleExpression": "cron(0 4/12 * * ? *)"}, "2024-01-10T17:00:00", "2024-01-11T04:00"),
        ({"ScheduleExpression": "cron(0 0 1 JAN-MAR ? *)"}, "2024-03-10T00:00:00", "2025-01-01T00:00"),
    ],
)
def test_next_rotation(rules, after, expected):
    assert iso(schedule.next_rotation(rules, at(after))) == expected


@pytest.mark.parametrize(
    "expression",
    [
        "rate(3 hours)",  # more often than every four hours
        "rate(0 days)",
        "rate(1000 days)",  # longer than 999 days
        "rate(24000 hours)",
        "rate(10 weeks)",
        "rate(10days)",
        "rate( 10 days)",
        "rate(-1 days)",
        "every 10 days",
        "cron(0 10 * * ?)",  # five fields
        "cron(0 10 * * ? * *)",
        "cron(0  10 * * ? *)",  # double space
        "cron(30 10 * * ? *)",  # minutes must be 0
        "cron(0 10 * * ? 2030)",  # year must be *
        "cron(0 24 * * ? *)",
        "cron(0 10 32 * ? *)",
        "cron(0 10 * 13 ? *)",
        "cron(0 10 ? * 8 *)",
        "cron(0 10 ? * 0 *)",  # AWS days of the week are 1-7
        "cron(0 10 ? * FUN *)",
        "cron(0 10 ? * ? *)",  # both ?
        "cron(0 10 1 * MON *)",  # both day fields specific
        "cron(0 10 ? * MON#6 *)",
        "cron(0 */2 * * ? *)",  # every two hours
        "cron(0 1,3 * * ? *)",
        "cron(0 10 1W * ? *)",  # W is not in AWS's table
        "cron()",
    ],
)
def test_invalid_expressions_are_refused(expression):
    with pytest.raises(InvalidParameterException):
        schedule.check_rules({"ScheduleExpression": expression})


@pytest.mark.parametrize(
    "rules",
    [
        {},
        {"AutomaticallyAfterDays": 1, "ScheduleExpression": "rate(1 day)"},
        {"AutomaticallyAfterDays": 0},
        {"AutomaticallyAfterDays": 1001},
        {"ScheduleExpression": "rate(1 day)", "Duration": "0h"},
        {"ScheduleExpression": "rate(1 day)", "Duration": "25h"},
        {"ScheduleExpression": "rate(1 day)", "Duration": "3"},
        {"ScheduleExpression": "rate(4 hours)", "Duration": "5h"},  # into the next window
        {"ScheduleExpression": "rate(5 hours)", "Duration": "5h"},  # the 20:00 window reaches the next day
        {"ScheduleExpression": "cron(0 22 * * ? *)", "Duration": "3h"},  # into the next UTC day
        {"ScheduleExpression": "cron(0 4/12 * * ? *)", "Duration": "13h"},
    ],
)
def test_invalid_rules_are_refused(rules):
    with pytest.raises(InvalidParameterException):
        schedule.check_rules(rules)


@pytest.mark.parametrize(
    ("rules", "hours"),
    [
        ({"AutomaticallyAfterDays": 7}, 24),
        ({"ScheduleExpression": "rate(10 days)"}, 24),
        ({"ScheduleExpression": "rate(4 hours)"}, 1),
        ({"ScheduleExpression": "cron(0 10 * * ? *)"}, 14),  # to the end of the day
        ({"ScheduleExpression": "cron(0 4/12 * * ? *)"}, 1),
        ({"ScheduleExpression": "cron(0 22 * * ? *)", "Duration": "2h"}, 2),
        ({"ScheduleExpression": "rate(8 hours)", "Duration": "8h"}, 8),
        ({"AutomaticallyAfterDays": 1, "Duration": "24h"}, 24),
    ],
)
def test_valid_windows(rules, hours):
    schedule.check_rules(rules)
    assert schedule.window_hours(rules) == hours


def test_errors_name_the_expression():
    with pytest.raises(InvalidParameterException) as exc:
        schedule.check_rules({"ScheduleExpression": "cron(30 10 * * ? *)"})
    assert "cron(30 10 * * ? *)" in exc.value.message and "minutes" in exc.value.message


instants = st.integers(min_value=int(at("2000-01-01T00:00:00")), max_value=int(at("2099-01-01T00:00:00")))


@given(st.integers(min_value=1, max_value=1000), instants)
def test_days_land_on_midnight_n_days_after_the_day_began(days, after):
    nxt = schedule.next_rotation({"AutomaticallyAfterDays": days}, after)
    assert nxt % 86400 == 0
    assert after < nxt <= after + days * 86400
    assert nxt - days * 86400 <= after < nxt - (days - 1) * 86400


@given(st.integers(min_value=4, max_value=23), instants)
def test_hour_rates_open_on_the_hour_within_the_interval(hours, after):
    nxt = schedule.next_rotation({"ScheduleExpression": f"rate({hours} hours)"}, after)
    assert nxt % 3600 == 0
    assert after < nxt <= after + hours * 3600
    assert (nxt % 86400) // 3600 % hours == 0


@given(st.integers(min_value=0, max_value=23), instants)
def test_daily_cron_is_within_a_day_at_the_hour(hour, after):
    nxt = schedule.next_rotation({"ScheduleExpression": f"cron(0 {hour} * * ? *)"}, after)
    assert after < nxt <= after + 86400
    assert nxt % 86400 == hour * 3600
