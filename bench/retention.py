"""Benchmark: the retention job (crm.services.retention) against a bare UPDATE.

Builds 1,000,000 customers in PostgreSQL with server-side INSERT ... SELECT
FROM generate_series (no ORM per row): 200,000 Amazon buyers, 100,000 of
them past the 30-day period (delivered 31-400 days ago; one in ten with no
delivery, counted from the order date), 100,000 inside it (a tenth of those
with an older Amazon order too); one Amazon buyer in five also a Rakuten
member (its profile, identity and order); the other 800,000 own-site
customers. Each customer has a channel profile and identity and an order.
One Amazon buyer in five has an Amazon inquiry (the buyer's mail with its
InboundMail, our reply with its send and ledger row); one in 200 an
attachment on disk. 400,000 consent events (300,000 current opt-ins four
years old, 100,000 superseded ones).

Times, in the same run, on the same rows:

  bare      the same columns of the same rows set to blanks by plain
            UPDATEs (ids known beforehand, no checks, no files), in one
            transaction, rolled back, then VACUUM
  run       retention_anonymize(channel="amazon", days=30): the job's
            anonymisation, files deleted, events written
  idle      retention_run(): the whole nightly job again, nothing due
            (the anonymisation's queue and the consent ledger's prune)

It prints numbers; it is not a pass/fail test. Targets: run within 3x the
bare UPDATE, idle under 1 s.

    scripts/with-postgres.sh .venv/bin/python bench/retention.py

(`make bench-retention`; `--customers 100000` is a quick run.)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ServerCpu, django_setup, log, migrate, sql, table, time_once
from bench.customers_sql import FAMILY, FAMILY_KANA, GIVEN, GIVEN_KANA, insert_select, pick

PERSONAL = (
    "family_name = '', given_name = '', family_name_kana = '', given_name_kana = '',"
    " email = '', email_normalized = '', phone = '', phone_normalized = '',"
    " postal_code = '', prefecture = '', address = '', birthday = NULL"
)


def build(customers: int, now) -> None:
    from django.conf import settings
    from django.db import transaction

    from crm.models import ChannelIdentity, Customer
    from tickets.models import Inquiry, InquiryMessage

    params = {"n": customers, "now": now}
    with transaction.atomic():
        sql("SET LOCAL work_mem = '256MB'")
        sql("SELECT setseed(0.21)")
        steps = [
            (
                "customers",
                # g % 5 = 0: an Amazon buyer; (g / 5) % 2 = 0: past the period;
                # g % 25 = 0: also a Rakuten member (Rakuten's name and email,
                # Amazon's phone, address and birthday).
                insert_select(
                    Customer,
                    {
                        "id": "g",
                        "family_name": pick(FAMILY[:5]),
                        "given_name": pick(GIVEN[:4]),
                        "family_name_kana": pick(FAMILY_KANA[:5]),
                        "given_name_kana": pick(GIVEN_KANA[:4]),
                        "email": _email("g"),
                        "email_normalized": f"lower({_email('g')})",
                        "phone": "'090-' || lpad(g::text, 8, '0')",
                        "phone_normalized": "'090' || lpad(g::text, 8, '0')",
                        "postal_code": "'150-0001'",
                        "prefecture": "'東京都'",
                        "address": "'渋谷区神宮前' || g",
                        "birthday": "CASE WHEN g %% 5 = 0 THEN DATE '1980-01-01' + g %% 9000 END",
                        "order_count": "1",
                        "total_spent": "4800",
                        "lifecycle_segment": "'new'",
                        "created_at": "%(now)s",
                        "updated_at": "%(now)s",
                    },
                    "FROM generate_series(1, %(n)s) AS g",
                ),
            ),
            ("sequence", "SELECT setval('crm_customer_id_seq', %(n)s)"),
            (
                "profiles",
                f"""
                INSERT INTO crm_customerchannelprofile (
                    customer_id, channel, family_name, given_name, family_name_kana,
                    given_name_kana, email, email_normalized, phone, phone_normalized,
                    postal_code, prefecture, address, birthday, created_at, updated_at)
                SELECT c.id, p.channel, c.family_name, c.given_name, c.family_name_kana,
                    c.given_name_kana,
                    CASE WHEN p.channel = 'amazon' THEN {_masked("c.id")} ELSE c.email END,
                    CASE WHEN p.channel = 'amazon' THEN {_masked("c.id")}
                         ELSE c.email_normalized END,
                    CASE WHEN p.channel = 'rakuten' THEN '' ELSE c.phone END,
                    CASE WHEN p.channel = 'rakuten' THEN '' ELSE c.phone_normalized END,
                    c.postal_code, c.prefecture,
                    CASE WHEN p.channel = 'rakuten' THEN '' ELSE c.address END,
                    CASE WHEN p.channel = 'rakuten' THEN NULL ELSE c.birthday END,
                    %(now)s, %(now)s - (p.channel = 'rakuten')::int * interval '1 day'
                FROM crm_customer c
                CROSS JOIN LATERAL (VALUES
                    (CASE WHEN c.id %% 5 = 0 THEN 'amazon' ELSE 'own_site' END),
                    (CASE WHEN c.id %% 25 = 0 THEN 'rakuten' END)) AS p(channel)
                WHERE p.channel IS NOT NULL
                """,
            ),
            (
                "identities",
                insert_select(
                    ChannelIdentity,
                    {
                        "customer_id": "customer_id",
                        "channel": "channel",
                        "external_id": f"CASE channel WHEN 'amazon' THEN {_masked('customer_id')}"
                        " WHEN 'rakuten' THEN 'R' || customer_id ELSE 'M' || customer_id END",
                        "display_name": "CASE WHEN channel = 'amazon'"
                        " THEN family_name || ' ' || given_name ELSE '' END",
                        "created_at": "%(now)s",
                    },
                    "FROM crm_customerchannelprofile",
                ),
            ),
            (
                "identity events",
                f"""
                INSERT INTO crm_customerevent (customer_id, kind, data, created_at)
                SELECT g, 'identity_added',
                    jsonb_build_object('channel', 'amazon', 'external_id', {_masked("g")},
                                       'matched_by', 'email'), %(now)s
                FROM generate_series(25, %(n)s, 25) AS g
                """,
            ),
            (
                "orders",
                # Past: delivered 31-400 days ago (a tenth undelivered, ordered
                # 31-400 days ago); inside: delivered 1-29 days ago, a tenth of
                # them with an order of a year ago too.
                """
                INSERT INTO crm_order (
                    channel, order_number, customer_id, status, ordered_at, delivered_at,
                    total, created_at, updated_at)
                SELECT o.channel, o.channel || '-' || g || '-' || o.k, g,
                    CASE WHEN o.delivered IS NULL THEN 'shipped' ELSE 'delivered' END,
                    o.ordered, o.delivered, 4800, o.ordered, o.ordered
                FROM (SELECT g,
                        CASE WHEN g %% 5 <> 0 THEN NULL
                             WHEN (g / 5) %% 2 = 0 THEN 31 + random() * 369
                             ELSE 1 + random() * 28 END AS age
                      FROM generate_series(1, %(n)s) AS g) AS s
                CROSS JOIN LATERAL (VALUES
                    (CASE WHEN s.age IS NULL THEN 'own_site' ELSE 'amazon' END, 1,
                     %(now)s - coalesce(s.age + 3, 100) * interval '1 day',
                     CASE WHEN s.age IS NULL OR g %% 50 = 0 THEN NULL
                          ELSE %(now)s - s.age * interval '1 day' END),
                    (CASE WHEN g %% 25 = 0 THEN 'rakuten' END, 2,
                     %(now)s - 200 * interval '1 day', %(now)s - 197 * interval '1 day'),
                    (CASE WHEN g %% 50 = 5 THEN 'amazon' END, 3,
                     %(now)s - 365 * interval '1 day', %(now)s - 362 * interval '1 day')
                ) AS o(channel, k, ordered, delivered)
                WHERE o.channel IS NOT NULL
                """,
            ),
            (
                "inquiries",
                insert_select(
                    Inquiry,
                    {
                        "reference": "'Q-B-' || o.customer_id",
                        "customer_id": "o.customer_id",
                        "channel": "'amazon'",
                        "subject": "'注文 ' || o.order_number"
                        " || ' について（' || c.family_name || '）'",
                        "priority": "'normal'",
                        "status": "'closed'",
                        "sla_state": "'met'",
                        "first_reply_due_at": "start + interval '1 day'",
                        "first_replied_at": "start + interval '2 hours'",
                        "resolved_at": "start + interval '1 day'",
                        "closed_at": "start + interval '1 day'",
                        "created_at": "start",
                        "updated_at": "start",
                    },
                    """FROM crm_order o JOIN crm_customer c ON c.id = o.customer_id
                CROSS JOIN LATERAL (SELECT coalesce(o.delivered_at, o.ordered_at) AS start) AS t
                WHERE o.channel = 'amazon' AND o.customer_id %% 25 IN (5, 10)
                    AND o.order_number LIKE '%%-1'""",
                ),
            ),
            (
                "sends",
                """
                INSERT INTO outreach_send (
                    kind, channel, purpose, content, status, respect_quiet_hours, created_at)
                SELECT 'reply', 'email', 'transactional',
                    jsonb_build_object('subject', 'Re: ' || subject,
                        'body_text', 'お問い合わせありがとうございます。' || id),
                    'completed', false, created_at
                FROM tickets_inquiry ORDER BY id
                """,
            ),
            (
                "deliveries",
                f"""
                INSERT INTO outreach_delivery (
                    send_id, customer_id, channel, context_key, status, skip_reason, attempts,
                    in_doubt, provider_message_id, address, last_error, sent_at, created_at,
                    updated_at)
                SELECT s.id, i.customer_id, 'email', 'message-' || i.id, 'sent', '', 1, false,
                    '', {_masked("i.customer_id")}, '', i.first_replied_at, i.first_replied_at,
                    i.first_replied_at
                FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM outreach_send) AS s
                JOIN (SELECT customer_id, id, first_replied_at,
                             row_number() OVER (ORDER BY id) AS n FROM tickets_inquiry) AS i
                    ON i.n = s.n
                """,
            ),
            (
                "messages",
                insert_select(
                    InquiryMessage,
                    {
                        "inquiry_id": "i.id",
                        "kind": "m.kind",
                        "channel": "m.channel",
                        "subject": "i.subject",
                        "body_text": "m.body",
                        "visible_text": "m.body",
                        "message_id": "m.mid",
                        "outbound_state": "m.state",
                        "delivery_id": "m.delivery",
                        "created_at": "m.at",
                    },
                    """FROM tickets_inquiry i
                JOIN crm_customer c ON c.id = i.customer_id
                JOIN outreach_delivery d ON d.customer_id = i.customer_id
                CROSS JOIN LATERAL (VALUES
                    ('inbound', 'amazon', c.family_name || ' ' || c.given_name || 'です。'
                        || c.address || ' に届いた商品が壊れていました。',
                     '<q' || i.id || '@marketplace.amazon.co.jp>', '', NULL::bigint, i.created_at),
                    ('outbound', 'email', c.family_name || '様 ご迷惑をおかけしました。',
                     '<r' || i.id || '@madoguchi>', 'sent', d.id, i.first_replied_at)
                ) AS m(kind, channel, body, mid, state, delivery, at)""",
                ),
            ),
            (
                "inbound mail",
                f"""
                INSERT INTO tickets_inboundmail (
                    source, dedupe_key, message_id, from_address, subject, status, reason, raw,
                    inquiry_message_id, received_at)
                SELECT 'imap', m.message_id, m.message_id, {_masked("i.customer_id")},
                    i.subject, 'processed', '', convert_to(m.body_text, 'UTF8'), m.id,
                    m.created_at
                FROM tickets_inquirymessage m JOIN tickets_inquiry i ON i.id = m.inquiry_id
                WHERE m.kind = 'inbound'
                """,
            ),
            (
                "attachments",
                """
                INSERT INTO tickets_attachment (
                    message_id, file, filename, content_type, size, truncated)
                SELECT m.id, 'attachments/bench/' || i.customer_id || '.pdf',
                    c.family_name || '_写真.pdf', 'application/pdf', 1024, false
                FROM tickets_inquirymessage m JOIN tickets_inquiry i ON i.id = m.inquiry_id
                JOIN crm_customer c ON c.id = i.customer_id
                WHERE m.kind = 'inbound' AND i.customer_id %% 500 IN (5, 10)
                """,
            ),
            (
                "consent events",
                # 300,000 opt-ins of four years ago (the current state), and
                # 100,000 of five years ago superseded by them (prunable).
                """
                INSERT INTO crm_consentevent (
                    customer_id, channel, action, source, wording_version, occurred_at,
                    recorded_at, note)
                SELECT g, 'email', a.action, 'api', '', a.at, a.at, ''
                FROM generate_series(1, %(n)s) AS g
                CROSS JOIN LATERAL (VALUES
                    (CASE WHEN g %% 10 < 3 THEN 'opt_in' END, %(now)s - interval '4 years'),
                    (CASE WHEN g %% 10 = 0 THEN 'opt_out' END, %(now)s - interval '5 years')
                ) AS a(action, at)
                WHERE a.action IS NOT NULL
                """,
            ),
            (
                "consent states",
                """
                INSERT INTO crm_consentstate (customer_id, channel, granted, changed_at, event_id)
                SELECT customer_id, 'email', true, occurred_at, id FROM crm_consentevent
                WHERE action = 'opt_in'
                """,
            ),
        ]
        for name, statement in steps:
            elapsed, rows = time_once(lambda statement=statement: sql(statement, params))
            log(f"  {name}: {rows} rows in {elapsed:.1f}s")
        for table_name in ("crm_customer", "tickets_inquiry", "outreach_send"):
            sql(
                f"SELECT setval(pg_get_serial_sequence('{table_name}', 'id'),"
                f" (SELECT max(id) FROM {table_name}))"
            )
    media = Path(settings.MEDIA_ROOT) / "attachments" / "bench"
    media.mkdir(parents=True, exist_ok=True)
    for (name,) in sql("SELECT file FROM tickets_attachment", fetch=True):
        (Path(settings.MEDIA_ROOT) / name).write_bytes(b"%PDF-1.4 bench")


def _email(column: str) -> str:
    return f"'Customer' || {column} || '@Example.jp'"


def _masked(column: str) -> str:
    return f"'amz' || {column} || 'q7@marketplace.amazon.co.jp'"


def vacuum() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def bare_update(due: list[int]) -> list[tuple[str, int, float]]:
    """The same columns of the same rows set to blanks, the rows known by
    id beforehand; in one transaction, rolled back."""
    from django.db import transaction

    sql("CREATE TEMP TABLE IF NOT EXISTS bench_due (id bigint PRIMARY KEY)")
    sql("TRUNCATE bench_due")
    sql("INSERT INTO bench_due SELECT unnest(%s::bigint[])", [due])
    sql("ANALYZE bench_due")
    sql(
        "CREATE TEMP TABLE IF NOT EXISTS bench_messages AS"
        " SELECT m.id, m.delivery_id, d.send_id FROM tickets_inquirymessage m"
        " JOIN tickets_inquiry i ON i.id = m.inquiry_id"
        " LEFT JOIN outreach_delivery d ON d.id = m.delivery_id"
        " WHERE i.channel = 'amazon' AND i.customer_id IN (SELECT id FROM bench_due)"
    )
    sql("ANALYZE bench_messages")
    statements = [
        (
            "profiles",
            f"UPDATE crm_customerchannelprofile SET {PERSONAL}, updated_at = now()"
            " WHERE channel = 'amazon' AND customer_id IN (SELECT id FROM bench_due)",
        ),
        (
            "customers",
            f"UPDATE crm_customer SET {PERSONAL}, anonymized_at = now(), updated_at = now()"
            " WHERE id IN (SELECT id FROM bench_due)",
        ),
        (
            "identities",
            "UPDATE crm_channelidentity SET external_id = 'anonymized-' || id,"
            " display_name = '' WHERE channel = 'amazon'"
            " AND customer_id IN (SELECT id FROM bench_due)",
        ),
        (
            "customer events",
            "UPDATE crm_customerevent SET data = data - 'external_id'"
            " WHERE data ? 'external_id' AND customer_id IN (SELECT id FROM bench_due)",
        ),
        (
            "inquiries",
            "UPDATE tickets_inquiry SET subject = '（匿名化済み）' WHERE channel = 'amazon'"
            " AND customer_id IN (SELECT id FROM bench_due)",
        ),
        (
            "messages",
            "UPDATE tickets_inquirymessage SET subject = '', body_text = '（匿名化済み）',"
            " visible_text = '', body_html = '', review_note = ''"
            " WHERE id IN (SELECT id FROM bench_messages)",
        ),
        (
            "attachments",
            "UPDATE tickets_attachment SET file = '', filename = '（匿名化済み）'"
            " WHERE message_id IN (SELECT id FROM bench_messages)",
        ),
        (
            "inbound mail",
            "UPDATE tickets_inboundmail SET raw = ''::bytea, from_address = '', subject = ''"
            " WHERE inquiry_message_id IN (SELECT id FROM bench_messages)",
        ),
        (
            "deliveries",
            "UPDATE outreach_delivery SET address = '', last_error = ''"
            " WHERE id IN (SELECT delivery_id FROM bench_messages)",
        ),
        (
            "sends",
            "UPDATE outreach_send SET content = '{}'"
            " WHERE id IN (SELECT send_id FROM bench_messages)",
        ),
        (
            "orders",
            "UPDATE crm_order SET anonymized_at = now() WHERE channel = 'amazon'"
            " AND anonymized_at IS NULL AND customer_id IN (SELECT id FROM bench_due)",
        ),
    ]
    results = []
    with transaction.atomic():
        for name, statement in statements:
            elapsed, rows = time_once(lambda statement=statement: sql(statement))
            results.append((name, rows, elapsed))
        transaction.set_rollback(True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()
    os.environ.setdefault("MADOGUCHI_VAR_DIR", tempfile.mkdtemp(prefix="bench-retention-"))
    django_setup()
    migrate()
    from datetime import timedelta

    from django.utils import timezone

    from crm.services.retention import (
        retention_anonymize,
        retention_due_customers,
        retention_run,
    )

    now = timezone.now()
    log(f"building {args.customers:,} customers ...")
    build(args.customers, now)
    vacuum()

    due = retention_due_customers(channel="amazon", cutoff=now - timedelta(days=30))
    log(f"{len(due):,} Amazon buyers past the period")
    cpu = ServerCpu(sql("SELECT pg_backend_pid()", fetch=True)[0][0])
    cpu_start = cpu.total()
    bare = bare_update(due)
    bare_cpu = cpu.total() - cpu_start
    bare_total = sum(elapsed for _name, _rows, elapsed in bare)
    vacuum()

    cpu_start = cpu.total()
    run_time, event = time_once(lambda: retention_anonymize(channel="amazon", days=30, now=now))
    run_cpu = cpu.total() - cpu_start
    vacuum()
    idle_anonymize, idle_event = time_once(
        lambda: retention_anonymize(channel="amazon", days=30, now=now)
    )
    first_job, first_events = time_once(lambda: retention_run(now=now))
    idle_job, idle_events = time_once(lambda: retention_run(now=now))

    rows = [(f"bare UPDATE {name}", count, f"{elapsed:.3f}", "") for name, count, elapsed in bare]
    rows += [
        ("bare UPDATE, all of the above", "", f"{bare_total:.3f}", f"{bare_cpu:.2f}"),
        (
            "retention_anonymize(amazon, 30 days)",
            event.data["customers"],
            f"{run_time:.3f}",
            f"{run_cpu:.2f}",
        ),
        (
            "retention_anonymize again (idle)",
            idle_event.data["customers"],
            f"{idle_anonymize:.3f}",
            "",
        ),
        (
            "retention_run(): nothing to anonymise, consent ledger pruned",
            first_events[-1].data["consent_events"],
            f"{first_job:.3f}",
            "",
        ),
        (
            "retention_run() again (idle)",
            idle_events[-1].data["consent_events"],
            f"{idle_job:.3f}",
            "",
        ),
    ]
    print(table(("figure", "rows", "wall s", "server CPU s"), rows))
    print()
    print(
        f"run / bare: {run_time / bare_total:.2f}x wall, {run_cpu / max(bare_cpu, 1e-9):.2f}x CPU"
    )
    print(f"run counts: {event.data}")
    print(f"idle run: {[e.data for e in idle_events]}")


if __name__ == "__main__":
    main()
