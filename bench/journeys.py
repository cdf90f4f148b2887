"""Benchmark: journeys (ステップ配信) with a million orders.

Builds 100,000 customers with an email opt-in (bench/campaign_data.build)
and 1,000,000 orders over three years, 100,000 of them delivered in the
last 30 days, with INSERT ... SELECT FROM generate_series; a marketing
journey "follow-up after delivery" is on, with one waiting ledger row for
each of those 100,000 recent deliveries (due later: what order_upsert
wrote when they were delivered), so the ledger is as it is on a busy day.
Then measures:

  tick idle   outreach.tasks.journeys_tick with nothing due, 200 runs after
              20 warm-up (median, p95): target < 20 ms. Next to it, its one
              query on a raw cursor ("bare").
  schedule    10,000 more orders delivered just now, each through
              journeys_order_changed (what order_upsert calls after its
              own writes): the trigger's own cost, per order.
  send        the 10,000 steps now due, sent by send_dispatch in this
              process, in DISPATCH_PARALLELISM threads (the dispatch tasks
              production starts per send; each its own database and SMTP
              connection), to an aiosmtpd sink in another process:
              messages/s, against a bare smtplib loop on one connection
              sending the same rendered messages in the same run: target
              >= 50 %.

Run (the figures in bench/README.md come from exactly this command):

    scripts/with-postgres.sh .venv/bin/python bench/journeys.py

`--orders 100000 --recent 10000 --customers 20000 --due 2000` is a quick run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import django_setup, log, migrate, percentile, sql, table, time_once


def orders_build(*, orders: int, recent: int, customers: int) -> None:
    """`orders` orders of the customers, `recent` of them delivered in the
    last 30 days, the rest over the three years before; set-based."""
    from django.utils import timezone

    now = timezone.now()
    sql(
        """
        INSERT INTO crm_order (
            channel, order_number, customer_id, status, ordered_at, shipped_at,
            delivered_at, total, created_at, updated_at)
        SELECT
            (ARRAY['rakuten','yahoo','own_site','store','amazon'])[1 + g %% 5],
            'J' || g, c.first + (g %% %(customers)s), 'delivered',
            d - interval '3 days', d - interval '2 days', d,
            (1000 + (g %% 50) * 1000), d, d
        FROM (
            SELECT g, CASE WHEN g <= %(recent)s
                           THEN %(now)s - random() * interval '30 days'
                           ELSE %(now)s - interval '31 days' - random() * interval '1065 days'
                      END AS d
            FROM generate_series(1, %(orders)s) AS g
        ) AS o CROSS JOIN (SELECT MIN(id) AS first FROM crm_customer) AS c
        """,
        {"orders": orders, "recent": recent, "customers": customers, "now": now},
    )
    sql("VACUUM ANALYZE crm_order")


def journey_build():
    """The follow-up journey (marketing, 40 days after delivery: none due),
    turned on, and its waiting rows for the recent deliveries."""
    from outreach import services
    from outreach.models import Journey, JourneyStep, MessageTemplate

    Journey.objects.filter(is_builtin=True).update(active=False)
    template = services.template_save(
        template=MessageTemplate(
            name="ベンチ: 到着後のフォロー",
            channel="email",
            purpose="marketing",
            subject="{{ customer.family_name }}様、商品はいかがですか",
            body_text=(
                "{{ customer.family_name }}様\n\n先日お届けした商品（注文番号 "
                "{{ order.order_number }}）はいかがでしょうか。\n"
                "ご不明な点があれば、このメールにご返信ください。"
            ),
        )
    )
    later = services.journey_save(
        journey=Journey(name="ベンチ: 40日後", trigger="order_delivered", channel="email"),
        steps=[JourneyStep(name="40日後", delay_days=40, template=template)],
    )
    services.journey_activate(journey=later)
    step = later.steps.get()
    written = sql(
        """
        INSERT INTO outreach_delivery (
            send_id, customer_id, channel, context_key, status, skip_reason, attempts,
            next_attempt_at, provider_message_id, address, last_error, created_at, updated_at,
            in_doubt)
        SELECT %(send)s, customer_id, 'email', 'order:' || id, 'queued', '', 0,
               delivered_at + interval '40 days', '', '', '', delivered_at, delivered_at, false
        FROM crm_order WHERE delivered_at > now() - interval '30 days'
        ON CONFLICT DO NOTHING
        """,
        {"send": step.send_id},
    )
    sql("VACUUM ANALYZE outreach_delivery")
    return template, written


def tick_idle(repeat: int, warmup: int) -> tuple[list[float], list[float], int]:
    """journeys_tick with nothing due, and its one query on a raw cursor."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from outreach.selectors import journey_sends_due
    from outreach.tasks import journeys_tick

    with CaptureQueriesContext(connection) as captured:
        assert journeys_tick() == 0, "something is due"
    statement = captured[0]["sql"]
    ticks, bare = [], []
    for index in range(warmup + repeat):
        began = time.perf_counter()
        journeys_tick()
        elapsed = time.perf_counter() - began
        if index >= warmup:
            ticks.append(elapsed)
    with connection.cursor() as cursor:
        for index in range(warmup + repeat):
            began = time.perf_counter()
            cursor.execute(statement)
            cursor.fetchall()
            if index >= warmup:
                bare.append(time.perf_counter() - began)
    assert journey_sends_due(now=timezone.now()) == []
    return ticks, bare, len(captured)


def schedule(count: int, template) -> tuple[float, int, object]:
    """`count` orders delivered now, entered through journeys_order_changed
    into a journey due at once (the orders written first, set-based)."""
    from django.utils import timezone

    from crm.models import Order
    from outreach import services
    from outreach.models import Journey, JourneyStep

    now_journey = services.journey_save(
        journey=Journey(name="ベンチ: すぐ", trigger="order_delivered", channel="email"),
        steps=[JourneyStep(name="すぐ", delay_days=0, template=template)],
    )
    services.journey_activate(journey=now_journey)
    sql(
        """
        INSERT INTO crm_order (
            channel, order_number, customer_id, status, ordered_at, shipped_at,
            delivered_at, total, created_at, updated_at)
        SELECT 'own_site', 'JD' || g, c.first + g, 'delivered', now() - interval '3 days',
               now() - interval '2 days', now() - interval '1 minute', 5000, now(), now()
        FROM generate_series(0, %(n)s - 1) AS g
        CROSS JOIN (SELECT MIN(id) AS first FROM crm_customer) AS c
        """,
        {"n": count},
    )
    orders = list(Order.objects.filter(order_number__startswith="JD"))
    now = timezone.now()

    def enter() -> int:
        written = 0
        for order in orders:
            written += services.journeys_order_changed(
                order=order, created=False, before=("shipped", order.shipped_at, None), now=now
            )
        return written

    elapsed, written = time_once(enter)
    return elapsed, written, now_journey.steps.get().send


def send_all(send) -> tuple[float, int]:
    """send_dispatch until the send's due rows are done, in as many threads
    as production starts dispatch tasks per send (DISPATCH_PARALLELISM),
    each with its own database and SMTP connection."""
    from concurrent.futures import ThreadPoolExecutor

    from django.conf import settings
    from django.db import connection

    from outreach.dispatch import send_dispatch
    from outreach.models import Delivery

    def work() -> None:
        try:
            send_dispatch(send_id=send.pk, time_budget=600)
        finally:
            connection.close()

    began = time.perf_counter()
    while True:
        with ThreadPoolExecutor(settings.DISPATCH_PARALLELISM) as pool:
            for future in [pool.submit(work) for _ in range(settings.DISPATCH_PARALLELISM)]:
                future.result()
        if not Delivery.objects.filter(send=send, status__in=["queued", "sending"]).exists():
            break
    elapsed = time.perf_counter() - began
    return elapsed, Delivery.objects.filter(send=send, status="sent").count()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--recent", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()

    django_setup()
    from django.conf import settings

    from bench.campaign_data import bare_loop, build, worker_output
    from bench.campaign_peers import Sink

    migrate()
    log(f"building {args.customers:,} customers and {args.orders:,} orders")
    elapsed, _ = time_once(lambda: build(args.customers))
    elapsed2, _ = time_once(
        lambda: orders_build(orders=args.orders, recent=args.recent, customers=args.customers)
    )
    log(f"  built in {elapsed + elapsed2:.1f}s")
    template, waiting = journey_build()
    log(f"  {waiting:,} journey rows waiting (due in 10–40 days)")

    load = os.getloadavg()
    ticks, bare, queries = tick_idle(args.repeat, warmup=20)
    load_tick = os.getloadavg()

    sink = Sink.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
    settings.EMAIL_RATE = 1_000_000
    settings.QUIET_HOURS_START = settings.QUIET_HOURS_END = 0
    try:
        log(f"scheduling {args.due:,} due steps through journeys_order_changed")
        scheduled_s, written, send = schedule(args.due, template)
        log("bare smtplib loop on one connection")
        messages = worker_output(SimpleNamespace(template=template), args.due)
        bare_s = bare_loop(messages, sink.port)
        sink.reset()
        log("sending through send_dispatch")
        send_s, sent = send_all(send)
        received, unique = sink.counts()
    finally:
        sink.stop()
    load_send = os.getloadavg()

    ms = 1000
    print()
    print(
        f"load average before: {load[0]:.2f}; after the tick: {load_tick[0]:.2f}; "
        f"after sending: {load_send[0]:.2f}; cores: {os.cpu_count()}"
    )
    print(
        table(
            ["figure", "median", "p95", "bare median", "target", "result"],
            [
                [
                    f"journeys_tick, nothing due ({queries} query)",
                    f"{statistics.median(ticks) * ms:.2f} ms",
                    f"{percentile(ticks, 95) * ms:.2f} ms",
                    f"{statistics.median(bare) * ms:.2f} ms",
                    "< 20 ms",
                    "pass" if statistics.median(ticks) * ms < 20 else "MISS",
                ]
            ],
        )
    )
    rate, bare_rate = sent / send_s, args.due / bare_s
    print()
    print(
        table(
            ["figure", "count", "seconds", "per second", "bare loop /s", "share", "target"],
            [
                [
                    "schedule (journeys_order_changed)",
                    f"{written:,}",
                    f"{scheduled_s:.1f}",
                    f"{written / scheduled_s:,.0f}",
                    "",
                    "",
                    "",
                ],
                [
                    "send (send_dispatch → SMTP sink)",
                    f"{sent:,}",
                    f"{send_s:.1f}",
                    f"{rate:,.0f}",
                    f"{bare_rate:,.0f}",
                    f"{rate / bare_rate:.0%}",
                    ">= 50 %: " + ("pass" if rate >= 0.5 * bare_rate else "MISS"),
                ],
            ],
        )
    )
    print(f"sink: {received:,} messages, {unique:,} distinct Message-IDs")


if __name__ == "__main__":
    main()
