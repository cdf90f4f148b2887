"""Benchmark: the emergency broadcast, from the manager's click to the last mail.

Builds 200,000 customers set-based in PostgreSQL (INSERT ... SELECT FROM
generate_series), each with an email address, an identity and an order on
one channel; 10,000 of them are Rakuten customers, every one opted in to
email (of the others, three in four opted in). Then, for a Rakuten outage:

  queued      broadcast_send (the manager's action: the incident locked,
              the Send, the ledger snapshot with the eligibility of the
              channel's customers, the IncidentSend and its event, commit)
              until every ledger row is queued — it returns with them
  bare        the same 10,000 rows written by a bare INSERT ... SELECT on a
              raw cursor (the channel's customers by their identity, no
              eligibility, no order test), rolled back; same run
  all sent    from the action to the last row's sent_at, by `manage.py
              qcluster` (Q_WORKERS=2) into an aiosmtpd sink in a process of
              its own, at the campaign email rate (EMAIL_RATE, default 200/s):
              against 10,000 / EMAIL_RATE

Targets: queued < 5 s (aim < 1 s); all sent within the campaign email rate
(no slower than 10,000 / EMAIL_RATE, plus the worker's start-up of the first
batch). It prints numbers; it is not a pass/fail test.

Run (the figures in bench/README.md come from exactly this command):

    scripts/with-postgres.sh .venv/bin/python bench/broadcast.py

`--customers 20000 --audience 1000` gives a quick run.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.campaign_peers import Sink
from bench.common import Steal, django_setup, log, migrate, sql, table, time_once
from bench.customers_sql import FAMILY, GIVEN, insert_select, pick
from bench.worker_stats import settle

STALL_SECONDS = 120


def build(customers: int, audience: int) -> None:
    """Customers with an email address, one identity and one order each:
    every (customers / audience)-th one on Rakuten (opted in to email), the
    others on Yahoo, the own site or Amazon (three in four opted in)."""
    from django.db import transaction
    from django.utils import timezone

    from crm.models import ChannelIdentity, Customer

    step = customers // audience
    now = timezone.now()
    params = {"n": customers, "step": step, "now": now}
    channel = (
        "CASE WHEN g %% %(step)s = 0 THEN 'rakuten'"
        " ELSE (ARRAY['yahoo','own_site','amazon'])[1 + g %% 3] END"
    )
    with transaction.atomic():
        sql("SET LOCAL session_replication_role = replica")  # fresh schema: no FK triggers
        sql(
            insert_select(
                Customer,
                {
                    "family_name": pick(FAMILY),
                    "given_name": pick(GIVEN),
                    "family_name_kana": "'サトウ'",
                    "given_name_kana": "'ハナコ'",
                    "email": "'customer' || g || '@example.jp'",
                    "email_normalized": "'customer' || g || '@example.jp'",
                    "postal_code": "'150-0001'",
                    "prefecture": "'東京都'",
                    "address": "'神宮前1-2-3'",
                    "order_count": "1",
                    "total_spent": "5000",
                    "lifecycle_segment": "'new'",
                    "created_at": "%(now)s",
                    "updated_at": "%(now)s",
                },
                "FROM generate_series(1, %(n)s) AS g",
            ),
            params,
        )
        sql(
            insert_select(
                ChannelIdentity,
                {
                    "customer_id": "c.id",
                    "channel": channel,
                    "external_id": "'member-' || g",
                    "created_at": "%(now)s",
                },
                "FROM (SELECT id, row_number() OVER (ORDER BY id) AS g FROM crm_customer) AS c",
            ),
            params,
        )
        sql(
            """
            INSERT INTO crm_order (channel, order_number, customer_id, status, ordered_at,
                                   total, created_at, updated_at)
            SELECT i.channel, 'ORD-' || i.customer_id, i.customer_id, 'delivered',
                   %(now)s - interval '20 days', 5000, %(now)s, %(now)s
            FROM crm_channelidentity AS i
            """,
            params,
        )
        sql(
            """
            INSERT INTO crm_consentevent (customer_id, channel, action, source, wording_version,
                                          occurred_at, recorded_at, note)
            SELECT i.customer_id, 'email', 'opt_in', 'import', '', %(now)s, %(now)s, ''
            FROM crm_channelidentity AS i
            WHERE i.channel = 'rakuten' OR i.customer_id %% 4 <> 1
            """,
            params,
        )
        sql(
            """
            INSERT INTO crm_consentstate (customer_id, channel, granted, changed_at, event_id)
            SELECT customer_id, channel, true, occurred_at, id FROM crm_consentevent
            """
        )
    for name in (
        "crm_customer",
        "crm_channelidentity",
        "crm_order",
        "crm_consentevent",
        "crm_consentstate",
    ):
        sql(f"VACUUM ANALYZE {name}")


def manager():
    from django.contrib.auth.models import Group, User

    from core.roles import MANAGER

    user = User.objects.create_user("bench-manager", is_staff=True, last_name="店長")
    user.groups.add(Group.objects.get(name=MANAGER))
    return user


def outage_and_template(actor):
    from datetime import timedelta

    from django.utils import timezone

    from crisis.models import Incident
    from outreach import services
    from outreach.models import MessageTemplate

    incident = Incident.objects.create(
        kind="mall_outage",
        channel="rakuten",
        title="楽天市場のシステム障害",
        started_at=timezone.now() - timedelta(minutes=20),
        expected_recovery_at=timezone.now() + timedelta(hours=3),
        opened_by=actor,
    )
    template = services.template_save(
        template=MessageTemplate(
            name="緊急のお知らせ(メール)",
            channel="email",
            purpose="marketing",
            subject="【{{ shop.name }}】{{ incident.channel_name }}店の障害について",
            body_text=(
                "{{ customer.name }}様\n\n{{ incident.channel_name }}店で障害が発生しています"
                "（復旧見込み: {{ incident.expected_recovery }}）。\n"
                "その間は次の店舗をご利用ください。\n"
                "{% for link in links.others %}・{{ link.name }}: {{ link.url }}\n{% endfor %}"
            ),
        )
    )
    return incident, template


def bare_insert_select(audience: int) -> float:
    """The same rows by a bare INSERT ... SELECT into a scratch send, rolled
    back: the floor of writing them."""
    from django.db import connection, transaction

    from outreach.models import Send

    with transaction.atomic():
        send = Send.objects.create(kind="broadcast", channel="email", purpose="marketing")
        start = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO outreach_delivery (
                    send_id, customer_id, channel, context_key, status, skip_reason, attempts,
                    next_attempt_at, provider_message_id, address, last_error, created_at,
                    updated_at)
                SELECT %s, c.id, 'email', '', 'queued', '', 0, NULL, '', '', '', now(), now()
                FROM crm_customer AS c
                WHERE c.id IN (SELECT customer_id FROM crm_channelidentity
                               WHERE channel = 'rakuten')
                """,
                [send.pk],
            )
            written = cursor.rowcount
        elapsed = time.perf_counter() - start
        transaction.set_rollback(True)
    if written != audience:
        raise RuntimeError(f"bare INSERT wrote {written} rows, expected {audience}")
    return elapsed


class QueryTimer:
    """A connection.execute_wrapper that times each statement of the action."""

    def __init__(self) -> None:
        self.times: list[tuple[float, str]] = []

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.times.append((time.perf_counter() - start, sql))


def wait_sent(send, worker, *, timeout: float) -> None:
    from outreach.ledger import PENDING
    from outreach.models import Delivery

    pending_rows = Delivery.objects.filter(send=send, status__in=PENDING)
    began = last_change = time.perf_counter()
    left = None
    while pending_rows.exists():
        now = time.perf_counter()
        count = pending_rows.count()
        if count != left:
            left, last_change = count, now
        if now - began > timeout or now - last_change > STALL_SECONDS or not worker.running:
            raise RuntimeError(f"{left:,} rows still pending:\n{worker.log_tail()}")
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--audience", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    django_setup()
    from django.conf import settings
    from django.db import connection
    from django.db.models import Max, Min

    from crisis.services.broadcasts import broadcast_send
    from outreach.models import Delivery
    from tests.worker import Worker, database_url

    migrate()
    log(f"building {args.customers:,} customers, {args.audience:,} of them on Rakuten")
    elapsed, _ = time_once(lambda: build(args.customers, args.audience))
    log(f"  built in {elapsed:.1f}s")
    actor = manager()
    incident, template = outage_and_template(actor)

    bare_samples = [bare_insert_select(args.audience) for _ in range(3)]
    bare = min(bare_samples)

    rate = settings.EMAIL_RATE
    timer = QueryTimer()
    sink = Sink.start()
    worker = Worker(
        {
            "DATABASE_URL": database_url(connection.settings_dict),
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(sink.port),
            "EMAIL_RATE": str(rate),
            "QUIET_HOURS_START": "0",
            "QUIET_HOURS_END": "0",
            "Q_WORKERS": "2",
        }
    )
    try:
        startup = worker.start(timeout=120)
        settle(worker)
        log(f"qcluster started in {startup:.1f}s; the broadcast")
        steal = Steal()
        load = os.getloadavg()
        wall = time.time()
        start = time.perf_counter()
        with connection.execute_wrapper(timer):
            sent = broadcast_send(
                incident=incident,
                channel="email",
                template=template,
                actor=actor,
                quiet_hours_override_reason="bench",  # whatever the hour of the run
            )
        queued = time.perf_counter() - start
        rows = Delivery.objects.filter(send=sent.send)
        queued_rows = rows.filter(status="queued").count() + rows.filter(status="sent").count()
        wait_sent(sent.send, worker, timeout=args.timeout)
        times = rows.aggregate(first=Min("sent_at"), last=Max("sent_at"))
        all_sent = times["last"].timestamp() - wall
        first_sent = times["first"].timestamp() - wall
        delivered = rows.filter(status="sent").count()
        received, unique = sink.counts()
        steal_text = steal.text()
        worker.kill()
    finally:
        worker.close()
        sink.stop()

    floor = args.audience / rate
    print()
    print(
        table(
            ["figure", "time", "target", "result"],
            [
                [
                    f"queued: broadcast_send, {queued_rows:,} rows",
                    f"{queued:.2f}s",
                    "< 5 s (aim < 1 s)",
                    "pass" if queued < 5 else "FAIL",
                ],
                ["bare INSERT … SELECT, same rows", f"{bare:.2f}s", "", f"{queued / bare:.1f}x"],
                ["first mail after the action", f"{first_sent:.2f}s", "", ""],
                [
                    f"all sent: {delivered:,} mails",
                    f"{all_sent:.1f}s",
                    f"~{floor:.0f}s ({args.audience:,} / EMAIL_RATE {rate})",
                    f"{all_sent / floor:.2f}x the rate's time",
                ],
            ],
        )
    )
    print("\nthe action's statements, slowest first:")
    for seconds, statement in sorted(timer.times, reverse=True)[:5]:
        print(f"  {seconds * 1000:7.1f} ms  {' '.join(statement.split())[:110]}")
    print(f"  {len(timer.times)} statements, {sum(t for t, _s in timer.times):.2f}s in all")
    print(
        f"\nsink: {received:,} messages, {unique:,} distinct Message-IDs;"
        f" bare samples {', '.join(f'{s:.3f}' for s in bare_samples)}s;"
        f" load before {load[0]:.1f}; {steal_text}"
    )


if __name__ == "__main__":
    main()
