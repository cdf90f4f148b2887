"""What the lifecycle benchmark measures and against what: the bare aggregate
in its shapes (materialised, streaming, serial, fetched), the write floor,
the recompute itself, the per-customer figures, the sample check of the
segments it wrote, and Phase, which pairs each run with a bare one.
"""

from __future__ import annotations

import random
import statistics
from contextlib import contextmanager
from datetime import datetime, timedelta

from bench.common import ServerCpu, log, sql, time_once
from bench.lifecycle_data import excluded_statuses

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
            # A small table can take 0.00 s of server CPU: no ratio to that.
            pairs = zip(self.figure, self.baseline, strict=True)
            ratios = [f[index] / b[index] for f, b in pairs if b[index] > 0]
            return f"{statistics.median(ratios):.2f}x" if ratios else "-"

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
