"""The business calendar and its arithmetic: BusinessCalendar (periods,
holidays, closures), whether an instant is open, the next opening, the
deadline after some open time and the open time between two instants.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

DAY = timedelta(days=1)
WEEKDAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_CLOSED_DAYS = 3 * 366
_MICROSECOND = timedelta(microseconds=1)

Period = tuple[time, time]
MonthDay = tuple[int, int]
_Span = tuple[timedelta, timedelta]  # offsets from local midnight; 0 <= start < end <= 24 h
_Interval = tuple[datetime, datetime]  # UTC instants, start < end


@functools.cache
def _japanese_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("JP", years=year))


def _offset(value: time) -> timedelta:
    return datetime.combine(date.min, value) - datetime.min


def _fmt(offset: timedelta) -> str:
    minutes, seconds = divmod(int(offset.total_seconds()), 60)
    text = f"{minutes // 60:02d}:{minutes % 60:02d}"
    return f"{text}:{seconds:02d}" if seconds else text


def _normalize_day(label: str, periods: Sequence[Period]) -> tuple[_Span, ...]:
    if isinstance(periods, str | bytes) or not isinstance(periods, Sequence):
        raise ValueError(f"{label}: expected a list of (start, end) periods")
    spans = []
    for period in periods:
        if not (
            isinstance(period, Sequence)
            and len(period) == 2
            and all(isinstance(bound, time) and bound.tzinfo is None for bound in period)
        ):
            raise ValueError(f"{label}: {period!r} is not a (start, end) pair of naive times")
        start, end = _offset(period[0]), _offset(period[1]) or DAY  # end 00:00 means 24:00
        if end <= start:
            raise ValueError(f"{label}: period {_fmt(start)}-{_fmt(end)} ends before it starts")
        spans.append((start, end))
    spans.sort()
    for (start1, end1), (start2, end2) in itertools.pairwise(spans):
        if start2 < end1:
            raise ValueError(
                f"{label}: periods {_fmt(start1)}-{_fmt(end1)} and "
                f"{_fmt(start2)}-{_fmt(end2)} overlap"
            )
    return tuple(spans)


def _check_month_day(value: object) -> None:
    month: int
    day: int
    try:
        month, day = value  # type: ignore[misc]
        date(2000, month, day)  # a leap year, so (2, 29) is allowed
    except (TypeError, ValueError):
        raise ValueError(f"year-end closure bound {value!r} is not a valid (month, day)") from None


@dataclass(frozen=True, kw_only=True)
class BusinessCalendar:
    """When a shop counts SLA time; see the module docstring for semantics.

    ``periods`` maps weekday (0 = Monday … 6 = Sunday) to opening periods,
    e.g. ``{0: ((time(9), time(12)), (time(13), time(18)))}``; a weekday
    missing or mapped to ``()`` is closed. Periods are sorted on construction
    (and ``periods`` becomes a read-only mapping). Overlapping periods, an end
    not after its start, a weekday outside 0–6, no period at all, an unknown
    zone, a bad month/day or a reversed closure raise ``ValueError``.
    ``year_end_closure`` is an inclusive (month, day) range that may span the
    new year (``None`` turns it off); ``closures`` are inclusive date ranges.
    Calendars compare equal and hash by content, so they can key a cache.
    """

    periods: Mapping[int, Sequence[Period]] = field(compare=False)
    tz: str = "Asia/Tokyo"
    japanese_holidays: bool = True
    year_end_closure: tuple[MonthDay, MonthDay] | None = ((12, 29), (1, 3))
    closures: tuple[tuple[date, date], ...] = ()
    _spans: tuple[tuple[_Span, ...], ...] = field(init=False, repr=False)
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.periods, Mapping):
            raise ValueError("periods must map weekday (0 = Monday) to opening periods")
        for weekday in self.periods:
            if type(weekday) is not int or not 0 <= weekday <= 6:
                raise ValueError(f"weekday {weekday!r} is out of range: use 0 (Monday) to 6")
        spans = tuple(
            _normalize_day(f"weekday {weekday}", self.periods.get(weekday, ()))
            for weekday in range(7)
        )
        if not any(spans):
            raise ValueError("a business calendar needs at least one opening period")
        try:
            zone = ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ValueError(f"unknown time zone {self.tz!r}") from None
        if self.year_end_closure is not None:
            closure: tuple[Any, ...] = self.year_end_closure
            if not (isinstance(closure, Sequence) and len(closure) == 2):
                raise ValueError("year_end_closure must be ((month, day), (month, day)) or None")
            for bound in closure:
                _check_month_day(bound)
            first, last = closure
            object.__setattr__(self, "year_end_closure", (tuple(first), tuple(last)))
        closures = tuple(tuple(closure) for closure in self.closures)
        for closure in closures:
            if len(closure) != 2 or not all(
                isinstance(d, date) and not isinstance(d, datetime) for d in closure
            ):
                raise ValueError(f"closure {closure!r} is not a (first, last) pair of dates")
            if closure[1] < closure[0]:
                raise ValueError(f"closure {closure[0]}..{closure[1]} ends before it starts")
        periods = {
            weekday: tuple((_as_time(start), _as_time(end)) for start, end in day)
            for weekday, day in enumerate(spans)
            if day
        }
        object.__setattr__(self, "periods", MappingProxyType(periods))
        object.__setattr__(self, "closures", closures)
        object.__setattr__(self, "_spans", spans)
        object.__setattr__(self, "_zone", zone)


def _as_time(offset: timedelta) -> time:
    """Offset from midnight as a time; 24:00 becomes time(0, 0)."""
    return (datetime.min + offset).time()


def default_calendar() -> BusinessCalendar:
    """Monday–Friday 9:00–18:00 Asia/Tokyo, public holidays and 12/29–1/3 closed."""
    return BusinessCalendar(periods={day: ((time(9), time(18)),) for day in range(5)})


def is_business_day(cal: BusinessCalendar, day: date) -> bool:
    """Whether ``day`` (a local date) has opening periods and is not closed."""
    if not cal._spans[day.weekday()]:
        return False
    if cal.japanese_holidays and day in _japanese_holidays(day.year):
        return False
    if cal.year_end_closure is not None:
        first, last = cal.year_end_closure
        month_day = (day.month, day.day)
        inside = (
            first <= month_day <= last
            if first <= last
            else month_day >= first or month_day <= last  # spans the new year
        )
        if inside:
            return False
    return not any(first <= day <= last for first, last in cal.closures)


def _wall_to_utc(day: date, offset: timedelta, zone: ZoneInfo) -> datetime:
    """The instant of local wall time ``day + offset`` (offset may be 24 h)."""
    naive = datetime.combine(day, time()) + offset
    first = naive.replace(tzinfo=zone)
    second = naive.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset() or first.utcoffset() > second.utcoffset():  # type: ignore[operator]  # aware datetimes: utcoffset() is set
        return first.astimezone(UTC)  # ordinary time, or the first of a repeated hour
    # In a spring-forward gap: find the jump between the two readings by bisection.
    new_offset = second.utcoffset()
    low, high = second.astimezone(UTC), first.astimezone(UTC)
    while high - low > _MICROSECOND:
        middle = low + (high - low) // 2
        if middle.astimezone(zone).utcoffset() == new_offset:
            high = middle
        else:
            low = middle
    return high


@functools.lru_cache(maxsize=8192)  # calendars hash by content; the SLA watch repeats days
def _day_intervals(cal: BusinessCalendar, day: date) -> tuple[_Interval, ...]:
    if not is_business_day(cal, day):
        return ()
    intervals = []
    for start, end in cal._spans[day.weekday()]:
        opens = _wall_to_utc(day, start, cal._zone)
        closes = _wall_to_utc(day, end, cal._zone)
        if closes > opens:  # a period wholly inside a DST gap has no time
            intervals.append((opens, closes))
    return tuple(intervals)


def _open_intervals(
    cal: BusinessCalendar, start: datetime, stop: datetime | None = None
) -> Iterator[_Interval]:
    """Open intervals after UTC ``start``, clipped to it, in order.

    With ``stop``, ends after the local day of ``stop``; without, runs on and
    raises ``ValueError`` after ``MAX_CLOSED_DAYS`` days in a row without any.
    """
    day = start.astimezone(cal._zone).date()
    last_day = stop.astimezone(cal._zone).date() if stop is not None else None
    closed_days = 0
    while last_day is None or day <= last_day:
        found = False
        for opens, closes in _day_intervals(cal, day):
            if closes > start:
                found = True
                yield max(opens, start), closes
        closed_days = 0 if found else closed_days + 1
        if last_day is None and closed_days > MAX_CLOSED_DAYS:
            raise ValueError(
                f"the business calendar has no opening hours for {MAX_CLOSED_DAYS} days "
                f"after {start.astimezone(cal._zone):%Y-%m-%d}; check its periods and closures"
            )
        day += DAY


def _aware_utc(name: str, value: datetime) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def is_open(cal: BusinessCalendar, at: datetime) -> bool:
    """Whether ``at`` lies inside an open period (periods are ``[start, end)``)."""
    instant = _aware_utc("at", at)
    day = instant.astimezone(cal._zone).date()
    # The next day matters only where clocks fall back across midnight.
    return any(
        opens <= instant < closes
        for local_day in (day, day + DAY)
        for opens, closes in _day_intervals(cal, local_day)
    )


def next_opening(cal: BusinessCalendar, at: datetime) -> datetime:
    """``at`` itself when open, else the start of the next open period (in UTC)."""
    instant = _aware_utc("at", at)
    opens, _ = next(_open_intervals(cal, instant))
    return opens


def business_deadline(
    start: datetime, duration: timedelta, cal: BusinessCalendar | None
) -> datetime:
    """The first instant (in UTC) at which ``duration`` of open time has elapsed.

    Counting starts at ``start``, or at the next opening when ``start`` is
    outside business hours. With ``cal=None`` it is ``start + duration`` in
    real elapsed time. See the module docstring for the boundary rules.
    """
    instant = _aware_utc("start", start)
    if duration < timedelta(0):
        raise ValueError(f"duration must not be negative, got {duration}")
    if cal is None:
        return instant + duration
    remaining = duration
    for opens, closes in _open_intervals(cal, instant):
        if remaining <= closes - opens:
            return opens + remaining
        remaining -= closes - opens
    raise AssertionError("unreachable: _open_intervals never ends without a stop")


def business_elapsed(start: datetime, end: datetime, cal: BusinessCalendar | None) -> timedelta:
    """Open time in ``[start, end)``; zero when ``end <= start``.

    With ``cal=None`` it is the real elapsed time ``end - start``.
    """
    begin, finish = _aware_utc("start", start), _aware_utc("end", end)
    if finish <= begin:
        return timedelta(0)
    if cal is None:
        return finish - begin
    total = timedelta(0)
    for opens, closes in _open_intervals(cal, begin, stop=finish):
        if opens >= finish:
            break
        total += min(closes, finish) - opens
    return total
