"""Business-calendar arithmetic for first-reply deadlines (SPEC rule 1).

Pure Python, no Django models: the SLA code turns its calendar rows into a
:class:`BusinessCalendar` and asks :func:`business_deadline` when an inquiry
is due and :func:`business_elapsed` how much open time has passed.

The package: tickets.calendar.business (the calendar and its arithmetic),
tickets.calendar.spec (opening hours as text), tickets.calendar.clocks (the
pausing clocks); every public name is re-exported here, so callers use
``from tickets import calendar as cal``.

Semantics
---------
* A calendar is open during its *periods*, wall-clock intervals ``[start,
  end)`` of a local day in ``tz``, on every day that is not closed. A day is
  closed when it is a Japanese public holiday (if ``japanese_holidays``;
  substitute holidays included), inside the year-end closure, or inside one
  of the shop's ``closures``.
* An end of ``time(0, 0)`` means midnight at the *end* of the day (24:00). A
  period never crosses midnight: a shop open 22:00–02:00 has 22:00–24:00 on
  one day and 00:00–02:00 on the next; back-to-back periods join up.
* Wall-clock times become instants through :mod:`zoneinfo`, so 9:00–18:00 in
  Europe/Berlin stays 9:00–18:00 across DST (a day of 00:00–24:00 lasts 23 or
  25 hours then). A wall time inside a spring-forward gap is read as the
  instant the clocks jump; one repeated at fall-back as its first occurrence.
* ``business_deadline(start, d, cal)`` is the first instant ``t`` such that
  the open time in ``[start, t)`` equals ``d``. For ``d > 0``, ``t`` is inside
  an open period or exactly at a period's end (11:30 + 30 min with a lunch
  break at 12:00 is 12:00, not 13:00). For ``d == 0`` it is ``start`` when
  open, else the next opening; so a start outside hours counts from the next
  opening.
* Input datetimes must be timezone-aware (``ValueError`` otherwise); any zone
  will do. Results are aware datetimes in UTC, as Django stores them: Python
  compares and subtracts two datetimes that share a tzinfo by wall clock,
  which goes wrong across DST, while UTC values compare right with anything.
* A :class:`PausableClock` (the resolution clock, SPEC rule 13) counts open
  time from its start against a target, less the open time it spent paused;
  :class:`InquiryClocks` adds the reply clock and the inquiry's phase
  (running, paused by a waiting status, stopped by resolved or closed).
  Convert for display (``timezone.localtime``). With ``cal=None`` the clock
  is real elapsed time: 24 hours are 24 hours even across DST.
* Scanning forward ``MAX_CLOSED_DAYS`` (about 3 years) without any open time
  raises ``ValueError``; work is per day, so 300 business hours cost ~40 days.
"""

from tickets.calendar.business import (
    MAX_CLOSED_DAYS,
    WEEKDAY_KEYS,
    BusinessCalendar,
    business_deadline,
    business_elapsed,
    default_calendar,
    is_business_day,
    is_open,
    next_opening,
)
from tickets.calendar.clocks import (
    ClockPhase,
    InquiryClocks,
    PausableClock,
    clock_at_risk,
    clock_deadline,
    clock_pause,
    clock_resume,
    clock_used,
    clocks_customer_message,
    clocks_phase,
    clocks_replied,
    clocks_reply_deadline,
    clocks_resolution_deadline,
)
from tickets.calendar.spec import calendar_from_spec, calendar_spec

__all__ = [
    "MAX_CLOSED_DAYS",
    "WEEKDAY_KEYS",
    "BusinessCalendar",
    "ClockPhase",
    "InquiryClocks",
    "PausableClock",
    "business_deadline",
    "business_elapsed",
    "calendar_from_spec",
    "calendar_spec",
    "clock_at_risk",
    "clock_deadline",
    "clock_pause",
    "clock_resume",
    "clock_used",
    "clocks_customer_message",
    "clocks_phase",
    "clocks_replied",
    "clocks_reply_deadline",
    "clocks_resolution_deadline",
    "default_calendar",
    "is_business_day",
    "is_open",
    "next_opening",
]
