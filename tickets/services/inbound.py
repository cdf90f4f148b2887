"""Inbound: email (piped or polled), LINE messages, and what they join.

Every mail is recorded once in InboundMail (by Message-ID, else a hash of
its bytes), whatever becomes of it: processed into an inquiry message,
ignored (auto-replies, bounces, our own sends — so no mail loop starts), or
failed with the raw bytes kept so nothing is lost.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, NoReturn

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import get_valid_filename

from core.choices import Channel
from crm.models import ChannelIdentity
from crm.normalize import email_normalize
from crm.services import customer_upsert
from outreach.channels.email import message_id_is_ours, own_addresses
from outreach.models import LineWebhookEvent
from outreach.services import mail_report_apply
from tickets.mailparse import MailParseError, ParsedMail, find_reference, parse_message
from tickets.models import (
    OPEN_STATUSES,
    InboundMail,
    InboundStatus,
    Inquiry,
    InquiryMessage,
    MessageKind,
)
from tickets.services.intake import (
    AttachmentData,
    InboundMessage,
    inquiry_create,
    inquiry_inbound_add,
)
from tickets.services.replies import inquiry_auto_acknowledge

logger = logging.getLogger(__name__)

# The database is briefly unavailable (connection lost, lock or statement
# timeout, deadlock): not the mail's fault. These propagate, so the mail
# server retries the pipe (EX_TEMPFAIL) and the IMAP poller stops before
# the message, instead of recording a good mail as failed.
TRANSIENT_DATABASE_ERRORS = (OperationalError, InterfaceError)
# A Date header older than this is a wrong clock (1970, a year off...), not
# mail that took that long to arrive: the inquiry counts from its arrival.
MAIL_DATE_MAX_AGE = timedelta(days=7)
# How much of a mail over MAIL_MAX_MESSAGE_BYTES is read for its header.
HEADER_MAX_BYTES = 256 * 1024
# File systems take 255 bytes a name; the storage may add "_" and 7 letters.
ATTACHMENT_NAME_MAX_BYTES = 200


def channel_for_address(address: str) -> str:
    """Mall inquiries arrive through the malls' mail relays; the sender's
    domain says which mall (settings.MALL_RELAY_DOMAINS)."""
    domain = address.rpartition("@")[2].lower()
    for suffix, channel in settings.MALL_RELAY_DOMAINS.items():
        if domain == suffix or domain.endswith("." + suffix):
            return channel
    return Channel.EMAIL


def _name_parts(name: str) -> tuple[str, str]:
    """ "山田 太郎" → ("山田", "太郎"): Japanese names are family first. The
    Amazon relay's " - Amazon Marketplace" suffix is not part of the name."""
    name = re.sub(r"\s+-\s+(?:Amazon\s+)?Marketplace\s*$", "", name or "", flags=re.IGNORECASE)
    parts = re.split(r"[\s\u3000]+", name.strip(), maxsplit=1)
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
                    customer=inquiry.customer,
                    channel=channel_for_address(sender_email),
                    external_id=sender_email,
                ).exists()
            )
        ):
            return inquiry
    return None


class MailReadTimeout(BaseException):
    """Reading one mail took longer than settings.MAIL_PARSE_SECONDS. Not an
    Exception: the parser's last-resort handlers must not swallow it."""


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise MailReadTimeout in the block after ``seconds`` (SIGALRM: the
    main thread only; elsewhere the block runs unlimited). A timer already
    running (django-q2's task timeout) is put back with what it had left;
    if it would ring first, it is left alone: it ends the task, not the mail
    (the poller reads the mail again next time)."""
    outer_left, _interval = signal.getitimer(signal.ITIMER_REAL)
    if threading.current_thread() is not threading.main_thread() or (
        outer_left and outer_left <= seconds
    ):
        yield
        return

    def expire(_signum: int, _frame: object) -> NoReturn:
        raise MailReadTimeout(f"reading the mail took longer than {seconds} s")

    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_left:
            left = outer_left - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))


def mail_ingest(raw: bytes, *, source: str, size: int | None = None) -> InboundMail:
    """Turn one raw RFC 822 message into an inquiry message, once. Never
    raises for a bad message: the outcome is in the returned record. A
    database failure (TRANSIENT_DATABASE_ERRORS) raises, with nothing
    stored, so that the mail is delivered again.

    ``size``: the message's full size when ``raw`` is only its beginning
    (its header: the message is over MAIL_MAX_MESSAGE_BYTES)."""
    digest = hashlib.sha256(raw).hexdigest()
    size = len(raw) if size is None else size
    if size > settings.MAIL_MAX_MESSAGE_BYTES:
        return _too_large(raw, size=size, source=source, digest=digest)
    try:
        with _time_limit(settings.MAIL_PARSE_SECONDS):
            parsed = parse_message(raw, max_attachment_bytes=settings.ATTACHMENT_MAX_BYTES)
    except MailParseError as exc:
        return _once(
            f"sha256:{digest}", source=source, status=InboundStatus.FAILED, reason=str(exc), raw=raw
        )
    except (MailReadTimeout, Exception) as exc:  # too slow, or a parser bug: kept, and passed by
        logger.exception("inbound mail sha256:%s could not be read", digest)
        return _once(
            f"sha256:{digest}",
            source=source,
            status=InboundStatus.FAILED,
            reason=f"{type(exc).__name__}: {exc}",
            raw=raw,
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
    ignore_reason = parsed.ignore_reason or _own_mail_reason(parsed)
    if parsed.report is not None and ignore_reason in ("bounce", "complaint"):
        return _report_apply(parsed, dedupe_key, source=source, raw=raw, summary=summary)
    if ignore_reason:
        return _once(
            dedupe_key,
            source=source,
            status=InboundStatus.IGNORED,
            reason=ignore_reason,
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

    def apply(record: InboundMail) -> None:
        record.inquiry_message = _mail_apply(parsed, sender)
        record.save(update_fields=["inquiry_message"])

    return _record_and_apply(
        dedupe_key, apply, source=source, raw=raw, status=InboundStatus.PROCESSED, **summary
    )


def _report_apply(
    parsed: ParsedMail, dedupe_key: str, *, source: str, raw: bytes, summary: dict
) -> InboundMail:
    """A bounce or complaint: recorded as ignored (it never becomes an
    inquiry) and applied to the addresses it names, once."""
    return _record_and_apply(
        dedupe_key,
        lambda _record: mail_report_apply(report=parsed.report, received_at=timezone.now()),  # type: ignore[arg-type]  # a report mail has its report
        source=source,
        raw=raw,
        status=InboundStatus.IGNORED,
        reason=parsed.ignore_reason,
        **summary,
    )


def _record_and_apply(
    dedupe_key: str, apply: Callable[[InboundMail], object], *, raw: bytes, **fields: Any
) -> InboundMail:
    """Record the mail, then `apply(record)`, in one transaction; the mail is
    recorded as failed, with its bytes, if that raises."""
    try:
        with transaction.atomic():
            # The record goes first: its unique key is the lock that keeps a
            # second pipe or poller with the same mail from applying it too
            # (it waits here, then finds the record).
            try:
                with transaction.atomic():
                    record = InboundMail.objects.create(dedupe_key=dedupe_key, **fields)
            except IntegrityError:
                return InboundMail.objects.get(dedupe_key=dedupe_key)
            apply(record)
            return record
    except TRANSIENT_DATABASE_ERRORS:
        raise
    except Exception as exc:  # one bad mail never stops the others
        logger.exception("inbound mail %s failed", dedupe_key)
        summary = {k: fields[k] for k in ("source", "message_id", "from_address", "subject")}
        return _once(
            dedupe_key,
            status=InboundStatus.FAILED,
            reason=f"{type(exc).__name__}: {exc}",
            raw=raw,
            **summary,
        )


def _too_large(raw: bytes, *, size: int, source: str, digest: str) -> InboundMail:
    """A mail over MAIL_MAX_MESSAGE_BYTES: recorded as failed by its header."""
    reason = (
        f"too large: {size} bytes, over the limit of {settings.MAIL_MAX_MESSAGE_BYTES}; "
        "kept as its header only"
    )
    return mail_record_failed(raw, source=source, reason=reason, digest=digest)


def mail_record_failed(
    raw: bytes, *, source: str, reason: str, digest: str | None = None
) -> InboundMail:
    """Record a mail that is not read as failed, with ``reason``, what its
    header says (sender, subject, Message-ID) and the header itself (``raw``
    is the whole message or its beginning)."""
    end = re.search(rb"\r?\n\r?\n", raw[:HEADER_MAX_BYTES])
    header = raw[: end.end()] if end else raw[:HEADER_MAX_BYTES]
    try:
        parsed = parse_message(header)
    except MailParseError:
        parsed = None
    message_id = parsed.message_id if parsed else ""
    digest = digest or hashlib.sha256(raw).hexdigest()
    return _once(
        f"mid:{message_id}"[:255] if message_id else f"sha256:{digest}",
        source=source,
        status=InboundStatus.FAILED,
        reason=reason,
        raw=header,
        message_id=message_id[:255],
        from_address=parsed.from_address[:255] if parsed else "",
        subject=parsed.subject[:255] if parsed else "",
    )


def _own_mail_reason(parsed: ParsedMail) -> str:
    """Our own mail come back although a forwarder stripped our delivery
    header: "own-delivery" for a Message-ID we made, "own-address" for mail
    from one of our addresses; "" otherwise. Either would start a loop
    (an inquiry with the shop as its customer, acknowledged to itself)."""
    if message_id_is_ours(parsed.message_id):
        return "own-delivery"
    if email_normalize(parsed.from_address) in own_addresses():
        return "own-address"
    return ""


def _once(dedupe_key: str, **fields: Any) -> InboundMail:
    # An exception's text may quote the mail (NUL included): PostgreSQL
    # refuses NUL in text, and this record is what keeps the mail.
    fields = {
        name: value.replace("\x00", "\ufffd") if isinstance(value, str) else value
        for name, value in fields.items()
    }
    record, _created = InboundMail.objects.get_or_create(dedupe_key=dedupe_key, defaults=fields)
    return record


def _mail_apply(parsed: ParsedMail, sender: str) -> InquiryMessage:
    attachments = [
        AttachmentData(
            filename=_storable_filename(a.filename, number),
            content_type=a.content_type,
            content=None if a.truncated else a.payload,
            size=a.size,
        )
        for number, a in enumerate(parsed.attachments, start=1)
        if not a.is_inline or a.filename
    ]
    mail = InboundMessage(
        subject=parsed.subject,
        body_text=parsed.text,
        visible_text=parsed.visible_text,
        body_html=parsed.html_body,
        message_id=parsed.message_id,
        in_reply_to=parsed.in_reply_to,
        references=" ".join(parsed.references),
        attachments=attachments,
        received_at=parsed.date if _plausible(parsed.date) else timezone.now(),
    )
    inquiry = mail_thread_find(parsed, sender_email=sender)
    if inquiry is not None:
        message = inquiry_inbound_add(inquiry=inquiry, message=mail)
        if message.inquiry_id != inquiry.pk:  # closed long ago: a new, linked inquiry
            _acknowledge(message.inquiry)
        return message
    if not parsed.text.strip() and not attachments:
        # Mobile mail is often written in the subject alone.
        mail = replace(mail, body_text=parsed.subject, visible_text=parsed.subject)
    channel = channel_for_address(sender)
    family, given = _name_parts(parsed.from_name)
    # A mall's relay address is the buyer's identity on that mall (a masked
    # Amazon address...), not an email identity: the mall's rules apply.
    customer, _created = customer_upsert(
        channel=channel,
        external_id="" if channel == Channel.EMAIL else sender,
        email=sender,
        family_name=family,
        given_name=given,
    )
    inquiry = inquiry_create(customer=customer, channel=channel, message=mail)
    message = inquiry.messages.get()
    _acknowledge(inquiry)
    return message


def _acknowledge(inquiry: Inquiry) -> None:
    """The automatic acknowledgement is a courtesy: if it cannot be made (a
    broken template, a text too long for LINE...), the inquiry stays."""
    try:
        with transaction.atomic():
            inquiry_auto_acknowledge(inquiry=inquiry)
    except TRANSIENT_DATABASE_ERRORS:
        raise
    except Exception:
        logger.exception("automatic acknowledgement of %s failed", inquiry.reference)


def _storable_filename(name: str, number: int) -> str:
    """The attachment's name, unless the file storage could not take it: a
    name of symbols only ("★") has nothing a file name may keep, and a long
    Japanese name passes the file system's 255 bytes (3 bytes a character)."""
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension) > 10:
        stem, extension = name, ""
    suffix = f".{extension}" if extension else ""
    try:
        get_valid_filename(name)
    except SuspiciousFileOperation:
        return f"attachment-{number}{suffix}"
    if len(name.encode("utf-8")) <= ATTACHMENT_NAME_MAX_BYTES:
        return name
    budget = ATTACHMENT_NAME_MAX_BYTES - len(suffix.encode("utf-8"))
    return stem.encode("utf-8")[:budget].decode("utf-8", "ignore") + suffix


def _plausible(moment: datetime | None) -> bool:
    """A Date header is trusted only if it is not in the future and not
    older than MAIL_DATE_MAX_AGE."""
    now = timezone.now()
    return moment is not None and now - MAIL_DATE_MAX_AGE <= moment <= now


# --- LINE ---------------------------------------------------------------------------


def _line_text(payload: dict) -> str:
    message = payload.get("message") or {}
    kind = message.get("type")
    if kind == "text":
        return str(message.get("text", ""))
    labels: dict[str | None, str] = {
        "sticker": "[スタンプ]",
        "image": "[画像]",
        "video": "[動画]",
        "audio": "[音声]",
    }
    return labels.get(kind, f"[{kind or 'message'}]")


def line_messages_consume(*, limit: int = 200) -> int:
    """Turn stored LINE message events into inquiry messages: the user's
    open LINE inquiry, or a new one. An event that cannot be applied keeps
    the reason in its ``error`` and is skipped from then on, so one bad
    event never holds up the others."""
    done = 0
    pending = LineWebhookEvent.objects.filter(
        event_type="message", processed_at__isnull=True, error="", customer__isnull=False
    ).order_by("occurred_at", "id")
    for event_id in list(pending.values_list("id", flat=True)[:limit]):
        try:
            with transaction.atomic():
                event = (
                    LineWebhookEvent.objects.select_for_update(skip_locked=True, of=("self",))
                    .filter(pk=event_id, processed_at__isnull=True, error="")
                    .select_related("customer")
                    .first()
                )
                if event is None:
                    continue
                _line_message_apply(event)
        except TRANSIENT_DATABASE_ERRORS:
            raise
        except Exception as exc:
            logger.exception("LINE event %s could not become an inquiry message", event_id)
            LineWebhookEvent.objects.filter(pk=event_id).update(
                error=f"{type(exc).__name__}: {exc}"
            )
            continue
        done += 1
    return done


def _line_message_apply(event: LineWebhookEvent) -> InquiryMessage:
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
            message=InboundMessage(body_text=text, received_at=event.occurred_at),
            channel=Channel.LINE,
        )
    else:
        subject = text.splitlines()[0][:60] if text.strip() else "LINE"
        inquiry = inquiry_create(
            customer=event.customer,  # type: ignore[arg-type]  # customer__isnull=False (line_events_apply)
            channel=Channel.LINE,
            message=InboundMessage(subject=subject, body_text=text, received_at=event.occurred_at),
        )
        message = inquiry.messages.get()
    if event.reply_token:
        InquiryMessage.objects.filter(pk=message.pk).update(line_reply_token=event.reply_token)
    event.processed_at = timezone.now()
    event.save(update_fields=["processed_at"])
    if message.inquiry.messages.filter(kind=MessageKind.INBOUND).count() == 1:
        _acknowledge(message.inquiry)
    return message
