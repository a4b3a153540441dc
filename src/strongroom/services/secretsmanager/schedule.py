"""Rotation schedules: AutomaticallyAfterDays, rate(...) and cron(...) (pure).

AWS cron has six fields (minutes hours day-of-month month day-of-week year),
with `?` for "no specific value" and day-of-week 1-7 meaning SUN-SAT.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from croniter import croniter

from strongroom.errors import InvalidParameterException

_RATE = re.compile(r"^rate\((\d+) (hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_DOW_NAMES = {"SUN": "0", "MON": "1", "TUE": "2", "WED": "3", "THU": "4", "FRI": "5", "SAT": "6"}


def check_rules(rules: dict[str, Any]) -> None:
    days, expr = rules.get("AutomaticallyAfterDays"), rules.get("ScheduleExpression")
    if days is not None and expr is not None:
        raise InvalidParameterException(
            "You cannot specify both rotation frequency and schedule expression together."
        )
    if days is None and expr is None:
        raise InvalidParameterException("You must specify AutomaticallyAfterDays or ScheduleExpression.")
    if expr is not None:
        _interval_or_cron(expr)
    if "Duration" in rules:
        hours = int(rules["Duration"].rstrip("h"))
        if not 1 <= hours <= 24:
            raise InvalidParameterException("The rotation window Duration must be between 1h and 24h.")


def _interval_or_cron(expr: str) -> dt.timedelta | str:
    if m := _RATE.match(expr):
        n, unit = int(m.group(1)), m.group(2)
        delta = dt.timedelta(hours=n) if unit.startswith("hour") else dt.timedelta(days=n)
        if not dt.timedelta(hours=4) <= delta <= dt.timedelta(days=1000):
            raise InvalidParameterException("The schedule expression rate must be between 4 hours and 1000 days.")
        return delta
    if m := _CRON.match(expr):
        fields = m.group(1).split()
        if len(fields) != 6:
            raise InvalidParameterException("A cron expression must have six fields.")
        minute, hour, dom, month, dow, _year = fields
        dow = "*" if dow == "?" else _convert_dow(dow)
        dom = "*" if dom == "?" else dom
        five = f"{minute} {hour} {dom} {month} {dow}"
        if not croniter.is_valid(five):
            raise InvalidParameterException(f"The schedule expression {expr} isn't valid.")
        return five
    raise InvalidParameterException(f"The schedule expression {expr} isn't valid.")


def _convert_dow(dow: str) -> str:
    def one(token: str) -> str:
        token = _DOW_NAMES.get(token.upper(), token)
        return str(int(token) - 1) if token.isdigit() and 1 <= int(token) <= 7 else token

    return ",".join("-".join(one(p) for p in part.split("-")) for part in dow.split(","))


def next_rotation(rules: dict[str, Any], after: float) -> float:
    """When the next rotation is due, strictly after `after` (epoch seconds)."""
    days = rules.get("AutomaticallyAfterDays")
    spec = _interval_or_cron(rules["ScheduleExpression"]) if days is None else dt.timedelta(days=days)
    start = dt.datetime.fromtimestamp(after, dt.timezone.utc)
    if isinstance(spec, dt.timedelta):
        return (start + spec).timestamp()
    return float(croniter(spec, start).get_next(float))
