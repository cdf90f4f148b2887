"""A local SMTP server that delivers nowhere: every message it receives is
written to a directory as an .eml file, so a newcomer running `make run`
can open what the system sent (any mail app opens .eml; so does a text
editor).

File names sort by arrival time: `20250412-153012-123456-0001.eml`
(local time, microseconds, then a counter). The envelope (who the
message was handed over from and to, which shows Bcc recipients) is
added on top as `X-Peer`, `X-MailFrom` and `X-RcptTo` headers, as
aiosmtpd's own Message handler does.

`SmtpSink` runs the server in a background thread; tests start it on
port 0 and read the port it got. `manage.py smtp_sink` runs it until
stopped.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import tempfile
import threading
from collections.abc import Callable
from datetime import datetime, tzinfo
from email import message_from_bytes, policy
from pathlib import Path

from aiosmtpd.controller import Controller

logger = logging.getLogger(__name__)


class MailDirectoryHandler:
    """aiosmtpd handler writing each message to `directory`."""

    def __init__(
        self,
        directory: Path,
        *,
        tz: tzinfo | None = None,
        on_saved: Callable[[Path], None] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.tz = tz
        self.on_saved = on_saved
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def file_name(self) -> str:
        with self._lock:
            number = next(self._counter) % 10_000
        return f"{datetime.now(self.tz):%Y%m%d-%H%M%S-%f}-{number:04d}.eml"

    async def handle_DATA(self, server, session, envelope) -> str:
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        head = (
            f"X-Peer: {peer}\r\n"
            f"X-MailFrom: {envelope.mail_from}\r\n"
            f"X-RcptTo: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        content = envelope.original_content or b""
        try:
            path = self.save(head + content)
        except OSError:
            logger.exception("smtp sink: could not write the message to %s", self.directory)
            return "451 Requested action aborted: could not store the message"
        if self.on_saved is not None:
            self.on_saved(path)
        return "250 Message accepted for delivery"

    def save(self, raw: bytes) -> Path:
        """Write atomically: a reader never sees half a message."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / self.file_name()
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".incoming-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(raw)
            os.chmod(tmp, 0o644)  # mkstemp makes it private; it is only test mail
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path


def mail_summary(path: Path) -> str:
    """One line about a saved message: file, recipients, decoded subject."""
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    subject = str(message.get("Subject", "")).strip()
    return f"{path.name}  to {message.get('X-RcptTo', '?')}  「{subject}」"


class _Controller(Controller):
    def _trigger_server(self) -> None:
        # With port 0 the system picks the port: learn it before aiosmtpd
        # connects to its own server to check that it answers.
        if self.port == 0 and self.server is not None:
            self.port = self.server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]  # an asyncio.Server; aiosmtpd types it AbstractServer
        super()._trigger_server()


class SmtpSink:
    """The sink server in a background thread:

    with SmtpSink(directory=tmp_path, port=0) as sink:
        smtplib.SMTP(sink.host, sink.port).send_message(...)
    """

    def __init__(
        self,
        *,
        directory: Path,
        host: str = "127.0.0.1",
        port: int = 1025,
        tz: tzinfo | None = None,
        on_saved: Callable[[Path], None] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.handler = MailDirectoryHandler(self.directory, tz=tz, on_saved=on_saved)
        self._controller = _Controller(
            self.handler,
            hostname=host,
            port=port,
            enable_SMTPUTF8=True,
            data_size_limit=50 * 1024 * 1024,
        )

    @property
    def host(self) -> str:
        return self._controller.hostname

    @property
    def port(self) -> int:
        return self._controller.port

    def start(self) -> SmtpSink:
        """Start serving; OSError at once if the port is taken."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.port:
            # aiosmtpd would only report a taken port after its ready
            # timeout (5 s): try the address first, the way asyncio binds.
            with socket.create_server((self.host, self.port), reuse_port=False):
                pass
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
