"""The production web server (gunicorn, with the repository's
gunicorn.conf.py) in a subprocess, for tests of what a fresh process does.

Like tests/worker.py, it talks to the database pytest-django created, so it
only works for `django_db(transaction=True)` tests.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from tests.smtp_server import free_port
from tests.worker import ROOT

HOST = "127.0.0.1"


class WebServer:
    """`gunicorn config.wsgi` (one worker) on a free loopback port.

    `start()` returns once the server accepts connections; `cpu_seconds()`
    is the CPU time its processes have used so far; `stop()` ends it.
    """

    def __init__(self, env: dict[str, str]) -> None:
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        self.env.pop("DJANGO_SETTINGS_MODULE", None)  # config.wsgi sets config.settings
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        handle, name = tempfile.mkstemp(prefix="gunicorn-", suffix=".log")
        os.close(handle)
        self.log_path = Path(name)

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def start(self, *, timeout: float = 30.0) -> float:
        """Seconds from launch until the server accepts a connection."""
        began = time.monotonic()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "config.wsgi:application",
                    f"--bind={HOST}:{self.port}",
                    "--workers=1",
                ],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        while time.monotonic() < began + timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log}")
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 0.5):
                return time.monotonic() - began
            time.sleep(0.02)
        self.stop()
        raise TimeoutError(f"gunicorn did not accept connections within {timeout}s:\n{self.log}")

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the master and its workers so far."""
        if self.process is None:
            return 0.0
        total = 0.0
        with contextlib.suppress(psutil.NoSuchProcess):
            master = psutil.Process(self.process.pid)
            for member in (master, *master.children(recursive=True)):
                with contextlib.suppress(psutil.NoSuchProcess):
                    times = member.cpu_times()
                    total += times.user + times.system
        return total

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        """SIGTERM the process group (gunicorn's graceful stop), SIGKILL if
        it lingers, and remove the log."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None
        self.log_path.unlink(missing_ok=True)
