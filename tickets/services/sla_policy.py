"""The SLA policies and the watched clocks: which policy an inquiry gets, its
business calendar, the first-reply and resolution due times, the three
WatchedClocks (first reply, next reply, resolution), each one's live state
and its filter, and the keys of the at-risk and breach notices.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Q

from tickets import calendar as cal
from tickets.models import (
    OPEN_STATUSES,
    BusinessCalendar,
    Inquiry,
    InquiryEventKind,
    NotificationKind,
    SlaClock,
    SlaPolicy,
    SlaState,
)

# The key of an at-risk or breach notice: the deadline it warns of (UTC, to
# the microsecond), so that a deadline moved by a priority or policy change
# gets its own notices, and each deadline its notices once. The SQL writes
# the same text as sla_notice_key.
_NOTICE_KEY_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
_NOTICE_KEY_SQL = "to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"


def sla_notice_key(due: datetime) -> str:
    """The notice key of the deadline `due` (see _NOTICE_KEY_FORMAT)."""
    return due.astimezone(UTC).strftime(_NOTICE_KEY_FORMAT)


def calendar_for(calendar: BusinessCalendar) -> cal.BusinessCalendar:
    """The pure calendar of a calendar row (with its closures)."""
    closures = tuple((c.start_date, c.end_date) for c in calendar.closures.all())
    return cal.calendar_from_spec(
        calendar.hours,
        tz=calendar.time_zone,
        japanese_holidays=calendar.japanese_holidays,
        year_end_closure=((12, 29), (1, 3)) if calendar.year_end_closure else None,
        closures=closures,
    )


def policy_calendar(policy: SlaPolicy | None) -> cal.BusinessCalendar | None:
    """The pure calendar a policy counts in: None for calendar hours."""
    if policy is not None and policy.clock == SlaClock.BUSINESS:
        return calendar_for(policy.calendar)  # type: ignore[arg-type]  # the business clock has one (a constraint)
    return None


def policy_clock_minutes(inquiry: Inquiry, at: datetime) -> int:
    """Whole minutes from the inquiry's receipt to `at` in the clock of its
    SLA policy: open time of the policy's calendar where it counts business
    hours, wall time where it counts calendar hours (or has no policy)."""
    policy = inquiry.sla_policy
    pure = (
        calendar_for(policy.calendar)  # type: ignore[arg-type]  # the business clock has one (a constraint)
        if policy is not None and policy.clock == SlaClock.BUSINESS
        else None
    )
    return int(cal.business_elapsed(inquiry.created_at, at, pure).total_seconds() // 60)


def sla_policy_for(*, channel: str, priority: str) -> SlaPolicy | None:
    """The most specific active policy: channel and priority, then channel,
    then priority, then the default (both blank)."""
    candidates = (
        SlaPolicy.objects.filter(is_active=True)
        .filter(Q(channel=channel) | Q(channel=""))
        .filter(Q(priority=priority) | Q(priority=""))
        .select_related("calendar")
        .prefetch_related("calendar__closures")
    )
    best = None
    for policy in candidates:
        rank = (policy.channel != "", policy.priority != "")
        if best is None or rank > best[0]:
            best = (rank, policy)
    return best[1] if best else None


def sla_times(policy: SlaPolicy, start: datetime) -> tuple[datetime, datetime]:
    """(first reply due, at risk from) for an inquiry received at `start`.
    "At risk" is when at_risk_minutes of the policy's own clock are left."""
    pure = calendar_for(policy.calendar) if policy.clock == SlaClock.BUSINESS else None  # type: ignore[arg-type]  # the business clock has one (a constraint)
    target = timedelta(minutes=policy.first_reply_minutes)
    warn = max(target - timedelta(minutes=policy.at_risk_minutes), timedelta(0))
    due = cal.business_deadline(start, target, pure)
    at_risk = cal.business_deadline(start, warn, pure)
    return due, at_risk


@dataclass(frozen=True)
class WatchedClock:
    """One of the three clocks, as the watch, the live state and the inbox
    read it: its columns (`stopped` is NULL while it runs: the first reply,
    the next reply, the resolution's pause or stop), its timeline event and
    its two notices. A notice's key is the clock's name and the deadline
    (the first reply's is the deadline alone: its keys came first)."""

    name: str
    due: str
    at_risk: str
    state: str
    stopped: str
    event: str
    at_risk_notice: str
    breached_notice: str
    key_prefix: str


FIRST_REPLY = WatchedClock(
    name="first_reply",
    due="first_reply_due_at",
    at_risk="at_risk_at",
    state="sla_state",
    stopped="first_replied_at",
    event=InquiryEventKind.SLA,
    at_risk_notice=NotificationKind.AT_RISK,
    breached_notice=NotificationKind.BREACHED,
    key_prefix="",
)
NEXT_REPLY = WatchedClock(
    name="next_reply",
    due="next_reply_due_at",
    at_risk="next_reply_at_risk_at",
    state="next_reply_state",
    stopped="next_replied_at",
    event=InquiryEventKind.SLA_NEXT_REPLY,
    at_risk_notice=NotificationKind.NEXT_AT_RISK,
    breached_notice=NotificationKind.NEXT_BREACHED,
    key_prefix="next_reply:",
)
RESOLUTION = WatchedClock(
    name="resolution",
    due="resolution_due_at",
    at_risk="resolution_at_risk_at",
    state="resolution_state",
    stopped="resolution_paused_at",
    event=InquiryEventKind.SLA_RESOLUTION,
    at_risk_notice=NotificationKind.RESOLUTION_AT_RISK,
    breached_notice=NotificationKind.RESOLUTION_BREACHED,
    key_prefix="resolution:",
)
CLOCKS = {clock.name: clock for clock in (FIRST_REPLY, NEXT_REPLY, RESOLUTION)}
# The live state of a resolution clock paused by a waiting status.
PAUSED = "paused"
_RUNNING_STATES = (SlaState.ON_TRACK, SlaState.AT_RISK)


def clock_notice_key(clock: WatchedClock, due: datetime) -> str:
    """The key of the clock's at-risk and breach notices for deadline `due`."""
    return clock.key_prefix + sla_notice_key(due)


def sla_state_live(inquiry: Inquiry, now: datetime, clock: WatchedClock = FIRST_REPLY) -> str:
    """The clock's state at `now`: an SlaState value, PAUSED (a resolution
    clock while the inquiry waits), or "" when no deadline applies. The
    stored state moves only when the SLA watch runs; the deadline itself is
    exact, so the live state is the later of the two. sla_state_live_q
    selects inquiries by the same rule."""
    state = getattr(inquiry, clock.state)
    if getattr(inquiry, clock.stopped) is not None:
        if clock is RESOLUTION and state in _RUNNING_STATES:
            return PAUSED if inquiry.status in OPEN_STATUSES else ""
        if clock is not FIRST_REPLY and not state:
            return ""
        return SlaState.BREACHED if state == SlaState.BREACHED else SlaState.MET
    due = getattr(inquiry, clock.due)
    if inquiry.status not in OPEN_STATUSES or due is None or not state:
        return ""
    if now >= due or state == SlaState.BREACHED:
        return SlaState.BREACHED
    at_risk = getattr(inquiry, clock.at_risk)
    if state == SlaState.AT_RISK or (at_risk is not None and now >= at_risk):
        return SlaState.AT_RISK
    return SlaState.ON_TRACK


def sla_state_live_q(state: str, now: datetime, clock: WatchedClock = FIRST_REPLY) -> Q:
    """The inquiries whose sla_state_live of `clock` is `state` at `now`."""

    def q(column: str, lookup: str = "", value: Any = None) -> Q:
        return Q(**{f"{column}__{lookup}" if lookup else column: value})

    running = q(clock.stopped, "isnull", True) & Q(status__in=OPEN_STATUSES)
    if clock is not FIRST_REPLY:
        running &= ~q(clock.state, value="")
    overdue = running & (q(clock.due, "lte", now) | q(clock.state, value=SlaState.BREACHED))
    if state == SlaState.BREACHED:
        return overdue | (
            q(clock.stopped, "isnull", False) & q(clock.state, value=SlaState.BREACHED)
        )
    if state == SlaState.AT_RISK:
        return (
            running
            & q(clock.due, "gt", now)
            & q(clock.state, "in", list(_RUNNING_STATES))
            & (q(clock.state, value=SlaState.AT_RISK) | q(clock.at_risk, "lte", now))
        )
    if state == SlaState.ON_TRACK:
        return (
            running
            & q(clock.due, "gt", now)
            & q(clock.state, value=SlaState.ON_TRACK)
            & (q(clock.at_risk, "isnull", True) | q(clock.at_risk, "gt", now))
        )
    if state == SlaState.MET and clock is FIRST_REPLY:
        return Q(first_replied_at__isnull=False) & ~Q(sla_state=SlaState.BREACHED)
    if state == SlaState.MET:
        return q(clock.stopped, "isnull", False) & q(clock.state, value=SlaState.MET)
    if state == PAUSED:
        return (
            q(clock.stopped, "isnull", False)
            & q(clock.state, "in", list(_RUNNING_STATES))
            & Q(status__in=OPEN_STATUSES)
        )
    return Q()
