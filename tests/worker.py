"""A real django-q2 cluster (`manage.py qcluster`) in a subprocess.

The fault tests run the production worker, not a function call: a process
group of its own (qcluster, its sentinel, pusher, monitor and workers), so
that a test can SIGKILL the whole cluster at once, as a crash or an OOM kill
would, and start a fresh one.

The cluster talks to the database pytest-django created (`test_<name>`),
which only works for `django_db(transaction=True)` tests: the subprocess
sees committed data only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import psutil

ROOT = Path(__file__).resolve().parent.parent
READY_LINE = "running."  # django-q2 logs "Q Cluster <name> running." once started
TAKEN_LINE = " processing "  # a worker logs "<process> processing <task> '<function>'"


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for the database of `settings_dict` (a Django
    connection's, i.e. the test database while a test runs)."""
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or "5432"
    return f"postgres://{auth}{host}:{port}/{quote(settings_dict['NAME'], safe='')}"


class Worker:
    """`manage.py qcluster` with the given environment overrides.

    `start()` returns once the cluster logs that it is running (the time it
    took is `startup_seconds`); `kill()` SIGKILLs the process group and
    waits until every process of it is gone. Output goes to a log file
    (`log_path`), shown by `log_tail()` when a test fails.
    """

    def __init__(self, env: dict[str, str]) -> None:
        # INFO: the cluster's "running." line is how start() knows it is up.
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO", **env}
        self.env.pop("DJANGO_SETTINGS_MODULE", None)  # manage.py sets config.settings
        self.process: subprocess.Popen | None = None
        self.startup_seconds: float | None = None
        handle, name = tempfile.mkstemp(prefix="qcluster-", suffix=".log")
        os.close(handle)
        self.log_path = Path(name)
        self._log = None
        self.starts = 0

    # --- lifecycle --------------------------------------------------------
    def start(self, *, timeout: float = 30.0) -> float:
        if self.running:
            raise RuntimeError("the worker is already running")
        offset = self.log_path.stat().st_size
        self._log = self.log_path.open("ab")
        began = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killpg reaches every child
        )
        self.starts += 1
        deadline = began + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"qcluster exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            with self.log_path.open("rb") as log:
                log.seek(offset)
                if READY_LINE.encode() in log.read():
                    self.startup_seconds = time.monotonic() - began
                    return self.startup_seconds
            time.sleep(0.05)
        self.kill()
        raise TimeoutError(f"qcluster did not start within {timeout}s:\n{self.log_tail()}")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def processes(self) -> list[psutil.Process]:
        """The cluster's processes: qcluster and every descendant."""
        if self.process is None:
            return []
        try:
            parent = psutil.Process(self.process.pid)
            return [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def freeze(self) -> None:
        """SIGSTOP the whole process group: nothing of the cluster moves
        any more, so what it holds (its open connections) can be counted
        as it is at the moment of a kill() that follows."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGSTOP)

    def tcp_connections_to(self, port: int) -> int:
        """How many TCP connections the cluster's processes hold open to
        `port` on this machine (established)."""
        count = 0
        for member in self.processes():
            with contextlib.suppress(psutil.Error):
                count += sum(
                    1
                    for conn in member.net_connections(kind="tcp")
                    if conn.raddr
                    and conn.raddr.port == port
                    and conn.status == psutil.CONN_ESTABLISHED
                )
        return count

    def kill(self, *, timeout: float = 10.0) -> None:
        """SIGKILL the whole process group; return when all of it is dead."""
        if self.process is None:
            return
        members = self.processes()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # pgid == pid (new session)
        self.process.wait(timeout=timeout)
        deadline = time.monotonic() + timeout
        for member in members:
            # Orphaned children are reparented; a zombie is as dead as it gets.
            while time.monotonic() < deadline:
                try:
                    if member.status() == psutil.STATUS_ZOMBIE:
                        break
                except psutil.NoSuchProcess:
                    break
                time.sleep(0.01)
            else:
                raise TimeoutError(f"process {member.pid} of the cluster survived SIGKILL")
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def close(self) -> None:
        """Kill (if running) and remove the log."""
        self.kill()
        self.log_path.unlink(missing_ok=True)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class WorkerClusters:
    """Several qclusters sharing one queue, as on separate worker hosts:
    one environment (a change to `env` applies to every cluster), started,
    SIGKILLed and read together. What tests use of Worker's interface, so
    a test runs on one cluster or on several alike."""

    def __init__(self, env: dict[str, str], *, count: int) -> None:
        self.members = [Worker(env) for _ in range(count)]
        for member in self.members[1:]:
            member.env = self.members[0].env

    @property
    def env(self) -> dict[str, str]:
        return self.members[0].env

    def start(self, *, timeout: float = 30.0) -> float:
        """Start every cluster; the seconds until the last one runs."""
        began = time.monotonic()
        for member in self.members:
            member.start(timeout=timeout)
        return time.monotonic() - began

    @property
    def log_path(self) -> str:
        """The clusters' log files, for a message."""
        return ", ".join(str(member.log_path) for member in self.members)

    def freeze(self) -> None:
        """SIGSTOP every cluster (see Worker.freeze)."""
        for member in self.members:
            member.freeze()

    def tcp_connections_to(self, port: int) -> int:
        """The TCP connections all clusters hold open to `port`."""
        return sum(member.tcp_connections_to(port) for member in self.members)

    def kill(self, *, timeout: float = 10.0) -> None:
        """SIGKILL every cluster at once (a crash of the whole deployment)."""
        for member in self.members:
            if member.process is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(member.process.pid, signal.SIGKILL)
        for member in self.members:
            member.kill(timeout=timeout)

    def close(self) -> None:
        for member in self.members:
            member.close()

    def tasks_taken(self) -> list[int]:
        """How many tasks each cluster's workers have taken up, from its log."""
        return [
            member.log_path.read_text(errors="replace").count(TAKEN_LINE) for member in self.members
        ]

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(
            f"--- cluster {number} ---\n{member.log_tail(lines)}"
            for number, member in enumerate(self.members, 1)
        )
