"""Email through Django's email framework (SMTP by default).

One connection is reused across a batch. Each message carries a
deterministic Message-ID derived from its delivery row, so a resend after a
crash is recognisable as the same message. SMTP answers are classified:
4xx and connection trouble retry, 5xx fail with the server's reason.

On Django's SMTP backend a message is written straight to the bytes that
Django's EmailMultiAlternatives would put on the wire (`message_bytes`)
and handed to the open smtplib connection: building the MIME objects and
running the generator cost more than the SMTP round trips. What the direct
writer does not cover (a body line over 998 bytes, which Django sends
quoted-printable; an HTML part without text; unusual headers) and other
backends (console, locmem) go through Django's own message.
"""

from __future__ import annotations

import email.header
import email.message
import email.policy
import email.utils
import functools
import logging
import re
import smtplib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from django.core.mail.message import (
    ADDRESS_HEADERS,
    RFC5322_EMAIL_LINE_LENGTH_LIMIT,
    BadHeaderError,
    forbid_multi_line_headers,
    sanitize_address,
)
from django.utils.crypto import constant_time_compare, salted_hmac

from crm.normalize import email_normalize
from outreach.channels import Outcome, Result

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmailMessage:
    key: int  # the delivery id
    to: str
    subject: str
    text: str
    html: str = ""
    message_id: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    from_email: str = ""
    reply_to: str = ""
    # The envelope sender (MAIL FROM, which becomes the Return-Path): a
    # per-delivery bounce address (bounce_address_for); "" for the From.
    return_path: str = ""

    def all_headers(self) -> dict[str, str]:
        """The extra headers with the Message-ID, as both writers put them."""
        if not self.message_id:
            return dict(self.headers)
        return {**self.headers, "Message-ID": self.message_id}


class _Policy(email.policy.Compat32):
    """Django's own (compat32) policy, folding only lines over RFC 5322's
    998 limit: at 78 it folds a long header right after "Name:" (parsers
    read the value back with a leading space). The modern policy does not,
    but it re-parses every header of every part (~5 ms a message) and
    writes a long List-Unsubscribe as RFC 2047 encoded-words, which RFC
    2369/8058 readers (one-click unsubscribe) do not decode.

    An ASCII value whose lines fit is written as it is: what compat32
    would write, without building a Header for each (half the time)."""

    def _fold(self, name, value, sanitize):
        if isinstance(value, str) and value.isascii():
            lines = value.splitlines()
            if all(len(name) + len(line) < 990 for line in lines):
                return f"{name}: {self.linesep.join(lines)}{self.linesep}"
        return super()._fold(name, value, sanitize)


_POLICY = _Policy(max_line_length=998)


_WIRE = _POLICY.clone(linesep="\r\n")  # how the generator writes headers for SMTP


@functools.lru_cache(maxsize=1024)
def _subject_value(subject: str) -> str:
    """The Subject as stored in the message: encoded-words if not ASCII."""
    if subject.isascii():
        return subject
    return email.header.Header(subject, "utf-8", header_name="Subject").encode()


def _boundary() -> str:
    return f"==madoguchi_{uuid.uuid4().hex}=="


class _MailMessage(EmailMultiAlternatives):
    """Django's message, with the Subject encoded and folded between its
    encoded-words (the first one right after "Subject: ")."""

    def message(self, *args, **kwargs):
        msg = super().message(*args, **kwargs)
        msg.policy = _POLICY
        del msg["Subject"]
        email.message.Message.__setitem__(msg, "Subject", _subject_value(self.subject))
        if msg.is_multipart():
            # A random boundary now: left unset, the generator builds one and
            # compiles a regex for it to search the parts, for every mail.
            msg.set_boundary(_boundary())
        return msg


# Headers Django's message() sets itself, or places differently when given.
_OWN_HEADERS = {"from", "to", "cc", "reply-to", "date", "subject"}
_NEWLINES = re.compile(r"\r\n|\r|\n")  # the generator's NLCRE
_PART_HEADERS = 'Content-Type: text/%s; charset="utf-8"\r\nMIME-Version: 1.0\r\n'


def _header(name: str, value: str) -> bytes:
    """One header line as SafeMIME*.__setitem__ stores it and the generator
    folds it (BadHeaderError for a newline in the value)."""
    value = str(value)
    if (
        value.isascii()
        and value.isprintable()
        and len(name) + len(value) < 990
        and (name.lower() not in ADDRESS_HEADERS or _PLAIN_ADDRESS.fullmatch(value))
    ):
        return f"{name}: {value}\r\n".encode()  # what both would leave as it is
    name, value = forbid_multi_line_headers(name, value, "utf-8")
    return _WIRE.fold_binary(name, value)


def _body(text: str) -> tuple[str, bytes] | None:
    """(Content-Transfer-Encoding, body) as Django's SafeMIMEText writes
    UTF-8 text; None when a line needs quoted-printable."""
    data = text.encode()
    if len(data) > RFC5322_EMAIL_LINE_LENGTH_LIMIT and any(
        len(line.encode()) > RFC5322_EMAIL_LINE_LENGTH_LIMIT
        for line in text.splitlines()
        if len(line) * 4 > RFC5322_EMAIL_LINE_LENGTH_LIMIT  # 4 bytes at most a character
    ):
        return None
    cte = "7bit" if data.isascii() else "8bit"
    if "\r" not in text:
        return cte, data.replace(b"\n", b"\r\n")
    return cte, _NEWLINES.sub("\r\n", text).encode()


def message_bytes(
    message: EmailMessage,
    *,
    date: str | None = None,
    boundary: str | None = None,
) -> bytes | None:
    """The message as Django's SMTP backend would send it (see _MailMessage:
    same headers in the same order, same encodings), written directly.
    None when the message needs what only Django's own path does: then send
    `EmailAdapter._build(message)`."""
    headers = message.all_headers()
    names = {name.lower() for name in headers}
    if not message.to or "message-id" not in names or names & _OWN_HEADERS:
        return None
    if message.html and not message.text:
        return None  # Django leaves the empty text part out
    text = _body(message.text)
    html = _body(message.html) if message.html else None
    if text is None or (message.html and html is None):
        return None
    subject = message.subject
    if "\n" in subject or "\r" in subject:
        raise BadHeaderError(
            f"Header values can't contain newlines (got {subject!r} for header 'Subject')"
        )
    if html is None:
        out = [
            (_PART_HEADERS % "plain").encode(),
            b"Content-Transfer-Encoding: " + text[0].encode() + b"\r\n",
        ]
    else:
        boundary = boundary or _boundary()
        out = [
            f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'
            "MIME-Version: 1.0\r\n".encode()
        ]
    out.append(_header("From", message.from_email or settings.DEFAULT_FROM_EMAIL))
    out.append(_header("To", message.to))
    if message.reply_to:
        out.append(_header("Reply-To", message.reply_to))
    if date is None:
        date = email.utils.formatdate(localtime=settings.EMAIL_USE_LOCALTIME)
    out.append(_header("Date", date))
    out += [_header(name, value) for name, value in headers.items()]
    out.append(_WIRE.fold_binary("Subject", _subject_value(subject)))
    out.append(b"\r\n")
    if html is None:
        out.append(text[1])
        return b"".join(out)
    delimiter = f"--{boundary}\r\n".encode()
    for index, (subtype, (cte, body)) in enumerate((("plain", text), ("html", html))):
        out += [
            b"\r\n" + delimiter if index else delimiter,
            (_PART_HEADERS % subtype).encode(),
            b"Content-Transfer-Encoding: " + cte.encode() + b"\r\n\r\n",
            body,
        ]
    out.append(f"\r\n--{boundary}--\r\n".encode())
    return b"".join(out)


# An address that sanitize_address() returns unchanged: a dot-atom without
# "=?" (which its parser would read as an encoded-word), ASCII labels of 1
# to 63 characters (what the IDNA codec accepts as they are).
_ATOM = r"[A-Za-z0-9_%+-]+"
_LABEL = r"[A-Za-z0-9-]{1,63}"
_PLAIN_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*")


@functools.lru_cache(maxsize=64)
def _envelope_sender(address: str) -> str:
    return sanitize_address(address, "utf-8")


def _envelope_recipient(address: str) -> str:
    if _PLAIN_ADDRESS.fullmatch(address):
        return address
    return sanitize_address(address, "utf-8")


def message_id_for(*, send_id: int, delivery_id: int) -> str:
    """Deterministic per delivery (a resend is the same message) and not
    guessable (a stranger cannot thread a mail into someone else's inquiry
    by In-Reply-To)."""
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2] or "madoguchi.invalid"
    return f"<madoguchi.{send_id}.{delivery_id}.{_message_id_tag(send_id, delivery_id)}@{domain}>"


def _message_id_tag(send_id: int | str, delivery_id: int | str) -> str:
    return salted_hmac("madoguchi.message-id", f"{send_id}.{delivery_id}").hexdigest()[:16]


def bounce_address_for(*, delivery_id: int, from_email: str = "") -> str:
    """The envelope sender of one delivery (VERP): bounces+<id>-<tag>@domain,
    so that a bounce names the delivery it reports. The tag is a keyed hash
    of the id: a stranger cannot make a bounce name a delivery. The domain
    is settings.BOUNCE_DOMAIN, else the sender's."""
    sender = email.utils.parseaddr(from_email or settings.DEFAULT_FROM_EMAIL)[1]
    domain = settings.BOUNCE_DOMAIN or sender.rpartition("@")[2] or "madoguchi.invalid"
    return f"{settings.BOUNCE_LOCAL_PART}+{delivery_id}-{_bounce_tag(delivery_id)}@{domain}"


def _bounce_tag(delivery_id: int | str) -> str:
    return salted_hmac("madoguchi.bounce", str(delivery_id)).hexdigest()[:12]


def bounce_address_delivery(address: str) -> int | None:
    """The delivery a bounce address (bounce_address_for) names, if its tag
    checks out (whatever the domain was then); None otherwise."""
    local = (address or "").strip().strip("<>").rpartition("@")[0]
    prefix, plus, rest = local.partition("+")
    if not plus or prefix.lower() != settings.BOUNCE_LOCAL_PART.lower():
        return None
    match = re.fullmatch(r"(\d{1,19})-([0-9a-fA-F]{12})", rest)
    if match is None:
        return None
    delivery_id, tag = match.groups()
    if not constant_time_compare(tag.lower(), _bounce_tag(int(delivery_id))):
        return None
    return int(delivery_id)


_OWN_MESSAGE_ID = re.compile(r"<madoguchi\.(\d{1,19})\.(\d{1,19})\.([0-9a-f]{16})@[^<>@\s]+>")


def message_id_delivery(message_id: str) -> int | None:
    """The delivery id in a Message-ID that message_id_for made (its tag
    checks out); None for any other."""
    match = _OWN_MESSAGE_ID.fullmatch(message_id or "")
    if match is None:
        return None
    send_id, delivery_id, tag = match.groups()
    if not constant_time_compare(tag, _message_id_tag(int(send_id), int(delivery_id))):
        return None
    return int(delivery_id)


def message_id_is_ours(message_id: str) -> bool:
    """Whether `message_id` is one message_id_for made (its tag checks out,
    whatever the domain was then): our own mail, come back."""
    return message_id_delivery(message_id) is not None


def own_addresses() -> frozenset[str]:
    """The addresses we send from or receive at (as email_normalize gives
    them, like the addresses they are compared with): mail from
    them is ours, and nothing automatic is sent to them."""
    configured = [
        settings.DEFAULT_FROM_EMAIL,
        settings.SERVER_EMAIL,
        settings.SHOP_CONTACT_EMAIL,
        settings.IMAP_USER,
        *settings.MAIL_OWN_ADDRESSES,
    ]
    found = (email_normalize(email.utils.parseaddr(value)[1]) for value in configured if value)
    return frozenset(address for address in found if address)


def _smtp_outcome(exc: Exception, to: str) -> Outcome:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, message = next(iter(exc.recipients.values()), (0, b""))
        text = message.decode(errors="replace") if isinstance(message, bytes) else str(message)
        error = f"SMTP {code} for {to}: {text}"
        return Outcome(Result.RETRY if 400 <= code < 500 else Result.FAILED, error=error)
    if isinstance(exc, smtplib.SMTPResponseException):
        text = (
            exc.smtp_error.decode(errors="replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        error = f"SMTP {exc.smtp_code}: {text}"
        if 400 <= exc.smtp_code < 500:
            return Outcome(Result.RETRY, error=error)
        if 500 <= exc.smtp_code < 600:
            return Outcome(Result.FAILED, error=error)
        return Outcome(Result.RETRY, error=error, in_doubt=True)
    # Disconnected mid-transaction or timed out: the server may have taken it.
    return Outcome(Result.RETRY, error=f"{type(exc).__name__}: {exc}", in_doubt=True)


class EmailAdapter:
    def __init__(self) -> None:
        self.connection = None

    def __enter__(self) -> EmailAdapter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            except Exception:
                logger.debug("closing SMTP connection failed", exc_info=True)
            self.connection = None

    def _open(self) -> None:
        if self.connection is None:
            connection = get_connection(fail_silently=False)
            connection.open()
            self.connection = connection

    def send(
        self, messages: list[EmailMessage], *, held: Callable[[int], bool] | None = None
    ) -> Iterator[tuple[int, Outcome]]:
        """Send in order on one connection; yield (key, outcome) for each.
        When the server cannot be reached, the rest are deferred. `held(key)`,
        asked before each message: False passes it by (the worker no longer
        holds that delivery), with no outcome."""
        for index, message in enumerate(messages):
            if held is not None and not held(message.key):
                continue
            try:
                self._open()
            except (OSError, smtplib.SMTPException) as exc:
                self.close()
                error = f"SMTP connection failed: {type(exc).__name__}: {exc}"
                for rest in messages[index:]:
                    yield rest.key, Outcome(Result.DEFER, error=error)
                return
            try:
                self._deliver(message)
            except (TimeoutError, smtplib.SMTPException, OSError) as exc:
                outcome = _smtp_outcome(exc, message.to)
                if outcome.in_doubt or isinstance(exc, smtplib.SMTPServerDisconnected | OSError):
                    self.close()
                yield message.key, outcome
                continue
            except ValueError as exc:
                # A header or address refused while the message was being
                # written (BadHeaderError is one), before any byte went out:
                # this message fails with the reason, the rest go on.
                yield message.key, Outcome(Result.FAILED, error=f"Message refused: {exc}")
                continue
            yield message.key, Outcome(Result.SENT, provider_id=message.message_id)

    def _deliver(self, message: EmailMessage) -> None:
        smtp = getattr(self.connection, "connection", None)
        # Exactly Django's backend: a subclass may sign or log in _send.
        data = message_bytes(message) if type(self.connection) is SmtpBackend else None
        if data is None or smtp is None:
            assert self.connection is not None  # opened by open()
            self.connection.send_messages([self._build(message)])
            return
        # What Django's SMTP backend does with the message (_send).
        sender = _envelope_sender(
            message.return_path or message.from_email or settings.DEFAULT_FROM_EMAIL
        )
        smtp.sendmail(sender, [_envelope_recipient(message.to)], data)

    def _build(self, message: EmailMessage) -> _MailMessage:
        from_email = message.from_email or settings.DEFAULT_FROM_EMAIL
        headers = message.all_headers()
        if message.return_path:
            # Django's backends take the envelope sender from from_email and
            # write the From header from headers["From"] when it is given.
            headers = {"From": from_email, **headers}
            from_email = message.return_path
        mail = _MailMessage(
            subject=message.subject,
            body=message.text,
            from_email=from_email,
            to=[message.to],
            reply_to=[message.reply_to] if message.reply_to else None,
            headers=headers,
            connection=self.connection,
        )
        mail.encoding = "utf-8"
        if message.html:
            mail.attach_alternative(message.html, "text/html")
        return mail
