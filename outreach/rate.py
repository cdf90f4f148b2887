"""Rate limits shared by every worker: token buckets in the database (one
row per limit, taken with a row lock), and the pause a 429 imposes on
them."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from outreach.models import RateBucket


def rate_acquire(
    name: str,
    *,
    rate_per_second: float,
    tokens: float = 1.0,
    burst: float | None = None,
    now: datetime | None = None,
) -> datetime | None:
    """Take `tokens` from the shared bucket `name`, sleeping until they are
    there. The bucket is one row; its lock is held only for the update.
    A paused bucket (see rate_pause) gives nothing: returns until when
    (compared with `now`, the caller's clock), else None."""
    burst = burst if burst is not None else max(rate_per_second, tokens)
    if connection.vendor == "postgresql" and _rate_take(
        name, rate_per_second, tokens, burst, now or timezone.now()
    ):
        return None
    while True:
        with transaction.atomic():
            bucket = RateBucket.objects.select_for_update().filter(name=name).first()
            clock = timezone.now()
            if bucket is None:
                RateBucket.objects.bulk_create(
                    [RateBucket(name=name, tokens=burst, updated_at=clock)], ignore_conflicts=True
                )
                continue
            if bucket.paused_until is not None and bucket.paused_until > (now or clock):
                return bucket.paused_until
            elapsed = max((clock - bucket.updated_at).total_seconds(), 0.0)
            available = min(burst, bucket.tokens + elapsed * rate_per_second)
            if available >= tokens:
                bucket.tokens = available - tokens
                bucket.updated_at = clock
                bucket.save(update_fields=["tokens", "updated_at"])
                return None
            wait = (tokens - available) / rate_per_second
        time.sleep(min(wait, 1.0))


def rate_pause(names: Sequence[str], *, until: datetime) -> None:
    """Hold the shared buckets `names` until `until` (the provider answered
    429 with Retry-After): no worker sends on them before then. A shorter
    pause never cuts a longer one short."""
    RateBucket.objects.bulk_create(
        [RateBucket(name=name, tokens=0.0, updated_at=timezone.now()) for name in names],
        ignore_conflicts=True,
    )
    RateBucket.objects.filter(name__in=names).filter(
        Q(paused_until__isnull=True) | Q(paused_until__lt=until)
    ).update(paused_until=until)


def rate_paused_until(names: Sequence[str], *, now: datetime) -> datetime | None:
    """Until when a worker must not send on any of the buckets `names`
    (None: it may send now). One primary-key read."""
    return (
        RateBucket.objects.filter(name__in=names, paused_until__gt=now)
        .order_by("-paused_until")
        .values_list("paused_until", flat=True)
        .first()
    )


def _rate_take(
    name: str, rate_per_second: float, tokens: float, burst: float, now: datetime
) -> bool:
    """The common case of rate_acquire in one statement: refill the bucket
    for the time elapsed and take the tokens if they are there and the
    bucket is not paused at `now` (False: the bucket is missing, short or
    paused; the caller finds out which). The row lock of the UPDATE
    serialises workers as SELECT ... FOR UPDATE did, without its
    transaction (four round trips a batch, not one)."""
    table = connection.ops.quote_name(RateBucket._meta.db_table)
    clock = connection.ops.adapt_datetimefield_value(timezone.now())
    available = (
        "LEAST(%s, tokens + GREATEST("
        "EXTRACT(EPOCH FROM (%s::timestamptz - updated_at))::float8, 0) * %s)"
    )
    sql = f"""
        UPDATE {table} SET tokens = {available} - %s, updated_at = %s
        WHERE name = %s AND {available} >= %s
            AND (paused_until IS NULL OR paused_until <= %s::timestamptz)
    """
    refill = [burst, clock, rate_per_second]
    paused_at = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*refill, tokens, clock, name, *refill, tokens, paused_at])
        return cursor.rowcount == 1
