"""Benchmark: a 100,000-recipient campaign through the REAL worker.

Builds 100,000 customers with an email address, a LINE identity and an
opt-in on both channels, set-based in PostgreSQL (INSERT ... SELECT FROM
generate_series, no ORM per row), then measures:

  bare loop   one smtplib connection sending the same 100,000 messages
              (the worker's own output, rendered beforehand) to the sink
  email       campaign_launch, then `manage.py qcluster` (Q_WORKERS=2) until
              every row is sent: messages/s from launch to the last sent_at,
              and the cluster's peak memory (psutil, every 0.2 s: the
              biggest single process's RSS, and the PSS of the process tree,
              shared pages split among their sharers)
  LINE bare   line-bot-sdk on one connection posting the same 200
              multicasts of 500 user ids to the same fake, no database
              (texts rendered and ids read beforehand)
  LINE        the same 100,000 as LINE followers, one identical message
              (multicasts of 500) to the LINE fake: time from launch to the
              last sent_at, against the LINE bare loop, requests made
  LINE floor  what PostgreSQL alone costs for the campaign's writes, on a
              raw cursor after the campaign (see campaign_data.line_floor):
              the snapshot as a bare INSERT ... SELECT, 200 request INSERTs,
              200 outcome UPDATEs of 500 rows, against the same bare loop

The SMTP sink is aiosmtpd in a separate process (it counts messages and
Message-IDs, nothing else), so it does not compete for this process's GIL.
The LINE fake too runs in a process of its own (in a thread of this one it
shared the GIL with the memory sampler and the progress poll); its record
is read over its control API afterwards.
It prints numbers; it is not a pass/fail test. Targets: email >= 80% of the
bare loop's rate; LINE within 2x the LINE bare loop's time; worker peak RSS
< 300 MB. On this shared machine an absolute time is no evidence: each
figure is printed against its bare loop measured in the same run.

Run (the figures in bench/README.md come from exactly this command):

    scripts/with-postgres.sh .venv/bin/python bench/campaign_send.py

`--customers 20000` gives a quick run; `--only line` (or `email`) runs one
phase (LINE alone needs no SMTP sink and no bare loop); `--profile 2000`
also runs one in-process send_dispatch of 2,000 mails under cProfile and
prints where the time goes. The details list each cluster process's RSS,
PSS and USS at the end, and the CPU seconds each group of processes (the
cluster, PostgreSQL, the sink, the fake, this script) used per phase.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.campaign_data import (
    bare_loop,
    build,
    campaign,
    first_ids,
    line_bare_input,
    line_bare_loop,
    line_floor,
    worker_output,
)
from bench.campaign_peers import LINE_SECRET, LINE_TOKEN, FakeProcess, Sink
from bench.common import Steal, django_setup, log, migrate, table, time_once
from bench.worker_stats import RssSampler, cpu_times, cpu_used, memory, process_memory, settle

STALL_SECONDS = 180  # a phase with no row sent for this long has failed
COUNT_EVERY_SECONDS = 5


@dataclass
class Run:
    recipients: int
    seconds: float
    launch_seconds: float
    rss: RssSampler
    first_sent_seconds: float  # from the launch call to the first row's sent_at
    cpu: dict[str, float]  # CPU seconds by process group, launch to done
    steal: str  # the CPU time the host gave other guests meanwhile (Steal)


def run_campaign(draft, worker, *, timeout: float, others: dict[str, int]) -> Run:
    """Launch, then poll until no row is queued or sending; the time is from
    the launch call to the last row's sent_at. `others`: processes whose
    CPU time is reported beside the cluster's and PostgreSQL's."""
    from django.db.models import Max, Min

    from outreach import services
    from outreach.ledger import PENDING
    from outreach.models import Delivery

    cpu_before = cpu_times(worker, others)
    steal = Steal()
    with RssSampler(worker) as rss:
        wall = time.time()
        start = time.perf_counter()
        launched = services.campaign_launch(campaign=draft)
        launch_seconds = time.perf_counter() - start
        rows = Delivery.objects.filter(send=launched.send)
        pending_rows = rows.filter(status__in=PENDING)
        deadline = start + timeout
        pending, progress_at, counted_at = None, time.perf_counter(), 0.0
        # Polling is cheap (is any row pending?): counting 100,000 pending
        # rows every half second took a few percent of the server's CPU from
        # the workers being measured. The count, for the stall check, is
        # taken every few seconds.
        while pending_rows.exists():
            now = time.perf_counter()
            if now - counted_at >= COUNT_EVERY_SECONDS:
                left, counted_at = pending_rows.count(), now
                if left != pending:
                    pending, progress_at = left, now
            if now > deadline:
                raise TimeoutError(f"not done after {timeout}s:\n{worker.log_tail()}")
            if not worker.running or now - progress_at > STALL_SECONDS:
                raise RuntimeError(
                    f"no progress for {now - progress_at:.0f}s ({left:,} rows pending);"
                    f" cluster processes: {len(worker.processes())}\n{worker.log_tail()}"
                )
            time.sleep(0.25)
    steal_text = steal.text()
    cpu = cpu_used(cpu_before, cpu_times(worker, others))
    sent = rows.filter(status="sent").count()
    if sent != rows.count():
        raise RuntimeError(f"{rows.count() - sent} rows not sent:\n{worker.log_tail()}")
    times = rows.aggregate(first=Min("sent_at"), last=Max("sent_at"))
    first, last = times["first"].timestamp(), times["last"].timestamp()
    return Run(sent, last - wall, launch_seconds, rss, first - wall, cpu, steal_text)


def profile_dispatch(count: int, port: int) -> str:
    """One in-process send_dispatch of `count` mails under cProfile."""
    from django.conf import settings

    from crm.models import Customer
    from outreach import services
    from outreach.dispatch import send_dispatch
    from outreach.models import Send

    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_RATE = 10**6
    settings.QUIET_HOURS_START = settings.QUIET_HOURS_END = 0
    template = Send.objects.filter(channel="email").exclude(template=None).first().template
    send = services.send_create(
        kind="campaign", channel="email", purpose="marketing", template=template
    )
    from django.utils import timezone

    audience = Customer.objects.filter(pk__in=first_ids(count))
    services.deliveries_snapshot(send=send, audience=audience, now=timezone.now())
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    report = send_dispatch(send_id=send.pk, time_budget=3600)
    profiler.disable()
    elapsed = time.perf_counter() - start
    out = io.StringIO()
    out.write(f"{report.sent} mails in {elapsed:.2f}s in-process ({report.sent / elapsed:.0f}/s)\n")
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
    return out.getvalue()


# --- Main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=3600, help="per phase, seconds")
    parser.add_argument("--profile", type=int, default=0, help="also profile N mails in-process")
    parser.add_argument(
        "--only", choices=("email", "line"), help="run one phase (email: with the bare loop)"
    )
    args = parser.parse_args()
    n = args.customers
    with_email, with_line = args.only in (None, "email"), args.only in (None, "line")
    # SIGTERM (timeout, kill) unwinds like Ctrl-C, so the finally below kills
    # the cluster and the sink.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    django_setup()
    from django.db import connection

    from tests.worker import Worker, database_url

    migrate()
    log(f"building {n:,} customers (email + LINE, opted in)")
    elapsed, _ = time_once(lambda: build(n))
    log(f"  built in {elapsed:.1f}s")
    email_draft, line_draft = campaign("email"), campaign("line")

    load_before = os.getloadavg()
    sink = Sink.start() if with_email else None
    line = FakeProcess.start()
    worker = Worker(
        {
            "DATABASE_URL": database_url(connection.settings_dict),
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(sink.port if sink else 25),
            "EMAIL_RATE": "1000000",
            "LINE_API_HOST": line.url,
            "LINE_CHANNEL_ACCESS_TOKEN": LINE_TOKEN,
            "LINE_CHANNEL_SECRET": LINE_SECRET,
            "QUIET_HOURS_START": "0",
            "QUIET_HOURS_END": "0",
            "Q_WORKERS": "2",
        }
    )
    email = line_run = bare = bare_counts = email_counts = bare_steal = None
    line_bare = line_bare_requests = line_bare_steal = floor = None
    try:
        if with_email:
            log("rendering the worker's output for the bare loop")
            messages = worker_output(email_draft, n)
            size = sum(len(data) for _to, data in messages) / len(messages)
            log(f"bare smtplib loop: {n:,} messages of {size:,.0f} bytes on one connection")
            bare_steal = Steal()
            bare = bare_loop(messages, sink.port)
            bare_steal = bare_steal.text()
            bare_counts = sink.counts()
            del messages
            sink.reset()

        others = {"LINE fake": line.process.pid}
        if sink:
            others["SMTP sink"] = sink.process.pid
        startup = worker.start(timeout=120)
        settled = settle(worker)
        idle = memory(worker)
        log(f"qcluster started in {startup:.1f}s")
        if with_email:
            log("email campaign")
            email = run_campaign(email_draft, worker, timeout=args.timeout, others=others)
            email_counts = sink.counts()
        if with_line:
            user_ids, texts = line_bare_input(line_draft)
            log(f"bare line-bot-sdk loop: {len(user_ids):,} ids in multicasts of 500")
            line_bare_steal = Steal()
            line_bare, line_bare_requests = line_bare_loop(line.url, user_ids, texts)
            line_bare_steal = line_bare_steal.text()
            line_bare_users = line.users()
            line.reset()
            del user_ids
            log("LINE campaign")
            line_run = run_campaign(line_draft, worker, timeout=args.timeout, others=others)
            statuses = line.statuses("multicast")
            line_deliveries, line_users = line.users()
        per_process = process_memory(worker)
        worker.kill()
        load_after = os.getloadavg()
        if with_line:
            log("floor: the LINE campaign's writes on a raw cursor, no worker")
            floor = line_floor(line_draft)

        profile = profile_dispatch(args.profile, sink.port) if args.profile and sink else ""
    finally:
        worker.close()
        line.stop()
        if sink:
            sink.stop()

    mb = 1024 * 1024
    runs = [r.rss for r in (email, line_run) if r is not None]
    peak_total = max(r.peak_total for r in runs) / mb
    peak_single = max(r.peak_single for r in runs) / mb
    peak_pss = max(r.peak_pss for r in runs) / mb
    rows = []
    if email is not None:
        bare_rate = n / bare
        email_rate = email.recipients / email.seconds
        rows += [
            ["bare smtplib loop, 1 connection", f"{bare_rate:,.0f} msg/s", "", f"{bare:.1f}s"],
            [
                "email campaign, worker (2 procs)",
                f"{email_rate:,.0f} msg/s",
                ">= 80% of bare",
                f"{email_rate / bare_rate:.0%} of bare ({email.seconds:.1f}s)",
            ],
        ]
    if line_run is not None:
        after_launch = line_run.seconds - line_run.launch_seconds
        rows += [
            [
                f"bare line-bot-sdk loop, {line_bare_requests} multicasts",
                f"{line_bare:.1f}s",
                "",
                "1 connection",
            ],
            [
                "floor: PostgreSQL alone, same writes",
                f"{floor.total:.1f}s",
                "",
                f"{floor.total / line_bare:.2f}x bare",
            ],
            [
                f"LINE campaign, {n:,} (multicast)",
                f"{line_run.seconds:.1f}s",
                "<= 2x bare",
                f"{line_run.seconds / line_bare:.2f}x bare,"
                f" {line_run.seconds / floor.total:.2f}x floor",
            ],
            [
                "  of which after campaign_launch",
                f"{after_launch:.1f}s",
                "",
                f"{after_launch / line_bare:.2f}x bare",
            ],
        ]
    # The target is a worker's RSS. The whole cluster (six django-q2
    # processes) is held to it too, by PSS: shared pages split among their
    # sharers. The plain sum of RSS counts the ~65 MB every forked process
    # shares (Django, psycopg, the apps) six times: shown, no target.
    rows += [
        [
            "worker peak RSS, biggest process",
            f"{peak_single:.0f} MB",
            "< 300 MB",
            f"{peak_single / 300:.0%} of target",
        ],
        [
            "worker peak PSS, whole cluster",
            f"{peak_pss:.0f} MB",
            "< 300 MB",
            f"{peak_pss / 300:.0%} of target",
        ],
        ["  (RSS summed over the cluster's 6)", f"{peak_total:.0f} MB", "", "shared pages 6x"],
    ]
    print(f"\ncampaign send, {n:,} recipients (PostgreSQL {connection.pg_version // 10000})")
    print(table(["figure", "value", "target", "ratio"], rows))
    details = [
        f"load average (1/5/15 min) before {fmt_load(load_before)},"
        f" after {fmt_load(load_after)}, on {os.cpu_count()} CPUs",
        f"qcluster start-up {startup:.1f}s, idle {settled:.1f}s later;"
        f" idle cluster: RSS sum {idle[0] / mb:.0f} MB,"
        f" biggest {idle[1] / mb:.0f} MB, PSS sum {idle[2] / mb:.0f} MB",
        "cluster processes at the end (RSS / PSS / USS MB): " + per_process,
    ]
    if email is not None:
        details += [
            f"campaign_launch (snapshot of {n:,} rows), email: {email.launch_seconds:.1f}s;"
            f" first message sent {email.first_sent_seconds:.1f}s after the launch call",
            f"email: CPU seconds from launch to done ({email.steal} of the host's): "
            + fmt_cpu(email.cpu),
            f"bare smtplib loop: {bare_steal} of the host's CPU time meanwhile",
            f"sink: bare loop {bare_counts[0]:,} received / {bare_counts[1]:,} distinct;"
            f" worker {email_counts[0]:,} received / {email_counts[1]:,} distinct Message-IDs",
            f"email: {email.rss.samples} memory samples; peak RSS"
            f" {email.rss.peak_total / mb:.0f} MB (biggest {email.rss.peak_single / mb:.0f},"
            f" PSS {email.rss.peak_pss / mb:.0f})",
        ]
    if line_run is not None:
        details += [
            f"campaign_launch (snapshot of {n:,} rows), LINE: {line_run.launch_seconds:.1f}s;"
            f" first message sent {line_run.first_sent_seconds:.1f}s after the launch call",
            f"LINE: CPU seconds from launch to done ({line_run.steal} of the host's): "
            + fmt_cpu(line_run.cpu),
            f"bare line-bot-sdk loop: {line_bare_steal} of the host's CPU time meanwhile;"
            f" the fake recorded {line_bare_users[0]:,} deliveries to {line_bare_users[1]:,}"
            " users (then reset)",
            f"floor ({floor.steal} of the host's): snapshot INSERT ... SELECT"
            f" {floor.snapshot:.2f}s + {floor.batches} request INSERTs {floor.requests:.2f}s"
            f" + {floor.batches} outcome UPDATEs {floor.outcomes:.2f}s"
            f" = {floor.total:.2f}s; PostgreSQL CPU "
            + (f"{floor.server_cpu:.1f}s" if floor.server_cpu is not None else "unreadable")
            + f"; 2x the bare loop is {2 * line_bare:.2f}s",
            f"LINE: {sum(statuses.values())} multicast requests {dict(statuses)},"
            f" {line_users:,} users reached, {line_deliveries:,} deliveries",
            f"LINE: {line_run.rss.samples} memory samples; peak RSS"
            f" {line_run.rss.peak_total / mb:.0f} MB (biggest {line_run.rss.peak_single / mb:.0f},"
            f" PSS {line_run.rss.peak_pss / mb:.0f})",
        ]
    print("\ndetails:\n  " + "\n  ".join(details))
    if profile:
        print("\nin-process send_dispatch under cProfile:\n" + profile)


def fmt_cpu(cpu: dict[str, float]) -> str:
    ranked = sorted(cpu.items(), key=lambda item: -item[1])
    parts = [f"{group} {seconds:.1f}" for group, seconds in ranked]
    return ", ".join(parts) + f" (sum {sum(cpu.values()):.1f})"


def fmt_load(load: tuple[float, float, float]) -> str:
    return "/".join(f"{x:.1f}" for x in load)


if __name__ == "__main__":
    main()
