"""Playbooks and the checklists copied from them: the copy when an incident
opens, the ticks (who, when, an event on the incident's timeline), and the
warning to the managers when a step is overdue, once.

Who ticks: a manager any step; anyone else the steps of their own role
(an agent the agent's steps), since the checklist says who does what.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.roles import is_manager, managers
from core.timeline import actor_or_none
from core.types import Actor
from crisis.models import (
    ChecklistItem,
    Incident,
    IncidentEvent,
    IncidentEventKind,
    IncidentKind,
    IncidentStatus,
    PlaybookStep,
)


def step_due_at(step: PlaybookStep, *, started_at: datetime, malicious: bool) -> datetime | None:
    """When a step is due for an incident that started at `started_at`: its
    target after the start, the malicious target for a malicious breach
    (APPI: the final report in 60 days, not 30)."""
    minutes = step.target_minutes
    if malicious and step.malicious_target_minutes is not None:
        minutes = step.malicious_target_minutes
    return None if minutes is None else started_at + timedelta(minutes=minutes)


def checklist_copy(*, incident: Incident) -> list[ChecklistItem]:
    """The incident kind's playbook copied into the incident's checklist
    (later edits of the playbook leave it alone)."""
    malicious = incident.is_malicious and incident.kind == IncidentKind.DATA_BREACH
    steps = PlaybookStep.objects.filter(playbook__kind=incident.kind).order_by("position", "id")
    return ChecklistItem.objects.bulk_create(
        ChecklistItem(
            incident=incident,
            position=number,
            title=step.title,
            description=step.description,
            role=step.role,
            due_at=step_due_at(step, started_at=incident.started_at, malicious=malicious),
        )
        for number, step in enumerate(steps, start=1)
    )


def checklist_step_may_tick(item: ChecklistItem, user: Actor) -> bool:
    """A manager ticks any step; anyone else only their own role's steps."""
    if is_manager(user):
        return True
    if not hasattr(user, "_crisis_roles"):
        user._crisis_roles = set(user.groups.values_list("name", flat=True))  # type: ignore[union-attr]  # a cache on the staff member's user object
    return item.role in user._crisis_roles  # type: ignore[union-attr]  # set just above


def _step_set(*, item: ChecklistItem, done: bool, actor: Actor) -> ChecklistItem:
    if not checklist_step_may_tick(item, actor):
        raise PermissionDenied(_("This step is for another role: ask a manager."))
    with transaction.atomic():
        item = ChecklistItem.objects.select_for_update().select_related("incident").get(pk=item.pk)
        if item.incident.status == IncidentStatus.CLOSED:
            raise ValidationError(_("The incident is closed: its checklist can no longer change."))
        if (item.done_at is not None) == done:
            return item  # a second click changes nothing
        now = timezone.now()
        item.done_at = now if done else None
        item.done_by = actor_or_none(actor) if done else None
        item.save(update_fields=["done_at", "done_by"])
        IncidentEvent.objects.create(
            incident=item.incident,
            kind=IncidentEventKind.STEP_DONE if done else IncidentEventKind.STEP_UNDONE,
            actor=actor_or_none(actor),
            text=item.title,
            data={"step": item.pk},
        )
    return item


def checklist_step_tick(*, item: ChecklistItem, actor: Actor) -> ChecklistItem:
    """Mark a step done by `actor`, now; an event on the incident's timeline."""
    return _step_set(item=item, done=True, actor=actor)


def checklist_step_untick(*, item: ChecklistItem, actor: Actor) -> ChecklistItem:
    """Reopen a step ticked by mistake; an event says so."""
    return _step_set(item=item, done=False, actor=actor)


def checklist_overdue_warn(*, now: datetime | None = None) -> int:
    """Warn every manager of each checklist step past its due time, not
    done, of an incident not closed: once per step. The steps are claimed
    by a conditional UPDATE on overdue_warned_at under their row locks
    (SKIP LOCKED: two runs never take the same step), so a second run
    finds nothing to warn of. Returns how many steps were warned of; the
    SLA tick (tickets.tasks.sla_watch_task) mails the notifications."""
    from tickets.models import NotificationKind, StaffNotification

    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            ChecklistItem.objects.filter(
                done_at__isnull=True, overdue_warned_at__isnull=True, due_at__lte=now
            )
            .exclude(incident__status=IncidentStatus.CLOSED)
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("pk", "incident_id")
        )
        if not due:
            return 0
        claimed = ChecklistItem.objects.filter(
            pk__in=[pk for pk, _incident in due], overdue_warned_at__isnull=True
        ).update(overdue_warned_at=now)
        recipients = list(managers().values_list("pk", flat=True))
        StaffNotification.objects.bulk_create(
            (
                StaffNotification(
                    user_id=user,
                    incident_id=incident,
                    kind=NotificationKind.STEP_OVERDUE,
                    key=f"step-{pk}",
                )
                for pk, incident in due
                for user in recipients
            ),
            ignore_conflicts=True,
        )
    return claimed
