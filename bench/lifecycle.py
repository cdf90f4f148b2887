"""Benchmark: `crm.services.lifecycle_recompute` against the bare aggregate.

Builds 1,000,000 customers and ~3,000,000 orders in PostgreSQL with
server-side INSERT ... SELECT FROM generate_series (no ORM per row), then
times, in the same run and on the same connection:

  baseline   the bare GROUP BY customer_id aggregate over counted orders,
             fully materialised on the server (every output column consumed),
             in the planner's own plan (hash aggregate) and in the streaming
             plan lifecycle_recompute uses (covering index, group aggregate);
             the faster of the two is the baseline
  floor      the aggregate's rows written into a new table with no index,
             unlogged and logged: less than any design that stores the
             figures writes on a cold run, so its ratio bounds the cold
             run's from below
  cold       lifecycle_recompute() when every customer's metrics are stale
             (the one-off backfill after loading orders behind the
             services' back: every row of the customer table rewritten)
  nightly    the run production does: 1% of customers got an order since
             yesterday, through order_upsert (which keeps that customer's
             metrics right: here lifecycle_recompute(customer_ids=...) for
             the day's customers, the statement order_upsert runs), and the
             clock moved one day (some customers turn sleeping); on the
             customer table as the cold runs left it (every row rewritten:
             twice the heap's pages; its indexes rebuilt, as the nightly
             task does after a run that rewrote most rows), then compacted
             (VACUUM FULL)
  drift      the same day's orders loaded behind the services' back: the
             nightly run also repairs their ~10,000 customers
  no-op      the nightly run on a day with nothing to change
  one id     lifecycle_recompute(customer_ids=[id]), the order-upsert path

and checks correctness against a direct aggregate for ~1,200 customers.
Autovacuum is off during the run; each timed run is preceded by the VACUUM
ANALYZE that autovacuum, with the tables' settings (crm migration 0007),
runs after a day of traffic, so that index-only scans read no heap.
It prints numbers; it is not a pass/fail test. The issue's target is
lifecycle_recompute <= 1.5x the bare aggregate. Every figure is paired with
a baseline run just before it; ratios are taken within pairs, in wall-clock
and in CPU seconds of the whole PostgreSQL server (read from /proc; much
steadier than wall-clock when the machine is shared).

Run (the figures in bench/README.md come from exactly this command):

    PG_SHARED_BUFFERS=2GB \\
    PG_EXTRA_OPTS="-c work_mem=256MB -c maintenance_work_mem=1GB -c max_wal_size=8GB" \\
    scripts/with-postgres.sh .venv/bin/python bench/lifecycle.py

`make bench-lifecycle` runs it with the server's defaults (256MB buffers,
4MB work_mem). `--customers 100000` gives a quick run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ServerCpu,
    django_setup,
    log,
    migrate,
    percentile,
    sql,
    table,
    time_once,
)

CHANNELS = ["rakuten", "amazon", "yahoo", "own_site", "store"]


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

    with transaction.atomic():
        sql("SET LOCAL work_mem = '1GB'")
        sql("SET LOCAL maintenance_work_mem = '1GB'")
        # Bulk load: build the secondary indexes and foreign keys afterwards
        # (one sort each) instead of maintaining them row by row.
        deferred = [_drop_secondary(name) for name in ("crm_order", "crm_customer")]
        sql("SELECT setseed(0.42)")
        elapsed, _ = time_once(
            lambda: sql(
                """
            INSERT INTO crm_customer (
                family_name, given_name, family_name_kana, given_name_kana,
                email, email_normalized, phone, phone_normalized, postal_code, prefecture,
                address, notes, is_claimant, claimant_reason, claimant_set_at,
                order_count, total_spent, lifecycle_segment, created_at, updated_at)
            SELECT
                (ARRAY['佐藤','鈴木','高橋','田中','伊藤','渡辺','山本','中村','小林','加藤'])
                    [1 + g %% 10],
                (ARRAY['花子','太郎','美咲','翔太','陽菜','大翔','結衣','蓮'])[1 + g %% 8],
                (ARRAY['サトウ','スズキ','タカハシ','タナカ','イトウ','ワタナベ','ヤマモト',
                       'ナカムラ','コバヤシ','カトウ'])[1 + g %% 10],
                (ARRAY['ハナコ','タロウ','ミサキ','ショウタ','ヒナ','ヒロト','ユイ','レン'])
                    [1 + g %% 8],
                CASE WHEN g %% 10 < 9 THEN 'Customer' || g || '@Example.jp' ELSE '' END,
                CASE WHEN g %% 10 < 9 THEN 'customer' || g || '@example.jp' ELSE '' END,
                CASE WHEN g %% 3 = 0 THEN '090-' || lpad((g %% 100000000)::text, 8, '0')
                     ELSE '' END,
                CASE WHEN g %% 3 = 0 THEN '090' || lpad((g %% 100000000)::text, 8, '0')
                     ELSE '' END,
                substr(lpad((g::bigint * 7919 %% 10000000)::text, 7, '0'), 1, 3) || '-'
                    || substr(lpad((g::bigint * 7919 %% 10000000)::text, 7, '0'), 4, 4),
                (ARRAY['東京都','神奈川県','大阪府','愛知県','埼玉県','千葉県','兵庫県',
                       '北海道','福岡県','静岡県'])[1 + g %% 10],
                '1-2-3', '',
                g %% 400 = 0,
                CASE WHEN g %% 400 = 0 THEN '度重なる不当な要求' ELSE '' END,
                CASE WHEN g %% 400 = 0 THEN %(now)s END,
                0, 0, 'new',
                %(now)s - (random() * 1500) * interval '1 day', %(now)s
            FROM generate_series(1, %(n)s) AS g
            """,
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


# --- Figures -------------------------------------------------------------------


def aggregate_sql() -> tuple[str, list[str]]:
    excluded = excluded_statuses()
    placeholders = ", ".join(["%s"] * len(excluded))
    inner = (
        "SELECT customer_id, MIN(ordered_at) AS first_at, MAX(ordered_at) AS last_at,"
        " COUNT(*) AS n, SUM(total) AS spent FROM crm_order"
        f" WHERE status NOT IN ({placeholders}) GROUP BY customer_id"
    )
    return inner, excluded


def baseline_materialised() -> int:
    """The aggregate computed in full on the server. The outer query consumes
    every output column: with a bare `count(*)` PostgreSQL would drop the
    unused MIN/MAX/SUM from the subquery and time a cheaper query."""
    inner, params = aggregate_sql()
    rows = sql(
        f"SELECT count(*), min(first_at), max(last_at), sum(n), sum(spent) FROM ({inner}) AS s",
        params,
        fetch=True,
    )
    return rows[0][0]


@contextmanager
def local_setting(setting: str):
    """A planner setting for the statements inside (SET LOCAL, in their own
    transaction)."""
    from django.db import transaction

    with transaction.atomic():
        sql(f"SET LOCAL {setting}")
        yield


STREAMING = "enable_hashagg = off"


def baseline_streaming() -> int:
    """The same aggregate planned the way lifecycle_recompute plans its own
    (no hash aggregate: the covering index crm_order_customer read in
    customer order). Whichever plan is faster in a pair is the baseline."""
    with local_setting(STREAMING):
        return baseline_materialised()


def baseline_serial() -> int:
    with local_setting("max_parallel_workers_per_gather = 0"):
        return baseline_materialised()


def baseline_fetched() -> int:
    inner, params = aggregate_sql()
    return len(sql(inner, params, fetch=True))


def write_floor(*, logged: bool) -> int:
    """Less than any design storing the figures writes on a cold run: the
    aggregate's rows, five narrow columns, into a new table with no index
    (no index entries, no old row versions; unlogged: no WAL either), in
    the streaming plan. Its ratio to the bare aggregate bounds the cold
    run's from below; the logged one is the floor of a durable store."""
    inner, params = aggregate_sql()
    kind = "" if logged else "UNLOGGED"
    sql("DROP TABLE IF EXISTS bench_write_floor")
    with local_setting(STREAMING):
        written = sql(f"CREATE {kind} TABLE bench_write_floor AS {inner}", params)
    sql("DROP TABLE bench_write_floor")
    return written


def recompute(now: datetime, ids=None) -> int:
    from crm.services import lifecycle_recompute

    return lifecycle_recompute(now=now, customer_ids=ids)


def per_customer_figures(now: datetime, count: int, max_id: int) -> tuple[list[float], str]:
    """Time lifecycle_recompute for one id at a time and EXPLAIN it."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    rng = random.Random(7)
    samples = []
    for _ in range(count):
        customer_id = rng.randint(1, max_id)
        # Stale the customer first, as a new order would.
        sql("UPDATE crm_customer SET order_count = order_count + 1 WHERE id = %s", [customer_id])
        elapsed, _changed = time_once(lambda cid=customer_id: recompute(now, [cid]))
        samples.append(elapsed)
    # EXPLAIN ANALYZE (rolled back) the statement for a customer whose
    # metrics are stale, so that the plan shows the row being updated.
    customer_id = rng.randint(1, max_id)
    with CaptureQueriesContext(connection) as captured:
        recompute(now, [customer_id])
    sql("UPDATE crm_customer SET order_count = order_count + 1 WHERE id = %s", [customer_id])
    plans = []
    for query in captured.captured_queries:
        with transaction.atomic():
            rows = sql(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {query['sql']}", fetch=True)
            transaction.set_rollback(True)
        plans.append("\n".join(row[0] for row in rows))
    recompute(now, [customer_id])
    return samples, "\n\n".join(plans)


def segment_expected(*, claimant: bool, n: int, last_at, spent: int, now: datetime) -> str:
    """SPEC rule 7, written out independently of the SQL."""
    from django.conf import settings

    if claimant:
        return "claimant"
    if n == 0:
        return "prospect"
    if last_at < now - timedelta(days=settings.LIFECYCLE_SLEEPING_DAYS):
        return "sleeping"
    if n >= settings.LIFECYCLE_VIP_MIN_ORDERS and spent >= settings.LIFECYCLE_VIP_MIN_SPENT:
        return "vip"
    if n >= settings.LIFECYCLE_REGULAR_MIN_ORDERS:
        return "regular"
    return "new"


def check_sample(now: datetime, max_id: int, extra_ids: list[int]) -> tuple[int, int]:
    """Compare stored metrics of ~1,000 random customers (plus `extra_ids`)
    with a direct aggregate of their orders. Returns (checked, wrong)."""
    rng = random.Random(11)
    ids = sorted({rng.randint(1, max_id) for _ in range(1000)} | set(extra_ids))
    excluded = excluded_statuses()
    rows = sql(
        """
        SELECT c.id, c.is_claimant, c.first_order_at, c.last_order_at, c.order_count,
               c.total_spent, c.lifecycle_segment, a.first_at, a.last_at, a.n, a.spent
        FROM crm_customer AS c
        CROSS JOIN LATERAL (
            SELECT MIN(ordered_at) AS first_at, MAX(ordered_at) AS last_at, COUNT(*) AS n,
                   COALESCE(SUM(total), 0) AS spent
            FROM crm_order AS o
            WHERE o.customer_id = c.id AND NOT (o.status = ANY(%s))
        ) AS a
        WHERE c.id = ANY(%s)
        """,
        [excluded, ids],
        fetch=True,
    )
    wrong = 0
    for cid, claimant, first, last, count, spent, segment, e_first, e_last, e_n, e_spent in rows:
        expected_segment = segment_expected(
            claimant=claimant, n=e_n, last_at=e_last, spent=e_spent, now=now
        )
        if (first, last, count, spent, segment) != (
            e_first,
            e_last,
            e_n,
            e_spent,
            expected_segment,
        ):
            wrong += 1
            if wrong <= 5:
                log(
                    f"  MISMATCH customer {cid}: stored {(first, last, count, spent, segment)}"
                    f" expected {(e_first, e_last, e_n, e_spent, expected_segment)}"
                )
    return len(rows), wrong


def fmt(seconds: float) -> str:
    return f"{seconds:.3f}"


class Phase:
    """One figure measured several times. Each run is paired with the bare
    aggregate run just before it; ratios are taken within the pairs, in
    wall-clock and in server CPU seconds (steadier on a shared machine)."""

    cpu: ServerCpu | None = None

    def __init__(self, label: str) -> None:
        self.label = label
        self.figure: list[tuple[float, float]] = []
        self.baseline: list[tuple[float, float]] = []
        self.changed: list[int] = []

    @classmethod
    def timed(cls, fn) -> tuple[float, float, object]:
        """(wall seconds, server CPU seconds, result)."""
        cpu_before = cls.cpu.total() if cls.cpu else 0.0
        elapsed, result = time_once(fn)
        cpu = cls.cpu.total() - cpu_before if cls.cpu else float("nan")
        return elapsed, cpu, result

    def measure(self, fn) -> None:
        # The faster of the bare aggregate's two plans, each run just before.
        base_wall, base_cpu, _ = min(
            (self.timed(baseline_materialised), self.timed(baseline_streaming)),
            key=lambda run: run[0],
        )
        wall, cpu, changed = self.timed(fn)
        self.baseline.append((base_wall, base_cpu))
        self.figure.append((wall, cpu))
        self.changed.append(changed)
        log(
            f"  {self.label}: {wall:.2f}s wall, {cpu:.2f}s CPU, {changed} rows"
            f" (baseline {base_wall:.2f}s wall, {base_cpu:.2f}s CPU)"
        )

    def rows(self) -> list[list[object]]:
        def ratio(index: int) -> str:
            pairs = zip(self.figure, self.baseline, strict=True)
            return f"{statistics.median(f[index] / b[index] for f, b in pairs):.2f}x"

        walls = [wall for wall, _cpu in self.figure]
        return [
            [
                self.label,
                self.changed[-1],
                fmt(statistics.median(walls)),
                fmt(min(walls)),
                fmt(statistics.median(cpu for _wall, cpu in self.figure)),
                fmt(statistics.median(wall for wall, _cpu in self.baseline)),
                fmt(statistics.median(cpu for _wall, cpu in self.baseline)),
                ratio(0),
                ratio(1),
            ]
        ]


def reference_rows(repeat: int) -> list[list[object]]:
    """The bare aggregate alone, and in the two other shapes one could call
    "the baseline": without parallel workers, and fetched to Python."""
    rows = []
    for label, fn, times in (
        ("bare aggregate, server-side, the planner's plan", baseline_materialised, repeat),
        ("bare aggregate, server-side, streaming plan", baseline_streaming, repeat),
        ("bare aggregate, no parallel workers", baseline_serial, repeat),
        ("bare aggregate, fetched to Python", baseline_fetched, 1),
    ):
        runs = [Phase.timed(fn) for _ in range(times)]
        walls = [wall for wall, _cpu, _result in runs]
        rows.append(
            [
                label,
                runs[-1][2],
                fmt(statistics.median(walls)),
                fmt(min(walls)),
                fmt(statistics.median(cpu for _wall, cpu, _result in runs)),
                "",
                "",
                "",
                "",
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="nightly and no-op runs")
    parser.add_argument(
        "--cold-repeat", type=int, default=2, help="cold runs (each rebuilds the table first)"
    )
    args = parser.parse_args()

    django_setup()
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from crm.services.lifecycle import customer_indexes_rebuild

    migrate()
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    version = sql("SHOW server_version", fetch=True)[0][0]
    knobs = {
        name: sql(f"SHOW {name}", fetch=True)[0][0]
        for name in ("shared_buffers", "work_mem", "max_parallel_workers_per_gather")
    }
    log(f"PostgreSQL {version}, {knobs}")

    log(f"Building {args.customers:,} customers and their orders...")
    build_time, _ = time_once(lambda: build(args.customers, now))
    vacuum_time, _ = time_once(lambda: vacuum_until_all_visible("crm_customer", "crm_order"))
    counts = sql(
        "SELECT (SELECT count(*) FROM crm_customer), (SELECT count(*) FROM crm_order),"
        " (SELECT count(DISTINCT customer_id) FROM crm_order),"
        " pg_size_pretty(pg_total_relation_size('crm_customer')),"
        " pg_size_pretty(pg_total_relation_size('crm_order'))",
        fetch=True,
    )[0]
    max_id = counts[0]
    log(f"  built in {build_time:.1f}s, VACUUM ANALYZE {vacuum_time:.1f}s: {counts}")

    Phase.cpu = ServerCpu(sql("SELECT pg_backend_pid()", fetch=True)[0][0])
    if not Phase.cpu.available:
        Phase.cpu = None
        log("  (server CPU time not readable: wall-clock only)")
    log("Bare aggregate, three shapes...")
    baseline_materialised()  # warm the cache: every figure is measured warm
    references = reference_rows(args.repeat)

    # The machine may be shared: each figure is paired with baselines run
    # right before it, and ratios are taken within the pairs.
    phases: list[Phase] = []

    log("Write floors (the aggregate into a new table without index)...")
    for logged in (False, True):
        how = "logged" if logged else "unlogged"
        floor = Phase(f"floor of a cold run: the aggregate written, {how}, no index")
        for _ in range(args.cold_repeat):
            floor.measure(lambda logged=logged: write_floor(logged=logged))
        phases.append(floor)

    log("Cold runs (every customer stale)...")
    cold = Phase("recompute cold, every customer stale")
    for _ in range(args.cold_repeat):
        make_all_stale()
        cold.measure(lambda: recompute(now))
    phases.append(cold)
    checked, wrong = check_sample(now, max_id, [])
    log(f"  after cold: {checked} customers checked, {wrong} wrong")
    # What lifecycle_recompute_task does after a run that rewrote most rows.
    rebuild_time, rebuilt = time_once(lambda: customer_indexes_rebuild(changed=cold.changed[-1]))
    log(f"  indexes of crm_customer rebuilt: {rebuilt}, {rebuild_time:.1f}s")
    vacuum("crm_customer")

    # The nightly run reads the whole customer table, so its size matters:
    # measured first as the cold runs left it (every row rewritten once, then
    # VACUUM: twice the heap's pages; the indexes rebuilt), then compacted
    # (VACUUM FULL, like a table that never had a mass update, or after
    # pg_repack).
    log("Steady-state nightly runs...")
    day = 0

    def nightly(label: str, *, through_service: bool = True) -> Phase:
        nonlocal day
        phase = Phase(label)
        new_orders = 0
        for _ in range(args.repeat):
            day += 1
            today = now + timedelta(days=day)
            new_orders = add_day_of_orders(day, today)
            if through_service:
                recompute(today, day_customers(day))
            vacuum("crm_customer", "crm_order")
            phase.measure(lambda today=today: recompute(today))
        how = "through order_upsert" if through_service else "behind the services' back"
        phase.label = f"{label}: ~{new_orders:,} new orders {how}, +1 day"
        return phase

    after_cold = f"customer heap {heap_size()} (after cold)"
    phases.append(nightly(f"recompute nightly, {after_cold}"))
    phases.append(nightly(f"recompute drift, {after_cold}", through_service=False))
    vacuum("crm_customer", full=True)
    phases.append(nightly(f"recompute nightly, customer heap {heap_size()} (compacted)"))
    today = now + timedelta(days=day)
    noop = Phase("recompute no-op (nothing changed), compacted")
    for _ in range(args.repeat):
        vacuum("crm_customer", "crm_order")
        noop.measure(lambda: recompute(today))
    phases.append(noop)

    log("Per-customer path...")
    samples, plan = per_customer_figures(today, 300, max_id)
    connection.close()

    new_customers = [
        row[0]
        for row in sql(
            "SELECT customer_id FROM crm_order WHERE order_number LIKE %s LIMIT 200",
            ["N%"],
            fetch=True,
        )
    ]
    checked, wrong = check_sample(today, max_id, new_customers)
    segments = sql(
        "SELECT lifecycle_segment, count(*) FROM crm_customer GROUP BY 1 ORDER BY 2 DESC",
        fetch=True,
    )

    print()
    print(
        f"lifecycle_recompute benchmark — PostgreSQL {version}, shared_buffers "
        f"{knobs['shared_buffers']}, work_mem {knobs['work_mem']}, "
        f"max_parallel_workers_per_gather {knobs['max_parallel_workers_per_gather']}"
    )
    print(
        f"{counts[0]:,} customers ({counts[3]}), {counts[1]:,} orders ({counts[4]}), "
        f"{counts[2]:,} customers with orders; build {build_time:.0f}s + "
        f"VACUUM ANALYZE {vacuum_time:.0f}s"
    )
    print(
        f"rules: sleeping > {settings.LIFECYCLE_SLEEPING_DAYS} days, vip >= "
        f"{settings.LIFECYCLE_VIP_MIN_ORDERS} orders and >= {settings.LIFECYCLE_VIP_MIN_SPENT:,} "
        f"yen, regular >= {settings.LIFECYCLE_REGULAR_MIN_ORDERS} orders"
    )
    print()
    rows = list(references)
    for phase in phases:
        rows += phase.rows()
    print(
        table(
            [
                "figure",
                "rows",
                "wall s",
                "min s",
                "CPU s",
                "baseline wall s",
                "baseline CPU s",
                "ratio wall",
                "ratio CPU",
            ],
            rows,
        )
    )
    print()
    print(
        "wall s / min s: median and best wall-clock seconds; CPU s: median CPU seconds of\n"
        "the whole PostgreSQL server (all its processes) during the run.\n"
        "baseline: the bare aggregate, server-side, in the planner's plan and in the\n"
        "streaming plan, both run right before each figure run; the faster is the pair's;\n"
        "ratio: median over runs of (figure ÷ its paired baseline); target ≤ 1.50x."
    )
    mean_ms = sum(samples) / len(samples) * 1000
    print(
        f"per-customer lifecycle_recompute(customer_ids=[id]), {len(samples)} calls: "
        f"mean {mean_ms:.2f} ms, p50 {percentile(samples, 50) * 1000:.2f} ms, "
        f"p95 {percentile(samples, 95) * 1000:.2f} ms"
    )
    if rebuilt:
        print(
            f"after the cold runs, the task's REINDEX TABLE CONCURRENTLY crm_customer: "
            f"{rebuild_time:.1f}s (not in the cold figure)"
        )
    print(f"correctness: {checked} customers checked against a direct aggregate, {wrong} wrong")
    print("segments: " + ", ".join(f"{name} {count:,}" for name, count in segments))
    print()
    print("EXPLAIN ANALYZE of lifecycle_recompute(customer_ids=[id]):")
    print(plan)
    if "Seq Scan" in plan:
        print("WARNING: the per-customer path scans a table")
    if wrong:
        sys.exit(1)


if __name__ == "__main__":
    main()
