"""The next-reply and resolution clocks as the inquiry moves (SPEC rule 13):
the resolution clock paused, stopped and resumed with the status, reset with
the policy; the next-reply clock owed on a customer's message, answered by a
reply, recounted when a reply's delivery fails.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from tickets import calendar as cal
from tickets.models import (
    OPEN_STATUSES,
    Inquiry,
    InquiryEvent,
    InquiryEventKind,
    InquiryStatus,
    SlaPolicy,
    SlaState,
)
from tickets.services.sla_policy import policy_calendar

CLOCK_PHASES: dict[str, cal.ClockPhase] = {
    InquiryStatus.NEW: cal.ClockPhase.RUNNING,
    InquiryStatus.OPEN: cal.ClockPhase.RUNNING,
    InquiryStatus.WAITING_CUSTOMER: cal.ClockPhase.PAUSED,
    InquiryStatus.WAITING_THIRD_PARTY: cal.ClockPhase.PAUSED,
    InquiryStatus.RESOLVED: cal.ClockPhase.STOPPED,
    InquiryStatus.CLOSED: cal.ClockPhase.STOPPED,
}


def _warn_left(policy: SlaPolicy) -> timedelta:
    return timedelta(minutes=policy.at_risk_minutes)


def resolution_clock(inquiry: Inquiry) -> cal.PausableClock | None:
    """The inquiry's resolution clock; None when its policy sets no target."""
    policy = inquiry.sla_policy
    if policy is None or policy.resolution_minutes is None or not inquiry.resolution_state:
        return None
    return cal.PausableClock(
        start=inquiry.created_at,
        target=timedelta(minutes=policy.resolution_minutes),
        paused=inquiry.resolution_paused,
        paused_at=inquiry.resolution_paused_at,
    )


def resolution_times(
    policy: SlaPolicy | None, start: datetime
) -> tuple[datetime | None, datetime | None]:
    """(resolution due, at risk from) of an inquiry received at `start`, or
    (None, None) when the policy sets no resolution target."""
    if policy is None or policy.resolution_minutes is None:
        return None, None
    clock = cal.PausableClock(start=start, target=timedelta(minutes=policy.resolution_minutes))
    pure = policy_calendar(policy)
    return cal.clock_deadline(clock, pure), cal.clock_at_risk(clock, _warn_left(policy), pure)


def resolution_clock_reset(inquiry: Inquiry) -> list[str]:
    """After the inquiry's policy changed: its resolution clock in the new
    policy's target and clock, the time paused so far kept. Returns the
    fields changed."""
    policy = inquiry.sla_policy
    if policy is None or policy.resolution_minutes is None:
        if not inquiry.resolution_state:
            return []
        inquiry.resolution_due_at = inquiry.resolution_at_risk_at = None
        inquiry.resolution_state = ""
    else:
        if inquiry.status in OPEN_STATUSES:  # the watch moves it on from here if need be
            inquiry.resolution_state = SlaState.ON_TRACK
        if CLOCK_PHASES[inquiry.status] is not cal.ClockPhase.RUNNING:
            # a clock new to the inquiry starts paused when it waits
            inquiry.resolution_paused_at = inquiry.resolution_paused_at or timezone.now()
        clock = resolution_clock(inquiry)
        if clock is None:
            return []  # resolved before the policy had a target
        _resolution_times_set(inquiry, clock, policy)
    return [
        "resolution_due_at",
        "resolution_at_risk_at",
        "resolution_state",
        "resolution_paused_at",
    ]


def _resolution_times_set(inquiry: Inquiry, clock: cal.PausableClock, policy: SlaPolicy) -> None:
    pure = policy_calendar(policy)
    inquiry.resolution_due_at = cal.clock_deadline(clock, pure)
    inquiry.resolution_at_risk_at = cal.clock_at_risk(clock, _warn_left(policy), pure)


def clocks_status_follow(inquiry: Inquiry, *, old_status: str, at: datetime) -> list[str]:
    """After `inquiry.status` changed from `old_status` at `at`: the
    resolution clock pauses (waiting on the customer or a third party),
    stops and is judged met or breached (resolved, closed), or resumes
    where it stopped (open again). The reply clocks need nothing: the
    watch and the live state read only open inquiries. Writes the
    resolution's SLA event when its state changes; returns the fields
    changed."""
    old_phase, phase = CLOCK_PHASES[old_status], CLOCK_PHASES[inquiry.status]
    clock = resolution_clock(inquiry)
    if clock is None or old_phase == phase:
        return []
    policy = inquiry.sla_policy
    pure = policy_calendar(policy)
    clocks = cal.clocks_phase(cal.InquiryClocks(phase=old_phase, resolution=clock), phase, at, pure)
    clock = clocks.resolution
    assert clock is not None and policy is not None  # a resolution clock has its policy
    inquiry.resolution_paused_at, inquiry.resolution_paused = clock.paused_at, clock.paused
    _resolution_times_set(inquiry, clock, policy)
    old_state = inquiry.resolution_state
    if phase is cal.ClockPhase.STOPPED and old_state != SlaState.BREACHED:
        late = cal.clock_used(clock, at, pure) > clock.target
        inquiry.resolution_state = SlaState.BREACHED if late else SlaState.MET
    elif old_phase is cal.ClockPhase.STOPPED and old_state == SlaState.MET:
        inquiry.resolution_state = SlaState.ON_TRACK  # reopened: the watch moves it on
    if inquiry.resolution_state != old_state:
        _clock_event(inquiry, InquiryEventKind.SLA_RESOLUTION, old_state)
    return [
        "resolution_paused_at",
        "resolution_paused",
        "resolution_due_at",
        "resolution_at_risk_at",
        "resolution_state",
    ]


def _clock_event(inquiry: Inquiry, kind: str, old_state: str) -> None:
    """The SLA event of the next-reply or resolution clock (kind)."""
    if kind == InquiryEventKind.SLA_NEXT_REPLY:
        new = inquiry.next_reply_state
    else:
        new = inquiry.resolution_state
    InquiryEvent.objects.create(inquiry=inquiry, kind=kind, old=old_state, new=new)


def next_reply_owed(inquiry: Inquiry, *, at: datetime) -> list[str]:
    """The customer wrote at `at`. After a public reply (the first one or a
    next one), the next reply is now due within the policy's target, from
    this message; a clock already running keeps its earlier start. Before
    the first reply the first-reply clock covers it. Returns the fields
    changed."""
    policy = inquiry.sla_policy
    if policy is None or inquiry.first_replied_at is None:
        return []
    if inquiry.next_reply_since is not None and inquiry.next_replied_at is None:
        return []  # owed already, from the customer's earlier message
    clocks = cal.clocks_customer_message(cal.InquiryClocks(phase=cal.ClockPhase.RUNNING), at)
    pure = policy_calendar(policy)
    target = timedelta(minutes=policy.next_reply_minutes)
    warn = max(target - _warn_left(policy), timedelta(0))
    inquiry.next_reply_since = clocks.reply_since
    inquiry.next_reply_due_at = cal.clocks_reply_deadline(clocks, target, pure)
    inquiry.next_reply_at_risk_at = cal.clocks_reply_deadline(clocks, warn, pure)
    inquiry.next_replied_at = None
    inquiry.next_reply_state = SlaState.ON_TRACK  # the customer's message is on the timeline
    return [
        "next_reply_since",
        "next_reply_due_at",
        "next_reply_at_risk_at",
        "next_replied_at",
        "next_reply_state",
    ]


def next_reply_answered(inquiry: Inquiry, *, at: datetime) -> list[str]:
    """A person's public reply went out at `at`: an owed next reply is met
    (breached when past its deadline). Returns the fields changed."""
    if inquiry.next_reply_since is None or inquiry.next_replied_at is not None:
        return []
    inquiry.next_replied_at = at
    old_state = inquiry.next_reply_state
    _next_reply_judge(inquiry, at)
    if inquiry.next_reply_state != old_state:
        _clock_event(inquiry, InquiryEventKind.SLA_NEXT_REPLY, old_state)
    return ["next_replied_at", "next_reply_state"]


def _next_reply_judge(inquiry: Inquiry, replied_at: datetime) -> None:
    late = inquiry.next_reply_due_at is not None and replied_at > inquiry.next_reply_due_at
    if late or inquiry.next_reply_state == SlaState.BREACHED:
        inquiry.next_reply_state = SlaState.BREACHED
    else:
        inquiry.next_reply_state = SlaState.MET


def next_reply_recount(inquiry: Inquiry, live: datetime | None) -> list[str]:
    """The reply that stopped the next-reply clock did not reach the
    customer: the clock stops at `live` (the next person's reply still
    live since the customer's message), or re-opens at its deadline (the
    watch moves it on). Returns the fields changed."""
    stopped_at = inquiry.next_replied_at
    if stopped_at is None or (live is not None and live <= stopped_at):
        return []
    old_state = inquiry.next_reply_state
    inquiry.next_replied_at = live
    if live is not None:
        _next_reply_judge(inquiry, live)
    elif old_state == SlaState.MET:
        inquiry.next_reply_state = SlaState.ON_TRACK
    if inquiry.next_reply_state != old_state:
        _clock_event(inquiry, InquiryEventKind.SLA_NEXT_REPLY, old_state)
    return ["next_replied_at", "next_reply_state"]
