"""Helpers shared by the benchmarks: Django set-up, gunicorn, timing and tables."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def django_setup() -> None:
    """Configure Django with bench settings against $DATABASE_URL (PostgreSQL)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit(
            "The benchmarks need PostgreSQL. Run them through scripts/with-postgres.sh, e.g.\n"
            "    scripts/with-postgres.sh .venv/bin/python bench/lifecycle.py"
        )
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import django

    django.setup()


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


@dataclass
class Timing:
    """Wall-clock samples of one figure, in seconds."""

    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def best(self) -> float:
        return min(self.samples)


def time_once(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def time_repeated(
    fn: Callable[[], object],
    repeat: int,
    *,
    before: Callable[[], object] | None = None,
) -> tuple[Timing, list[object]]:
    """Run `before` (untimed) then `fn` (timed) `repeat` times."""
    samples, results = [], []
    for _ in range(repeat):
        if before is not None:
            before()
        elapsed, result = time_once(fn)
        samples.append(elapsed)
        results.append(result)
    return Timing(samples), results


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of unsorted values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, round(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table, right-aligned numbers, left-aligned text."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        out = []
        for i, cell in enumerate(row):
            numeric = cell[:1].isdigit() or (cell[:1] in "-+." and cell[1:2].isdigit())
            out.append(cell.rjust(widths[i]) if numeric else cell.ljust(widths[i]))
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class ServerCpu:
    """CPU seconds used by one PostgreSQL server: every process of the
    cluster (backends, parallel workers, WAL writer, checkpointer...) plus,
    through the postmaster's cutime/cstime, the processes that exited (the
    parallel workers of a finished query). On a shared machine wall-clock
    times swing with other load; CPU seconds much less. Linux /proc only:
    `available` is False elsewhere or when the server's processes cannot be
    read."""

    def __init__(self, backend_pid: int) -> None:
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        try:
            self.postmaster = self._stat(backend_pid)[1]
            self.available = self.total() > 0
        except (OSError, IndexError, ValueError):
            self.available = False

    @staticmethod
    def _stat(pid: int) -> list[int]:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            text = handle.read()
        # Fields after "pid (comm) state": ppid, ..., utime, stime, cutime, cstime.
        rest = text[text.rindex(")") + 2 :].split()
        return [0, int(rest[1])] + [int(value) for value in rest[11:15]]

    def total(self) -> float:
        _state, _ppid, utime, stime, cutime, cstime = self._stat(self.postmaster)
        ticks = utime + stime + cutime + cstime
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                fields = self._stat(int(entry))
            except (OSError, IndexError, ValueError):
                continue  # exited meanwhile; counted in the postmaster's cutime
            if fields[1] == self.postmaster:
                ticks += fields[2] + fields[3]
        return ticks / self._tick


class Steal:
    """The share of this virtual machine's CPU time that the hypervisor gave
    to other guests ("steal" in /proc/stat) between start and `share()`.
    On a shared host the same code runs twice as long when steal is high,
    so every timed figure is printed with the steal measured beside it.
    None where /proc/stat has no steal column (not Linux)."""

    def __init__(self) -> None:
        self.start = self._read()

    @staticmethod
    def _read() -> tuple[int, int] | None:
        try:
            with open("/proc/stat", encoding="ascii") as handle:
                fields = [int(value) for value in handle.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        if len(fields) < 8:
            return None
        # user nice system idle iowait irq softirq steal (guest time is in user)
        return fields[7], sum(fields[:8])

    def share(self) -> float | None:
        end = self._read()
        if self.start is None or end is None or end[1] == self.start[1]:
            return None
        return (end[0] - self.start[0]) / (end[1] - self.start[1])

    def text(self) -> str:
        share = self.share()
        return "steal n/a" if share is None else f"steal {share:.0%}"


def process_tree_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by a process and its live
    children: gunicorn's master and workers (Linux /proc)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                text = handle.read()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if int(entry) == root or int(fields[1]) == root:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def sql(statement: str, params=None, *, fetch: bool = False):
    """Run one statement on Django's connection: its rows, or its rowcount."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if fetch else cursor.rowcount


# --- gunicorn ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def gunicorn_start(
    port: int, *, env: dict[str, str], options: Sequence[str] = ()
) -> subprocess.Popen:
    """gunicorn (2 workers, bench settings, DEBUG false) on 127.0.0.1:`port`,
    once it answers /bench/ping/; `env` and `options` add to the defaults."""
    environment = dict(os.environ, DJANGO_SETTINGS_MODULE="bench.settings", DEBUG="false", **env)
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi:application",
        f"--bind={HOST}:{port}",
        "--workers=2",
        "--keep-alive=30",
        "--log-level=warning",
        "--timeout=60",
        *options,
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=environment, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        try:
            connection = http.client.HTTPConnection(HOST, port, timeout=5)
            connection.request("GET", "/bench/ping/")
            if connection.getresponse().status == 200:
                connection.close()
                return process
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer within 30 s")


def gunicorn_stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
