"""The SLA watch (SPEC rules 1 and 13): the running clocks of open inquiries
moved on_track → at_risk → breached and the notices of each change.

The policies, due times and the three watched clocks with their live state
are in tickets.services.sla_policy; the next-reply and resolution clocks as
the inquiry moves in tickets.services.sla_clocks. Both are re-exported here
(callers import them from tickets.services.sla).

The next-reply clock runs from the customer's earliest message not answered
since a public reply; a reply that reached the customer (or still may)
stops it. The resolution clock runs from receipt to resolved, paused while
the inquiry waits on the customer or a third party; resolved and closed
stop every clock, a reopen resumes them. The arithmetic is the pure
tickets.calendar (PausableClock, InquiryClocks)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from core.roles import managers
from tickets.models import (
    OPEN_STATUSES,
    Inquiry,
    InquiryEvent,
    SlaState,
    StaffNotification,
)
from tickets.services.sla_clocks import (
    clocks_status_follow,
    next_reply_answered,
    next_reply_owed,
    next_reply_recount,
    resolution_clock,
    resolution_clock_reset,
    resolution_times,
)
from tickets.services.sla_policy import (
    _NOTICE_KEY_SQL,
    _RUNNING_STATES,
    CLOCKS,
    FIRST_REPLY,
    NEXT_REPLY,
    PAUSED,
    RESOLUTION,
    WatchedClock,
    calendar_for,
    clock_notice_key,
    policy_calendar,
    policy_clock_minutes,
    sla_notice_key,
    sla_policy_for,
    sla_state_live,
    sla_state_live_q,
    sla_times,
)

# What callers import from here: the watch's own names and those of
# sla_policy and sla_clocks.
__all__ = [
    "CLOCKS",
    "FIRST_REPLY",
    "NEXT_REPLY",
    "ONE_STATEMENT_VENDORS",
    "PAUSED",
    "RESOLUTION",
    "WATCH_BATCH",
    "WatchedClock",
    "calendar_for",
    "clock_notice_key",
    "clocks_status_follow",
    "next_reply_answered",
    "next_reply_owed",
    "next_reply_recount",
    "policy_calendar",
    "policy_clock_minutes",
    "resolution_clock",
    "resolution_clock_reset",
    "resolution_times",
    "sla_notice_key",
    "sla_policy_for",
    "sla_state_live",
    "sla_state_live_q",
    "sla_times",
    "sla_watch",
]


logger = logging.getLogger(__name__)
WATCH_BATCH = 1000


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
