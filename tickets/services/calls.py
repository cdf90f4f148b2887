"""Phone calls an agent writes down: on an existing inquiry, or as a new
phone inquiry (SPEC rule 11).

A call is an inbound message on the phone channel, written by the agent
(its author), with its length and the agent's notes, and a 「電話を記録」
event on the timeline. A call the agent answered on the spot is the first
reply: the first-reply clock stops at the call (met, unless the deadline
had already passed), instead of a new clock waiting for a written reply.
"""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.choices import Channel
from core.types import Actor
from crm.models import Customer, Order
from tickets.models import Category, Inquiry, InquiryEventKind, InquiryMessage, Priority
from tickets.services.inquiries import event_add, first_reply_record
from tickets.services.intake import InboundMessage, inquiry_create, inquiry_inbound_add
from tickets.services.sla import next_reply_answered

CALL_MAX_MINUTES = 600


def call_check(*, notes: str, minutes: int | None, minutes_required: bool = True) -> str:
    """The notes, stripped; ValidationError naming the field otherwise. The
    length may be left unknown (None) where `minutes_required` is False."""
    notes = (notes or "").strip()
    errors: dict[str, list[str]] = {}
    if not notes:
        errors["notes"] = [_("Write down what the customer said and what you answered.")]
    if (minutes is None and minutes_required) or not 0 <= (minutes or 0) <= CALL_MAX_MINUTES:
        errors["minutes"] = [
            _("Enter how long the call took, in minutes (0 to %(max)d).")
            % {"max": CALL_MAX_MINUTES}
        ]
    if errors:
        raise ValidationError(errors)
    return notes


def call_summary(*, minutes: int | None, answered: bool) -> str:
    """The timeline's words for a call: 「12分・その場で回答」, 「12分」."""
    if minutes is None:
        return _("answered on the spot") if answered else ""
    if answered:
        return _("%(minutes)d min, answered on the spot") % {"minutes": minutes}
    return _("%(minutes)d min") % {"minutes": minutes}


def _call_record(
    message: InquiryMessage, *, minutes: int | None, answered: bool, actor: Actor, at: datetime
) -> None:
    """The call's length and outcome on its message, the event, and the
    first reply when the agent answered on the spot."""
    InquiryMessage.objects.filter(pk=message.pk).update(
        call_minutes=minutes, call_answered=answered
    )
    message.call_minutes, message.call_answered = minutes, answered
    inquiry = Inquiry.objects.select_for_update().get(pk=message.inquiry_id)
    event_add(
        inquiry,
        InquiryEventKind.CALL,
        actor,
        new=call_summary(minutes=minutes, answered=answered),
        message=message.pk,
        minutes=minutes,
        answered=answered,
    )
    if answered:
        # Answered on the spot: the reply the customer was owed, first or next.
        if inquiry.first_replied_at is None:
            fields = first_reply_record(inquiry, at=at, actor=actor)
        else:
            fields = next_reply_answered(inquiry, at=at)
        if fields:
            inquiry.save(update_fields=[*fields, "updated_at"])


def inquiry_call_log(
    *,
    inquiry: Inquiry,
    notes: str,
    minutes: int | None,
    answered: bool = False,
    actor: Actor,
    at: datetime | None = None,
) -> InquiryMessage:
    """A call about an existing inquiry: the customer's message on it (a
    closed inquiry reopens, as with any message from the customer)."""
    notes = call_check(notes=notes, minutes=minutes)
    at = at or timezone.now()
    with transaction.atomic():
        message = inquiry_inbound_add(
            inquiry=inquiry,
            message=InboundMessage(body_text=notes, received_at=at),
            channel=Channel.PHONE,
            author=actor,
        )
        _call_record(message, minutes=minutes, answered=answered, actor=actor, at=at)
    return message


def inquiry_call_create(
    *,
    customer: Customer,
    subject: str,
    notes: str,
    minutes: int | None,
    answered: bool = False,
    order: Order | None = None,
    category: Category | None = None,
    priority: str = Priority.NORMAL,
    actor: Actor,
    at: datetime | None = None,
) -> Inquiry:
    """A new phone inquiry from a call (the order, if any, one of the
    customer's own: inquiry_create checks it; the length may be unknown)."""
    notes = call_check(notes=notes, minutes=minutes, minutes_required=False)
    at = at or timezone.now()
    with transaction.atomic():
        inquiry = inquiry_create(
            customer=customer,
            channel=Channel.PHONE,
            message=InboundMessage(subject=subject, body_text=notes, received_at=at),
            order=order,
            category=category,
            priority=priority,
            author=actor,
        )
        message = inquiry.messages.get()
        _call_record(message, minutes=minutes, answered=answered, actor=actor, at=at)
        inquiry.refresh_from_db()
    return inquiry
