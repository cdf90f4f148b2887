"""SLA policies, first-reply deadlines and the SLA watch (SPEC rule 1)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

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


def policy_clock_minutes(inquiry: Inquiry, at: datetime) -> int:
    """Whole minutes from the inquiry's receipt to `at` in the clock of its
    SLA policy: open time of the policy's calendar where it counts business
    hours, wall time where it counts calendar hours (or has no policy)."""
    policy = inquiry.sla_policy
    pure = (
        calendar_for(policy.calendar)
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
    pure = calendar_for(policy.calendar) if policy.clock == SlaClock.BUSINESS else None
    target = timedelta(minutes=policy.first_reply_minutes)
    warn = max(target - timedelta(minutes=policy.at_risk_minutes), timedelta(0))
    due = cal.business_deadline(start, target, pure)
    at_risk = cal.business_deadline(start, warn, pure)
    return due, at_risk


def sla_state_live(inquiry: Inquiry, now: datetime) -> str:
    """The first-reply state at `now`: an SlaState value, or "" when no
    deadline applies. The stored sla_state moves only when the SLA watch
    runs; the deadline itself is exact, so the live state is the later of
    the two. sla_state_live_q selects inquiries by the same rule."""
    if inquiry.first_replied_at is not None:
        return SlaState.BREACHED if inquiry.sla_state == SlaState.BREACHED else SlaState.MET
    due = inquiry.first_reply_due_at
    if inquiry.status not in OPEN_STATUSES or due is None:
        return ""
    if now >= due or inquiry.sla_state == SlaState.BREACHED:
        return SlaState.BREACHED
    if inquiry.sla_state == SlaState.AT_RISK or (
        inquiry.at_risk_at is not None and now >= inquiry.at_risk_at
    ):
        return SlaState.AT_RISK
    return SlaState.ON_TRACK


def sla_state_live_q(state: str, now: datetime) -> Q:
    """The inquiries whose sla_state_live is `state` at `now`."""
    unreplied = Q(first_replied_at__isnull=True, status__in=OPEN_STATUSES)
    overdue = unreplied & (Q(first_reply_due_at__lte=now) | Q(sla_state=SlaState.BREACHED))
    if state == SlaState.BREACHED:
        return overdue | Q(first_replied_at__isnull=False, sla_state=SlaState.BREACHED)
    if state == SlaState.AT_RISK:
        return (
            unreplied
            & Q(first_reply_due_at__gt=now)
            & Q(sla_state__in=[SlaState.ON_TRACK, SlaState.AT_RISK])
            & (Q(sla_state=SlaState.AT_RISK) | Q(at_risk_at__lte=now))
        )
    if state == SlaState.ON_TRACK:
        return (
            unreplied
            & Q(first_reply_due_at__gt=now, sla_state=SlaState.ON_TRACK)
            & (Q(at_risk_at__isnull=True) | Q(at_risk_at__gt=now))
        )
    if state == SlaState.MET:
        return Q(first_replied_at__isnull=False) & ~Q(sla_state=SlaState.BREACHED)
    return Q()


def sla_watch(*, now: datetime | None = None) -> dict[str, int]:
    """Move unreplied open inquiries on_track → at_risk → breached, by
    indexed queries on their stored thresholds (no scan of all inquiries),
    and notify once per change: the assignee, and on breach the managers
    (tickets.tasks.sla_watch_task has the notices mailed).

    Each batch is one statement: the due rows are locked (SKIP LOCKED, so
    two watches never move the same row), updated, and their timeline
    events and notifications inserted from the UPDATE's RETURNING. An
    inquiry past its deadline goes straight to breached."""
    now = now or timezone.now()
    if connection.vendor in ONE_STATEMENT_VENDORS:
        moved = _watch_in_statements(now)
    else:
        moved = _watch_portable(now)
    return moved


# Where the watch runs as one statement a batch (data-modifying CTEs, SKIP
# LOCKED, jsonb). Elsewhere (the SQLite of `make run`) the same steps run
# through the ORM, a few queries a batch.
ONE_STATEMENT_VENDORS = ("postgresql",)


def _watch_in_statements(now: datetime) -> dict[str, int]:
    moved = {"at_risk": 0, "breached": 0}
    statement, params = _watch_statement(now=now, recorded_at=timezone.now())
    while True:
        # One statement, one transaction: nothing half-moved stays behind.
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            counts = dict(cursor.fetchall())
        for state, count in counts.items():
            moved[state] += count
        if sum(counts.values()) < WATCH_BATCH:
            return moved


def _watch_portable(now: datetime) -> dict[str, int]:
    """The same moves, events and notices as `_watch_statement`, by the ORM."""
    moved = {"at_risk": 0, "breached": 0}
    unreplied = Inquiry.objects.filter(first_replied_at__isnull=True, status__in=OPEN_STATUSES)
    steps = (
        (
            SlaState.BREACHED,
            unreplied.filter(
                sla_state__in=[SlaState.ON_TRACK, SlaState.AT_RISK], first_reply_due_at__lte=now
            ),
        ),
        (SlaState.AT_RISK, unreplied.filter(sla_state=SlaState.ON_TRACK, at_risk_at__lte=now)),
    )
    for state, due in steps:
        while True:
            with transaction.atomic():
                rows = list(
                    due.order_by()
                    .select_for_update(skip_locked=True)
                    .values_list("id", "sla_state", "assignee_id", "first_reply_due_at")[
                        :WATCH_BATCH
                    ]
                )
                if not rows:
                    break
                Inquiry.objects.filter(pk__in=[row[0] for row in rows]).update(
                    sla_state=state, updated_at=now
                )
                InquiryEvent.objects.bulk_create(
                    InquiryEvent(inquiry_id=pk, kind=InquiryEventKind.SLA, old=old, new=state)
                    for pk, old, _assignee, _due in rows
                )
                _notify(rows, state)
            moved[state] += len(rows)
            if len(rows) < WATCH_BATCH:
                break
    return moved


def _notify(rows, state: str) -> None:
    kind = NotificationKind.BREACHED if state == SlaState.BREACHED else NotificationKind.AT_RISK
    keys = {pk: sla_notice_key(due) for pk, _old, _assignee, due in rows}
    recipients = {(assignee, pk) for pk, _old, assignee, _due in rows if assignee}
    if state == SlaState.BREACHED:
        for manager in managers().values_list("pk", flat=True):
            recipients |= {(manager, pk) for pk in keys}
    StaffNotification.objects.bulk_create(
        (
            StaffNotification(user_id=user, inquiry_id=pk, kind=kind, key=keys[pk])
            for user, pk in recipients
        ),
        ignore_conflicts=True,
    )


def _watch_statement(*, now: datetime, recorded_at: datetime) -> tuple[str, list]:
    """The SQL of one watch batch and its parameters; it returns (new state,
    count) rows. The due rows are found through the watch's partial indexes
    (tickets_sla_watch_due, tickets_sla_watch_at_risk), not a scan."""
    inquiry = Inquiry._meta
    event = InquiryEvent._meta
    note = StaffNotification._meta
    managers_sql, managers_params = managers().values("id").query.sql_with_params()
    breached, at_risk, on_track = SlaState.BREACHED, SlaState.AT_RISK, SlaState.ON_TRACK
    notice_key = _NOTICE_KEY_SQL.format(column="due_at")
    statement = f"""
        WITH due AS (
            SELECT id, sla_state AS old, assignee_id, first_reply_due_at AS due_at,
                CASE WHEN first_reply_due_at <= %s THEN %s ELSE %s END AS new
            FROM {inquiry.db_table}
            WHERE first_replied_at IS NULL AND status = ANY(%s)
              AND ((sla_state IN (%s, %s) AND first_reply_due_at <= %s)
                   OR (sla_state = %s AND at_risk_at <= %s))
            LIMIT %s
            FOR UPDATE SKIP LOCKED
        ), moved AS (
            UPDATE {inquiry.db_table} AS inquiry SET sla_state = due.new, updated_at = %s
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
        InquiryEventKind.SLA,
        recorded_at,
        breached,
        NotificationKind.BREACHED,
        NotificationKind.AT_RISK,
        recorded_at,
        *managers_params,
        breached,
    ]
    return statement, params
