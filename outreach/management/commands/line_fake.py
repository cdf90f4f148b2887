"""`manage.py line_fake`: the local LINE platform, in the foreground, for `make run`.

Answers the Messaging API on ``--host``/``--port`` (``LINE_API_HOST`` points
the app at it) with the channel access token and secret from settings, and
prints one line per accepted message. To play a customer writing on LINE::

    curl -X POST http://127.0.0.1:8025/__fake__/webhook \\
         -d '{"type": "message", "userId": "U0123…", "text": "届きません"}'

signs the event with ``LINE_CHANNEL_SECRET`` and posts it to ``--webhook-url``.
"""

from __future__ import annotations

import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from outreach.linefake import AcceptedRequest, LineFake

PREVIEW_CHARS = 60


def _preview(messages: tuple[dict, ...]) -> str:
    """The first text (shortened, one line), or the first message's type."""
    first = messages[0] if messages else {}
    text = first.get("text") or first.get("altText")
    if not isinstance(text, str):
        return f"[{first.get('type', '?')}]"
    text = " ⏎ ".join(text.splitlines())
    if len(text) > PREVIEW_CHARS:
        text = text[: PREVIEW_CHARS - 1] + "…"
    more = f" (+{len(messages) - 1})" if len(messages) > 1 else ""
    return f"「{text}」{more}"


def describe_accepted(accepted: AcceptedRequest) -> str:
    """One readable line: endpoint, recipient(s), first text."""
    recipients = accepted.recipients
    to = recipients[0] if len(recipients) == 1 else f"{len(recipients)} users ({recipients[0]}, …)"
    key = f" key={accepted.retry_key[:8]}" if accepted.retry_key else ""
    return f"LINE {accepted.endpoint} → {to}: {_preview(accepted.messages)}{key}"


class Command(BaseCommand):
    help = "Run the local fake of the LINE Messaging API in the foreground."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8025)
        parser.add_argument(
            "--webhook-url",
            default=f"{settings.SITE_URL}/hooks/line/",
            help="Where POST /__fake__/webhook delivers signed events.",
        )
        parser.add_argument(
            "--latency", type=float, default=0.0, help="Seconds before each answer."
        )
        parser.add_argument(
            "--history",
            type=int,
            default=10_000,
            help="How many deliveries and requests to remember (memory bound).",
        )

    def handle(self, *args, **options) -> None:
        print_lock = threading.Lock()

        def report(accepted: AcceptedRequest) -> None:
            with print_lock:
                self.stdout.write(describe_accepted(accepted))
                self.stdout.flush()

        fake = LineFake(
            host=options["host"],
            port=options["port"],
            channel_access_token=settings.LINE_CHANNEL_ACCESS_TOKEN,
            channel_secret=settings.LINE_CHANNEL_SECRET,
            latency=options["latency"],
            history_limit=options["history"],
            webhook_url=options["webhook_url"] or None,
            on_accept=report,
        )
        self.stdout.write(
            f"LINE fake on http://{options['host']}:{options['port']} "
            f"(webhooks → {options['webhook_url']}); Ctrl+C stops it."
        )
        self.stdout.flush()
        try:
            fake.serve_forever()
        except KeyboardInterrupt:
            self.stdout.write("LINE fake stopped.")
        except OSError as exc:  # e.g. the port is taken
            raise CommandError(
                f"cannot listen on {options['host']}:{options['port']}: {exc}"
            ) from exc
