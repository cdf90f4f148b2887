"""Inquiries: creation with an SLA deadline, inbound messages, notes,
assignment, status, category, priority and response stages."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from core.timeline import actor_or_none
from crm.models import Customer, Order
from crm.services import customer_follow_merges
from tickets.models import (
    OPEN_STATUSES,
    Attachment,
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
from tickets.services.reading import last_message_fields, search_text_with
from tickets.services.sla import (
    clocks_status_follow,
    next_reply_owed,
    policy_clock_minutes,
    resolution_clock_reset,
    resolution_times,
    sla_policy_for,
    sla_times,
)
from tickets.services.triage import triage_due

logger = logging.getLogger(__name__)


def event_add(inquiry: Inquiry, kind: str, actor=None, old="", new="", **data) -> InquiryEvent:
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


@dataclass(frozen=True)
class AttachmentData:
    filename: str
    content_type: str
    content: bytes | None  # None: too large, metadata only
    size: int


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
            attachment.file.save(attachment.filename, ContentFile(item.content), save=False)
        attachment.save()


def inquiry_create(
    *,
    customer: Customer,
    channel: str,
    subject: str,
    body_text: str,
    visible_text: str = "",
    body_html: str = "",
    order: Order | None = None,
    order_number: str = "",
    order_channels: Iterable[str] | None = None,
    category: Category | None = None,
    priority: str = Priority.NORMAL,
    message_id: str = "",
    in_reply_to: str = "",
    references: str = "",
    attachments: Sequence[AttachmentData] = (),
    received_at: datetime | None = None,
    reopened_from: Inquiry | None = None,
    author=None,
) -> Inquiry:
    """A new inquiry with its first inbound message, and its first-reply
    deadline and triage target from the matching SLA policy.

    The order is the customer's own, on every path: an `order` chosen by a
    person must be one of the customer's orders (else ValidationError); an
    `order_number` the customer typed is kept as typed and links the
    customer's order with that number (on `order_channels`, when given),
    or nothing when it matches none of them."""
    received_at = received_at or timezone.now()
    customer = customer_follow_merges(customer)
    order_number = (order_number or "").strip()[:64]
    order = _inquiry_order(customer, order, order_number, order_channels)
    subject = (subject or "").strip()[:255] or _("(no subject)")
    if not (body_text or "").strip() and not attachments:
        raise ValidationError({"body_text": [_("The inquiry has no text.")]})
    if priority not in Priority.values:
        raise ValidationError(
            {"priority": [_("Unknown priority: %(value)s.") % {"value": priority}]}
        )
    policy = sla_policy_for(channel=channel, priority=priority)
    due, at_risk = sla_times(policy, received_at) if policy else (None, None)
    resolution_due, resolution_at_risk = resolution_times(policy, received_at)
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
            sla_policy=policy,
            first_reply_due_at=due,
            at_risk_at=at_risk,
            triage_due_at=triage_due(policy, received_at),
            last_inbound_at=received_at,
            reopened_from=reopened_from,
            resolution_due_at=resolution_due,
            resolution_at_risk_at=resolution_at_risk,
            resolution_state=SlaState.ON_TRACK if resolution_due else "",
            **last_message_fields(visible_text or body_text, received_at),
            search_text=search_text_with("", subject, body_text or visible_text),
        )
        inquiry.full_clean()
        inquiry.save()
        if received_at != inquiry.created_at:
            # Mail polled late keeps the time it was received.
            Inquiry.objects.filter(pk=inquiry.pk).update(created_at=received_at)
            inquiry.created_at = received_at
        _inbound_message_save(
            inquiry,
            channel=channel,
            author=author,
            subject=subject,
            body_text=body_text,
            visible_text=visible_text,
            body_html=body_html,
            message_id=message_id,
            in_reply_to=in_reply_to,
            references=references,
            attachments=attachments,
            received_at=received_at,
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


def _inbound_message_save(
    inquiry: Inquiry,
    *,
    channel: str,
    subject: str,
    body_text: str,
    visible_text: str,
    body_html: str,
    message_id: str,
    in_reply_to: str,
    references: str,
    attachments: Sequence[AttachmentData],
    received_at: datetime,
    author=None,
) -> InquiryMessage:
    """The customer's message on `inquiry`, stamped with the time it was
    received, with its attachments."""
    message = InquiryMessage.objects.create(
        inquiry=inquiry,
        kind=MessageKind.INBOUND,
        channel=channel,
        author=actor_or_none(author),
        subject=subject[:255],
        body_text=body_text or "",
        visible_text=visible_text or body_text or "",
        body_html=body_html,
        message_id=message_id[:255],
        in_reply_to=in_reply_to[:255],
        references=references,
    )
    _stamp(message, received_at)
    _attachments_save(message, attachments)
    return message


def inquiry_inbound_add(
    *,
    inquiry: Inquiry,
    body_text: str,
    visible_text: str = "",
    body_html: str = "",
    subject: str = "",
    message_id: str = "",
    in_reply_to: str = "",
    references: str = "",
    attachments: Sequence[AttachmentData] = (),
    received_at: datetime | None = None,
    channel: str | None = None,
    author=None,
) -> InquiryMessage:
    """A customer's new message on an existing inquiry (`author`: the agent
    who wrote down a phone call). A closed inquiry
    reopens, unless it was closed more than INQUIRY_REOPEN_DAYS ago: then a
    new inquiry linked to it is opened (and the message goes there)."""
    received_at = received_at or timezone.now()
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
                    subject=subject or inquiry.subject,
                    body_text=body_text,
                    visible_text=visible_text,
                    body_html=body_html,
                    order=order,
                    order_number=inquiry.order_number_given,
                    category=inquiry.category,
                    message_id=message_id,
                    in_reply_to=in_reply_to,
                    references=references,
                    attachments=attachments,
                    received_at=received_at,
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
        message = _inbound_message_save(
            inquiry,
            channel=channel or inquiry.channel,
            subject=subject,
            body_text=body_text,
            visible_text=visible_text,
            body_html=body_html,
            message_id=message_id,
            in_reply_to=in_reply_to,
            references=references,
            attachments=attachments,
            received_at=received_at,
            author=author,
        )
        latest = last_message_fields(visible_text or body_text, received_at)
        for name, value in latest.items():
            setattr(inquiry, name, value)
        inquiry.last_inbound_at = received_at
        inquiry.search_text = search_text_with(inquiry.search_text, body_text or visible_text)
        inquiry.save(
            update_fields=[
                "last_inbound_at",
                "search_text",
                *latest,
                *next_reply_owed(inquiry, at=received_at),
            ]
        )
        event_add(inquiry, InquiryEventKind.MESSAGE, new=MessageKind.INBOUND, message=message.pk)
    return message


def first_reply_record(inquiry: Inquiry, *, at: datetime, actor) -> list[str]:
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


def inquiry_note_add(*, inquiry: Inquiry, body: str, actor) -> InquiryMessage:
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


def _assignee_check(assignee) -> None:
    if assignee is not None and not assignable_staff().filter(pk=assignee.pk).exists():
        raise ValidationError(
            {"assignee": [_("Only active agents and managers can be assigned inquiries.")]}
        )


def inquiry_assign(*, inquiry: Inquiry, assignee, actor) -> Inquiry:
    """Give the inquiry to `assignee` (one of assignable_staff), or to
    nobody (None)."""
    _assignee_check(assignee)
    return _assign(inquiry, assignee, actor)


def _assign(inquiry: Inquiry, assignee, actor, *, auto: bool = False) -> Inquiry:
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


def inquiry_category_set(*, inquiry: Inquiry, category: Category | None, actor) -> Inquiry:
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


def inquiry_priority_set(*, inquiry: Inquiry, priority: str, actor) -> Inquiry:
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


_STATUS_STAGE = {
    InquiryStatus.RESOLVED: "resolved_at",
    InquiryStatus.CLOSED: "closed_at",
}


def inquiry_status_set(*, inquiry: Inquiry, status: str, actor) -> Inquiry:
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


def inquiry_solution_proposed(*, inquiry: Inquiry, actor) -> Inquiry:
    """Stage 解決策の提示: recorded once, when the agent says so."""
    with transaction.atomic():
        inquiry = Inquiry.objects.select_for_update().get(pk=inquiry.pk)
        if inquiry.solution_proposed_at is None:
            inquiry.solution_proposed_at = timezone.now()
            inquiry.save(update_fields=["solution_proposed_at", "updated_at"])
            event_add(inquiry, InquiryEventKind.STAGE, actor, new="solution_proposed")
    return inquiry


def inquiries_bulk_assign(*, inquiries, assignee, actor) -> int:
    _assignee_check(assignee)
    done = 0
    for inquiry in inquiries:
        _assign(inquiry, assignee, actor)
        done += 1
    return done


def inquiries_bulk_close(*, inquiries, actor) -> int:
    done = 0
    for inquiry in inquiries:
        inquiry_status_set(inquiry=inquiry, status=InquiryStatus.CLOSED, actor=actor)
        done += 1
    return done


def staff_notifications_mark_read(*, user, ids) -> int:
    """Mark some of the user's own notifications read."""
    return StaffNotification.objects.filter(
        user=user, pk__in=list(ids), read_at__isnull=True
    ).update(read_at=timezone.now())


def inquiry_assign_if_unassigned(*, inquiry: Inquiry, assignee, actor) -> bool:
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
