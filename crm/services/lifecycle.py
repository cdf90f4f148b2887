"""Lifecycle metrics and segments (SPEC rule 7)."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import nullcontext
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from crm.models import (
    NON_COUNTING_ORDER_STATUSES,
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
        # Joined plainly to `changed`, PostgreSQL would scan and hash the
        # whole customer table a second time (it cannot know that few rows
        # changed); given the changed ids as an array, it looks each one up
        # by primary key.
        prefix = f"WITH changed AS ({changed})"
        source, only_changed = "changed", "AND c.id = ANY(ARRAY(SELECT id FROM changed))"
    else:
        # A plain UPDATE statement: SQLite reports rowcount only for those.
        prefix, source, only_changed = "", f"({changed}) AS changed", ""
    # The old_* conditions skip a customer whose metrics another transaction
    # changed after `changed` was read (an order upsert during the nightly
    # run): its newer figures stay.
    sql = f"""
        {prefix}
        UPDATE crm_customer AS c SET
            first_order_at = changed.first_at,
            last_order_at = changed.last_at,
            order_count = changed.n,
            total_spent = changed.spent,
            lifecycle_segment = changed.segment
        FROM {source}
        WHERE c.id = changed.id {only_changed}
            AND c.first_order_at {same} changed.old_first_at
            AND c.last_order_at {same} changed.old_last_at
            AND c.order_count = changed.old_n
            AND c.total_spent = changed.old_spent
            AND c.lifecycle_segment = changed.old_segment
    """
    full_run = postgres and ids is None
    with transaction.atomic() if full_run else nullcontext(), connection.cursor() as cursor:
        if full_run:
            # Read the orders in customer order from the covering index
            # crm_order_customer and merge them with the customer table's
            # primary key: no hash table of a million groups. The planner
            # prices that plan above hashing both sides, but on a warm cache
            # it takes about half the time (bench/lifecycle.py prints both).
            cursor.execute("SET LOCAL enable_hashagg = off")
            cursor.execute("SET LOCAL enable_hashjoin = off")
        cursor.execute(sql, params)
        return cursor.rowcount
