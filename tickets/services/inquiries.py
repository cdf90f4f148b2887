"""Inquiries: events, notes, assignment, status, category, priority and
response stages. A new inquiry and the customer's messages arrive through
tickets/services/intake.py."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from core.timeline import actor_or_none
from core.types import Actor
from crm.models import Order
from tickets.models import (
    OPEN_STATUSES,
    Category,
    Inquiry,
    InquiryEvent,
    InquiryEventKind,
    InquiryMessage,
    InquiryStatus,
    MessageKind,
    NotificationKind,
    Priority,
    ReferenceCounter,
    SlaState,
    StaffNotification,
)
from tickets.selectors import assignable_staff
from tickets.services.sla import (
    clocks_status_follow,
    policy_clock_minutes,
    resolution_clock_reset,
    sla_policy_for,
    sla_times,
)
from tickets.services.triage import triage_due

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)


def event_add(
    inquiry: Inquiry,
    kind: str,
    actor: Actor = None,
    old: object = "",
    new: object = "",
    **data: Any,
) -> InquiryEvent:
    return InquiryEvent.objects.create(
        inquiry=inquiry,
        kind=kind,
        actor=actor_or_none(actor),
        old=str(old)[:100],
        new=str(new)[:100],
        data=data,
    )


def reference_next(at: datetime) -> str:
    """Q-YYMM-NNNNN, numbered per month (Asia/Tokyo) without gaps from
    concurrent creators: the month's counter row is the lock."""
    month = timezone.localtime(at).strftime("%y%m")
    with transaction.atomic():
        ReferenceCounter.objects.get_or_create(month=month)
        ReferenceCounter.objects.filter(month=month).update(last=F("last") + 1)
        number = ReferenceCounter.objects.get(month=month).last
    return f"Q-{month}-{number:05d}"


def inquiries_order_moved(*, order: Order) -> int:
    """The shop gave `order` to another buyer (crm.services.order_upsert):
    the inquiries of anyone else leave it, so that no agent answers them
    with a stranger's order. The number stays as the customer's (the agent
    sees that it matches none of their orders), with an event each. Returns
    how many were unlinked."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            Inquiry.objects.filter(order=order)
            .exclude(customer_id=order.customer_id)
            .values_list("pk", flat=True)
        )
        if not ids:
            return 0
        stale = Inquiry.objects.filter(pk__in=ids)
        stale.filter(order_number_given="").update(order_number_given=order.order_number)
        stale.update(order=None, updated_at=now)
        InquiryEvent.objects.bulk_create(
            InquiryEvent(
                inquiry_id=pk, kind=InquiryEventKind.ORDER_UNLINKED, old=order.order_number
            )
            for pk in ids
        )
    return len(ids)


def first_reply_record(inquiry: Inquiry, *, at: datetime, actor: Actor) -> list[str]:
    """Stop the first-reply clock of `inquiry` (locked by the caller, its
    clock still running) at `at`: met or breached against its deadline,
    with the SLA and stage events. Returns the fields to save."""
    inquiry.first_replied_at = at
    inquiry.first_reply_minutes = policy_clock_minutes(inquiry, at)
    fields = ["first_replied_at", "first_reply_minutes"]
    late = inquiry.first_reply_due_at is not None and at > inquiry.first_reply_due_at
    new_state = SlaState.BREACHED if late else SlaState.MET
    if inquiry.sla_state != new_state:
        event_add(inquiry, InquiryEventKind.SLA, old=inquiry.sla_state, new=new_state)
        inquiry.sla_state = new_state
        fields.append("sla_state")
    event_add(inquiry, InquiryEventKind.STAGE, actor, new="first_contact")
    return fields


def inquiry_note_add(*, inquiry: Inquiry, body: str, actor: Actor) -> InquiryMessage:
    """An internal note: never sent, never stops the first-reply clock."""
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": [_("Write the note.")]})
    with transaction.atomic():
        message = InquiryMessage.objects.create(
            inquiry=inquiry,
            kind=MessageKind.NOTE,
            channel=inquiry.channel,
            author=actor_or_none(actor),
            body_text=body,
        )
        event_add(inquiry, InquiryEventKind.NOTE, actor, message=message.pk)
    return message


def _triage_check(inquiry: Inquiry, now: datetime) -> list[str]:
    """状況確認 is reached when both category and assignee are set."""
    if inquiry.triaged_at is None and inquiry.category_id and inquiry.assignee_id:
        inquiry.triaged_at = now
        inquiry.triage_minutes = policy_clock_minutes(inquiry, now)
        event_add(inquiry, InquiryEventKind.STAGE, new="triaged")
        return ["triaged_at", "triage_minutes"]
    return []


def _assignee_check(assignee: User | None) -> None:
    if assignee is not None and not assignable_staff().filter(pk=assignee.pk).exists():
        raise ValidationError(
            {"assignee": [_("Only active agents and managers can be assigned inquiries.")]}
        )


def inquiry_assign(*, inquiry: Inquiry, assignee: User | None, actor: Actor) -> Inquiry:
    """Give the inquiry to `assignee` (one of assignable_staff), or to
    nobody (None)."""
    _assignee_check(assignee)
    return _assign(inquiry, assignee, actor)


def _assign(
    inquiry: Inquiry, assignee: User | None, actor: Actor, *, auto: bool = False
) -> Inquiry:
    with transaction.atomic():
        inquiry = Inquiry.objects.select_for_update().get(pk=inquiry.pk)
        if inquiry.assignee_id == getattr(assignee, "pk", None):
            return inquiry
        old = inquiry.assignee
        inquiry.assignee = assignee
        fields = ["assignee", "updated_at", *_triage_check(inquiry, timezone.now())]
        if inquiry.status == InquiryStatus.NEW and assignee is not None:
            inquiry.status = InquiryStatus.OPEN
            fields.append("status")
        inquiry.save(update_fields=fields)
        extra = {"auto": True} if auto else {}
        event_add(
            inquiry, InquiryEventKind.ASSIGNED, actor, old=old or "", new=assignee or "", **extra
        )
        if assignee is not None and assignee != actor:
            count = InquiryEvent.objects.filter(
                inquiry=inquiry, kind=InquiryEventKind.ASSIGNED
            ).count()
            StaffNotification.objects.bulk_create(
                [
                    StaffNotification(
                        user=assignee,
                        inquiry=inquiry,
                        kind=NotificationKind.ASSIGNED,
                        key=str(count),
                    )
                ],
                ignore_conflicts=True,
            )
    return inquiry


def inquiry_category_set(*, inquiry: Inquiry, category: Category | None, actor: Actor) -> Inquiry:
    with transaction.atomic():
        inquiry = Inquiry.objects.select_for_update().get(pk=inquiry.pk)
        if inquiry.category_id == getattr(category, "pk", None):
            return inquiry
        old = inquiry.category
        inquiry.category = category
        fields = ["category", "updated_at", *_triage_check(inquiry, timezone.now())]
        inquiry.save(update_fields=fields)
        event_add(inquiry, InquiryEventKind.CATEGORY, actor, old=old or "", new=category or "")
    return inquiry


def inquiry_priority_set(*, inquiry: Inquiry, priority: str, actor: Actor) -> Inquiry:
    """A new priority may match another SLA policy: before the first reply,
    the deadline is recomputed from the time the inquiry was received, and
    before triage its triage target (in the new policy's clock)."""
    if priority not in Priority.values:
        raise ValidationError(
            {"priority": [_("Unknown priority: %(value)s.") % {"value": priority}]}
        )
    with transaction.atomic():
        inquiry = Inquiry.objects.select_for_update().get(pk=inquiry.pk)
        if inquiry.priority == priority:
            return inquiry
        old = inquiry.priority
        inquiry.priority = priority
        fields = ["priority", "updated_at"]
        if inquiry.first_replied_at is None:
            policy = sla_policy_for(channel=inquiry.channel, priority=priority)
            if policy is not None:
                due, at_risk = sla_times(policy, inquiry.created_at)
                inquiry.sla_policy, inquiry.first_reply_due_at, inquiry.at_risk_at = (
                    policy,
                    due,
                    at_risk,
                )
                # the SLA watch moves it on from here if need be
                inquiry.sla_state = SlaState.ON_TRACK
                fields += ["sla_policy", "first_reply_due_at", "at_risk_at", "sla_state"]
                if inquiry.triaged_at is None:
                    inquiry.triage_due_at = triage_due(policy, inquiry.created_at)
                    fields.append("triage_due_at")
                fields += resolution_clock_reset(inquiry)
        inquiry.save(update_fields=fields)
        event_add(inquiry, InquiryEventKind.PRIORITY, actor, old=old, new=priority)
    return inquiry


_STATUS_STAGE: dict[str, str] = {
    InquiryStatus.RESOLVED: "resolved_at",
    InquiryStatus.CLOSED: "closed_at",
}


def inquiry_status_set(*, inquiry: Inquiry, status: str, actor: Actor) -> Inquiry:
    if status not in InquiryStatus.values:
        raise ValidationError({"status": [_("Unknown status: %(value)s.") % {"value": status}]})
    now = timezone.now()
    with transaction.atomic():
        inquiry = Inquiry.objects.select_for_update().get(pk=inquiry.pk)
        if inquiry.status == status:
            return inquiry
        old = inquiry.status
        inquiry.status = status
        fields = ["status", "updated_at"]
        stage = _STATUS_STAGE.get(status)
        if stage and getattr(inquiry, stage) is None:
            setattr(inquiry, stage, now)
            fields.append(stage)
        if status == InquiryStatus.CLOSED and inquiry.resolved_at is None:
            inquiry.resolved_at = now
            fields.append("resolved_at")
        if status in OPEN_STATUSES:
            inquiry.resolved_at = inquiry.closed_at = None
            fields += ["resolved_at", "closed_at"]
        if "resolved_at" in fields:
            inquiry.resolution_minutes = (
                policy_clock_minutes(inquiry, inquiry.resolved_at) if inquiry.resolved_at else None
            )
            fields.append("resolution_minutes")
        fields += clocks_status_follow(inquiry, old_status=old, at=now)
        inquiry.save(update_fields=sorted(set(fields)))
        event_add(inquiry, InquiryEventKind.STATUS, actor, old=old, new=status)
        if status == InquiryStatus.RESOLVED:
            from tickets.services.csat import csat_offer  # csat sends through replies

            csat_offer(inquiry=inquiry, actor=actor)
    return inquiry


def inquiry_solution_proposed(*, inquiry: Inquiry, actor: Actor) -> Inquiry:
    """Stage 解決策の提示: recorded once, when the agent says so."""
    with transaction.atomic():
        inquiry = Inquiry.objects.select_for_update().get(pk=inquiry.pk)
        if inquiry.solution_proposed_at is None:
            inquiry.solution_proposed_at = timezone.now()
            inquiry.save(update_fields=["solution_proposed_at", "updated_at"])
            event_add(inquiry, InquiryEventKind.STAGE, actor, new="solution_proposed")
    return inquiry


def inquiries_bulk_assign(
    *, inquiries: Iterable[Inquiry], assignee: User | None, actor: Actor
) -> int:
    _assignee_check(assignee)
    done = 0
    for inquiry in inquiries:
        _assign(inquiry, assignee, actor)
        done += 1
    return done


def inquiries_bulk_close(*, inquiries: Iterable[Inquiry], actor: Actor) -> int:
    done = 0
    for inquiry in inquiries:
        inquiry_status_set(inquiry=inquiry, status=InquiryStatus.CLOSED, actor=actor)
        done += 1
    return done


def staff_notifications_mark_read(*, user: User, ids: Iterable[int]) -> int:
    """Mark some of the user's own notifications read."""
    return StaffNotification.objects.filter(
        user=user, pk__in=list(ids), read_at__isnull=True
    ).update(read_at=timezone.now())


def inquiry_assign_if_unassigned(*, inquiry: Inquiry, assignee: User | None, actor: Actor) -> bool:
    """Give the inquiry to `assignee` only if nobody has it (checked under
    the row lock) and they may be assigned inquiries; True if it was given.
    A reply by an agent takes an unassigned inquiry this way."""
    if assignee is None or not assignable_staff().filter(pk=assignee.pk).exists():
        return False
    with transaction.atomic():
        if Inquiry.objects.select_for_update().filter(pk=inquiry.pk, assignee=None).exists():
            _assign(inquiry, assignee, actor)
            return True
    return False
