"""Recurring jobs, declared in code and written to django-q2's Schedule
table after every `migrate` (so a fresh deploy has them, and a changed
definition replaces the old one)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.utils import timezone


@dataclass(frozen=True)
class RecurringJob:
    name: str
    func: str
    schedule_type: str  # django_q Schedule.TYPE: "I" (minutes), "H", "D"
    minutes: int | None = None
    at: time | None = None  # local time of day of the first run ("D" jobs)


# Each app adds its jobs here; names are stable identifiers.
RECURRING_JOBS: tuple[RecurringJob, ...] = (
    RecurringJob(
        name="crm.lifecycle_recompute",
        func="crm.tasks.lifecycle_recompute_task",
        schedule_type="D",
        at=time(3, 30),
    ),
    RecurringJob(
        name="crm.retention_run",
        func="crm.tasks.retention_run_task",
        schedule_type="D",
        at=time(4, 15),
    ),
    RecurringJob(
        name="outreach.sends_tick",
        func="outreach.tasks.sends_tick",
        schedule_type="I",
        minutes=1,
    ),
    RecurringJob(
        name="outreach.journeys_tick",
        func="outreach.tasks.journeys_tick",
        schedule_type="I",
        minutes=1,
    ),
    RecurringJob(
        name="outreach.journeys_birthday",
        func="outreach.tasks.journeys_birthday_task",
        schedule_type="D",
        at=time(0, 5),
    ),
    RecurringJob(
        name="tickets.sla_watch",
        func="tickets.tasks.sla_watch_task",
        schedule_type="I",
        minutes=1,
    ),
    RecurringJob(
        name="tickets.imap_poll",
        func="tickets.tasks.imap_poll_task",
        schedule_type="I",
        minutes=1,
    ),
    RecurringJob(
        name="tickets.line_messages_consume",
        func="tickets.tasks.line_messages_consume_task",
        schedule_type="I",
        minutes=1,
    ),
    RecurringJob(
        name="outreach.line_profiles_due",
        func="outreach.tasks.line_profiles_due_task",
        schedule_type="I",
        minutes=1,
    ),
    RecurringJob(
        name="crisis.checklist_overdue_warn",
        func="crisis.tasks.checklist_overdue_warn_task",
        schedule_type="I",
        minutes=1,
    ),
    RecurringJob(
        name="core.idempotency_purge",
        func="core.tasks.idempotency_purge_task",
        schedule_type="H",
    ),
)


def _first_run(job: RecurringJob, now: datetime) -> datetime:
    if job.at is None:
        return now
    local = timezone.localtime(now)
    candidate = local.replace(hour=job.at.hour, minute=job.at.minute, second=0, microsecond=0)
    if candidate <= local:
        candidate += timedelta(days=1)
    return candidate


def schedules_sync(sender=None, using: str = "default", **kwargs) -> None:
    from django_q.models import Schedule

    now = timezone.now()
    for job in RECURRING_JOBS:
        schedule, created = Schedule.objects.using(using).get_or_create(
            name=job.name,
            defaults={
                "func": job.func,
                "schedule_type": job.schedule_type,
                "minutes": job.minutes,
                "repeats": -1,
                "next_run": _first_run(job, now),
            },
        )
        if not created and (
            schedule.func != job.func
            or schedule.schedule_type != job.schedule_type
            or schedule.minutes != job.minutes
        ):
            schedule.func = job.func
            schedule.schedule_type = job.schedule_type
            schedule.minutes = job.minutes
            schedule.repeats = -1
            schedule.next_run = _first_run(job, now)
            schedule.save(using=using)
