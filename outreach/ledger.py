"""The delivery ledger: claiming work with a lease and recording outcomes.

A worker claims a small batch of due rows of one send with a conditional
UPDATE (`FOR UPDATE SKIP LOCKED` on PostgreSQL), marking them `sending`
with a lease. A crashed worker's rows come back when the lease expires.

LINE rows carry a retry key stored *before* the request. Rows that already
have one are an earlier request whose outcome is not known (a crash, a
timeout, a 5xx): they are claimed together, as the same group, and sent
again with the same key, so LINE either accepts them now or answers 409
"already accepted" — never a second message.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Min, Q, UUIDField, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from outreach.models import Delivery, DeliveryStatus, RateBucket, Send, SendStatus

PENDING = (DeliveryStatus.QUEUED, DeliveryStatus.SENDING)


def _due_q(now: datetime) -> Q:
    """Rows a worker may take: queued and due, or sending with a dead lease."""
    return Q(status=DeliveryStatus.QUEUED) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    ) | Q(status=DeliveryStatus.SENDING, lease_expires_at__lt=now)


def _claim(ids_queryset, *, now: datetime, lease_seconds: int, retry_key_per: str | None):
    """Mark the rows selected by `ids_queryset` as sending under a lease and
    return them. `retry_key_per`: None (email), "batch" (one key for the
    whole batch: a multicast) or "row" (a key each: push)."""
    lease = now + timedelta(seconds=lease_seconds)
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            ids_queryset = ids_queryset.select_for_update(skip_locked=True, of=("self",))
        ids = list(ids_queryset.values_list("id", flat=True))
        if not ids:
            return []
        claim = {
            "status": DeliveryStatus.SENDING,
            "lease_expires_at": lease,
            "attempts": F("attempts") + 1,
            "updated_at": now,
        }
        if retry_key_per == "batch":
            # One key for the rows that have none, in the same UPDATE (a
            # second UPDATE of 500 rows cost as much as the claim itself).
            key = Value(uuid.uuid4(), output_field=UUIDField())
            claim["retry_key"] = Coalesce(F("retry_key"), key)
        Delivery.objects.filter(_due_q(now), pk__in=ids).update(**claim)
        rows = list(
            Delivery.objects.filter(
                pk__in=ids, status=DeliveryStatus.SENDING, lease_expires_at=lease
            ).order_by("id")
        )
        keyless = [row for row in rows if row.retry_key is None]
        if retry_key_per == "row" and keyless:
            for row in keyless:
                row.retry_key = uuid.uuid4()
            Delivery.objects.bulk_update(keyless, ["retry_key"])
    return rows


def delivery_claim_batch(
    *,
    send: Send,
    limit: int,
    now: datetime,
    retry_key_per: str | None = None,
    lease_seconds: int | None = None,
) -> list[Delivery]:
    """Claim up to `limit` due rows of `send`. For LINE, an in-doubt group
    (rows sharing a retry key) is claimed whole, before any fresh rows."""
    lease_seconds = lease_seconds or settings.DELIVERY_LEASE_SECONDS
    # Only while the send is sending: a pause or cancel committed before
    # this claim holds, whatever the worker read a moment ago.
    due = Delivery.objects.filter(send=send, send__status=SendStatus.SENDING).filter(_due_q(now))
    if retry_key_per:
        in_doubt = due.filter(retry_key__isnull=False).order_by("id").values("retry_key")[:1]
        key = list(in_doubt.values_list("retry_key", flat=True))
        if key:
            group = due.filter(retry_key=key[0]).order_by("id")
            rows = _claim(group, now=now, lease_seconds=lease_seconds, retry_key_per=None)
            if rows:
                return rows
        due = due.filter(retry_key__isnull=True)
    # In the order of the partial queue index (send, next_attempt_at, id):
    # retries that are due, then fresh rows by id. ORDER BY id alone walks
    # the primary key past every row already sent (O(n) a batch, O(n²) a send).
    return _claim(
        due.order_by("next_attempt_at", "id")[:limit],
        now=now,
        lease_seconds=lease_seconds,
        retry_key_per=retry_key_per,
    )


# --- Outcomes ------------------------------------------------------------------


def delivery_mark_sent(
    rows: Sequence[Delivery], *, now: datetime, provider_id: str | dict[int, str] = ""
) -> None:
    """Record rows as sent. `provider_id`: one id for all (a LINE request)
    or one per row (email Message-IDs)."""
    if not rows:
        return
    if isinstance(provider_id, dict):
        distinct = {provider_id.get(row.pk, "") for row in rows}
        if len(distinct) > 1:
            _mark_sent_each(rows, now=now, provider_ids=provider_id)
            return
        provider_id = distinct.pop()  # one request for all (a multicast): one plain UPDATE
    Delivery.objects.filter(pk__in=[row.pk for row in rows]).update(
        status=DeliveryStatus.SENT,
        sent_at=now,
        lease_expires_at=None,
        provider_message_id=provider_id[:255],
        last_error="",
        updated_at=now,
    )


def _mark_sent_each(rows: Sequence[Delivery], *, now: datetime, provider_ids: dict[int, str]):
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


def delivery_mark_failed(rows: Sequence[Delivery], *, error: str, now: datetime) -> None:
    if rows:
        Delivery.objects.filter(pk__in=[row.pk for row in rows]).update(
            status=DeliveryStatus.FAILED,
            last_error=error[:2000],
            lease_expires_at=None,
            updated_at=now,
        )


def delivery_mark_skipped(ids: Iterable[int], *, reason: str, now: datetime) -> int:
    ids = list(ids)
    if not ids:
        return 0
    return Delivery.objects.filter(pk__in=ids, status__in=PENDING).update(
        status=DeliveryStatus.SKIPPED, skip_reason=reason, lease_expires_at=None, updated_at=now
    )


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with jitter: base, 2×base, 4×base... capped."""
    base = settings.DELIVERY_BACKOFF_SECONDS
    delay = min(base * (2 ** max(attempts - 1, 0)), settings.DELIVERY_BACKOFF_MAX_SECONDS)
    return delay * random.uniform(0.8, 1.2)


def delivery_mark_retry(
    rows: Sequence[Delivery],
    *,
    error: str,
    now: datetime,
    delay: float | None = None,
    in_doubt: bool = False,
) -> None:
    """A transient error: back to the queue after a backoff, or, once the
    attempts are used up, failed (or unknown when the message may have gone
    out: `in_doubt`)."""
    if not rows:
        return
    exhausted = [row for row in rows if row.attempts >= settings.DELIVERY_MAX_ATTEMPTS]
    retry = [row for row in rows if row.attempts < settings.DELIVERY_MAX_ATTEMPTS]
    if exhausted:
        Delivery.objects.filter(pk__in=[row.pk for row in exhausted]).update(
            status=DeliveryStatus.UNKNOWN if in_doubt else DeliveryStatus.FAILED,
            last_error=f"{error} (gave up after {settings.DELIVERY_MAX_ATTEMPTS} attempts)"[:2000],
            lease_expires_at=None,
            updated_at=now,
        )
    if retry:
        # One group (a multicast) retries together, at one time.
        wait = delay if delay is not None else backoff_seconds(max(row.attempts for row in retry))
        Delivery.objects.filter(pk__in=[row.pk for row in retry]).update(
            status=DeliveryStatus.QUEUED,
            next_attempt_at=now + timedelta(seconds=wait),
            last_error=error[:2000],
            lease_expires_at=None,
            updated_at=now,
        )


# --- Progress ----------------------------------------------------------------------


@dataclass(frozen=True)
class SendProgress:
    total: int
    by_status: dict[str, int]
    by_reason: dict[str, int]

    @property
    def done(self) -> int:
        return self.total - sum(self.by_status.get(s, 0) for s in PENDING)

    @property
    def percent(self) -> int:
        return 100 if not self.total else int(100 * self.done / self.total)

    @property
    def pending(self) -> int:
        return self.total - self.done


def send_progress(send: Send) -> SendProgress:
    """Counts by status and skip reason, in one query."""
    by_status: dict[str, int] = {}
    by_reason: dict[str, int] = {}
    rows = (
        Delivery.objects.filter(send=send).values("status", "skip_reason").annotate(n=Count("id"))
    )
    for row in rows.order_by():
        by_status[row["status"]] = by_status.get(row["status"], 0) + row["n"]
        if row["skip_reason"]:
            by_reason[row["skip_reason"]] = row["n"]
    return SendProgress(total=sum(by_status.values()), by_status=by_status, by_reason=by_reason)


def send_next_due(send: Send) -> datetime | None:
    """When the send's next row is due (None: nothing pending)."""
    pending = Delivery.objects.filter(send=send, status__in=PENDING).aggregate(
        queued=Min("next_attempt_at", filter=Q(status=DeliveryStatus.QUEUED)),
        lease=Min("lease_expires_at", filter=Q(status=DeliveryStatus.SENDING)),
        n=Count("id"),
    )
    if not pending["n"]:
        return None
    times = [t for t in (pending["queued"], pending["lease"]) if t is not None]
    return min(times) if times else timezone.now()


# --- Rate limits shared by every worker ----------------------------------------------


def rate_acquire(
    name: str, *, rate_per_second: float, tokens: float = 1.0, burst: float | None = None
) -> None:
    """Take `tokens` from the shared bucket `name`, sleeping until they are
    there. The bucket is one row; its lock is held only for the update."""
    burst = burst if burst is not None else max(rate_per_second, tokens)
    while True:
        with transaction.atomic():
            bucket = RateBucket.objects.select_for_update().filter(name=name).first()
            now = timezone.now()
            if bucket is None:
                RateBucket.objects.bulk_create(
                    [RateBucket(name=name, tokens=burst, updated_at=now)], ignore_conflicts=True
                )
                continue
            elapsed = max((now - bucket.updated_at).total_seconds(), 0.0)
            available = min(burst, bucket.tokens + elapsed * rate_per_second)
            if available >= tokens:
                bucket.tokens = available - tokens
                bucket.updated_at = now
                bucket.save(update_fields=["tokens", "updated_at"])
                return
            wait = (tokens - available) / rate_per_second
        time.sleep(min(wait, 1.0))
