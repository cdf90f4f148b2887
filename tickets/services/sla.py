"""SLA policies, the first-reply, next-reply and resolution deadlines and
the SLA watch (SPEC rules 1 and 13).

The next-reply clock runs from the customer's earliest message not answered
since a public reply; a reply that reached the customer (or still may)
stops it. The resolution clock runs from receipt to resolved, paused while
the inquiry waits on the customer or a third party; resolved and closed
stop every clock, a reopen resumes them. The arithmetic is the pure
tickets.calendar (PausableClock, InquiryClocks)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from core.roles import managers
from tickets import calendar as cal
from tickets.models import (
    OPEN_STATUSES,
    BusinessCalendar,
    Inquiry,
    InquiryEvent,
    InquiryEventKind,
    InquiryStatus,
    NotificationKind,
    SlaClock,
    SlaPolicy,
    SlaState,
    StaffNotification,
)

logger = logging.getLogger(__name__)
WATCH_BATCH = 1000
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


def sla_watch(*, now: datetime | None = None) -> dict[str, int]:
    """Move the running clocks of open inquiries (first reply, next reply,
    resolution) on_track → at_risk → breached, by indexed queries on their
    stored thresholds (no scan of all inquiries), and notify once per
    change and deadline: the assignee, and on breach the managers
    (tickets.tasks.sla_watch_task has the notices mailed). Returns how
    many clocks moved to at risk and to breached, all clocks together.

    Each batch is one statement: the due rows are locked (SKIP LOCKED, so
    two watches never move the same row), updated, and their timeline
    events and notifications inserted from the UPDATE's RETURNING. An
    inquiry past its deadline goes straight to breached."""
    now = now or timezone.now()
    moved = {"at_risk": 0, "breached": 0}
    for clock in CLOCKS.values():
        if connection.vendor in ONE_STATEMENT_VENDORS:
            counts = _watch_in_statements(now, clock)
        else:
            counts = _watch_portable(now, clock)
        for state, count in counts.items():
            moved[state] += count
    return moved


# Where the watch runs as one statement a batch (data-modifying CTEs, SKIP
# LOCKED, jsonb). Elsewhere (the SQLite of `make run`) the same steps run
# through the ORM, a few queries a batch.
ONE_STATEMENT_VENDORS = ("postgresql",)


def _watch_in_statements(now: datetime, clock: WatchedClock) -> dict[str, int]:
    moved = {"at_risk": 0, "breached": 0}
    statement, params = _watch_statement(now=now, recorded_at=timezone.now(), clock=clock)
    while True:
        # One statement, one transaction: nothing half-moved stays behind.
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            counts = dict(cursor.fetchall())
        for state, count in counts.items():
            moved[state] += count
        if sum(counts.values()) < WATCH_BATCH:
            return moved


def _watch_portable(now: datetime, clock: WatchedClock) -> dict[str, int]:
    """The same moves, events and notices as `_watch_statement`, by the ORM."""
    moved = {"at_risk": 0, "breached": 0}
    running = Inquiry.objects.filter(
        Q(**{f"{clock.stopped}__isnull": True}), status__in=OPEN_STATUSES
    )
    steps = (
        (
            SlaState.BREACHED,
            running.filter(
                **{f"{clock.state}__in": list(_RUNNING_STATES), f"{clock.due}__lte": now}
            ),
        ),
        (
            SlaState.AT_RISK,
            running.filter(**{clock.state: SlaState.ON_TRACK, f"{clock.at_risk}__lte": now}),
        ),
    )
    for state, due in steps:
        while True:
            with transaction.atomic():
                rows = list(
                    due.order_by()
                    .select_for_update(skip_locked=True)
                    .values_list("id", clock.state, "assignee_id", clock.due)[:WATCH_BATCH]
                )
                if not rows:
                    break
                Inquiry.objects.filter(pk__in=[row[0] for row in rows]).update(
                    **{clock.state: state}, updated_at=now
                )
                InquiryEvent.objects.bulk_create(
                    InquiryEvent(inquiry_id=pk, kind=clock.event, old=old, new=state)
                    for pk, old, _assignee, _due in rows
                )
                _notify(rows, state, clock)
            moved[state] += len(rows)
            if len(rows) < WATCH_BATCH:
                break
    return moved


def _notify(rows: Iterable[Any], state: str, clock: WatchedClock) -> None:
    breached = state == SlaState.BREACHED
    kind = clock.breached_notice if breached else clock.at_risk_notice
    keys = {pk: clock_notice_key(clock, due) for pk, _old, _assignee, due in rows}
    recipients = {(assignee, pk) for pk, _old, assignee, _due in rows if assignee}
    if breached:
        for manager in managers().values_list("pk", flat=True):
            recipients |= {(manager, pk) for pk in keys}
    StaffNotification.objects.bulk_create(
        (
            StaffNotification(user_id=user, inquiry_id=pk, kind=kind, key=keys[pk])
            for user, pk in recipients
        ),
        ignore_conflicts=True,
    )


def _watch_statement(
    *, now: datetime, recorded_at: datetime, clock: WatchedClock = FIRST_REPLY
) -> tuple[str, list]:
    """The SQL of one watch batch of `clock` and its parameters; it returns
    (new state, count) rows. The due rows are found through the clock's
    partial indexes (for the first reply tickets_sla_watch_due and
    tickets_sla_watch_at_risk), not a scan."""
    inquiry = Inquiry._meta
    event = InquiryEvent._meta
    note = StaffNotification._meta
    managers_sql, managers_params = managers().values("id").query.sql_with_params()
    breached, at_risk, on_track = SlaState.BREACHED, SlaState.AT_RISK, SlaState.ON_TRACK
    notice_key = "%s || " + _NOTICE_KEY_SQL.format(column="due_at")
    statement = f"""
        WITH due AS (
            SELECT id, {clock.state} AS old, assignee_id, {clock.due} AS due_at,
                CASE WHEN {clock.due} <= %s THEN %s ELSE %s END AS new
            FROM {inquiry.db_table}
            WHERE {clock.stopped} IS NULL AND status = ANY(%s)
              AND (({clock.state} IN (%s, %s) AND {clock.due} <= %s)
                   OR ({clock.state} = %s AND {clock.at_risk} <= %s))
            LIMIT %s
            FOR UPDATE SKIP LOCKED
        ), moved AS (
            UPDATE {inquiry.db_table} AS inquiry SET {clock.state} = due.new, updated_at = %s
            FROM due WHERE inquiry.id = due.id
            RETURNING inquiry.id, due.old, due.new, due.assignee_id, due.due_at
        ), events AS (
            INSERT INTO {event.db_table} (inquiry_id, kind, actor_id, old, new, data, created_at)
            SELECT id, %s, NULL, old, new, '{{}}'::jsonb, %s FROM moved
        ), notes AS (
            INSERT INTO {note.db_table}
                (user_id, inquiry_id, kind, key, created_at, emailed_at, read_at,
                 email_attempts, email_error)
            SELECT user_id, id, CASE WHEN new = %s THEN %s ELSE %s END, {notice_key},
                %s, NULL, NULL, 0, ''
            FROM (
                SELECT assignee_id AS user_id, id, new, due_at
                FROM moved WHERE assignee_id IS NOT NULL
                UNION
                SELECT managers.id, moved.id, moved.new, moved.due_at
                FROM moved CROSS JOIN ({managers_sql}) AS managers
                WHERE moved.new = %s
            ) AS recipients
            ON CONFLICT DO NOTHING
        )
        SELECT new, count(*) FROM moved GROUP BY new
    """
    params = [
        now,
        breached,
        at_risk,
        list(OPEN_STATUSES),
        on_track,
        at_risk,
        now,
        on_track,
        now,
        WATCH_BATCH,
        now,
        clock.event,
        recorded_at,
        breached,
        clock.breached_notice,
        clock.at_risk_notice,
        clock.key_prefix,
        recorded_at,
        *managers_params,
        breached,
    ]
    return statement, params


# --- Next-reply and resolution clocks (SPEC rule 13) ----------------------------

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
