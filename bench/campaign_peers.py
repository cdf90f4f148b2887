"""What the campaign benchmarks send to, each in a process of its own (spawned,
so that it does not share the benchmark's GIL): the SMTP sink (aiosmtpd,
counting messages and Message-IDs) and the LINE fake (read over its control
API afterwards), and the fake's credentials.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import time
from dataclasses import dataclass

LINE_TOKEN = "bench-line-token"
LINE_SECRET = "bench-line-secret"

# --- The SMTP sink (a separate process) ---------------------------------------------

_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)


def smtp_sink(port: int, received, unique, ready) -> None:
    """aiosmtpd on `port`, counting messages and distinct Message-IDs into
    shared integers, until the process is killed or its parent is gone."""
    from aiosmtpd.controller import Controller

    seen: set[bytes] = set()

    class Counter:
        async def handle_DATA(self, server, session, envelope):
            match = _MESSAGE_ID.search(envelope.content, 0, 8192)
            with received.get_lock():
                received.value += 1
            if match and match.group(1) not in seen:
                seen.add(match.group(1))
                with unique.get_lock():
                    unique.value += 1
            return "250 OK"

    parent = os.getppid()
    controller = Controller(Counter(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    while os.getppid() == parent:  # the bench is gone (even by SIGKILL): so is the sink
        time.sleep(1)


@dataclass
class Sink:
    port: int
    process: multiprocessing.Process
    received: object
    unique: object

    @classmethod
    def start(cls) -> Sink:
        from tests.smtp_server import free_port

        context = multiprocessing.get_context("spawn")
        port = free_port()
        received, unique, ready = context.Value("q", 0), context.Value("q", 0), context.Event()
        process = context.Process(
            target=smtp_sink, args=(port, received, unique, ready), daemon=True
        )
        process.start()
        if not ready.wait(30):
            process.kill()
            raise RuntimeError("the SMTP sink did not start")
        return cls(port, process, received, unique)

    def counts(self) -> tuple[int, int]:
        return self.received.value, self.unique.value

    def reset(self) -> None:
        with self.received.get_lock():
            self.received.value = 0
        with self.unique.get_lock():
            self.unique.value = 0

    def stop(self) -> None:
        self.process.kill()
        self.process.join(5)


# --- The LINE fake (a separate process) ---------------------------------------------


def line_fake_serve(port: int, ready) -> None:
    """The LINE fake's process: serve until killed."""
    from outreach.linefake import LineFake

    fake = LineFake(port=port, channel_access_token=LINE_TOKEN, channel_secret=LINE_SECRET)
    ready.set()
    fake.serve_forever()


@dataclass
class FakeProcess:
    url: str
    process: multiprocessing.Process

    @classmethod
    def start(cls) -> FakeProcess:
        from tests.smtp_server import free_port

        context = multiprocessing.get_context("spawn")
        port, ready = free_port(), context.Event()
        process = context.Process(target=line_fake_serve, args=(port, ready), daemon=True)
        process.start()
        if not ready.wait(60):
            process.kill()
            raise RuntimeError("the LINE fake did not start")
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:  # ready is set just before it binds: wait until it answers
            try:
                cls._get(url, "requests")
                return cls(url, process)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @staticmethod
    def _get(url: str, what: str) -> list[dict]:
        import json
        import urllib.request

        with urllib.request.urlopen(f"{url}/__fake__/{what}", timeout=60) as response:
            return json.load(response)[what]

    def statuses(self, endpoint: str) -> dict[int, int]:
        from collections import Counter

        return dict(
            Counter(
                r["status"] for r in self._get(self.url, "requests") if r["endpoint"] == endpoint
            )
        )

    def reset(self) -> None:
        """Forget what the fake recorded (after the bare loop)."""
        import urllib.request

        request = urllib.request.Request(f"{self.url}/__fake__/reset", data=b"{}", method="POST")
        with urllib.request.urlopen(request, timeout=60):
            pass

    def users(self) -> tuple[int, int]:
        """(deliveries, distinct users reached)."""
        deliveries = self._get(self.url, "deliveries")
        return len(deliveries), len({d["userId"] for d in deliveries})

    def stop(self) -> None:
        self.process.kill()
        self.process.join(5)
