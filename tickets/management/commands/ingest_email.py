"""Read one raw RFC 822 message from stdin and ingest it (for a mail
server's pipe, e.g. Postfix `mailbox_command` or an alias `|command`).

Exit status: 0 when the mail was recorded (processed, ignored as an
auto-reply or bounce, or a duplicate); 75 (EX_TEMPFAIL) when it could not
be stored at all, so the mail server keeps it and retries.
"""

import sys

from django.conf import settings
from django.core.management.base import BaseCommand

from tickets.services.inbound import mail_ingest

EX_TEMPFAIL = 75


class Command(BaseCommand):
    help = "Ingest one raw email (RFC 822) from standard input."
    # A mail server runs this once per message: no system checks at start.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--source", default="pipe", help="recorded as the mail's source")

    def handle(self, *args, source, **options):
        # A mail over the limit is recorded by its header: the rest is
        # read past, not kept in memory.
        limit = settings.MAIL_MAX_MESSAGE_BYTES
        raw = sys.stdin.buffer.read(limit + 1)
        size = len(raw)
        while size > limit and (chunk := sys.stdin.buffer.read(1024 * 1024)):
            size += len(chunk)
        if not raw.strip():
            self.stderr.write("No message on standard input.")
            sys.exit(EX_TEMPFAIL)
        try:
            record = mail_ingest(raw, source=source, size=size)
        except Exception as exc:  # the database is down: let the MTA retry
            self.stderr.write(f"Could not store the message: {type(exc).__name__}: {exc}")
            sys.exit(EX_TEMPFAIL)
        summary = f"{record.status}: {record.subject} {record.reason}".strip()
        try:
            self.stdout.write(summary)
        except UnicodeEncodeError:
            # A legacy locale (EUC-JP has no ① or ㈱): the mail is stored, and
            # a crash now would make the mail server bounce it.
            self.stdout.write(summary.encode("ascii", "backslashreplace").decode("ascii"))
