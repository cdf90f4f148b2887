"""Opening hours as text: a BusinessCalendar from ``{"mon": ["09:00-12:00"], ...}``
(the settings screen's form) and back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, time

from tickets.calendar.business import (
    WEEKDAY_KEYS,
    BusinessCalendar,
    MonthDay,
    Period,
    _fmt,
    _normalize_day,
)

_PERIOD_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def _parse_clock(label: str, text: str, hours: str, minutes: str, *, end: bool) -> time:
    hour, minute = int(hours), int(minutes)
    if hour == 24 and minute == 0 and end:
        return time(0)  # 24:00: midnight at the end of the day
    if hour > 23 or minute > 59:
        raise ValueError(f"{label}: {text!r} has an invalid time {hours}:{minutes}")
    return time(hour, minute)


def calendar_from_spec(
    spec: Mapping[str, Sequence[str]],
    *,
    tz: str = "Asia/Tokyo",
    japanese_holidays: bool = True,
    year_end_closure: tuple[MonthDay, MonthDay] | None = ((12, 29), (1, 3)),
    closures: tuple[tuple[date, date], ...] = (),
) -> BusinessCalendar:
    """Build a calendar from ``{"mon": ["09:00-12:00", "13:00-18:00"], ...}``.

    Keys are ``mon``…``sun`` (case-insensitive; missing days are closed);
    values are lists of ``"HH:MM-HH:MM"``, where ``24:00`` ends a period at
    midnight. Errors are ``ValueError`` whose message starts with the day key.
    """
    if not isinstance(spec, Mapping):
        raise ValueError("the opening hours must map day keys (mon…sun) to lists of periods")
    periods: dict[int, tuple[Period, ...]] = {}
    for key, values in spec.items():
        label = str(key).strip().lower()
        if label not in WEEKDAY_KEYS:
            raise ValueError(f"unknown day {key!r}: use {', '.join(WEEKDAY_KEYS)}")
        if WEEKDAY_KEYS.index(label) in periods:
            raise ValueError(f"{label}: the day is given twice")
        if isinstance(values, str) or not isinstance(values, Sequence):
            raise ValueError(f'{label}: expected a list like ["09:00-12:00", "13:00-18:00"]')
        parsed = []
        for text in values:
            match = _PERIOD_RE.match(text) if isinstance(text, str) else None
            if match is None:
                raise ValueError(f"{label}: {text!r} is not of the form HH:MM-HH:MM")
            opens = _parse_clock(label, text, *match.group(1, 2), end=False)
            closes = _parse_clock(label, text, *match.group(3, 4), end=True)
            parsed.append((opens, closes))
        periods[WEEKDAY_KEYS.index(label)] = tuple(parsed)
        _normalize_day(label, parsed)  # overlap and order errors, labelled by day key
    return BusinessCalendar(
        periods=periods,
        tz=tz,
        japanese_holidays=japanese_holidays,
        year_end_closure=year_end_closure,
        closures=closures,
    )


def calendar_spec(cal: BusinessCalendar) -> dict[str, list[str]]:
    """The inverse of :func:`calendar_from_spec` for the opening periods."""
    return {
        WEEKDAY_KEYS[weekday]: [f"{_fmt(start)}-{_fmt(end)}" for start, end in spans]
        for weekday, spans in enumerate(cal._spans)
        if spans
    }
