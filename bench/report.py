"""Benchmark: the monthly trouble analysis and the admin home at scale, each
next to the bare aggregate SQL of the same figures.

Builds 1,200,000 inquiries over the 12 months up to the last complete one
(100,000 a month, Asia/Tokyo), with their messages (the customer's first
message; the first reply of every answered one) and events (received; the
triage stage), 200,000 customers with an order each, 20 agents, one
manager, crisis rows and countermeasures, in PostgreSQL with server-side
INSERT ... SELECT FROM generate_series (no ORM per row); VACUUM ANALYZE;
then measures, in the same run:

  report       GET /admin/reports/countermeasure/monthly/ as a manager: the
               default month (the last complete one), and one channel and
               category
  home         GET /admin/ as the same manager

HTTP figures are real HTTP: gunicorn (2 gthread workers, bench settings:
production settings, DEBUG false) on 127.0.0.1, one keep-alive client,
requests one at a time after a warm-up; median and p95. "bare" is the
page's aggregate SQL alone (every captured query that reads inquiries,
suspensions, incidents or countermeasures), "all SQL" every query of the
page; both replayed on a raw cursor, fully fetched, in this process. It
prints the SQL of each page with its time and EXPLAIN ANALYZE of the
slowest; it is not a pass/fail test.

Run (the figures in bench/README.md come from this command):

    scripts/with-postgres.sh .venv/bin/python bench/report.py

`--months 12 --per-month 10000 --repeat 10` gives a quick run. Only
127.0.0.1 is contacted; gunicorn is always stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Before Django reads its settings: the bench manager logs in with a password.
os.environ["ADMIN_REQUIRE_OTP"] = "false"

from bench.common import (
    ServerCpu,
    django_setup,
    free_port,
    gunicorn_start,
    gunicorn_stop,
    log,
    migrate,
    percentile,
    process_tree_cpu,
    sql,
    table,
    time_once,
)
from bench.inbox import (
    HttpClient,
    explain,
    insert_select,
    ms,
    page_queries,
    server_settings,
    time_sql,
)

AGENTS = 20
BENCH_MANAGER = "bench-manager"
BENCH_PASSWORD = "bench-manager-pw-2612"
TARGETS_MS = {"report": 1000.0, "home": 300.0}
# The tables whose reads are the figures (the rest: session, user, permissions).
FIGURE_TABLES = ("tickets_inquiry", "crisis_", "reports_countermeasure")


def build(*, months: int, per_month: int, customers: int) -> dict:
    """Customers and their orders, agents, a manager, the inquiries of
    `months` months up to the last complete one with their messages and
    events, crisis rows and countermeasures."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from core.roles import AGENT, MANAGER
    from crisis.models import Incident, Suspension
    from reports.models import Countermeasure
    from reports.selectors.figures import month_add, month_default, month_range
    from tickets.models import Category, SlaPolicy

    started = time.perf_counter()
    user_model = get_user_model()
    manager = user_model.objects.create_user(
        BENCH_MANAGER, password=BENCH_PASSWORD, is_staff=True, last_name="店長"
    )
    manager.groups.add(Group.objects.get(name=MANAGER))
    agents = [
        user_model.objects.create_user(f"agent{n:02d}", is_staff=True, last_name=f"担当{n:02d}")
        for n in range(1, AGENTS + 1)
    ]
    for agent in agents:
        agent.groups.add(Group.objects.get(name=AGENT))
    agent_ids = [agent.pk for agent in agents]
    category_ids = list(Category.objects.values_list("pk", flat=True))
    default_policy = SlaPolicy.objects.get(channel="", priority="", is_active=True)
    yahoo_policy = SlaPolicy.objects.filter(channel="yahoo", is_active=True).first()

    elapsed, _ = time_once(
        lambda: insert_select(
            "crm_customer",
            f"generate_series(1, {customers}) g",
            {
                "family_name": "(ARRAY['佐藤','鈴木','高橋','田中'])[1 + g % 4]",
                "given_name": "'花子' || g",
                "family_name_kana": "(ARRAY['サトウ','スズキ','タカハシ','タナカ'])[1 + g % 4]",
                "given_name_kana": "'ハナコ'",
                "email": "'c' || g || '@example.jp'",
                "email_normalized": "'c' || g || '@example.jp'",
                "created_at": "now() - (g % 1000) * interval '1 day'",
                "updated_at": "now()",
            },
        )
    )
    first_customer = sql("SELECT min(id) FROM crm_customer", fetch=True)[0][0]
    insert_select(
        "crm_order",
        "crm_customer c",
        {
            "channel": "'rakuten'",
            "order_number": "'R-' || c.id",
            "customer_id": "c.id",
            "status": "'delivered'",
            "ordered_at": "now() - interval '400 days'",
            "total": "3000",
            "created_at": "now()",
            "updated_at": "now()",
        },
    )
    first_order = sql("SELECT min(id) FROM crm_order", fetch=True)[0][0]
    log(f"customers and orders: {customers:,} each in {elapsed:.1f} s")

    last = month_default()
    first = month_add(last, 1 - months)
    first_start, _end = month_range(first)
    total = months * per_month
    # Month index mi and position within it: exactly per_month a month,
    # spread evenly over the month's length (Asia/Tokyo).
    month_start = (
        f"((TIMESTAMP '{first:%Y-%m-%d}' + mi * interval '1 month') AT TIME ZONE 'Asia/Tokyo')"
    )
    month_next = (
        f"((TIMESTAMP '{first:%Y-%m-%d}' + (mi + 1) * interval '1 month')"
        " AT TIME ZONE 'Asia/Tokyo')"
    )
    step = f"(({month_next} - {month_start}) / {per_month})"
    created = f"{month_start} + (g - 1 - mi * {per_month}) * {step}"
    channel = (
        "CASE WHEN k % 100 < 30 THEN 'email' WHEN k % 100 < 50 THEN 'rakuten'"
        " WHEN k % 100 < 65 THEN 'amazon' WHEN k % 100 < 75 THEN 'yahoo'"
        " WHEN k % 100 < 85 THEN 'own_site' WHEN k % 100 < 95 THEN 'line' ELSE 'phone' END"
    )
    # The last month: 5% still open (half of those unanswered); before it all
    # resolved (10%) or closed.
    status = (
        f"CASE WHEN mi = {months - 1} AND h % 20 = 0 THEN"
        " (CASE WHEN h % 40 = 0 THEN 'new' ELSE 'open' END)"
        " WHEN h % 10 = 0 THEN 'resolved' ELSE 'closed' END"
    )
    inner = (
        f"SELECT g, h, k, m, {channel} AS ch, {status} AS s, {created} AS c FROM ("
        f" SELECT g, (g - 1) / {per_month} AS mi, (g * 2654435761) % 1000003 AS h,"
        " (g * 40503) % 1000033 AS k, (g * 69069) % 999983 AS m"
        f" FROM generate_series(1::bigint, {total}) g) a"
    )
    categories = "(ARRAY[" + ",".join(map(str, category_ids)) + "]::bigint[])"
    assignees = "(ARRAY[" + ",".join(map(str, agent_ids)) + "]::bigint[])"
    yahoo = yahoo_policy.pk if yahoo_policy else default_policy.pk
    triaged = "(s <> 'new' AND m % 5 <> 0)"
    triage_minutes = "(5 + h % 60)"
    replied = "(s <> 'new')"
    reply_minutes = "(10 + (k / 7) % 2000)"
    resolution_minutes = "(60 + (m / 3) % 5000)"
    due_minutes = "CASE WHEN ch = 'yahoo' THEN 720 ELSE 1440 END"
    elapsed, _ = time_once(
        lambda: insert_select(
            "tickets_inquiry",
            f"({inner}) x",
            {
                "reference": "'Q-B-' || g",
                "customer_id": f"{first_customer} + (h * 7919) % {customers}",
                "order_id": f"CASE WHEN k % 2 = 0 THEN {first_order} + (h * 7919) % {customers}"
                " END",
                "channel": "ch",
                "subject": "'お問い合わせ ' || g",
                "category_id": f"CASE WHEN m % 5 = 0 THEN NULL ELSE {categories}"
                f"[1 + (m / 5) % {len(category_ids)}] END",
                "priority": "'normal'",
                "status": "s",
                "assignee_id": f"CASE WHEN s = 'new' THEN NULL ELSE {assignees}"
                f"[1 + m % {len(agent_ids)}] END",
                "sla_policy_id": f"CASE WHEN ch = 'yahoo' THEN {yahoo}"
                f" ELSE {default_policy.pk} END",
                "first_reply_due_at": f"c + ({due_minutes}) * interval '1 minute'",
                "at_risk_at": f"c + ({due_minutes} - 240) * interval '1 minute'",
                "first_replied_at": f"CASE WHEN {replied} THEN c + {reply_minutes}"
                " * interval '1 minute' END",
                "first_reply_minutes": f"CASE WHEN {replied} THEN {reply_minutes} END",
                "sla_state": f"CASE WHEN NOT {replied} THEN 'on_track'"
                f" WHEN {reply_minutes} > {due_minutes} THEN 'breached' ELSE 'met' END",
                "triaged_at": f"CASE WHEN {triaged} THEN c + {triage_minutes}"
                " * interval '1 minute' END",
                "triage_minutes": f"CASE WHEN {triaged} THEN {triage_minutes} END",
                "resolved_at": f"CASE WHEN s IN ('resolved', 'closed') THEN c"
                f" + {resolution_minutes} * interval '1 minute' END",
                "resolution_minutes": f"CASE WHEN s IN ('resolved', 'closed')"
                f" THEN {resolution_minutes} END",
                "closed_at": f"CASE WHEN s = 'closed' THEN c + ({resolution_minutes} + 1440)"
                " * interval '1 minute' END",
                "last_inbound_at": "c",
                "created_at": "c",
                "updated_at": "c + interval '1 hour'",
            },
        )
    )
    log(f"inquiries: {total:,} in {elapsed:.1f} s")
    elapsed, _ = time_once(
        lambda: (
            insert_select(
                "tickets_inquirymessage",
                "tickets_inquiry i",
                {
                    "inquiry_id": "i.id",
                    "kind": "'inbound'",
                    "channel": "i.channel",
                    "subject": "i.subject",
                    "body_text": "'注文した商品がまだ届きません。'",
                    "visible_text": "'注文した商品がまだ届きません。'",
                    "created_at": "i.created_at",
                },
            ),
            insert_select(
                "tickets_inquirymessage",
                "tickets_inquiry i WHERE i.first_replied_at IS NOT NULL",
                {
                    "inquiry_id": "i.id",
                    "kind": "'outbound'",
                    "channel": "'email'",
                    "author_id": "i.assignee_id",
                    "subject": "'Re: ' || i.subject",
                    "body_text": "'お問い合わせありがとうございます。'",
                    "outbound_state": "'sent'",
                    "created_at": "i.first_replied_at",
                },
            ),
            insert_select(
                "tickets_inquiryevent",
                "tickets_inquiry i",
                {
                    "inquiry_id": "i.id",
                    "kind": "'created'",
                    "new": "i.channel",
                    "data": "'{}'::jsonb",
                    "created_at": "i.created_at",
                },
            ),
            insert_select(
                "tickets_inquiryevent",
                "tickets_inquiry i WHERE i.triaged_at IS NOT NULL",
                {
                    "inquiry_id": "i.id",
                    "kind": "'stage'",
                    "new": "'triaged'",
                    "actor_id": "i.assignee_id",
                    "data": "'{}'::jsonb",
                    "created_at": "i.triaged_at",
                },
            ),
        )
    )
    messages = sql("SELECT count(*) FROM tickets_inquirymessage", fetch=True)[0][0]
    events = sql("SELECT count(*) FROM tickets_inquiryevent", fetch=True)[0][0]
    log(f"{messages:,} messages and {events:,} events in {elapsed:.1f} s")

    # Crisis rows and countermeasures: a few a month (ORM: a few hundred rows).
    for index in range(months):
        month = month_add(first, index)
        start, _end = month_range(month)
        Suspension.objects.bulk_create(
            Suspension(
                sku=f"SKU-{index}-{n}",
                product_name="静岡煎茶",
                channels=["rakuten", "amazon"],
                reason="stock_out",
                expected_resume_at=start + timedelta(days=n + 3),
                decided_by=manager,
                decided_at=start + timedelta(days=n),
            )
            for n in range(20)
        )
        Incident.objects.bulk_create(
            Incident(
                kind="mall_outage",
                title=f"楽天 障害 {index}-{n}",
                channel="rakuten",
                started_at=start + timedelta(days=3 * n + 1),
                opened_by=manager,
            )
            for n in range(3)
        )
        Countermeasure.objects.bulk_create(
            Countermeasure(
                month=month,
                category_id=category_ids[(index + n) % len(category_ids)],
                channel="" if n else "rakuten",
                cause="集荷の遅れ",
                action="出荷締め時刻を早める",
                owner=manager,
                due_date=month + timedelta(days=40),
            )
            for n in range(3)
        )
    elapsed, _ = time_once(lambda: sql("VACUUM ANALYZE"))
    log(f"VACUUM ANALYZE in {elapsed:.1f} s; data built in {time.perf_counter() - started:.0f} s")
    return {
        "manager": manager,
        "month": last,
        "category": category_ids[1],
        "first_start": first_start,
    }


def figure_queries(queries: list[tuple[str, float]]) -> list[str]:
    return [
        statement for statement, _s in queries if any(name in statement for name in FIGURE_TABLES)
    ]


def measure(cases, captured, *, args) -> tuple[list, list]:
    rows, details = [], []
    process = None
    try:
        port = free_port()
        process = gunicorn_start(
            port,
            env={"ADMIN_REQUIRE_OTP": "false"},
            options=["--worker-class=gthread", "--threads=2", "--timeout=300"],
        )
        client = HttpClient(port)
        client.login(BENCH_MANAGER, BENCH_PASSWORD)
        db_cpu = ServerCpu(sql("SELECT pg_backend_pid()", fetch=True)[0][0])
        for kind, name, path in cases:
            # A fresh connection: the SQL replays of the case before took
            # longer than gunicorn's keep-alive, which closed the old one.
            client.connection.close()
            app_before = process_tree_cpu(process.pid)
            db_before = db_cpu.total() if db_cpu.available else 0.0
            samples, _body = client.timed(path, {}, repeat=args.repeat, warmup=args.warmup)
            requests = args.repeat + args.warmup
            app = (process_tree_cpu(process.pid) - app_before) / requests
            db = ((db_cpu.total() - db_before) / requests) if db_cpu.available else float("nan")
            figures = figure_queries(captured[name])
            bare = time_sql(figures, repeat=args.repeat, warmup=args.warmup) if figures else []
            every = time_sql(
                [statement for statement, _s in captured[name]],
                repeat=args.repeat,
                warmup=args.warmup,
            )
            p95 = percentile(samples, 95)
            target = TARGETS_MS[kind]
            rows.append(
                [
                    name,
                    len(captured[name]),
                    len(figures),
                    ms(percentile(samples, 50)),
                    ms(p95),
                    ms(percentile(bare, 50)) if bare else "",
                    ms(percentile(bare, 95)) if bare else "",
                    ms(percentile(every, 50)),
                    ms(app),
                    ms(db),
                    f"< {target:.0f}",
                    "pass" if p95 * 1000 < target else "MISS",
                    f"{os.getloadavg()[0]:.1f}",
                ]
            )
            # EXPLAIN ANALYZE of the page's slowest query and of every
            # figure query that took 50 ms or more in the capture.
            slow = [q for q, seconds in captured[name] if seconds >= 0.05 and q in figures]
            slowest = max(captured[name], key=lambda item: item[1])[0]
            plans = [explain(q) for q in dict.fromkeys([slowest, *slow])]
            details.append((name, captured[name], plans))
    finally:
        gunicorn_stop(process)
    return rows, details


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--per-month", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()

    django_setup()
    migrate()
    from django.db import connection
    from django.test import Client

    load_before = os.getloadavg()
    data = build(months=args.months, per_month=args.per_month, customers=args.customers)
    month: date = data["month"]
    report = "/admin/reports/countermeasure/monthly/"
    cases = [
        ("report", f"report {month:%Y-%m} (default)", report),
        (
            "report",
            "report ?channel=rakuten&category=…",
            f"{report}?month={month:%Y-%m}&channel=rakuten&category={data['category']}",
        ),
        ("home", "admin home /admin/", "/admin/"),
    ]
    client = Client()
    client.force_login(data["manager"])
    captured = {}
    for _kind, name, path in cases:
        page_queries(client, path, {})  # warm caches (permissions, content types)
        elapsed, captured[name] = time_once(lambda path=path: page_queries(client, path, {}))
        log(f"{name}: {len(captured[name])} queries in process, {elapsed * 1000:.0f} ms")
    connection.close()  # gunicorn forks with none of ours

    rows, details = measure(cases, captured, args=args)
    print(
        f"\n{args.months * args.per_month:,} inquiries ({args.per_month:,} a month over"
        f" {args.months} months up to {month:%Y-%m}), {args.customers:,} customers; HTTP"
        " through gunicorn (2 gthread workers, DEBUG false) on 127.0.0.1, one client,"
        f" {args.repeat} requests per figure after {args.warmup} warm-up; bare = the page's"
        " aggregate SQL (its queries of inquiries, crisis rows, countermeasures) on a raw"
        " cursor; all SQL = every query of the page; app CPU / db CPU per request."
        " Times in ms."
    )
    print(f"Server settings: {server_settings()}")
    print(
        f"{os.cpu_count()} CPUs; load average (1 min) {load_before[0]:.1f} before the build,"
        f" {os.getloadavg()[0]:.1f} at the end.\n"
    )
    print(
        table(
            [
                "figure",
                "queries",
                "figure SQL",
                "median",
                "p95",
                "bare med",
                "bare p95",
                "all SQL med",
                "app CPU",
                "db CPU",
                "target p95",
                "result",
                "load",
            ],
            rows,
        )
    )
    print("\nSQL of each page (time of the in-process capture, ms):")
    for name, queries, plans in details:
        print(f"\n== {name}")
        for statement, seconds in queries:
            short = re.sub(r"\s+", " ", statement)
            print(f"  {seconds * 1000:7.1f}  {short[:160]}")
        for plan in plans:
            print("  -- EXPLAIN ANALYZE:")
            for line in plan:
                print(f"     {line}")


if __name__ == "__main__":
    main()
