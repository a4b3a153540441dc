"""Rotation schedules: AutomaticallyAfterDays, rate(...) and cron(...) (pure).

The rules follow AWS's "Rotation schedules" guide:
- rate(N hour|hours|day|days): no more often than every 4 hours, at most 999 days.
- cron(Minutes Hours Day-of-month Month Day-of-week Year): minutes must be 0
  (windows open on the hour), year must be `*`, day-of-week 1-7 means SUN-SAT,
  `?` means "no specific value" and day-of-month and day-of-week can't both
  name days. Hour increments reset each day (`0 4/12` is 04:00 and 16:00).
- A rotation window opens at midnight UTC for rate() and AutomaticallyAfterDays,
  at the cron hour for cron(). It lasts one hour for schedules in hours and to
  the end of the UTC day for schedules in days; Duration (1h-24h) changes that,
  but the window must not reach into the next window or the next UTC day.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from croniter import CroniterBadDateError, croniter

from strongroom.errors import InvalidParameterException

MIN_HOURS = 4
MAX_DAYS = 999
_DAY = dt.timedelta(days=1)
_RATE = re.compile(r"^rate\(([1-9][0-9]{0,5}) (hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_DURATION = re.compile(r"^([0-9]{1,2})h$")
_DOW_NAMES = {"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6}
_DOW_PART = re.compile(r"^(\*|\w+)(?:-(\w+))?(?:/([0-9]+))?$")
_FIELD_CHARS = {  # what each cron field may contain besides digits (AWS's wildcard table)
    "hours": set(",-*/"),
    "day-of-month": set(",-*?/L"),
    "month": set(",-*/ABCDEFGJLMNOPRSTUVY"),  # letters of JAN-DEC
    "day-of-week": set("#,-*?/LSUNMOTEWDHFRIA"),  # letters of SUN-SAT, and L
}


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed rotation schedule: every `interval`, or on `cron` (five-field, croniter syntax)."""

    interval: dt.timedelta | None = None
    cron: str | None = None
    hours: tuple[int, ...] = (0,)  # the UTC hours windows open at, within a day

    @property
    def in_hours(self) -> bool:
        """Several windows a day (default window one hour) rather than one (to the end of the day)."""
        return len(self.hours) > 1 or (self.interval is not None and self.interval < _DAY)


def _invalid(expr: str, why: str) -> InvalidParameterException:
    return InvalidParameterException(f"The schedule expression {expr} isn't valid: {why}")


def parse(rules: dict[str, Any]) -> Schedule:
    """The schedule RotationRules describe; InvalidParameterException when they are not valid."""
    days, expr = rules.get("AutomaticallyAfterDays"), rules.get("ScheduleExpression")
    if days is not None and expr is not None:
        raise InvalidParameterException(
            "You cannot specify both rotation frequency and schedule expression together."
        )
    if days is None and expr is None:
        raise InvalidParameterException("You must specify AutomaticallyAfterDays or ScheduleExpression.")
    if days is not None:
        if not 1 <= days <= 1000:
            raise InvalidParameterException("AutomaticallyAfterDays must be between 1 and 1000.")
        return Schedule(interval=dt.timedelta(days=days))
    if m := _RATE.match(expr):
        return _rate(expr, int(m.group(1)), m.group(2))
    if m := _CRON.match(expr):
        return _cron(expr, m.group(1).split(" "))
    raise _invalid(expr, "use rate(value unit) or cron(minutes hours day-of-month month day-of-week year).")


def _rate(expr: str, n: int, unit: str) -> Schedule:
    if unit.startswith("hour"):
        if n < MIN_HOURS:
            raise _invalid(expr, f"you can rotate a secret at most every {MIN_HOURS} hours.")
        delta = dt.timedelta(hours=n)
    else:
        delta = dt.timedelta(days=n)
    if delta > dt.timedelta(days=MAX_DAYS):
        raise _invalid(expr, f"the longest rotation period is {MAX_DAYS} days.")
    hours = tuple(range(0, 24, n)) if delta < _DAY else (0,)
    return Schedule(interval=delta, hours=hours)


def _cron(expr: str, fields: list[str]) -> Schedule:
    if len(fields) != 6 or not all(fields):
        raise _invalid(expr, "a cron expression has six fields separated by single spaces.")
    minute, hour, dom, month, dow, year = (f.upper() for f in fields)
    if minute != "0":
        raise _invalid(expr, "the minutes field must be 0, as rotation windows open on the hour.")
    if year != "*":
        raise _invalid(expr, "the year field must be *.")
    for what, value in (("hours", hour), ("day-of-month", dom), ("month", month), ("day-of-week", dow)):
        if not set(value) <= _FIELD_CHARS[what] | set("0123456789"):
            raise _invalid(expr, f"the {what} field has characters it can't use.")
    if dom == "?" and dow == "?":
        raise _invalid(expr, "only one of day-of-month and day-of-week can be ?.")
    if "?" not in (dom, dow) and "*" not in (dom, dow):
        raise _invalid(expr, "you can't specify both day-of-month and day-of-week; use ? in one of them.")
    five = f"0 {hour} {'*' if dom == '?' else dom} {month} {'*' if dow == '?' else _convert_dow(expr, dow)}"
    if not croniter.is_valid(five):
        raise _invalid(expr, "a field is out of range.")
    expanded = croniter.expand(five)[0][1]
    hours = tuple(range(24)) if expanded == ["*"] else tuple(sorted(int(h) for h in expanded))
    if any(b - a < MIN_HOURS for a, b in zip(hours, hours[1:])):
        raise _invalid(expr, f"you can rotate a secret at most every {MIN_HOURS} hours.")
    return Schedule(cron=five, hours=hours)


def _convert_dow(expr: str, dow: str) -> str:
    """AWS day-of-week (1-7 or SUN-SAT, L, #) in croniter's syntax (0-6 = SUN-SAT)."""

    def day(token: str) -> str:
        if token in _DOW_NAMES:
            return str(_DOW_NAMES[token])
        if token.isdigit() and 1 <= int(token) <= 7:
            return str(int(token) - 1)
        raise _invalid(expr, f"{token} is not a day of the week (1-7 or SUN-SAT).")

    out = []
    for part in dow.split(","):
        if part == "*":
            out.append(part)
        elif part == "L":  # the last day of the week
            out.append("6")
        elif part.endswith("L"):  # the last such weekday of the month
            out.append("L" + day(part[:-1]))
        elif "#" in part:  # the nth such weekday of the month
            name, _, nth = part.partition("#")
            if not nth.isdigit() or not 1 <= int(nth) <= 5:
                raise _invalid(expr, "# must be followed by 1 to 5.")
            out.append(f"{day(name)}#{nth}")
        elif m := _DOW_PART.match(part):
            first, last, step = m.groups()
            text = "*" if first == "*" else day(first)
            if last:
                text += "-" + day(last)
            if step:
                text += "/" + step
            out.append(text)
        else:
            raise _invalid(expr, f"{part} is not a valid day-of-week value.")
    return ",".join(out)


def window_hours(rules: dict[str, Any], schedule: Schedule | None = None) -> int:
    """How many hours each rotation window stays open."""
    schedule = schedule or parse(rules)
    if "Duration" in rules:
        m = _DURATION.match(str(rules["Duration"]))
        if m is None or not 1 <= int(m.group(1)) <= 24:
            raise InvalidParameterException("The rotation window Duration must be between 1h and 24h.")
        return int(m.group(1))
    return 1 if schedule.in_hours else 24 - max(schedule.hours)


def check_rules(rules: dict[str, Any]) -> None:
    """Raise InvalidParameterException unless RotationRules are valid, window included."""
    schedule = parse(rules)
    hours = window_hours(rules, schedule)
    if max(schedule.hours) + hours > 24:
        raise InvalidParameterException("The rotation window can't extend into the next UTC day.")
    gaps = [b - a for a, b in zip(schedule.hours, schedule.hours[1:])]
    if gaps and hours > min(gaps):
        raise InvalidParameterException("The rotation window can't extend into the next rotation window.")
    if schedule.cron is not None:
        try:  # a valid expression may name a date that never comes (the 31st of February)
            croniter(schedule.cron, dt.datetime.now(dt.timezone.utc)).get_next(float)
        except CroniterBadDateError:
            raise _invalid(rules["ScheduleExpression"], "it never occurs.") from None


def next_rotation(rules: dict[str, Any], after: float) -> float:
    """When the next rotation window opens, strictly after `after` (epoch seconds).

    Schedules in days count whole days from the midnight (UTC) that began the
    day of `after`; schedules in hours restart at midnight each day.
    """
    schedule = parse(rules)
    start = dt.datetime.fromtimestamp(after, dt.timezone.utc)
    if schedule.cron is not None:
        return float(croniter(schedule.cron, start).get_next(float))
    assert schedule.interval is not None
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    if schedule.interval >= _DAY:
        return (midnight + schedule.interval).timestamp()
    opens = [midnight + dt.timedelta(hours=h) for h in schedule.hours] + [midnight + _DAY]
    return next(t for t in opens if t > start).timestamp()
