"""Lifecycle metrics and segments (SPEC rule 7)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from crm.models import (
    NON_COUNTING_ORDER_STATUSES,
    Customer,
    LifecycleSegment,
)


def lifecycle_recompute(
    *, customer_ids: Iterable[int] | None = None, now: datetime | None = None
) -> int:
    """Recompute order metrics and the lifecycle segment, set-based: one
    UPDATE ... FROM over an aggregate of the orders, touching only the rows
    whose values change. All customers, or only `customer_ids`. Returns the
    number of customers changed. A customer whose metrics another
    transaction changes while this runs keeps that newer result.

    Segments, first match wins:
      claimant  flagged by a person
      prospect  no counted order
      sleeping  last order more than LIFECYCLE_SLEEPING_DAYS ago
      vip       at least LIFECYCLE_VIP_MIN_ORDERS orders and
                LIFECYCLE_VIP_MIN_SPENT yen spent
      regular   at least LIFECYCLE_REGULAR_MIN_ORDERS orders
      new       otherwise (one order)
    Cancelled and returned orders do not count.
    """
    now = now or timezone.now()
    ids = None if customer_ids is None else sorted({int(i) for i in customer_ids})
    if ids == []:
        return 0
    params: dict[str, Any] = {
        "sleeping_before": connection.ops.adapt_datetimefield_value(
            now - timedelta(days=settings.LIFECYCLE_SLEEPING_DAYS)
        ),
        "vip_orders": settings.LIFECYCLE_VIP_MIN_ORDERS,
        "vip_spent": settings.LIFECYCLE_VIP_MIN_SPENT,
        "regular_orders": settings.LIFECYCLE_REGULAR_MIN_ORDERS,
        "claimant": LifecycleSegment.CLAIMANT.value,
        "prospect": LifecycleSegment.PROSPECT.value,
        "sleeping": LifecycleSegment.SLEEPING.value,
        "vip": LifecycleSegment.VIP.value,
        "regular": LifecycleSegment.REGULAR.value,
        "new": LifecycleSegment.NEW.value,
    }
    excluded = []
    for index, status in enumerate(NON_COUNTING_ORDER_STATUSES):
        params[f"excluded_{index}"] = status.value
        excluded.append(f"%(excluded_{index})s")
    order_filter = customer_filter = ""
    if ids is not None:
        placeholders = []
        for index, customer_id in enumerate(ids):
            params[f"id_{index}"] = customer_id
            placeholders.append(f"%(id_{index})s")
        id_list = ", ".join(placeholders)
        order_filter = f"AND o.customer_id IN ({id_list})"
        customer_filter = f"WHERE c2.id IN ({id_list})"
    postgres = connection.vendor == "postgresql"
    distinct, same = ("IS DISTINCT FROM", "IS NOT DISTINCT FROM") if postgres else ("IS NOT", "IS")
    changed = f"""
        SELECT * FROM (
            SELECT
                c2.id AS id,
                c2.first_order_at AS old_first_at,
                c2.last_order_at AS old_last_at,
                c2.order_count AS old_n,
                c2.total_spent AS old_spent,
                c2.lifecycle_segment AS old_segment,
                agg.first_at AS first_at,
                agg.last_at AS last_at,
                COALESCE(agg.n, 0) AS n,
                COALESCE(agg.spent, 0) AS spent,
                CASE
                    WHEN c2.is_claimant THEN %(claimant)s
                    WHEN agg.n IS NULL THEN %(prospect)s
                    WHEN agg.last_at < %(sleeping_before)s THEN %(sleeping)s
                    WHEN agg.n >= %(vip_orders)s AND agg.spent >= %(vip_spent)s THEN %(vip)s
                    WHEN agg.n >= %(regular_orders)s THEN %(regular)s
                    ELSE %(new)s
                END AS segment
            FROM crm_customer AS c2
            LEFT JOIN (
                SELECT
                    o.customer_id AS customer_id,
                    MIN(o.ordered_at) AS first_at,
                    MAX(o.ordered_at) AS last_at,
                    COUNT(*) AS n,
                    CAST(SUM(o.total) AS BIGINT) AS spent
                FROM crm_order AS o
                WHERE o.status NOT IN ({", ".join(excluded)}) {order_filter}
                GROUP BY o.customer_id
            ) AS agg ON agg.customer_id = c2.id
            {customer_filter}
        ) AS fresh
        WHERE old_first_at {distinct} first_at
            OR old_last_at {distinct} last_at
            OR old_n <> n
            OR old_spent <> spent
            OR old_segment <> segment
    """
    if postgres and ids is None:
        return _recompute_all(changed, params, same, now=now)
    # The old_* conditions skip a customer whose metrics another transaction
    # changed after `changed` was read (an order upsert during the nightly
    # run): its newer figures stay.
    with connection.cursor() as cursor:
        # SQLite's RETURNING names the updated table's columns bare.
        returned = "c.id, c.lifecycle_segment" if postgres else "id, lifecycle_segment"
        sql = _update_sql(f"({changed}) AS changed", same) + f" RETURNING {returned}"
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    sleeping = [pk for pk, segment in rows if segment == LifecycleSegment.SLEEPING]
    if sleeping:
        _journeys_sleeping_enter(Customer.objects.filter(pk__in=sleeping), now=now)
    return len(rows)


def _journeys_sleeping_enter(customers: QuerySet[Customer], *, now: datetime) -> None:
    """Customers who just became sleeping enter the journeys of that trigger
    (outreach imports crm, so it is reached here), as one query."""
    from outreach.services.journey_entry import journeys_sleeping_enter

    journeys_sleeping_enter(customers=customers, now=now)


# A run that rewrites at least this share of the customers (a backfill, a
# change of the segment rules) is followed by a rebuild of the customer
# table's indexes: see customer_indexes_rebuild.
REBUILD_AFTER_SHARE = 0.2


def customer_indexes_rebuild(*, changed: int) -> bool:
    """Rebuild the indexes of crm_customer, concurrently, after a recompute
    that rewrote at least REBUILD_AFTER_SHARE of its rows. Each rewritten
    row put a second entry in every index (the metrics are indexed, so no
    such update is HOT), and the pages VACUUM empties of the old entries
    stay half empty: the nightly run, which reads crm_customer_lifecycle
    whole, and every index scan would read twice the pages from then on.
    Reads and writes go on meanwhile (REINDEX CONCURRENTLY). PostgreSQL
    only, outside a transaction (REINDEX CONCURRENTLY cannot run in one).
    Returns whether it rebuilt."""
    if connection.vendor != "postgresql" or connection.in_atomic_block or changed <= 0:
        return False
    with connection.cursor() as cursor:
        # The planner's row estimate (-1 before the first VACUUM or ANALYZE).
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = 'crm_customer'::regclass")
        (estimate,) = cursor.fetchone()
        if changed < REBUILD_AFTER_SHARE * estimate:
            return False
        cursor.execute("REINDEX TABLE CONCURRENTLY crm_customer")
    return True


def _update_sql(source: str, same: str) -> str:
    return f"""
        UPDATE crm_customer AS c SET
            first_order_at = changed.first_at,
            last_order_at = changed.last_at,
            order_count = changed.n,
            total_spent = changed.spent,
            lifecycle_segment = changed.segment
        FROM {source}
        WHERE c.id = changed.id
            AND c.first_order_at {same} changed.old_first_at
            AND c.last_order_at {same} changed.old_last_at
            AND c.order_count = changed.old_n
            AND c.total_spent = changed.old_spent
            AND c.lifecycle_segment = changed.old_segment
    """


def _recompute_all(changed: str, params: dict[str, Any], same: str, *, now: datetime) -> int:
    """Every customer, on PostgreSQL, in two statements: the changed rows
    into a temporary table, then the UPDATE from it.

    The first reads the orders in customer order from the covering index
    crm_order_customer and merges them with the customers' stored metrics,
    read in the same order from the covering index crm_customer_lifecycle
    (index-only: a third of the heap's pages): no hash table of a million
    groups. The planner prices that plan
    above hashing both sides, but on a warm cache it takes about half the
    time (bench/lifecycle.py prints both), so hashing is switched off for
    that statement only. The UPDATE is then planned with the real number of
    changed rows (a few thousand a night: primary-key lookups; all of them
    after a rules change: one join)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_hashagg = off")
        cursor.execute("SET LOCAL enable_hashjoin = off")
        cursor.execute(f"CREATE TEMPORARY TABLE lifecycle_changed AS {changed}", params)
        found = cursor.rowcount
        cursor.execute("SET LOCAL enable_hashagg TO DEFAULT")
        cursor.execute("SET LOCAL enable_hashjoin TO DEFAULT")
        updated = 0
        if found:
            cursor.execute("ANALYZE lifecycle_changed")
            cursor.execute(_update_sql("lifecycle_changed AS changed", same))
            updated = cursor.rowcount
            became_sleeping = RawSQL(
                "SELECT id FROM lifecycle_changed WHERE segment = %s AND old_segment <> %s",
                [LifecycleSegment.SLEEPING.value] * 2,
            )
            _journeys_sleeping_enter(
                Customer.objects.filter(
                    pk__in=became_sleeping, lifecycle_segment=LifecycleSegment.SLEEPING
                ),
                now=now,
            )
        cursor.execute("DROP TABLE lifecycle_changed")
        return updated
