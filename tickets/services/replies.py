"""Replies to the customer, sent through the delivery ledger like every
outbound message: email threaded with In-Reply-To/References, LINE by the
free Reply API while the event's token is fresh, else push.

Only a person's public reply stops the first-reply clock; notes and
automatic acknowledgements do not. Replies from a group under an approval
rule wait for a manager.

Two agents answering the same customer twice is what the collision check
prevents: the agent says which message they last saw (`seen_message_id`),
and a reply by someone else after it holds the send back (ReplyCollision)
until they confirm. It is checked under the inquiry's row lock, in the
transaction that writes the reply, so two simultaneous sends cannot both
pass.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.choices import Channel
from core.roles import is_manager, managers
from core.timeline import actor_or_none
from core.types import Actor
from crm.models import ChannelIdentity, Customer
from outreach.channels.email import message_id_for, own_addresses
from outreach.models import Delivery, MessageChannel, Purpose, SendKind
from outreach.services import deliveries_snapshot, send_create, send_enqueue
from outreach.templating import render_string, shop_context, utf16_length
from tickets.models import (
    AutoAcknowledgement,
    Inquiry,
    InquiryEventKind,
    InquiryMessage,
    InquiryStatus,
    MessageKind,
    NotificationKind,
    OutboundState,
    ReplyApprovalRule,
    StaffNotification,
)
from tickets.selectors import inquiry_messages_after, replies_by_others
from tickets.services.inquiries import event_add, first_reply_record, inquiry_assign_if_unassigned
from tickets.services.reading import last_message_fields
from tickets.services.sla import clocks_status_follow, next_reply_answered

logger = logging.getLogger(__name__)

LINE_MAX_MESSAGES = 5
LINE_MAX_UTF16 = 5000
# LINE reply tokens are short-lived; use one only while clearly fresh.
LINE_REPLY_TOKEN_TTL = timedelta(seconds=50)


def reply_channel_for(inquiry: Inquiry, requested: str | None = None) -> str:
    """LINE inquiries are answered on LINE; everything else by email (mall
    inquiries reach the buyer through the mall's mail relay)."""
    if requested:
        if requested not in MessageChannel.values:
            raise ValidationError({"channel": [_("Reply by email or LINE.")]})
        return requested
    return MessageChannel.LINE if inquiry.channel == Channel.LINE else MessageChannel.EMAIL


def reply_channels_for(inquiry: Inquiry) -> list[str]:
    """The channels a reply may be offered by: LINE as well when the inquiry
    came by LINE or the customer is known on LINE; email always (a send
    without an address is refused, saying why)."""
    if reply_channel_for(inquiry) == MessageChannel.LINE or _line_known(inquiry.customer):
        return list(MessageChannel.values)
    return [MessageChannel.EMAIL]


def _line_known(customer: Customer) -> bool:
    return ChannelIdentity.objects.filter(customer=customer, channel=Channel.LINE).exists()


def _line_texts(body: str) -> list[str]:
    """Split a long reply into LINE messages (at most 5 of 5,000 UTF-16
    units), at paragraph boundaries where possible."""
    texts: list[str] = []
    current = ""
    for paragraph in body.split("\n\n"):
        candidate = f"{current}\n\n{paragraph}" if current else paragraph
        if utf16_length(candidate) <= LINE_MAX_UTF16:
            current = candidate
            continue
        if current:
            texts.append(current)
        while utf16_length(paragraph) > LINE_MAX_UTF16:
            cut = LINE_MAX_UTF16
            while utf16_length(paragraph[:cut]) > LINE_MAX_UTF16:
                cut -= 1
            texts.append(paragraph[:cut])
            paragraph = paragraph[cut:]
        current = paragraph
    if current:
        texts.append(current)
    if len(texts) > LINE_MAX_MESSAGES:
        raise ValidationError(
            {"body": [_("Too long for LINE: at most 5 messages of 5,000 characters.")]}
        )
    return texts


def _address_check(customer: Customer, channel: str) -> None:
    if channel == MessageChannel.EMAIL and not customer.email:
        raise ValidationError({"channel": [_("The customer has no email address.")]})
    if channel == MessageChannel.LINE and not _line_known(customer):
        raise ValidationError({"channel": [_("The customer is not known on LINE.")]})


def reply_channel_reachable(inquiry: Inquiry) -> str | None:
    """The channel an automatic message about the inquiry goes to its
    customer by (reply_channel_for), or None when they have no address on
    it: an acknowledgement or a survey is then not sent."""
    channel = reply_channel_for(inquiry)
    try:
        _address_check(inquiry.customer, channel)
    except ValidationError:
        return None
    return channel


def reply_needs_approval(author: Actor) -> bool:
    """A person's reply waits for approval when a rule covers one of their
    groups, unless they may approve replies themselves (is_manager)."""
    if author is None or is_manager(author):
        return False
    return ReplyApprovalRule.objects.filter(group__user=author).exists()  # type: ignore[misc]  # an anonymous user matches no rule


class ReplyCollision(Exception):
    """The reply was not written: someone else replied to the customer after
    the message the agent last saw. `replies` are those newer replies, for
    the agent to read before they confirm."""

    def __init__(self, replies: list[InquiryMessage]) -> None:
        super().__init__(f"{len(replies)} newer replies by someone else")
        self.replies = replies


def inquiry_reply(
    *,
    inquiry: Inquiry,
    body: str,
    actor: Actor,
    channel: str | None = None,
    is_automatic: bool = False,
    seen_message_id: int | None = None,
    confirm_collision: bool = False,
) -> InquiryMessage:
    """Write a reply; send it now, or hold it for approval.

    With `seen_message_id` (the latest message the agent had on screen), a
    reply by someone else after it raises ReplyCollision, unless
    `confirm_collision`: the agent has read it and sends theirs anyway."""
    with transaction.atomic():
        if seen_message_id is not None:
            _collision_check(inquiry, seen_message_id, actor, confirm=confirm_collision)
        body = (body or "").strip()
        if not body:
            raise ValidationError({"body": [_("Write the reply.")]})
        channel = reply_channel_for(inquiry, channel)
        customer = inquiry.customer
        _address_check(customer, channel)
        if channel == MessageChannel.LINE:
            _line_texts(body)  # refuse now what LINE would refuse later
        author = actor_or_none(actor)
        message = InquiryMessage.objects.create(
            inquiry=inquiry,
            kind=MessageKind.OUTBOUND,
            channel=channel,
            author=author,
            subject=_reply_subject(inquiry) if channel == MessageChannel.EMAIL else "",
            body_text=body,
            is_automatic=is_automatic,
            outbound_state=OutboundState.SENDING,
        )
        if not is_automatic:  # the agent who answers an inquiry nobody has takes it
            inquiry_assign_if_unassigned(inquiry=inquiry, assignee=author, actor=author)
        if not is_automatic and reply_needs_approval(author):
            message.outbound_state = OutboundState.AWAITING_APPROVAL
            message.save(update_fields=["outbound_state"])
            event_add(inquiry, InquiryEventKind.REPLY_SUBMITTED, author, message=message.pk)
            _approval_requested(message)
            return message
        _reply_dispatch(message, approved_by=None)
    return message


def _collision_check(
    inquiry: Inquiry, seen_message_id: int, actor: Actor, *, confirm: bool
) -> None:
    """Raise ReplyCollision for replies by others after `seen_message_id`.
    The row lock serialises sends on the inquiry (the caller's transaction
    holds it until the reply is written), so the check is exact."""
    Inquiry.objects.select_for_update().filter(pk=inquiry.pk).first()
    newer = replies_by_others(
        inquiry_messages_after(inquiry, message_id=seen_message_id), user=actor
    )
    if newer and not confirm:
        raise ReplyCollision(newer)


def _approval_requested(message: InquiryMessage) -> None:
    StaffNotification.objects.bulk_create(
        [
            StaffNotification(
                user=manager,
                inquiry=message.inquiry,
                kind=NotificationKind.APPROVAL,
                key=str(message.pk),
            )
            for manager in managers()
        ],
        ignore_conflicts=True,
    )


def inquiry_reply_approve(
    *, message: InquiryMessage, actor: User, body: str | None = None
) -> InquiryMessage:
    """A manager sends a held reply (optionally edited)."""
    if not is_manager(actor):
        raise PermissionDenied(_("Only a manager can approve replies."))
    with transaction.atomic():
        message = (
            InquiryMessage.objects.select_for_update().select_related("inquiry").get(pk=message.pk)
        )
        if message.outbound_state not in (OutboundState.AWAITING_APPROVAL, OutboundState.RETURNED):
            raise ValidationError(_("This reply is not waiting for approval."))
        if body is not None and body.strip():
            message.body_text = body.strip()
        message.approved_by = actor
        message.save(update_fields=["body_text", "approved_by"])
        event_add(message.inquiry, InquiryEventKind.REPLY_APPROVED, actor, message=message.pk)
        _reply_dispatch(message, approved_by=actor)
    return message


def inquiry_reply_return(*, message: InquiryMessage, actor: Actor, note: str) -> InquiryMessage:
    if not is_manager(actor):
        raise PermissionDenied(_("Only a manager can return replies."))
    if not (note or "").strip():
        raise ValidationError({"note": [_("Say what should change.")]})
    with transaction.atomic():
        message = (
            InquiryMessage.objects.select_for_update().select_related("inquiry").get(pk=message.pk)
        )
        if message.outbound_state != OutboundState.AWAITING_APPROVAL:
            raise ValidationError(_("This reply is not waiting for approval."))
        message.outbound_state = OutboundState.RETURNED
        message.review_note = note.strip()[:255]
        message.save(update_fields=["outbound_state", "review_note"])
        event_add(
            message.inquiry, InquiryEventKind.REPLY_RETURNED, actor, message=message.pk, note=note
        )
    return message


def _reply_subject(inquiry: Inquiry) -> str:
    subject = inquiry.subject
    if not subject.lower().startswith("re:"):
        subject = f"Re: {subject}"
    tag = f"[{inquiry.reference}]"
    return subject if tag in subject else f"{subject} {tag}"


def _thread_headers(inquiry: Inquiry) -> dict[str, str]:
    """In-Reply-To the customer's latest mail; References the whole chain."""
    ids = list(
        InquiryMessage.objects.filter(inquiry=inquiry)
        .exclude(message_id="")
        .order_by("created_at", "id")
        .values_list("kind", "message_id", "references")
    )
    if not ids:
        return {}
    inbound = [mid for kind, mid, _refs in ids if kind == MessageKind.INBOUND]
    chain: list[str] = []
    first_refs = ids[0][2].split()
    for mid in [*first_refs, *(mid for _kind, mid, _refs in ids)]:
        if mid not in chain:
            chain.append(mid)
    headers = {"References": " ".join(chain[-20:])}
    if inbound:
        headers["In-Reply-To"] = inbound[-1]
    return headers


def _reply_token_take(inquiry: Inquiry) -> str:
    """The customer's latest LINE reply token if still fresh; a token works
    once, so taking it clears it."""
    latest = (
        InquiryMessage.objects.filter(
            inquiry=inquiry, kind=MessageKind.INBOUND, channel=Channel.LINE
        )
        .exclude(line_reply_token="")
        .order_by("-created_at", "-id")
        .first()
    )
    if latest is None or timezone.now() - latest.created_at > LINE_REPLY_TOKEN_TTL:
        return ""
    InquiryMessage.objects.filter(pk=latest.pk).update(line_reply_token="")
    return latest.line_reply_token


def _reply_dispatch(message: InquiryMessage, *, approved_by: User | None) -> None:
    """Hand the reply to the ledger and the worker; stop the clock if it is
    the first reply a person sends."""
    inquiry = Inquiry.objects.select_for_update().get(pk=message.inquiry_id)
    if message.channel == MessageChannel.EMAIL:
        headers = _thread_headers(inquiry)
        if message.is_automatic:  # RFC 3834: no automatic answer to this one
            headers["Auto-Submitted"] = "auto-replied"
        content = {
            "subject": message.subject or _reply_subject(inquiry),
            "body_text": message.body_text,
            "headers": headers,
            "reply_to": settings.DEFAULT_FROM_EMAIL,
        }
    else:
        content = {"line_messages": _line_texts(message.body_text)}
        token = _reply_token_take(inquiry)
        if token:
            content["reply_token"] = token
    send = send_create(
        kind=SendKind.REPLY,
        channel=message.channel,
        purpose=Purpose.TRANSACTIONAL,
        content=content,
        actor=message.author,
    )
    deliveries_snapshot(
        send=send,
        audience=Customer.objects.filter(pk=inquiry.customer_id),
        now=timezone.now(),
        context_key=f"message-{message.pk}",
    )
    delivery = Delivery.objects.get(send=send)
    message.delivery = delivery
    message.outbound_state = OutboundState.SENDING
    if message.channel == MessageChannel.EMAIL:
        message.message_id = message_id_for(send_id=send.pk, delivery_id=delivery.pk)
    message.save(update_fields=["delivery", "outbound_state", "message_id"])
    event_add(
        inquiry,
        InquiryEventKind.MESSAGE,
        message.author,
        new=MessageKind.OUTBOUND,
        message=message.pk,
    )

    now = timezone.now()
    fields = ["updated_at"]
    if not message.is_automatic:  # an acknowledgement would hide the customer's words
        latest = last_message_fields(message.body_text, now)  # sent now, held or not
        for name, value in latest.items():
            setattr(inquiry, name, value)
        fields += list(latest)
    if not message.is_automatic and message.author_id and inquiry.first_replied_at is None:
        fields += first_reply_record(inquiry, at=now, actor=message.author)
    if not message.is_automatic and message.author_id:
        fields += next_reply_answered(inquiry, at=now)
    if not message.is_automatic and inquiry.status in (InquiryStatus.NEW, InquiryStatus.OPEN):
        event_add(
            inquiry,
            InquiryEventKind.STATUS,
            message.author,
            old=inquiry.status,
            new=InquiryStatus.WAITING_CUSTOMER,
        )
        old_status, inquiry.status = inquiry.status, InquiryStatus.WAITING_CUSTOMER
        fields += ["status", *clocks_status_follow(inquiry, old_status=old_status, at=now)]
    inquiry.save(update_fields=fields)
    send_enqueue(send, parallel=1)


def inquiry_auto_acknowledge(*, inquiry: Inquiry) -> InquiryMessage | None:
    """Send the channel's automatic acknowledgement, if one is set. It does
    not stop the first-reply clock."""
    ack = AutoAcknowledgement.objects.filter(channel=inquiry.channel, is_active=True).first()
    if ack is None:
        return None
    channel = reply_channel_reachable(inquiry)
    if channel is None:
        return None
    if channel == MessageChannel.EMAIL and not _acknowledgement_allowed(inquiry.customer):
        return None
    context = {
        "customer": {"name": inquiry.customer.display_name},
        "inquiry": {"reference": inquiry.reference, "subject": inquiry.subject},
        "shop": shop_context(),
    }
    body = render_string(ack.body, context)
    return inquiry_reply(inquiry=inquiry, body=body, actor=None, is_automatic=True)


def _acknowledgement_allowed(customer: Customer) -> bool:
    """An acknowledgement by email goes neither to one of our own addresses
    nor, past ACKNOWLEDGEMENT_MAX_PER_ADDRESS in the window, to an address
    already acknowledged: a mail loop stops there. The customer's row is
    locked, so that mail arriving at once counts one after the other."""
    address = customer.email_normalized
    if not address or address in own_addresses():
        return False
    Customer.objects.select_for_update().filter(pk=customer.pk).first()
    since = timezone.now() - timedelta(minutes=settings.ACKNOWLEDGEMENT_WINDOW_MINUTES)
    sent = InquiryMessage.objects.filter(
        inquiry__customer__email_normalized=address,
        kind=MessageKind.OUTBOUND,
        channel=MessageChannel.EMAIL,
        is_automatic=True,
        created_at__gte=since,
    ).count()
    if sent >= settings.ACKNOWLEDGEMENT_MAX_PER_ADDRESS:
        logger.warning("acknowledgements to %s paused: %d in the window", address, sent)
        return False
    return True
