"""Delivery failure and complaint reports: what a bounce or a spam complaint
says, read from the shapes real mail systems send.

* **DSN** (RFC 3464, ``multipart/report; report-type=delivery-status``):
  the ``message/delivery-status`` part, one block per recipient
  (Final-Recipient, Action, Status, Diagnostic-Code). Postfix, Gmail,
  Exchange and most providers send these.
* **Plain-text bounces** (Yahoo! JAPAN's qmail-style "Sorry, we were unable
  to deliver your message", sendmail's "permanent fatal errors" as docomo
  and older Japanese carriers send them): a recipient in angle brackets
  followed by an SMTP reply code or enhanced status code, read from the text
  before the returned message.
* **Complaints** (ARF, RFC 5965, ``multipart/report;
  report-type=feedback-report``): the ``message/feedback-report`` part
  (Original-Rcpt-To) and the returned message.

Which delivery a report is about comes from what it carries: the addresses
it was sent to (our per-delivery bounce address, VERP), the returned
message's Message-ID and X-Madoguchi-Delivery header; checking them is the
caller's (only it knows the keys). Pure: no models, no database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from .headers import header_param_text, raw_header, raw_headers

HARD = "hard"
SOFT = "soft"
BOUNCE = "bounce"
COMPLAINT = "complaint"

# Where a report names the address it was sent to: our envelope sender.
_ENVELOPE_HEADERS = ("To", "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To")
_ADDRESS = r"[A-Za-z0-9._%+\-=/!#$&'*?^`{|}~]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}"
_ANGLED = re.compile(rf"<({_ADDRESS})>")
_BARE = re.compile(rf"\b({_ADDRESS})\b")
_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_REPLY_CODE = re.compile(r"(?<![\d.])([45])\d\d(?![\d.])")
# Where the returned message starts in a plain-text bounce: nothing after
# it is the report (the customer's own addresses are in it).
_ORIGINAL_STARTS = re.compile(
    r"^(?:-{2,}\s*(?:Original message|Below this line is a copy of the message|"
    r"Returned mail|Unsent message below|Forwarded message)|"
    r"-{3,}\s*The original message|-{5} (?:Original|Returned) message|"
    r"\s*-{3,} (?:Transcript|Original))",
    re.IGNORECASE | re.MULTILINE,
)
_PERMANENT_WORDS = re.compile(
    r"permanent fatal error|user unknown|unknown user|no such user|does not exist|"
    r"mailbox unavailable|address rejected|宛先.*(?:存在しません|見つかりません)",
    re.IGNORECASE,
)
_DAEMON_LOCALPARTS = frozenset({"mailer-daemon", "postmaster"})
_MESSAGE_ID_LINE = re.compile(rb"^Message-ID:[ \t]*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
_DELIVERY_LINE = re.compile(
    rb"^X-Madoguchi-Delivery:[ \t]*(\d{1,19})", re.IGNORECASE | re.MULTILINE
)


@dataclass(frozen=True)
class FailedRecipient:
    address: str  # lower-cased
    kind: str  # HARD, SOFT or COMPLAINT
    status: str = ""  # "5.1.1", "550"...
    diagnostic: str = ""


@dataclass(frozen=True)
class MailReport:
    kind: str  # BOUNCE or COMPLAINT
    recipients: tuple[FailedRecipient, ...]
    envelope_addresses: tuple[str, ...]  # where the report was sent (a VERP address?)
    original_message_ids: tuple[str, ...]  # the returned message's Message-ID
    original_delivery_ids: tuple[str, ...]  # its X-Madoguchi-Delivery


def report_type(msg: Message) -> str:
    if msg.get_content_type() != "multipart/report":
        return ""
    return header_param_text(msg, "report-type").lower()


def mail_report(msg: Message, *, is_bounce: bool) -> MailReport | None:
    """The report ``msg`` is (a bounce or a complaint), or None when it is
    neither or names no recipient. ``is_bounce``: the mail's other signals
    (a MAILER-DAEMON sender, a null Return-Path) say it is a bounce, so a
    plain-text report is read from its text."""
    kind = report_type(msg)
    if kind == "feedback-report":
        recipients = _complaint_recipients(msg)
        report_kind = COMPLAINT
    elif kind == "delivery-status":
        recipients = _dsn_recipients(msg) or _text_recipients(msg)
        report_kind = BOUNCE
    elif is_bounce:
        recipients = _text_recipients(msg)
        report_kind = BOUNCE
    else:
        return None
    message_ids, delivery_ids = _original_ids(msg)
    envelope = []
    for name in _ENVELOPE_HEADERS:
        for value in raw_headers(msg, name):
            envelope += _ANGLED.findall(value.decode("ascii", "replace"))
            envelope += _BARE.findall(value.decode("ascii", "replace"))
    if report_kind == COMPLAINT:
        envelope += _feedback_values(msg, "original-mail-from")
    return MailReport(
        kind=report_kind,
        recipients=tuple(recipients),
        envelope_addresses=tuple(dict.fromkeys(a.lower() for a in envelope)),
        original_message_ids=tuple(dict.fromkeys(message_ids)),
        original_delivery_ids=tuple(dict.fromkeys(delivery_ids)),
    )


def _fields(text: str) -> list[dict[str, str]]:
    """The blocks of a message/delivery-status or feedback-report body (RFC
    822-style fields, blocks separated by empty lines), field names lower."""
    blocks: list[dict[str, str]]
    current: dict[str, str]
    blocks, current, last = [], {}, None
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
            current, last = {}, None
        elif line[0] in " \t" and last:
            current[last] += " " + line.strip()
        elif ":" in line:
            name, _, value = line.partition(":")
            last = name.strip().lower()
            current[last] = value.strip()
    if current:
        blocks.append(current)
    return blocks


def _part_text(part: Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list):  # the stdlib reads delivery-status as messages
        return "\n\n".join(
            "\n".join(f"{k}: {v}" for k, v in block.items())
            for block in payload
            if isinstance(block, Message)
        )
    data = part.get_payload(decode=True)
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return str(payload or "")


def _typed_address(value: str) -> str:
    """ "rfc822; Taro@Example.jp" → "taro@example.jp"."""
    value = value.partition(";")[2] if ";" in value else value
    found = _BARE.search(value)
    return found.group(1).lower() if found else ""


def _dsn_recipients(msg: Message) -> list[FailedRecipient]:
    found = []
    for part in msg.walk():
        if part.get_content_type() not in (
            "message/delivery-status",
            "message/global-delivery-status",
        ):
            continue
        for block in _fields(_part_text(part)):
            address = _typed_address(block.get("final-recipient", "")) or _typed_address(
                block.get("original-recipient", "")
            )
            action = block.get("action", "").lower()
            if not address or action not in ("failed", ""):
                continue  # delayed, delivered, relayed, expanded: not a failure
            status = (_ENHANCED.search(block.get("status", "")) or [""])[0]
            diagnostic = block.get("diagnostic-code", "").partition(";")[2].strip() or block.get(
                "diagnostic-code", ""
            )
            kind = _kind(status, diagnostic)
            if kind:
                found.append(FailedRecipient(address, kind, status, diagnostic[:500]))
    return found


def _kind(status: str, diagnostic: str) -> str:
    code = status or (_ENHANCED.search(diagnostic) or _REPLY_CODE.search(diagnostic) or [""])[0]
    if code.endswith(".2.2"):
        return SOFT  # mailbox full: it may be emptied
    if code.startswith("5"):
        return HARD
    if code.startswith("4"):
        return SOFT
    if _PERMANENT_WORDS.search(diagnostic):
        return HARD
    return ""


def _report_text(msg: Message) -> str:
    """The human-readable report: text parts before any returned message,
    cut where a plain-text bounce quotes the original."""
    texts = []
    for part in msg.walk():
        content_type = part.get_content_type()
        if content_type in ("message/rfc822", "text/rfc822-headers"):
            break
        if content_type == "text/plain":
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                charset = part.get_content_charset() or "utf-8"
                try:
                    texts.append(data.decode(charset, "replace"))
                except LookupError:
                    texts.append(data.decode("utf-8", "replace"))
    text = "\n".join(texts)
    cut = _ORIGINAL_STARTS.search(text)
    return text[: cut.start()] if cut else text


def _text_recipients(msg: Message) -> list[FailedRecipient]:
    """Recipients of a plain-text bounce: each address in angle brackets
    with the reply it got (the text up to the next such address)."""
    text = _report_text(msg)
    matches = list(_ANGLED.finditer(text))
    found: dict[str, FailedRecipient] = {}
    for index, match in enumerate(matches):
        address = match.group(1).lower()
        if address.partition("@")[0] in _DAEMON_LOCALPARTS:
            continue  # "contact <postmaster@...>" in the report's wording
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        following = text[match.end() : end]
        if matches[index + 1 :] and matches[index + 1].group(1).lower() == address:
            following = text[match.end() : _next_other(matches, index, address, len(text))]
        diagnostic = " ".join(following.split()).lstrip(":> ")[:500]
        code = _ENHANCED.search(following) or _REPLY_CODE.search(following)
        status = code.group(0) if code else ""
        kind = _kind(status, diagnostic)
        if kind and (address not in found or found[address].kind != HARD):
            found[address] = FailedRecipient(address, kind, status, diagnostic)
    return list(found.values())


def _next_other(matches, index: int, address: str, default: int) -> int:
    for later in matches[index + 1 :]:
        if later.group(1).lower() != address:
            return later.start()
    return default


def _feedback_values(msg: Message, *names: str) -> list[str]:
    """Addresses in the named fields of the message/feedback-report part."""
    found = []
    for part in msg.walk():
        if part.get_content_type() == "message/feedback-report":
            for block in _fields(_part_text(part)):
                found += [_typed_address(block[n]) for n in names if block.get(n)]
    return [address for address in found if address]


def _complaint_recipients(msg: Message) -> list[FailedRecipient]:
    addresses = _feedback_values(msg, "original-rcpt-to", "removal-recipient")
    if not addresses:
        original = _original(msg)
        if original is not None:
            for value in raw_headers(original, "To"):
                addresses += [a.lower() for a in _BARE.findall(value.decode("ascii", "replace"))]
    return [FailedRecipient(a, COMPLAINT) for a in dict.fromkeys(addresses) if a]


def _original(msg: Message) -> Message | None:
    for part in msg.walk():
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
    return None


def _original_ids(msg: Message) -> tuple[list[str], list[str]]:
    """The returned message's Message-ID and X-Madoguchi-Delivery values:
    from its message/rfc822 or text/rfc822-headers part, else from the
    lines of a plain-text bounce that quotes it."""
    message_ids: list[str] = []
    delivery_ids: list[str] = []
    original = _original(msg)
    if original is not None:
        for name, into in (("Message-ID", message_ids), ("X-Madoguchi-Delivery", delivery_ids)):
            value = raw_header(original, name)
            if value:
                into.append(value.decode("ascii", "replace").strip())
    for part in msg.walk():
        content_type = part.get_content_type()
        if content_type == "text/rfc822-headers" or (
            content_type == "text/plain" and original is None
        ):
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                message_ids += [
                    m.decode("ascii", "replace") for m in _MESSAGE_ID_LINE.findall(data)
                ]
                delivery_ids += [d.decode("ascii") for d in _DELIVERY_LINE.findall(data)]
    return message_ids, delivery_ids
