"""EventBridge Scheduler's schedule expressions: `rate(...)`, `cron(...)`, `at(...)`, and when
each next fires. Pure functions of the expression, the time zone and a moment (epoch seconds).

The grammar is the Scheduler user guide's (https://docs.aws.amazon.com/scheduler/latest/
UserGuide/schedule-types.html): `rate(value unit)` with a positive integer and minute(s),
hour(s) or day(s); `cron(minutes hours day-of-month month day-of-week year)`, six fields, `?` in
exactly one of day-of-month and day-of-week, names JAN-DEC and SUN-SAT (1 = SUN), wildcards
`, - * /` everywhere, `L W` in day-of-month, `L #` in day-of-week; `at(yyyy-mm-ddThh:mm:ss)` with
no zone (the schedule's time zone applies). Anything else raises `InvalidExpressionError`.
"""

from __future__ import annotations

import calendar
import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
MONTHS = {calendar.month_abbr[number].upper(): number for number in range(1, 13)}  # JAN = 1
WEEKDAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_AT = re.compile(r"at\((\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\)")
_CRON = re.compile(r"cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)")
_SEARCH_DAYS = 366 * 30  # how far ahead a cron expression is searched for its next match


class InvalidExpressionError(ValueError):
    """Not a schedule expression EventBridge Scheduler accepts."""


# --- the three kinds -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    seconds: int

    def next_after(self, after: float, anchor: float) -> float:
        """Occurrences are anchor + k * period (k >= 0): the first one later than `after`."""
        if after < anchor:
            return anchor
        periods = int((after - anchor) // self.seconds) + 1
        return anchor + periods * self.seconds


@dataclass(frozen=True)
class At:
    local: datetime.datetime  # naive, in the schedule's time zone

    def moment(self, zone: ZoneInfo) -> float:
        return self.local.replace(tzinfo=zone).timestamp()


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    months: frozenset[int]
    years: frozenset[int]
    day_matches: Callable[[datetime.date], bool]

    def next_after(self, after: float, zone: ZoneInfo) -> float | None:
        """The first matching minute later than `after` (None within the search horizon)."""
        start = datetime.datetime.fromtimestamp(after, zone)
        day = start.date()
        for _ in range(_SEARCH_DAYS):
            if day.year in self.years and day.month in self.months and self.day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        moment = datetime.datetime(
                            day.year, day.month, day.day, hour, minute, tzinfo=zone
                        ).timestamp()
                        if moment > after:
                            return moment
            day += datetime.timedelta(days=1)
        return None


def parse(expression: str) -> Rate | At | Cron:
    """The expression's meaning; InvalidExpressionError if Scheduler would refuse it."""
    for pattern, build in ((_RATE, _rate), (_AT, _at), (_CRON, _cron)):
        match = pattern.fullmatch(expression)
        if match:
            return build(*match.groups())
    raise InvalidExpressionError(expression)


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise InvalidExpressionError(name) from err


def _rate(value: str, unit: str) -> Rate:
    if int(value) < 1:
        raise InvalidExpressionError(value)
    return Rate(int(value) * UNIT_SECONDS[unit.removesuffix("s")])


def _at(*parts: str) -> At:
    try:
        return At(datetime.datetime(*(int(p) for p in parts)))
    except ValueError as err:  # 2025-02-30 and the like
        raise InvalidExpressionError(str(err)) from err


# --- cron fields ----------------------------------------------------------------------------------


def _values(field: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int]:
    """`,`-separated items of `n`, `a-b`, `*`, each optionally `/step`."""
    found: set[int] = set()
    for item in field.split(","):
        span, _, step_text = item.partition("/")
        step = _number(step_text, 1, high) if step_text else 1
        if span == "*":
            first, last = low, high
        elif "-" in span:
            first_text, _, last_text = span.partition("-")
            first, last = (
                _number(first_text, low, high, names),
                _number(last_text, low, high, names),
            )
        else:
            first = _number(span, low, high, names)
            last = high if step_text else first
        sequence = (
            range(first, last + 1)
            if first <= last
            else [*range(first, high + 1), *range(low, last + 1)]
        )
        found.update(list(sequence)[::step])
    return found


def _number(text: str, low: int, high: int, names: dict[str, int] | None = None) -> int:
    value = (names or {}).get(text.upper()) if not text.isdigit() else int(text)
    if value is None or not low <= value <= high:
        raise InvalidExpressionError(text)
    return value


def _day_of_month(field: str) -> Callable[[datetime.date], bool]:
    if field == "L":
        return lambda d: d.day == calendar.monthrange(d.year, d.month)[1]
    if field == "LW":
        return lambda d: d == _nearest_weekday(d, calendar.monthrange(d.year, d.month)[1])
    if field.endswith("W"):
        target = _number(field[:-1], 1, 31)
        return lambda d: d == _nearest_weekday(d, target)
    days = _values(field, 1, 31)
    return lambda d: d.day in days


def _nearest_weekday(d: datetime.date, day: int) -> datetime.date | None:
    """The weekday nearest to `day` of d's month, without leaving the month."""
    last = calendar.monthrange(d.year, d.month)[1]
    if day > last:
        return None
    target = d.replace(day=day)
    if target.weekday() == 5:  # Saturday: Friday, or Monday when Friday is last month
        return (
            target - datetime.timedelta(days=1) if day > 1 else target + datetime.timedelta(days=2)
        )
    if target.weekday() == 6:  # Sunday: Monday, or Friday when Monday is next month
        return (
            target + datetime.timedelta(days=1)
            if day < last
            else target - datetime.timedelta(days=2)
        )
    return target


def _aws_weekday(d: datetime.date) -> int:
    return (d.isoweekday() % 7) + 1  # SUN = 1 ... SAT = 7


def _day_of_week(field: str) -> Callable[[datetime.date], bool]:
    if field == "L":
        return lambda d: _aws_weekday(d) == 7
    if field.endswith("L"):
        weekday = _number(field[:-1], 1, 7, WEEKDAYS)
        last = lambda d: d.day + 7 > calendar.monthrange(d.year, d.month)[1]  # noqa: E731
        return lambda d: _aws_weekday(d) == weekday and last(d)
    if "#" in field:
        weekday_text, _, nth_text = field.partition("#")
        weekday, nth = _number(weekday_text, 1, 7, WEEKDAYS), _number(nth_text, 1, 5)
        return lambda d: _aws_weekday(d) == weekday and (d.day - 1) // 7 + 1 == nth
    weekdays = _values(field, 1, 7, WEEKDAYS)
    return lambda d: _aws_weekday(d) in weekdays


def _cron(minutes, hours, day_of_month, month, day_of_week, year) -> Cron:
    if (day_of_month == "?") == (day_of_week == "?"):
        raise InvalidExpressionError("exactly one of day-of-month and day-of-week must be ?")
    day_matches = _day_of_week(day_of_week) if day_of_month == "?" else _day_of_month(day_of_month)
    return Cron(
        minutes=frozenset(_values(minutes, 0, 59)),
        hours=frozenset(_values(hours, 0, 23)),
        months=frozenset(_values(month, 1, 12, MONTHS)),
        years=frozenset(_values(year, 1970, 2199)),
        day_matches=day_matches,
    )
