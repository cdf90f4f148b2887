"""Recording the outcome of claimed rows: sent, failed, deferred, unknown, skipped, and retry
with backoff.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Case, F, Value, When

from outreach.ledger.claims import PENDING, Claimed, request_columns
from outreach.ledger.lease import Lease
from outreach.models import (
    Delivery,
    DeliveryStatus,
)


def delivery_mark_sent(
    rows: Sequence[Claimed], *, now: datetime, provider_id: str | dict[int, str] = ""
) -> None:
    """Record rows as sent. `provider_id`: one id for all (a LINE request)
    or one per row (email Message-IDs). By id, whoever holds a row now: a
    message that went out is sent, even from a worker that lost its lease."""
    if not rows:
        return
    if isinstance(provider_id, dict):
        distinct = {provider_id.get(row.pk, "") for row in rows}
        if len(distinct) > 1:
            _mark_sent_each(rows, now=now, provider_ids=provider_id)
            return
        provider_id = distinct.pop()  # one request for all (a multicast): one plain UPDATE
    Delivery.objects.filter(pk__any_of=[row.pk for row in rows]).update(
        status=DeliveryStatus.SENT,
        sent_at=now,
        lease_expires_at=None,
        provider_message_id=provider_id[:255],
        last_error="",
        updated_at=now,
        **request_columns(rows[0]),
    )


@contextmanager
def delivery_sent_writer() -> Iterator[Callable[..., None]]:
    """A function recording one row as sent, as soon as its provider
    accepted it: what an email worker calls after each message's 250,
    before the next message's DATA, so that a crash repeats at most the
    message in progress on each open SMTP connection (never the rest of its
    batch). One short statement of a fixed text (prepared once per
    connection) on one cursor for the batch: a cursor per row was a third
    of the write's time in the worker. By id, like delivery_mark_sent."""
    table = connection.ops.quote_name(Delivery._meta.db_table)
    sql = f"""
        UPDATE {table}
        SET status = %s, sent_at = %s, lease_expires_at = NULL, last_error = '',
            updated_at = %s, provider_message_id = %s
        WHERE id = %s
    """
    stamp = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:

        def mark_sent(pk: int, *, now: datetime, provider_id: str) -> None:
            at = stamp(now)
            cursor.execute(sql, [DeliveryStatus.SENT.value, at, at, provider_id[:255], pk])

        yield mark_sent


def _mark_sent_each(
    rows: Sequence[Claimed], *, now: datetime, provider_ids: dict[int, str]
) -> None:
    """One UPDATE for rows with an id each (email Message-IDs), the ids
    joined from a VALUES list. (bulk_update builds a CASE WHEN per row and
    field; resolving them was most of a batch's time, more than SMTP.)"""
    values = ", ".join(["(%s, %s)"] * len(rows))
    params: list = []
    for row in rows:
        params += [row.pk, provider_ids.get(row.pk, "")[:255]]
    stamp = connection.ops.adapt_datetimefield_value(now)
    table = connection.ops.quote_name(Delivery._meta.db_table)
    sql = f"""
        WITH v (id, provider_id) AS (VALUES {values})
        UPDATE {table}
        SET status = %s, sent_at = %s, lease_expires_at = NULL, last_error = '',
            updated_at = %s,
            provider_message_id = (SELECT v.provider_id FROM v WHERE v.id = {table}.id)
        WHERE id IN (SELECT v.id FROM v)
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, DeliveryStatus.SENT.value, stamp, stamp])


def _mark_final(
    rows: Sequence[Claimed],
    *,
    status: str,
    error: str,
    now: datetime,
    lease: Lease,
    **fields: Any,
) -> None:
    """Give the rows this claim still holds their final `status`."""
    if rows:
        with lease.writing():
            lease.rows(row.pk for row in rows).update(
                status=status,
                last_error=error[:2000],
                lease_expires_at=None,
                updated_at=now,
                **fields,
                **lease.written,
            )


def delivery_mark_failed(
    rows: Sequence[Claimed], *, error: str, now: datetime, lease: Lease
) -> None:
    _mark_final(rows, status=DeliveryStatus.FAILED, error=error, now=now, lease=lease)


def delivery_mark_deferred(
    rows: Sequence[Claimed], *, error: str, now: datetime, lease: Lease, delay: float | None = None
) -> None:
    """Rows that were never attempted (the server could not be reached, a
    rate limit): back to the queue after `delay` seconds (the base backoff
    when None), the attempt given back."""
    if rows:
        wait = settings.DELIVERY_BACKOFF_SECONDS if delay is None else delay
        at = now + timedelta(seconds=wait)
        # A multicast's attempts are its request's, given back there.
        given_back = {} if lease.request_id else {"attempts": F("attempts") - 1}
        with lease.writing():
            lease.rows(row.pk for row in rows).update(
                status=DeliveryStatus.QUEUED,
                next_attempt_at=at,
                lease_expires_at=None,
                last_error=error[:2000],
                updated_at=now,
                **given_back,
            )
            lease.reschedule(at, attempt_given_back=True)


def delivery_mark_unknown(
    rows: Sequence[Claimed], *, error: str, now: datetime, lease: Lease
) -> None:
    """Rows that may have gone out and cannot be sent again safely (a LINE
    reply without an answer: the Reply API takes no retry key): unknown,
    in doubt, never tried again."""
    _mark_final(
        rows, status=DeliveryStatus.UNKNOWN, error=error, now=now, lease=lease, in_doubt=True
    )


def delivery_mark_skipped(ids: Iterable[int], *, reason: str, now: datetime) -> int:
    ids = list(ids)
    if not ids:
        return 0
    return Delivery.objects.filter(pk__any_of=ids, status__in=PENDING).update(
        status=DeliveryStatus.SKIPPED, skip_reason=reason, lease_expires_at=None, updated_at=now
    )


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with jitter: base, 2×base, 4×base... capped."""
    base: float = settings.DELIVERY_BACKOFF_SECONDS
    delay: float = min(base * (2 ** max(attempts - 1, 0)), settings.DELIVERY_BACKOFF_MAX_SECONDS)
    return delay * random.uniform(0.8, 1.2)


def delivery_mark_retry(
    rows: Sequence[Claimed],
    *,
    error: str,
    now: datetime,
    delay: float | None = None,
    in_doubt: bool = False,
    lease: Lease,
) -> None:
    """A transient error: back to the queue after a backoff, or, once the
    attempts are used up, failed — or unknown when the message may have gone
    out, at this attempt (`in_doubt`) or at an earlier one (the row's
    `in_doubt`, which this keeps)."""
    if not rows:
        return
    exhausted = [row for row in rows if row.attempts >= settings.DELIVERY_MAX_ATTEMPTS]
    retry = [row for row in rows if row.attempts < settings.DELIVERY_MAX_ATTEMPTS]
    doubt = {"in_doubt": True} if in_doubt else {}
    if exhausted:
        gave_up = f"{error} (gave up after {settings.DELIVERY_MAX_ATTEMPTS} attempts)"
        with lease.writing():
            lease.rows(row.pk for row in exhausted).update(
                status=Case(
                    When(in_doubt=True, then=Value(DeliveryStatus.UNKNOWN)),
                    default=Value(DeliveryStatus.UNKNOWN if in_doubt else DeliveryStatus.FAILED),
                ),
                last_error=gave_up[:2000],
                lease_expires_at=None,
                updated_at=now,
                **doubt,
                **lease.written,
            )
    if retry:
        # One group (a multicast) retries together, at one time.
        wait = delay if delay is not None else backoff_seconds(max(row.attempts for row in retry))
        at = now + timedelta(seconds=wait)
        with lease.writing():
            lease.rows(row.pk for row in retry).update(
                status=DeliveryStatus.QUEUED,
                next_attempt_at=at,
                last_error=error[:2000],
                lease_expires_at=None,
                updated_at=now,
                **doubt,
                **lease.written,
            )
            lease.reschedule(at)
