"""SLA policies, first-reply deadlines and the SLA watch (SPEC rule 1)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.roles import MANAGER
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


def sla_watch(*, now: datetime | None = None) -> dict[str, int]:
    """Move unreplied open inquiries on_track → at_risk → breached, by
    indexed queries on their stored thresholds (no scan of all inquiries),
    and notify once per change: the assignee, and on breach the managers."""
    now = now or timezone.now()
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
                    .values_list("id", "sla_state", "assignee_id")[:WATCH_BATCH]
                )
                if not rows:
                    break
                ids = [row[0] for row in rows]
                Inquiry.objects.filter(pk__in=ids).update(sla_state=state, updated_at=now)
                InquiryEvent.objects.bulk_create(
                    InquiryEvent(inquiry_id=pk, kind=InquiryEventKind.SLA, old=old, new=state)
                    for pk, old, _assignee in rows
                )
                _notify(rows, state)
            moved[state] += len(rows)
            if len(rows) < WATCH_BATCH:
                break
    if moved["at_risk"] or moved["breached"]:
        from tickets.tasks import notifications_email_enqueue

        notifications_email_enqueue()
    return moved


def _notify(rows, state: str) -> None:
    kind = NotificationKind.BREACHED if state == SlaState.BREACHED else NotificationKind.AT_RISK
    notes = [
        StaffNotification(user_id=assignee, inquiry_id=pk, kind=kind)
        for pk, _old, assignee in rows
        if assignee
    ]
    if state == SlaState.BREACHED:
        managers = list(
            get_user_model()
            .objects.filter(groups__name=MANAGER, is_active=True)
            .values_list("pk", flat=True)
        )
        notes += [
            StaffNotification(user_id=manager, inquiry_id=pk, kind=kind)
            for pk, _old, assignee in rows
            for manager in managers
            if manager != assignee
        ]
    StaffNotification.objects.bulk_create(notes, ignore_conflicts=True)
