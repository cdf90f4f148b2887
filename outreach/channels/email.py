"""Email through Django's email framework (SMTP by default).

One connection is reused across a batch. Each message carries a
deterministic Message-ID derived from its delivery row, so a resend after a
crash is recognisable as the same message. SMTP answers are classified:
4xx and connection trouble retry, 5xx fail with the server's reason.
"""

from __future__ import annotations

import email.header
import email.message
import email.policy
import logging
import smtplib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.utils.crypto import salted_hmac

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


class _MailMessage(EmailMultiAlternatives):
    """Django's message, with the Subject encoded and folded between its
    encoded-words (the first one right after "Subject: ")."""

    def message(self, *args, **kwargs):
        msg = super().message(*args, **kwargs)
        msg.policy = _POLICY
        del msg["Subject"]
        subject = self.subject
        if not subject.isascii():
            subject = email.header.Header(subject, "utf-8", header_name="Subject").encode()
        email.message.Message.__setitem__(msg, "Subject", subject)
        if msg.is_multipart():
            # A random boundary now: left unset, the generator builds one and
            # compiles a regex for it to search the parts, for every mail.
            msg.set_boundary(f"==madoguchi_{uuid.uuid4().hex}==")
        return msg


def message_id_for(*, send_id: int, delivery_id: int) -> str:
    """Deterministic per delivery (a resend is the same message) and not
    guessable (a stranger cannot thread a mail into someone else's inquiry
    by In-Reply-To)."""
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2] or "madoguchi.invalid"
    tag = salted_hmac("madoguchi.message-id", f"{send_id}.{delivery_id}").hexdigest()[:16]
    return f"<madoguchi.{send_id}.{delivery_id}.{tag}@{domain}>"


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

    def send(self, messages: list[EmailMessage]) -> Iterator[tuple[int, Outcome]]:
        """Send in order on one connection; yield (key, outcome) for each.
        When the server cannot be reached, the rest are deferred."""
        for index, message in enumerate(messages):
            try:
                self._open()
            except (OSError, smtplib.SMTPException) as exc:
                self.close()
                error = f"SMTP connection failed: {type(exc).__name__}: {exc}"
                for rest in messages[index:]:
                    yield rest.key, Outcome(Result.DEFER, error=error)
                return
            try:
                self.connection.send_messages([self._build(message)])
            except (TimeoutError, smtplib.SMTPException, OSError) as exc:
                outcome = _smtp_outcome(exc, message.to)
                if outcome.in_doubt or isinstance(exc, smtplib.SMTPServerDisconnected | OSError):
                    self.close()
                yield message.key, outcome
                continue
            yield message.key, Outcome(Result.SENT, provider_id=message.message_id)

    def _build(self, message: EmailMessage) -> _MailMessage:
        headers = dict(message.headers)
        if message.message_id:
            headers["Message-ID"] = message.message_id
        mail = _MailMessage(
            subject=message.subject,
            body=message.text,
            from_email=message.from_email or settings.DEFAULT_FROM_EMAIL,
            to=[message.to],
            reply_to=[message.reply_to] if message.reply_to else None,
            headers=headers,
            connection=self.connection,
        )
        mail.encoding = "utf-8"
        if message.html:
            mail.attach_alternative(message.html, "text/html")
        return mail
