"""parse_message: raw RFC 822 bytes to a :class:`ParsedMail`."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32

from . import signals
from .blobs import blobs_hoist
from .headers import (
    header_addresses,
    header_date,
    header_text,
    message_ids,
    raw_header,
    raw_headers,
)
from .htmltext import html_to_text, sanitise_html
from .mime import MAX_BOUNDARIES, Attachment, collect, too_many_boundaries
from .quoting import visible_text
from .reference import find_reference, is_forward_subject
from .reports import COMPLAINT, MailReport, mail_report

DEFAULT_MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024


class MailParseError(ValueError):
    """The input is not a mail message at all: it is empty, or it has no
    header field (its first line is not ``Name: value``). Anything with at
    least one header field is parsed, however damaged."""


@dataclass(frozen=True)
class ParsedMail:
    """A received mail, decoded.

    Absent text is ``""``, never None (the convention of the models' string
    fields); only ``date`` is None when unknown. Sequences are tuples, so the
    whole is immutable. Message ids keep their angle brackets
    (``<id@host>``), the form outbound Message-IDs are stored in.
    """

    message_id: str
    in_reply_to: str
    references: tuple[str, ...]
    subject: str
    from_address: str
    from_name: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    reply_to: tuple[str, ...]
    date: datetime | None
    text: str
    visible_text: str
    html_body: str
    attachments: tuple[Attachment, ...]
    reference: str
    is_auto_submitted: bool
    auto_signals: tuple[str, ...]
    subject_looks_automatic: bool
    is_bounce: bool
    bounce_signals: tuple[str, ...]
    bounced_delivery_id: str
    our_delivery_id: str
    warnings: tuple[str, ...]
    # A bounce or complaint report (reports.mail_report): what it says.
    report: MailReport | None = None

    @property
    def ignore_reason(self) -> str:
        """Why this mail must not become or answer an inquiry, or "":
        "own-delivery" (our own outbound mail came back), "complaint" (a
        spam complaint report), "bounce", or
        "auto-submitted". Subject wording alone never makes a mail ignored."""
        if self.our_delivery_id:
            return "own-delivery"
        if self.report is not None and self.report.kind == COMPLAINT:
            return "complaint"
        if self.is_bounce:
            return "bounce"
        if self.is_auto_submitted:
            return "auto-submitted"
        return ""

    @property
    def should_ignore(self) -> bool:
        return bool(self.ignore_reason)

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """Ids to look the thread up by, likeliest first: In-Reply-To, then
        References from the newest back."""
        ids = [self.in_reply_to] if self.in_reply_to else []
        return tuple(dict.fromkeys([*ids, *reversed(self.references)]))


def parse_message(
    raw: bytes, *, max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES
) -> ParsedMail:
    """Read raw RFC 822 bytes (IMAP ``RFC822`` data or a piped message).

    Never raises on damaged mail: what can be read is returned and
    ``warnings`` says what was wrong (undecodable bytes replaced, truncated
    multipart, attachment over ``max_attachment_bytes`` kept as metadata
    only...). Raises :class:`MailParseError` only for input that has no
    header field at all, and TypeError for input that is not bytes.
    """
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise TypeError(f"parse_message() needs bytes, not {type(raw).__name__}")
    data = bytes(raw).lstrip(b"\r\n")
    if not data.strip():
        raise MailParseError("empty input: not a mail message")
    warnings: list[str] = []
    body, blobs = blobs_hoist(data)
    msg = _parse_bytes(body, warnings)
    if not list(msg.raw_items()):
        raise MailParseError("no header field: not a mail message")

    subject = header_text(raw_header(msg, "Subject"), warnings, "subject")
    senders = header_addresses(raw_headers(msg, "From")[:1], warnings, "from")
    from_name, from_address = senders[0] if senders else ("", "")
    if not from_address:
        warnings.append("from: no sender address")
    in_reply_to = message_ids(raw_header(msg, "In-Reply-To"))
    message_id = message_ids(raw_header(msg, "Message-ID"))

    try:
        found = collect(msg, max_attachment_bytes=max_attachment_bytes, blobs=blobs)
    except Exception as exc:  # last resort: one bad mail must not stop ingestion
        warnings.append(f"internal: the body could not be read ({type(exc).__name__}: {exc})")
        found = None
    plain = "\n".join(found.plain) if found else ""
    html = "\n".join(found.html) if found else ""
    text = _tidy(plain) if plain.strip() else _tidy(html_to_text(html)) if html else ""
    if found:
        warnings.extend(w for w in found.warnings if w not in warnings)

    auto = signals.auto_submitted_signals(msg)
    bounce = signals.bounce_signals(msg, from_address)
    report = _report(msg, is_bounce=bool(bounce), warnings=warnings)
    parsed = ParsedMail(
        message_id=message_id[0] if message_id else "",
        in_reply_to=in_reply_to[0] if in_reply_to else "",
        references=tuple(message_ids(raw_header(msg, "References"))),
        subject=subject,
        from_address=from_address,
        from_name=from_name,
        to=_addresses(msg, "To", warnings),
        cc=_addresses(msg, "Cc", warnings),
        reply_to=_addresses(msg, "Reply-To", warnings),
        date=header_date(raw_header(msg, "Date"), warnings),
        text=text,
        visible_text=visible_text(text, forwarded=is_forward_subject(subject)),
        html_body=sanitise_html(html) if html.strip() else "",
        attachments=tuple(found.attachments) if found else (),
        reference=find_reference(subject) or "",
        is_auto_submitted=bool(auto),
        auto_signals=tuple(auto),
        subject_looks_automatic=signals.subject_looks_automatic(subject),
        is_bounce=bool(bounce),
        bounce_signals=tuple(bounce),
        bounced_delivery_id=signals.bounced_delivery_id(msg) if bounce else "",
        our_delivery_id=signals.delivery_id(msg),
        warnings=tuple(warnings),
        report=report,
    )
    return _without_nul(parsed)


def _without_nul(value):
    """``value`` with every NUL character of its text removed, deeply
    (strings, tuples, and the ParsedMail and Attachment dataclasses):
    PostgreSQL refuses NUL in text, and a NUL in any header a broken
    mailer writes (an attachment's Content-Type...) must not fail the mail."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, tuple):
        return tuple(_without_nul(item) for item in value)
    if dataclasses.is_dataclass(value):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return dataclasses.replace(
            value, **{name: _without_nul(item) for name, item in fields.items()}
        )
    return value


def _report(msg: Message, *, is_bounce: bool, warnings: list[str]) -> MailReport | None:
    try:
        return mail_report(msg, is_bounce=is_bounce)
    except Exception as exc:  # last resort: a report we cannot read is still a bounce
        warnings.append(f"internal: the report could not be read ({type(exc).__name__}: {exc})")
        return None


def _parse_bytes(data: bytes, warnings: list[str]) -> Message:
    """The stdlib parser, guarded: a message with absurdly many multipart
    boundaries (the parser slows down quadratically, then recurses too
    deep) or that makes it fail is read as headers plus a text body."""
    if too_many_boundaries(data):
        warnings.append(f"mime: more than {MAX_BOUNDARIES} multipart boundaries; body read as text")
        return BytesParser(policy=compat32).parsebytes(data, headersonly=True)
    try:
        return BytesParser(policy=compat32).parsebytes(data)
    except Exception as exc:  # e.g. RecursionError on absurd nesting
        warnings.append(f"mime: structure unreadable ({type(exc).__name__}); body read as text")
    return BytesParser(policy=compat32).parsebytes(data, headersonly=True)


def _addresses(msg: Message, name: str, warnings: list[str]) -> tuple[str, ...]:
    pairs = header_addresses(raw_headers(msg, name), warnings, name.lower())
    return tuple(dict.fromkeys(address for _name, address in pairs))


def _tidy(text: str) -> str:
    """Leading blank lines and trailing whitespace go; the rest is kept.
    (A body of nothing but whitespace, U+3000 included, is empty: see
    parse_message, which then falls back to the HTML part.)"""
    return re.sub(r"\A(?:[ \t]*\n)+", "", text).rstrip(" \t\n")
