"""Benchmark: the agent's reads at scale: the inquiry API list, the admin
inbox changelist and the SLA watch, each next to its bare SQL.

Builds 1,000,000 inquiries (50,000 open) for 200,000 customers and 20
agents (bench/inbox_data.py), then measures in the same run:

  api        GET /api/v1/inquiries/ with an API key (all channels),
             unfiltered and ?status=open&sla_state=at_risk
  inbox      GET /admin/tickets/inquiry/ as a logged-in agent: the default
             view (open, next deadline first), mine, at risk, one channel
             (the agent has opened half of the open inquiries: unread
             marks and 「未読 N件」 read their read states); the news poll
             the inbox's script makes (GET inquiry/inbox-news/?since=...)
  sla watch  tickets.services.sla_watch(now=...) in process, its three
             clocks (first reply, next reply, resolution: a third of the
             answered open inquiries owe a next reply, the open ones have a
             72-hour resolution target, paused while waiting): a run where
             several hundred clocks cross the at-risk / breach thresholds,
             and a run where nothing changes

The search box is measured on the same data by bench/inbox_search.py.

HTTP figures (bench/inbox_measure.py) come from real HTTP: gunicorn (2 gthread workers, DEBUG false,
bench settings) on 127.0.0.1, one keep-alive client, requests one at a
time after a warm-up; the server runs the bench settings module (production
settings, DEBUG false, Django's cached template loader), which the output
names. Each page's bare SQL is the page's own row query (captured from one
in-process request through django.test.Client) executed with a raw cursor
and fully fetched, in this process, against the same server; "all SQL" is
every query of the page replayed the same way, one after the other. The SLA
watch's bare SQL is its select of the due rows of each clock, and for a
crossing run the UPDATE of those rows (rolled back): no events,
notifications or task.
"app CPU" and "db CPU" are the CPU time gunicorn's processes and
PostgreSQL's used per request while a page was measured: on a shared
machine they move far less than wall-clock times.

It prints median and p95 in milliseconds, the targets and pass/miss, the
1-minute load average after each figure, the SQL queries of each page with
their own times, and EXPLAIN ANALYZE of every page's slowest query. It
prints numbers; it is not a pass/fail test.

Run (the figures in bench/README.md come from exactly this command):

    scripts/with-postgres.sh .venv/bin/python bench/inbox.py

`--inquiries 100000 --open 5000 --customers 20000 --repeat 20` gives a quick
run. Only 127.0.0.1 is ever
contacted; gunicorn is always stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Before Django reads its settings: the bench agent logs in with a password.
os.environ["ADMIN_REQUIRE_OTP"] = "false"

from bench.common import django_setup, migrate, percentile, sql, time_once
from bench.inbox_data import OPEN_STATUSES, build, clocks_build
from bench.inbox_measure import TARGETS_MS, bench_arguments, measure_pages, ms, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    bench_arguments(parser)
    parser.add_argument(
        "--only",
        choices=["all", "pages", "watch"],
        default="all",
        help="on the same data, pages: the API, inbox and poll pages (and the watch, as"
        " all does); watch: the SLA watch alone",
    )
    args = parser.parse_args()
    args.open = min(args.open, args.inquiries)

    django_setup()
    migrate()
    from django.db.models import Q
    from django.utils import timezone

    from tickets.models import Inquiry, InquiryEvent, StaffNotification
    from tickets.services import sla_watch

    load_before = os.getloadavg()
    data = build(inquiries=args.inquiries, open_count=args.open, customers=args.customers)
    api_headers = {"Authorization": f"Bearer {data['api_secret']}"}
    cases = [
        ("api", "api list", "/api/v1/inquiries/", api_headers),
        (
            "api",
            "api list ?status=open&sla_state=at_risk",
            "/api/v1/inquiries/?status=open&sla_state=at_risk",
            api_headers,
        ),
        ("inbox", "inbox default (open)", "/admin/tickets/inquiry/", {}),
        ("inbox", "inbox ?assignee=mine", "/admin/tickets/inquiry/?assignee=mine", {}),
        ("inbox", "inbox ?sla=at_risk", "/admin/tickets/inquiry/?sla=at_risk", {}),
        (
            "inbox",
            "inbox ?channel__exact=email",
            "/admin/tickets/inquiry/?channel__exact=email",
            {},
        ),
        (
            "inbox",
            "inbox news poll",
            "/admin/tickets/inquiry/inbox-news/?"
            + urlencode({"since": (timezone.now() - timedelta(hours=1)).isoformat()}),
            {},
        ),
    ]

    if args.only == "watch":
        cases = []

    rows, details = measure_pages(cases, agent=data["agent"], args=args)
    # The SLA watch, in process: `now` one hour ahead crosses the thresholds
    # of the clocks due in the next hour (several hundred at this volume).
    from tickets.services.sla import CLOCKS

    clocks_build()
    now = timezone.now()
    later = now + timedelta(hours=1)
    statuses = ", ".join(f"'{status}'" for status in OPEN_STATUSES)
    # Bare: each clock's due rows (the watch's own condition, on its partial
    # indexes), and for a crossing run the UPDATE of those rows alone, in a
    # transaction rolled back; no events, notifications or task.
    bare_statements = [
        (
            f"SELECT id FROM tickets_inquiry WHERE {clock.stopped} IS NULL"
            f" AND status IN ({statuses}) AND (({clock.state} IN ('on_track', 'at_risk')"
            f" AND {clock.due} <= %(at)s) OR ({clock.state} = 'on_track'"
            f" AND {clock.at_risk} <= %(at)s)) LIMIT 1000",
            f"UPDATE tickets_inquiry SET updated_at = %(at)s, {clock.state} = CASE WHEN"
            f" {clock.due} <= %(at)s THEN 'breached' ELSE 'at_risk' END WHERE id = ANY(%(ids)s)",
        )
        for clock in CLOCKS.values()
    ]

    def bare_watch(at) -> int:
        from django.db import transaction

        moved = 0
        with transaction.atomic():
            for bare_select, bare_update in bare_statements:
                ids = [row[0] for row in sql(bare_select, {"at": at}, fetch=True)]
                if ids:
                    sql(bare_update, {"at": at, "ids": ids})
                moved += len(ids)
            transaction.set_rollback(True)
        return moved

    # Each clock's rows that a run moves, with their state before it.
    before = {}
    for clock in CLOCKS.values():
        running = Inquiry.objects.filter(
            **{f"{clock.stopped}__isnull": True}, status__in=OPEN_STATUSES
        )
        before[clock.state] = list(
            running.filter(
                Q(**{f"{clock.state}__in": ["on_track", "at_risk"], f"{clock.due}__lte": later})
                | Q(**{clock.state: "on_track", f"{clock.at_risk}__lte": later})
            ).values_list("id", clock.state)
        )
    changing = sorted({pk for rows in before.values() for pk, _state in rows})

    def reset() -> None:
        """Put back (untimed) what a run moved, its events and notifications."""
        for column, rows in before.items():
            for state in ("on_track", "at_risk"):
                ids = [pk for pk, old in rows if old == state]
                Inquiry.objects.filter(pk__in=ids).update(**{column: state})
        InquiryEvent.objects.filter(
            inquiry_id__in=changing, kind__in=[clock.event for clock in CLOCKS.values()]
        ).delete()
        StaffNotification.objects.filter(inquiry_id__in=changing).delete()

    sla_runs, moved = [], {}
    for _ in range(max(20, args.repeat // 2)):
        reset()
        elapsed, moved = time_once(lambda: sla_watch(now=later))
        sla_runs.append(elapsed)
    reset()
    bare_changing = [time_once(lambda: bare_watch(later))[0] for _ in range(args.repeat)]
    sla_watch(now=later)
    idle_runs = [time_once(lambda: sla_watch(now=later))[0] for _ in range(args.repeat)]
    bare_idle = [time_once(lambda: bare_watch(later))[0] for _ in range(args.repeat)]
    crossing = sum(len(rows) for rows in before.values())
    for name, samples, bare, note in (
        (
            f"sla watch, {moved.get('at_risk', 0)} at risk + {moved.get('breached', 0)} breached",
            sla_runs,
            bare_changing,
            "bare: 3 selects + UPDATEs",
        ),
        ("sla watch, nothing changes", idle_runs, bare_idle, "bare: its 3 selects"),
    ):
        p95 = percentile(samples, 95)
        rows.append(
            [
                name,
                crossing if "nothing" not in name else 0,
                note,
                ms(percentile(samples, 50)),
                ms(p95),
                ms(percentile(bare, 50)),
                ms(percentile(bare, 95)),
                "",
                "",
                "",
                f"< {TARGETS_MS['sla']:.0f}",
                "pass" if p95 * 1000 < TARGETS_MS["sla"] else "MISS",
                f"{os.getloadavg()[0]:.1f}",
            ]
        )

    report(rows, details, args=args, load_before=load_before)


if __name__ == "__main__":
    main()
