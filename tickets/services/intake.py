"""Inquiries arriving: a new inquiry with its SLA deadlines and its first
message, and each later message of the customer's (which may reopen a
closed inquiry, or open a follow-up linked to it)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.timeline import actor_or_none
from core.types import Actor
from crm.models import Customer, Order
from crm.services import customer_follow_merges
from tickets.models import (
    Attachment,
    Category,
    Inquiry,
    InquiryEventKind,
    InquiryMessage,
    InquiryStatus,
    MessageKind,
    Priority,
    SlaPolicy,
    SlaState,
)
from tickets.services.inquiries import event_add, reference_next
from tickets.services.reading import last_message_fields, search_text_with
from tickets.services.sla import (
    clocks_status_follow,
    next_reply_owed,
    resolution_times,
    sla_policy_for,
    sla_times,
)
from tickets.services.triage import triage_due


@dataclass(frozen=True)
class AttachmentData:
    filename: str
    content_type: str
    content: bytes | None  # None: too large, metadata only
    size: int


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """What a customer sent, as it arrived: a mail (tickets/services/inbound.py),
    a LINE message, the contact form, a call written down. These travel
    together from the channel to the inquiry message; `received_at` is when
    the customer sent it (None: now)."""

    body_text: str
    subject: str = ""
    visible_text: str = ""  # the text without quoted history; body_text when ""
    body_html: str = ""
    message_id: str = ""
    in_reply_to: str = ""
    references: str = ""  # the References header's ids, space-separated
    attachments: Sequence[AttachmentData] = ()
    received_at: datetime | None = None


def _stamp(message: InquiryMessage, received_at: datetime) -> None:
    """A message shows when the customer sent it, not when we processed it
    (mail polled late, LINE events consumed a minute later)."""
    InquiryMessage.objects.filter(pk=message.pk).update(created_at=received_at)
    message.created_at = received_at


def _attachments_save(message: InquiryMessage, attachments: Sequence[AttachmentData]) -> None:
    for item in attachments:
        attachment = Attachment(
            message=message,
            filename=item.filename[:255] or "attachment",
            content_type=item.content_type[:100],
            size=item.size,
            truncated=item.content is None or item.size > settings.ATTACHMENT_MAX_BYTES,
        )
        if not attachment.truncated:
            attachment.file.save(attachment.filename, ContentFile(item.content), save=False)  # type: ignore[type-var]  # not truncated: content is set
        attachment.save()


def inquiry_clock_fields(policy: SlaPolicy | None, received_at: datetime) -> dict[str, Any]:
    """The clocks of an inquiry received at `received_at` under `policy`:
    first-reply and triage targets and the resolution clock (inquiry_create
    and inquiry_split start every inquiry's clocks here)."""
    due, at_risk = sla_times(policy, received_at) if policy else (None, None)
    resolution_due, resolution_at_risk = resolution_times(policy, received_at)
    return {
        "sla_policy": policy,
        "first_reply_due_at": due,
        "at_risk_at": at_risk,
        "triage_due_at": triage_due(policy, received_at),
        "resolution_due_at": resolution_due,
        "resolution_at_risk_at": resolution_at_risk,
        "resolution_state": SlaState.ON_TRACK if resolution_due else "",
    }


def inquiry_create(
    *,
    customer: Customer,
    channel: str,
    message: InboundMessage,
    order: Order | None = None,
    order_number: str = "",
    order_channels: Iterable[str] | None = None,
    category: Category | None = None,
    priority: str = Priority.NORMAL,
    reopened_from: Inquiry | None = None,
    author: Actor = None,
) -> Inquiry:
    """A new inquiry with its first inbound message, and its first-reply
    deadline and triage target from the matching SLA policy.

    The order is the customer's own, on every path: an `order` chosen by a
    person must be one of the customer's orders (else ValidationError); an
    `order_number` the customer typed is kept as typed and links the
    customer's order with that number (on `order_channels`, when given),
    or nothing when it matches none of them."""
    received_at = message.received_at or timezone.now()
    customer = customer_follow_merges(customer)
    order_number = (order_number or "").strip()[:64]
    order = _inquiry_order(customer, order, order_number, order_channels)
    subject = (message.subject or "").strip()[:255] or _("(no subject)")
    if not (message.body_text or "").strip() and not message.attachments:
        raise ValidationError({"body_text": [_("The inquiry has no text.")]})
    if priority not in Priority.values:
        raise ValidationError(
            {"priority": [_("Unknown priority: %(value)s.") % {"value": priority}]}
        )
    policy = sla_policy_for(channel=channel, priority=priority)
    with transaction.atomic():
        inquiry = Inquiry(
            reference=reference_next(received_at),
            customer=customer,
            channel=channel,
            order=order,
            order_number_given=order_number,
            subject=subject,
            category=category,
            priority=priority,
            last_inbound_at=received_at,
            reopened_from=reopened_from,
            **inquiry_clock_fields(policy, received_at),
            **last_message_fields(message.visible_text or message.body_text, received_at),
            search_text=search_text_with("", subject, message.body_text or message.visible_text),
        )
        inquiry.full_clean()
        inquiry.save()
        if received_at != inquiry.created_at:
            # Mail polled late keeps the time it was received.
            Inquiry.objects.filter(pk=inquiry.pk).update(created_at=received_at)
            inquiry.created_at = received_at
        _inbound_message_save(
            inquiry,
            replace(message, subject=subject, received_at=received_at),
            channel=channel,
            author=author,
        )
        event_add(
            inquiry,
            InquiryEventKind.CREATED,
            author,
            new=channel,
            policy=getattr(policy, "name", ""),
        )
        if reopened_from is not None:
            event_add(reopened_from, InquiryEventKind.LINKED, new=inquiry.reference)
        from tickets.services.assignment import inquiry_auto_assign  # it assigns with _assign

        if inquiry_auto_assign(inquiry=inquiry) is not None:
            inquiry.refresh_from_db()
    return inquiry


def _inquiry_order(
    customer: Customer,
    order: Order | None,
    order_number: str,
    order_channels: Iterable[str] | None,
) -> Order | None:
    """The order an inquiry is about: always one of the customer's own."""
    if order is not None:
        if order.customer_id != customer.pk:
            raise ValidationError({"order": [_("This order belongs to another customer.")]})
        return order
    if not order_number:
        return None
    orders = Order.objects.filter(customer=customer, order_number=order_number)
    if order_channels is not None:
        orders = orders.filter(channel__in=list(order_channels))
    return orders.order_by("id").first()


def _inbound_message_save(
    inquiry: Inquiry, message: InboundMessage, *, channel: str, author: Actor = None
) -> InquiryMessage:
    """The customer's message on `inquiry`, stamped with the time it was
    received (`message.received_at`, set by the caller), with its
    attachments."""
    saved = InquiryMessage.objects.create(
        inquiry=inquiry,
        kind=MessageKind.INBOUND,
        channel=channel,
        author=actor_or_none(author),
        subject=message.subject[:255],
        body_text=message.body_text or "",
        visible_text=message.visible_text or message.body_text or "",
        body_html=message.body_html,
        message_id=message.message_id[:255],
        in_reply_to=message.in_reply_to[:255],
        references=message.references,
    )
    assert message.received_at is not None  # the callers set it
    _stamp(saved, message.received_at)
    _attachments_save(saved, message.attachments)
    return saved


def inquiry_inbound_add(
    *, inquiry: Inquiry, message: InboundMessage, channel: str | None = None, author: Actor = None
) -> InquiryMessage:
    """A customer's new message on an existing inquiry (`author`: the agent
    who wrote down a phone call). A closed inquiry
    reopens, unless it was closed more than INQUIRY_REOPEN_DAYS ago: then a
    new inquiry linked to it is opened (and the message goes there)."""
    received_at = message.received_at or timezone.now()
    message = replace(message, received_at=received_at)
    with transaction.atomic():
        inquiry = Inquiry.objects.select_for_update().get(pk=inquiry.pk)
        while inquiry.merged_into_id is not None:  # merged: the survivor takes the message
            inquiry = Inquiry.objects.select_for_update().get(pk=inquiry.merged_into_id)
        if not inquiry.is_open:
            closed_at = inquiry.closed_at or inquiry.resolved_at or inquiry.updated_at
            if received_at - closed_at > timedelta(days=settings.INQUIRY_REOPEN_DAYS):
                customer = customer_follow_merges(inquiry.customer)
                order = inquiry.order
                if order is not None and order.customer_id != customer.pk:
                    order = None  # the shop gave the order to another buyer since
                follow_up = inquiry_create(
                    customer=customer,
                    channel=channel or inquiry.channel,
                    message=replace(message, subject=message.subject or inquiry.subject),
                    order=order,
                    order_number=inquiry.order_number_given,
                    category=inquiry.category,
                    reopened_from=inquiry,
                    author=author,
                )
                return follow_up.messages.get()
            old = inquiry.status
            inquiry.status = InquiryStatus.OPEN
            inquiry.resolved_at = inquiry.closed_at = inquiry.resolution_minutes = None
            inquiry.save(
                update_fields=[
                    "status",
                    "resolved_at",
                    "closed_at",
                    "resolution_minutes",
                    "updated_at",
                    *clocks_status_follow(inquiry, old_status=old, at=received_at),
                ]
            )
            event_add(inquiry, InquiryEventKind.REOPENED, old=old, new=inquiry.status)
        elif inquiry.status == InquiryStatus.WAITING_CUSTOMER:
            inquiry.status = InquiryStatus.OPEN
            fields = clocks_status_follow(
                inquiry, old_status=InquiryStatus.WAITING_CUSTOMER, at=received_at
            )
            inquiry.save(update_fields=["status", "updated_at", *fields])
            event_add(
                inquiry,
                InquiryEventKind.STATUS,
                old=InquiryStatus.WAITING_CUSTOMER,
                new=inquiry.status,
            )
        saved = _inbound_message_save(
            inquiry, message, channel=channel or inquiry.channel, author=author
        )
        latest = last_message_fields(message.visible_text or message.body_text, received_at)
        for name, value in latest.items():
            setattr(inquiry, name, value)
        inquiry.last_inbound_at = received_at
        inquiry.search_text = search_text_with(
            inquiry.search_text, message.body_text or message.visible_text
        )
        inquiry.save(
            update_fields=[
                "last_inbound_at",
                "search_text",
                *latest,
                *next_reply_owed(inquiry, at=received_at),
            ]
        )
        event_add(inquiry, InquiryEventKind.MESSAGE, new=MessageKind.INBOUND, message=saved.pk)
    return saved
