"""Memory and CPU of the worker cluster (django-q) while it sends: RSS and
PSS of its processes, sampled in a thread; waiting until it is idle; CPU
seconds per group of processes (the cluster, PostgreSQL, the peers, the
benchmark itself).
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field

# --- The worker --------------------------------------------------------------------------


def memory(worker, *, pss: bool = True) -> tuple[int, int, int]:
    """(sum of RSS, biggest RSS, sum of PSS) over the cluster's processes.
    RSS counts the pages a forked child shares with its parent once per
    process; PSS splits shared pages among their sharers. PSS makes the
    kernel walk every page of every process (~30 ms for the cluster), so
    `pss=False` reads RSS alone (PSS is then 0)."""
    import psutil

    rss, pss_sizes = [], []
    for process in worker.processes():
        with contextlib.suppress(psutil.Error):
            info = process.memory_full_info() if pss else process.memory_info()
            rss.append(info.rss)
            pss_sizes.append(getattr(info, "pss", 0))
    return sum(rss), max(rss, default=0), sum(pss_sizes)


def process_memory(worker) -> str:
    """Each cluster process's RSS / PSS / USS in MB, biggest RSS first."""
    import psutil

    out = []
    for process in worker.processes():
        with contextlib.suppress(psutil.Error):
            info = process.memory_full_info()
            out.append((info.rss, getattr(info, "pss", 0), getattr(info, "uss", 0)))
    mb = 1024 * 1024
    return ", ".join(f"{r / mb:.0f}/{p / mb:.0f}/{u / mb:.0f}" for r, p, u in sorted(out)[::-1])


def settle(worker, *, quiet: float = 0.05, timeout: float = 60) -> float:
    """Wait until the cluster is idle, as a long-running one is when a
    campaign starts (its workers import the dispatch code and line-bot-sdk
    as they spawn): its processes used under `quiet` s of CPU in 0.5 s.
    Returns the seconds waited."""
    import psutil

    def cpu() -> float:
        total = 0.0
        for process in worker.processes():
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system
        return total

    began = time.monotonic()
    before = cpu()
    while time.monotonic() - began < timeout:
        time.sleep(0.5)
        now = cpu()
        if now - before < quiet:
            break
        before = now
    return time.monotonic() - began


@dataclass
class RssSampler:
    """Every 0.2 s: the RSS of the cluster's processes, and every second
    their PSS too (see memory())."""

    worker: object
    peak_total: int = 0
    peak_single: int = 0
    peak_pss: int = 0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        tick = 0
        while not self._stop.wait(0.2):
            total, single, pss = memory(self.worker, pss=tick % 5 == 0)
            tick += 1
            if total:
                self.samples += 1
                self.peak_total = max(self.peak_total, total)
                self.peak_single = max(self.peak_single, single)
                self.peak_pss = max(self.peak_pss, pss)


def cpu_times(worker, others: dict[str, int]) -> dict[tuple[str, int], float]:
    """CPU seconds (user + system) so far of each process that takes part,
    keyed by (group, pid): the cluster's; PostgreSQL's (its server
    processes and the backends of the workers and of this script: the
    launch and the progress polls); this script; `others` (name: pid)."""
    import psutil

    processes = [("worker", p) for p in worker.processes()]
    processes += [("bench", psutil.Process())]
    for name, pid in others.items():
        with contextlib.suppress(psutil.Error):  # it may have ended
            processes.append((name, psutil.Process(pid)))
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] == "postgres":
            processes.append(("postgres", process))
    out = {}
    for group, process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            out[(group, process.pid)] = times.user + times.system
    return out


def cpu_used(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds used between two cpu_times() by group (processes that
    ended meanwhile are not counted)."""
    used: dict[str, float] = {}
    for (group, pid), seconds in after.items():
        used[group] = used.get(group, 0.0) + seconds - before.get((group, pid), 0.0)
    return used
