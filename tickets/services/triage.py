"""The triage target (状況確認, SPEC rule 2): category and assignee set within
TRIAGE_TARGET_MINUTES of receipt, live in the inbox and warned once.

The target counts in the clock of the inquiry's SLA policy, as its first
reply does: wall time for a 24/7 policy (Amazon, the defaults), business
hours for a policy that counts them, so that an inquiry received at night
starts its 30 minutes at the next opening. The seed's 「発生から30分以内を
目安に」 is the staff's first move, which they make while on duty; a warning
at 3 a.m. to a shop closed until 9 would be noise. The monthly report
measures time to triage in the same clock, so the live target and the
report's share met agree. An inquiry without a policy counts wall time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from core.roles import managers
from tickets import calendar as cal
from tickets.models import (
    OPEN_STATUSES,
    Inquiry,
    InquiryEvent,
    InquiryEventKind,
    NotificationKind,
    SlaClock,
    SlaPolicy,
    StaffNotification,
)
from tickets.services.sla import ONE_STATEMENT_VENDORS, WATCH_BATCH, calendar_for


def triage_due(policy: SlaPolicy | None, start: datetime) -> datetime:
    """When the triage target of an inquiry received at `start` passes:
    TRIAGE_TARGET_MINUTES of its policy's clock (wall time without one)."""
    pure = (
        calendar_for(policy.calendar)  # type: ignore[arg-type]  # the business clock has one (a constraint)
        if policy is not None and policy.clock == SlaClock.BUSINESS
        else None
    )
    return cal.business_deadline(start, timedelta(minutes=settings.TRIAGE_TARGET_MINUTES), pure)


def triage_late_q(now: datetime) -> Q:
    """Inquiries open, not triaged and past their triage target at `now`
    (Inquiry.triage_late is the same rule for one row)."""
    return Q(triaged_at__isnull=True, status__in=OPEN_STATUSES, triage_due_at__lte=now)


def triage_watch(*, now: datetime | None = None) -> int:
    """Warn once of each open inquiry not triaged by its target: its
    assignee, or the managers when it has none. A conditional UPDATE marks
    the inquiries warned (triage_warned_at, through the partial index
    tickets_triage_watch) and the timeline events and notices are written
    from the rows it moved, so a second run finds nothing to warn of.
    Returns how many inquiries were warned of."""
    now = now or timezone.now()
    if connection.vendor in ONE_STATEMENT_VENDORS:
        return _triage_watch_in_statements(now)
    return _triage_watch_portable(now)


def _triage_watch_in_statements(now: datetime) -> int:
    statement, params = _triage_watch_statement(now=now, recorded_at=timezone.now())
    warned = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            count: int
            (count,) = cursor.fetchone()
        warned += count
        if count < WATCH_BATCH:
            return warned


def _triage_watch_portable(now: datetime) -> int:
    """The same warnings as `_triage_watch_statement`, by the ORM (SQLite)."""
    due = Inquiry.objects.filter(triage_late_q(now), triage_warned_at__isnull=True).order_by()
    warned = 0
    while True:
        with transaction.atomic():
            rows = list(
                due.select_for_update(skip_locked=True).values_list("id", "assignee_id")[
                    :WATCH_BATCH
                ]
            )
            if not rows:
                return warned
            Inquiry.objects.filter(pk__in=[pk for pk, _assignee in rows]).update(
                triage_warned_at=now, updated_at=now
            )
            InquiryEvent.objects.bulk_create(
                InquiryEvent(inquiry_id=pk, kind=InquiryEventKind.TRIAGE_LATE)
                for pk, _assignee in rows
            )
            unassigned = [pk for pk, assignee in rows if assignee is None]
            recipients = [(assignee, pk) for pk, assignee in rows if assignee is not None]
            recipients += [
                (manager, pk)
                for manager in managers().values_list("pk", flat=True)
                for pk in unassigned
            ]
            StaffNotification.objects.bulk_create(
                (
                    StaffNotification(
                        user_id=user, inquiry_id=pk, kind=NotificationKind.TRIAGE_LATE
                    )
                    for user, pk in recipients
                ),
                ignore_conflicts=True,
            )
        warned += len(rows)
        if len(rows) < WATCH_BATCH:
            return warned


def _triage_watch_statement(*, now: datetime, recorded_at: datetime) -> tuple[str, list]:
    """One batch of the triage watch as one statement (rows locked SKIP
    LOCKED, marked, their events and notices inserted from the UPDATE's
    RETURNING); it returns the number of inquiries warned of."""
    inquiry = Inquiry._meta.db_table
    event = InquiryEvent._meta.db_table
    note = StaffNotification._meta.db_table
    managers_sql, managers_params = managers().values("id").query.sql_with_params()
    statement = f"""
        WITH due AS (
            SELECT id, assignee_id FROM {inquiry}
            WHERE triaged_at IS NULL AND triage_warned_at IS NULL AND status = ANY(%s)
              AND triage_due_at <= %s
            LIMIT %s
            FOR UPDATE SKIP LOCKED
        ), warned AS (
            UPDATE {inquiry} AS inquiry SET triage_warned_at = %s, updated_at = %s
            FROM due WHERE inquiry.id = due.id
            RETURNING inquiry.id, due.assignee_id
        ), events AS (
            INSERT INTO {event} (inquiry_id, kind, actor_id, old, new, data, created_at)
            SELECT id, %s, NULL, '', '', '{{}}'::jsonb, %s FROM warned
        ), notes AS (
            INSERT INTO {note}
                (user_id, inquiry_id, kind, key, created_at, emailed_at, read_at,
                 email_attempts, email_error)
            SELECT user_id, id, %s, '', %s, NULL, NULL, 0, ''
            FROM (
                SELECT assignee_id AS user_id, id FROM warned WHERE assignee_id IS NOT NULL
                UNION
                SELECT managers.id, warned.id
                FROM warned CROSS JOIN ({managers_sql}) AS managers
                WHERE warned.assignee_id IS NULL
            ) AS recipients
            ON CONFLICT DO NOTHING
        )
        SELECT count(*) FROM warned
    """
    params = [
        list(OPEN_STATUSES),
        now,
        WATCH_BATCH,
        now,
        now,
        InquiryEventKind.TRIAGE_LATE,
        recorded_at,
        NotificationKind.TRIAGE_LATE,
        recorded_at,
        *managers_params,
    ]
    return statement, params
