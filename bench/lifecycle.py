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
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ServerCpu, django_setup, log, migrate, percentile, sql, table, time_once
from bench.lifecycle_data import (
    add_day_of_orders,
    build,
    day_customers,
    heap_size,
    make_all_stale,
    vacuum,
    vacuum_until_all_visible,
)
from bench.lifecycle_figures import (
    Phase,
    baseline_materialised,
    check_sample,
    per_customer_figures,
    recompute,
    reference_rows,
    write_floor,
)


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
