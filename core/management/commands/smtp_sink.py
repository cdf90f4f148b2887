"""`manage.py smtp_sink`: the local SMTP server of `make run`. Every mail
the system sends lands in var/mail/ as an .eml file instead of going out."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.smtp_sink import SmtpSink, mail_summary


class Command(BaseCommand):
    help = "Run a local SMTP server that saves every message as an .eml file (for development)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default=settings.EMAIL_HOST, help="default: EMAIL_HOST")
        parser.add_argument(
            "--port", type=int, default=settings.EMAIL_PORT, help="default: EMAIL_PORT"
        )
        parser.add_argument(
            "--directory",
            type=Path,
            default=Path(settings.VAR_DIR) / "mail",
            help="where the .eml files go (default: var/mail/)",
        )

    def handle(self, *args, host: str, port: int, directory: Path, **options) -> None:
        if options["verbosity"] < 2:
            # aiosmtpd logs every SMTP command at INFO; one line per message is enough.
            logging.getLogger("mail.log").setLevel(logging.WARNING)
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        sink = SmtpSink(
            directory=directory,
            host=host,
            port=port,
            tz=ZoneInfo(settings.TIME_ZONE),
            on_saved=self._saved,
        )
        try:
            sink.start()
        except OSError as exc:
            raise CommandError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}). "
                "Is another smtp_sink (or mail server) running? Use --port or EMAIL_PORT."
            ) from None
        self.stdout.write(
            f"SMTP sink on {sink.host}:{sink.port}: every message is saved in {directory}/"
        )
        self.stdout.flush()
        try:
            stop.wait()
        finally:
            sink.stop()
            self.stdout.write("SMTP sink stopped.")

    def _saved(self, path: Path) -> None:
        try:
            line = mail_summary(path)
        except Exception:  # a summary is a courtesy: never lose the server over it
            line = path.name
        self.stdout.write(f"saved {line}")
        self.stdout.flush()
