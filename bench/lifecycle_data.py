"""The lifecycle benchmark's data: customers and their orders built set-based
in PostgreSQL (secondary indexes dropped meanwhile), vacuumed until every
page is all-visible, made stale, and a day of new orders.
"""

from __future__ import annotations

from datetime import datetime

from bench.common import log, sql, time_once
from bench.customers_sql import FAMILY, FAMILY_KANA, GIVEN, GIVEN_KANA, insert_select, pick

CHANNELS = ["rakuten", "amazon", "yahoo", "own_site", "store"]


PREFECTURES = ["東京都", "神奈川県", "大阪府", "愛知県", "埼玉県"]
PREFECTURES += ["千葉県", "兵庫県", "北海道", "福岡県", "静岡県"]


def excluded_statuses() -> list[str]:
    from crm.models import NON_COUNTING_ORDER_STATUSES

    return [status.value for status in NON_COUNTING_ORDER_STATUSES]


def _drop_secondary(table: str) -> list[str]:
    """Drop the table's indexes and unique/foreign-key constraints except the
    primary key; return the statements that create them again, exactly."""
    constraints = sql(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = %s::regclass AND contype IN ('u', 'f')",
        [table],
        fetch=True,
    )
    indexes = sql(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x"
        " JOIN pg_class i ON i.oid = x.indexrelid"
        " WHERE x.indrelid = %s::regclass AND NOT x.indisprimary"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)",
        [table],
        fetch=True,
    )
    for name, _definition in constraints:
        sql(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _definition in indexes:
        sql(f'DROP INDEX "{name}"')
    return [definition for _name, definition in indexes] + [
        f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'
        for name, definition in constraints
    ]


# --- Data --------------------------------------------------------------------


def build(customers: int, now: datetime) -> None:
    """Customers with stale metrics (0 orders, segment "new": every row must
    change on the first recompute) and their orders, inserted in time order
    like real traffic (so one customer's orders are scattered over the table).

    Orders per customer: 20% none (prospects), 30% one, 20% two, 13% 3-5,
    13% 6-9, 4% 10-30. 45% of customers ordered in the last 180 days, the
    rest earlier (sleeping). 3% of orders cancelled, 2% returned; totals
    skewed (1,000-61,000 yen, mean ~16,000), so heavy buyers reach VIP.
    1 in 400 customers is a claimant.
    """
    from django.db import transaction

    from crm.models import Customer

    with transaction.atomic():
        sql("SET LOCAL work_mem = '1GB'")
        sql("SET LOCAL maintenance_work_mem = '1GB'")
        # Bulk load: build the secondary indexes and foreign keys afterwards
        # (one sort each) instead of maintaining them row by row.
        deferred = [_drop_secondary(name) for name in ("crm_order", "crm_customer")]
        sql("SELECT setseed(0.42)")
        elapsed, _ = time_once(
            lambda: sql(
                insert_select(
                    Customer,
                    {
                        "family_name": pick([*FAMILY, "小林", "加藤"]),
                        "given_name": pick(GIVEN),
                        "family_name_kana": pick([*FAMILY_KANA, "コバヤシ", "カトウ"]),
                        "given_name_kana": pick(GIVEN_KANA),
                        "email": "CASE WHEN g %% 10 < 9 THEN 'Customer' || g || '@Example.jp'"
                        " ELSE '' END",
                        "email_normalized": "CASE WHEN g %% 10 < 9"
                        " THEN 'customer' || g || '@example.jp' ELSE '' END",
                        "phone": "CASE WHEN g %% 3 = 0"
                        " THEN '090-' || lpad((g %% 100000000)::text, 8, '0') ELSE '' END",
                        "phone_normalized": "CASE WHEN g %% 3 = 0"
                        " THEN '090' || lpad((g %% 100000000)::text, 8, '0') ELSE '' END",
                        "postal_code": "substr(lpad((g::bigint * 7919 %% 10000000)::text, 7, '0'),"
                        " 1, 3) || '-' || substr(lpad((g::bigint * 7919 %% 10000000)::text,"
                        " 7, '0'), 4, 4)",
                        "prefecture": pick(PREFECTURES),
                        "address": "'1-2-3'",
                        "is_claimant": "g %% 400 = 0",
                        "claimant_reason": "CASE WHEN g %% 400 = 0"
                        " THEN '度重なる不当な要求' ELSE '' END",
                        "claimant_set_at": "CASE WHEN g %% 400 = 0 THEN %(now)s END",
                        "lifecycle_segment": "'new'",
                        "created_at": "%(now)s - (random() * 1500) * interval '1 day'",
                        "updated_at": "%(now)s",
                    },
                    "FROM generate_series(1, %(n)s) AS g",
                ),
                {"n": customers, "now": now},
            )
        )
        log(f"  customers inserted in {elapsed:.1f}s")
        sql(
            """
            CREATE TEMP TABLE bench_plan ON COMMIT DROP AS
            SELECT
                id AS customer_id,
                CASE WHEN r < 0.20 THEN 0 WHEN r < 0.50 THEN 1 WHEN r < 0.70 THEN 2
                     WHEN r < 0.83 THEN 3 + floor(random() * 3)::int
                     WHEN r < 0.96 THEN 6 + floor(random() * 4)::int
                     ELSE 10 + floor(random() * 21)::int END AS n,
                CASE WHEN random() < 0.45 THEN random() * 180
                     ELSE 180 + random() * 900 END AS last_days,
                30 + random() * 700 AS span_days
            FROM (SELECT id, random() AS r FROM crm_customer) AS s
            """
        )
        elapsed, _ = time_once(
            lambda: sql(
                """
            INSERT INTO crm_order (
                channel, order_number, customer_id, status, ordered_at, shipped_at,
                delivered_at, total, created_at, updated_at)
            SELECT
                channel, order_number, customer_id, status, ordered_at,
                CASE WHEN status IN ('shipped', 'delivered') THEN ordered_at + interval '1 day'
                END,
                CASE WHEN status = 'delivered' THEN ordered_at + interval '3 days' END,
                total, ordered_at, ordered_at
            FROM (
                SELECT
                    (%(channels)s::text[])[1 + customer_id %% 5] AS channel,
                    'B' || (customer_id * 100 + k) AS order_number,
                    customer_id, ordered_at, total,
                    CASE WHEN s < 0.03 THEN 'cancelled' WHEN s < 0.05 THEN 'returned'
                         WHEN ordered_at > %(now)s - interval '3 days' THEN 'paid'
                         WHEN ordered_at > %(now)s - interval '10 days' THEN 'shipped'
                         ELSE 'delivered' END AS status
                FROM (
                    SELECT
                        p.customer_id, k, random() AS s,
                        (1000 + floor(power(random(), 3) * 60000))::bigint AS total,
                        %(now)s - (CASE WHEN k = 1 THEN p.last_days
                                        ELSE p.last_days + random() * p.span_days END)
                                  * interval '1 day' AS ordered_at
                    FROM bench_plan AS p CROSS JOIN LATERAL generate_series(1, p.n) AS k
                ) AS raw
            ) AS o
            ORDER BY ordered_at
            """,
                {"now": now, "channels": CHANNELS},
            )
        )
        log(f"  orders inserted in {elapsed:.1f}s")
        elapsed, _ = time_once(lambda: [sql(stmt) for stmts in deferred for stmt in stmts])
        log(f"  indexes and constraints rebuilt in {elapsed:.1f}s")
    # Benchmarks decide when to vacuum; autovacuum would add noise.
    for name in ("crm_customer", "crm_order"):
        sql(f"ALTER TABLE {name} SET (autovacuum_enabled = false)")


def vacuum(*tables: str, full: bool = False) -> None:
    sql("SET maintenance_work_mem = '1GB'")
    for name in tables:
        sql(f"VACUUM {'(FULL, ANALYZE)' if full else '(ANALYZE)'} {name}")
    sql("RESET maintenance_work_mem")


def all_visible(table: str) -> tuple[int, int]:
    """(pages, pages marked all-visible) of the table."""
    return tuple(
        sql("SELECT relpages, relallvisible FROM pg_class WHERE relname = %s", [table], fetch=True)[
            0
        ]
    )


def vacuum_until_all_visible(*tables: str, passes: int = 3) -> None:
    """VACUUM ANALYZE, then VACUUM again while pages are left not all-visible
    (a first pass after the bulk load leaves a third of crm_order unmarked):
    the steady state autovacuum keeps a table in, so that index-only scans
    read no heap. Logs what each table ends with."""
    vacuum(*tables)
    for table_name in tables:
        for _ in range(passes):
            pages, visible = all_visible(table_name)
            if visible >= pages:
                break
            vacuum(table_name)
        pages, visible = all_visible(table_name)
        log(f"  {table_name}: {visible:,} of {pages:,} pages all-visible")


def make_all_stale() -> None:
    """Every customer's metrics wrong: the cold run must change every row.
    VACUUM FULL so that each cold run starts from the same compact table."""
    sql(
        "UPDATE crm_customer SET first_order_at = NULL, last_order_at = NULL,"
        " order_count = 0, total_spent = 0, lifecycle_segment = 'new'"
    )
    vacuum("crm_customer", full=True)


def heap_size() -> str:
    return sql("SELECT pg_size_pretty(pg_relation_size('crm_customer'))", fetch=True)[0][0]


def add_day_of_orders(day: int, now: datetime) -> int:
    """1% of customers order during the day before `now`."""
    sql("SELECT setseed(%s)", [day / 100])
    return sql(
        """
        INSERT INTO crm_order (
            channel, order_number, customer_id, status, ordered_at, total,
            created_at, updated_at)
        SELECT
            'own_site', 'N' || %(day)s || '-' || id, id, 'paid',
            %(now)s - random() * interval '23 hours',
            (1000 + floor(power(random(), 3) * 60000))::bigint, %(now)s, %(now)s
        FROM crm_customer
        WHERE random() < 0.01
        """,
        {"day": day, "now": now},
    )


def day_customers(day: int) -> list[int]:
    """The customers who ordered on `day` (add_day_of_orders)."""
    return [
        row[0]
        for row in sql(
            "SELECT customer_id FROM crm_order WHERE order_number LIKE %s",
            [f"N{day}-%"],
            fetch=True,
        )
    ]
