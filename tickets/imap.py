"""The IMAP poller: fetch new mail by UID, ingest each message once.

The last UID handled is saved after every message, so a restart resumes
where it stopped; a new UIDVALIDITY (the mailbox was rebuilt) starts over,
and InboundMail's dedupe key keeps that from creating duplicates. A message
that fails to parse or apply is recorded as failed by the ingester and the
poller moves on; so does one over MAIL_MAX_MESSAGE_BYTES (its size is asked
first and its header alone fetched) and one that takes longer than
MAIL_PARSE_SECONDS to read. A database failure stops the poll before that
message, and the next poll fetches it again.
"""

from __future__ import annotations

import base64
import hashlib
import imaplib
import logging
import re
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from tickets.models import MailboxState
from tickets.services.inbound import TRANSIENT_DATABASE_ERRORS, mail_ingest, mail_record_failed

logger = logging.getLogger(__name__)
# A message the poller process died on this many times (killed by a timeout,
# out of memory) is recorded by its header and passed by.
MAX_ATTEMPTS = 2
_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")


@dataclass(frozen=True)
class ImapAccount:
    host: str
    port: int
    user: str
    password: str
    mailbox: str = "INBOX"
    ssl: bool = True

    @property
    def name(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.mailbox}"[:255]

    @classmethod
    def from_settings(cls) -> ImapAccount | None:
        if not settings.IMAP_HOST:
            return None
        return cls(
            host=settings.IMAP_HOST,
            port=settings.IMAP_PORT,
            user=settings.IMAP_USER,
            password=settings.IMAP_PASSWORD,
            mailbox=settings.IMAP_MAILBOX,
            ssl=settings.IMAP_SSL,
        )


@dataclass
class PollReport:
    fetched: int = 0
    processed: int = 0
    ignored: int = 0
    failed: int = 0


def imap_poll(account: ImapAccount, *, limit: int = 500) -> PollReport:
    report = PollReport()
    client_class = imaplib.IMAP4_SSL if account.ssl else imaplib.IMAP4
    client = client_class(account.host, account.port, timeout=settings.IMAP_TIMEOUT)
    try:
        client.login(account.user, account.password)
        status, data = client.select(mailbox_argument(account.mailbox), readonly=True)
        if status != "OK":
            raise imaplib.IMAP4.error(f"cannot select {account.mailbox}: {data!r}")
        state, _ = MailboxState.objects.get_or_create(name=account.name)
        uid_validity = _uid_validity(client)
        if state.uid_validity != uid_validity:
            state.uid_validity, state.last_uid = uid_validity, 0
        status, data = client.uid("search", None, f"UID {state.last_uid + 1}:*")  # type: ignore[arg-type]  # imaplib leaves out a None argument (no charset)
        uids = sorted(int(u) for u in (data[0] or b"").split() if int(u) > state.last_uid)
        batch = uids[:limit]
        sizes = _sizes(client, batch)
        for uid in batch:
            if state.attempt_uid == uid and state.attempts >= MAX_ATTEMPTS:
                report.fetched += 1
                report.failed += 1
                _pass_by(client, uid, account=account, state=state)
                _done(state, uid)
                continue
            # Remembered before reading: a process that dies on this
            # message (killed, out of memory) leaves the count behind.
            state.attempts = state.attempts + 1 if state.attempt_uid == uid else 1
            state.attempt_uid = uid
            state.save(update_fields=["attempt_uid", "attempts"])
            size = sizes.get(uid)
            # Over the limit, the header alone is fetched: mail_ingest
            # records the message by it.
            whole = size is None or size <= settings.MAIL_MAX_MESSAGE_BYTES
            raw = _fetch(client, uid, "(BODY.PEEK[])" if whole else "(BODY.PEEK[HEADER])")
            report.fetched += 1
            if raw is None:
                logger.warning("IMAP %s: UID %s could not be fetched", account.name, uid)
                report.failed += 1
            else:
                try:
                    outcome = _ingest(raw, source=f"imap:{account.name}", size=size)
                except TRANSIENT_DATABASE_ERRORS:
                    _attempt_undo(state)
                    raise
                setattr(report, outcome, getattr(report, outcome) + 1)
            _done(state, uid)
        state.polled_at = timezone.now()
        state.save()
    finally:
        try:
            client.logout()
        except Exception:
            logger.debug("IMAP logout failed", exc_info=True)
    return report


def _attempt_undo(state: MailboxState) -> None:
    """A database outage is not the message's fault: the attempt does not
    count (if the database lets us say so)."""
    try:
        MailboxState.objects.filter(pk=state.pk).update(attempts=max(state.attempts - 1, 0))
    except TRANSIENT_DATABASE_ERRORS:
        logger.warning("IMAP %s: the attempt count could not be undone", state.pk)


def _done(state: MailboxState, uid: int) -> None:
    state.last_uid, state.attempt_uid, state.attempts = uid, None, 0
    state.polled_at = timezone.now()
    state.save()


def _pass_by(client: imaplib.IMAP4, uid: int, *, account: ImapAccount, state: MailboxState) -> None:
    """A message the poller died on MAX_ATTEMPTS times: recorded as failed
    by its header, and not read again."""
    logger.error("IMAP %s: UID %s stopped the poller; passed by", account.name, uid)
    header = _fetch(client, uid, "(BODY.PEEK[HEADER])")
    where = f"{account.name}/{state.uid_validity}/{uid}"
    mail_record_failed(
        header or b"",
        source=f"imap:{account.name}",
        reason=f"reading it stopped the poller {MAX_ATTEMPTS} times; kept as its header only",
        digest=hashlib.sha256(where.encode()).hexdigest(),
    )


def _fetch(client: imaplib.IMAP4, uid: int, part: str) -> bytes | None:
    """The bytes of one message's `part` (a FETCH item), None if the
    server gave none."""
    status, parts = client.uid("fetch", str(uid), part)
    if status != "OK":
        return None
    return next((p[1] for p in parts if isinstance(p, tuple) and len(p) > 1), None)


def _sizes(client: imaplib.IMAP4, uids: list[int]) -> dict[int, int]:
    """RFC822.SIZE of each message, by UID, in one FETCH."""
    if not uids:
        return {}
    status, data = client.uid("fetch", f"{uids[0]}:{uids[-1]}", "(RFC822.SIZE)")
    sizes = {}
    for item in data if status == "OK" else []:
        line = item[0] if isinstance(item, tuple) else item
        uid = _UID.search(line or b"")
        size = _SIZE.search(line or b"")
        if uid and size:
            sizes[int(uid.group(1))] = int(size.group(1))
    return sizes


def _ingest(raw: bytes, *, source: str, size: int | None) -> str:
    """mail_ingest's outcome; "failed" when even the record of a failure
    could not be written (the message is passed by: the log has why). A
    database outage still stops the poll before the message."""
    try:
        return mail_ingest(raw, source=source, size=size).status
    except TRANSIENT_DATABASE_ERRORS:
        raise
    except Exception:
        logger.exception("IMAP %s: a message could not be recorded; passed by", source)
        return "failed"


def mailbox_argument(name: str) -> str:
    """A mailbox name as an IMAP quoted string. Names beyond printable
    ASCII (a folder called 問い合わせ) go in the modified UTF-7 of RFC 3501
    5.1.3; imaplib would refuse them otherwise."""
    encoded: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            data = base64.b64encode("".join(pending).encode("utf-16-be")).decode("ascii")
            encoded.append("&" + data.rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if " " <= char <= "~":
            flush()
            encoded.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    text = "".join(encoded).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _uid_validity(client: imaplib.IMAP4) -> int | None:
    """The UIDVALIDITY the server announced when the mailbox was selected."""
    _status, data = client.response("UIDVALIDITY")
    if data and data[0]:
        return int(data[0])
    return None
