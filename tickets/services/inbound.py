"""Inbound: email (piped or polled), LINE messages, and what they join.

Every mail is recorded once in InboundMail (by Message-ID, else a hash of
its bytes), whatever becomes of it: processed into an inquiry message,
ignored (auto-replies, bounces, our own sends — so no mail loop starts), or
failed with the raw bytes kept so nothing is lost.
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from crm.models import Channel, ChannelIdentity
from crm.normalize import email_normalize
from crm.services import customer_upsert
from outreach.models import LineWebhookEvent
from tickets.mailparse import MailParseError, ParsedMail, find_reference, parse_message
from tickets.models import (
    OPEN_STATUSES,
    InboundMail,
    InboundStatus,
    Inquiry,
    InquiryMessage,
    MessageKind,
)
from tickets.services.inquiries import AttachmentData, inquiry_create, inquiry_inbound_add
from tickets.services.replies import inquiry_auto_acknowledge

logger = logging.getLogger(__name__)


def channel_for_address(address: str) -> str:
    """Mall inquiries arrive through the malls' mail relays; the sender's
    domain says which mall (settings.MALL_RELAY_DOMAINS)."""
    domain = address.rpartition("@")[2].lower()
    for suffix, channel in settings.MALL_RELAY_DOMAINS.items():
        if domain == suffix or domain.endswith("." + suffix):
            return channel
    return Channel.EMAIL


def _name_parts(name: str) -> tuple[str, str]:
    """ "山田 太郎" → ("山田", "太郎"): Japanese names are family first."""
    parts = re.split(r"[\s\u3000]+", (name or "").strip(), maxsplit=1)
    if not parts or not parts[0] or "@" in parts[0]:
        return "", ""
    return parts[0][:100], (parts[1] if len(parts) > 1 else "")[:100]


def mail_thread_find(parsed: ParsedMail, *, sender_email: str) -> Inquiry | None:
    """The inquiry a mail continues: by In-Reply-To/References (ids we or the
    customer used before), else by the reference in the subject — the
    latter only for the same customer, since a subject is easy to forge."""
    ids = [i for i in [parsed.in_reply_to, *parsed.references] if i]
    if ids:
        message = (
            InquiryMessage.objects.filter(message_id__in=ids)
            .select_related("inquiry")
            .order_by("-created_at", "-id")
            .first()
        )
        if message is not None:
            return message.inquiry
    reference = find_reference(parsed.subject)
    if reference:
        inquiry = Inquiry.objects.filter(reference=reference).select_related("customer").first()
        if (
            inquiry is not None
            and sender_email
            and (
                inquiry.customer.email_normalized == sender_email
                or ChannelIdentity.objects.filter(
                    customer=inquiry.customer, channel=Channel.EMAIL, external_id=sender_email
                ).exists()
            )
        ):
            return inquiry
    return None


def _record(**fields) -> InboundMail:
    return InboundMail.objects.create(**fields)


def mail_ingest(raw: bytes, *, source: str) -> InboundMail:
    """Turn one raw RFC 822 message into an inquiry message, once. Never
    raises for a bad message: the outcome is in the returned record."""
    digest = hashlib.sha256(raw).hexdigest()
    try:
        parsed = parse_message(raw, max_attachment_bytes=settings.ATTACHMENT_MAX_BYTES)
    except MailParseError as exc:
        return _once(
            f"sha256:{digest}", source=source, status=InboundStatus.FAILED, reason=str(exc), raw=raw
        )
    dedupe_key = f"mid:{parsed.message_id}"[:255] if parsed.message_id else f"sha256:{digest}"
    existing = InboundMail.objects.filter(dedupe_key=dedupe_key).first()
    if existing is not None:
        return existing
    summary = {
        "message_id": parsed.message_id[:255],
        "from_address": parsed.from_address[:255],
        "subject": parsed.subject[:255],
    }
    if parsed.should_ignore:
        return _once(
            dedupe_key,
            source=source,
            status=InboundStatus.IGNORED,
            reason=parsed.ignore_reason,
            **summary,
        )
    sender = email_normalize(parsed.from_address)
    if not sender:
        return _once(
            dedupe_key,
            source=source,
            status=InboundStatus.FAILED,
            reason="no usable From address",
            raw=raw,
            **summary,
        )
    try:
        with transaction.atomic():
            message = _mail_apply(parsed, sender)
            return _once(
                dedupe_key,
                source=source,
                status=InboundStatus.PROCESSED,
                inquiry_message=message,
                **summary,
            )
    except Exception as exc:  # one bad mail never stops the others
        logger.exception("inbound mail %s failed", dedupe_key)
        return _once(
            dedupe_key,
            source=source,
            status=InboundStatus.FAILED,
            reason=f"{type(exc).__name__}: {exc}",
            raw=raw,
            **summary,
        )


def _once(dedupe_key: str, **fields) -> InboundMail:
    record, _created = InboundMail.objects.get_or_create(dedupe_key=dedupe_key, defaults=fields)
    return record


def _mail_apply(parsed: ParsedMail, sender: str) -> InquiryMessage:
    attachments = [
        AttachmentData(
            filename=a.filename,
            content_type=a.content_type,
            content=None if a.truncated else a.payload,
            size=a.size,
        )
        for a in parsed.attachments
        if not a.is_inline or a.filename
    ]
    common = {
        "body_text": parsed.text,
        "visible_text": parsed.visible_text,
        "body_html": parsed.html_body,
        "message_id": parsed.message_id,
        "in_reply_to": parsed.in_reply_to,
        "references": " ".join(parsed.references),
        "attachments": attachments,
        "received_at": parsed.date if _plausible(parsed.date) else timezone.now(),
    }
    inquiry = mail_thread_find(parsed, sender_email=sender)
    if inquiry is not None:
        return inquiry_inbound_add(inquiry=inquiry, subject=parsed.subject, **common)
    family, given = _name_parts(parsed.from_name)
    customer, _created = customer_upsert(
        channel=Channel.EMAIL, email=sender, family_name=family, given_name=given
    )
    inquiry = inquiry_create(
        customer=customer,
        channel=channel_for_address(sender),
        subject=parsed.subject,
        **common,
    )
    inquiry_auto_acknowledge(inquiry=inquiry)
    return inquiry.messages.get()


def _plausible(moment: datetime | None) -> bool:
    """A Date header is trusted only if it is not in the future."""
    return moment is not None and moment <= timezone.now()


# --- LINE ---------------------------------------------------------------------------


def _line_text(payload: dict) -> str:
    message = payload.get("message") or {}
    kind = message.get("type")
    if kind == "text":
        return message.get("text", "")
    labels = {"sticker": "[スタンプ]", "image": "[画像]", "video": "[動画]", "audio": "[音声]"}
    return labels.get(kind, f"[{kind or 'message'}]")


def line_messages_consume(*, limit: int = 200) -> int:
    """Turn stored LINE message events into inquiry messages: the user's
    open LINE inquiry, or a new one."""
    done = 0
    pending = LineWebhookEvent.objects.filter(
        event_type="message", processed_at__isnull=True, error="", customer__isnull=False
    ).order_by("occurred_at", "id")
    for event_id in list(pending.values_list("id", flat=True)[:limit]):
        with transaction.atomic():
            event = (
                LineWebhookEvent.objects.select_for_update(skip_locked=True)
                .filter(pk=event_id, processed_at__isnull=True)
                .select_related("customer")
                .first()
            )
            if event is None:
                continue
            text = _line_text(event.payload)
            inquiry = (
                Inquiry.objects.filter(customer=event.customer, channel=Channel.LINE)
                .filter(Q(status__in=OPEN_STATUSES))
                .order_by("-created_at")
                .first()
            )
            if inquiry is not None:
                message = inquiry_inbound_add(
                    inquiry=inquiry,
                    body_text=text,
                    received_at=event.occurred_at,
                    channel=Channel.LINE,
                )
            else:
                subject = text.splitlines()[0][:60] if text else "LINE"
                inquiry = inquiry_create(
                    customer=event.customer,
                    channel=Channel.LINE,
                    subject=subject,
                    body_text=text,
                    received_at=event.occurred_at,
                )
                message = inquiry.messages.get()
            if event.reply_token:
                InquiryMessage.objects.filter(pk=message.pk).update(
                    line_reply_token=event.reply_token
                )
            event.processed_at = timezone.now()
            event.save(update_fields=["processed_at"])
            if message.inquiry.messages.filter(kind=MessageKind.INBOUND).count() == 1:
                inquiry_auto_acknowledge(inquiry=message.inquiry)
        done += 1
    return done
