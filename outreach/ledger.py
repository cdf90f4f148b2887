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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Exists, F, Q
from django.utils import timezone

from outreach.models import Delivery, DeliveryStatus, RateBucket, Send, SendStatus

PENDING = (DeliveryStatus.QUEUED, DeliveryStatus.SENDING)


def while_sending(send: Send) -> Exists:
    """A condition for a statement on the ledger: the send is sending. One
    test of the send's row for the whole statement, not a join per row; a
    pause or cancel committed before the statement holds."""
    return Exists(Send.objects.filter(pk=send.pk, status=SendStatus.SENDING))


def _due_q(now: datetime) -> Q:
    """Rows a worker may take: queued and due, or sending with a dead lease."""
    return Q(status=DeliveryStatus.QUEUED) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    ) | Q(status=DeliveryStatus.SENDING, lease_expires_at__lt=now)


class Claimed(NamedTuple):
    """A claimed ledger row, as the worker reads it: the columns it uses,
    in a tuple. (Building 500 Delivery instances a batch, every column
    converted, was a tenth of a LINE batch's time; the worker reads four
    of them.) Its status is sending, under the claim's lease: `lease`, the
    expiry the claim wrote, is also the claim's token (see Lease)."""

    pk: int
    send_id: int
    customer_id: int
    context_key: str
    attempts: int
    retry_key: uuid.UUID | None
    lease: datetime


def _claim(
    ids_queryset,
    *,
    now: datetime,
    lease_seconds: int,
    retry_key_per: str | None,
    skip_locked: bool = True,
) -> list[Claimed]:
    """Mark the rows selected by `ids_queryset` as sending under a lease and
    return them, ordered by id. `retry_key_per`: None (email), "batch" (one
    key for the whole batch: a multicast) or "row" (a key each: push).

    One statement: WITH claimed AS (the due rows, locked with SKIP LOCKED)
    UPDATE ... FROM claimed RETURNING — not a SELECT of ids, an UPDATE and
    a SELECT of the rows (three round trips a batch). `WHERE id IN
    (subquery)` would do too, but PostgreSQL plans it as a hash semi-join
    over a sequential scan of the whole ledger. A row changed meanwhile is
    checked again against the conditions before it is locked (PostgreSQL
    re-reads it), so a row that stopped being due is not taken.
    `skip_locked=False` waits for rows another worker is claiming instead of
    passing them by: for a group that must be taken whole or not at all."""
    lease = now + timedelta(seconds=lease_seconds)
    stamp = connection.ops.adapt_datetimefield_value
    quote = connection.ops.quote_name
    key_field = Delivery._meta.get_field("retry_key")
    sets, params = ["status = %s"], [DeliveryStatus.SENDING.value]
    if retry_key_per == "batch":
        # One key for the rows that have none, in the same UPDATE.
        sets.append("retry_key = COALESCE(retry_key, %s)")
        params.append(key_field.get_db_prep_value(uuid.uuid4(), connection))
    elif retry_key_per == "row" and connection.vendor == "postgresql":
        # A key each, made by the server in the same UPDATE (PostgreSQL 13+).
        sets.append("retry_key = COALESCE(retry_key, gen_random_uuid())")
    sets += ["lease_expires_at = %s", "attempts = attempts + 1", "updated_at = %s"]
    params += [stamp(lease), stamp(now)]
    table = quote(Delivery._meta.db_table)
    columns = [Delivery._meta.get_field(name).column for name in Claimed._fields[1:-1]]
    returning = ", ".join(f"{table}.{quote(column)}" for column in ["id", *columns])
    with transaction.atomic():
        if not skip_locked:
            ids_queryset = ids_queryset.select_for_update(of=("self",))
        elif connection.features.has_select_for_update_skip_locked:
            ids_queryset = ids_queryset.select_for_update(skip_locked=True, of=("self",))
        ids_sql, ids_params = ids_queryset.values("id").query.sql_with_params()
        sql = f"""
            WITH claimed (id) AS ({ids_sql})
            UPDATE {table} SET {", ".join(sets)}
            FROM claimed WHERE {table}.id = claimed.id
            RETURNING {returning}
        """
        with connection.cursor() as cursor:
            cursor.execute(sql, [*ids_params, *params])
            # A uuid column on PostgreSQL, 32 hex digits on SQLite.
            rows = sorted(
                Claimed(*row[:-1], key_field.to_python(row[-1]), lease) for row in cursor.fetchall()
            )
        if retry_key_per == "row" and any(row.retry_key is None for row in rows):
            # Elsewhere (SQLite) the keys are made here and written back.
            rows = [row._replace(retry_key=row.retry_key or uuid.uuid4()) for row in rows]
            Delivery.objects.bulk_update(
                [Delivery(pk=row.pk, retry_key=row.retry_key) for row in rows], ["retry_key"]
            )
    return rows


def delivery_claim_batch(
    *,
    send: Send,
    limit: int,
    now: datetime,
    retry_key_per: str | None = None,
    lease_seconds: int | None = None,
) -> list[Claimed]:
    """Claim up to `limit` due rows of `send`. For LINE, an in-doubt group
    (rows sharing a retry key) is claimed whole, before any fresh rows."""
    lease_seconds = lease_seconds or settings.DELIVERY_LEASE_SECONDS
    # Only while the send is sending, whatever the worker read a moment ago.
    due = Delivery.objects.filter(while_sending(send), send=send).filter(_due_q(now))
    if retry_key_per:
        # Through the partial index outreach_delivery_in_doubt: only rows
        # with a key that are not settled (in flight or in doubt).
        in_doubt = due.filter(retry_key__isnull=False).order_by("next_attempt_at", "id")
        key = list(in_doubt.values_list("retry_key", flat=True)[:1])
        if key:
            # Whole or not at all: with SKIP LOCKED two workers could each
            # take part of the group and both send under its one retry key
            # (LINE answers the second 409, and half the recipients never
            # get the message). Locking in id order, the second worker waits
            # for the first's claim, then finds the rows leased, not due.
            group = due.filter(retry_key=key[0]).order_by("id")
            rows = _claim(
                group, now=now, lease_seconds=lease_seconds, retry_key_per=None, skip_locked=False
            )
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


class Lease:
    """A worker's hold on the rows of one claim.

    The rows are `sending` until their lease expires; the expiry the claim
    wrote is also its token: a row is this worker's while its
    `lease_expires_at` is the token. `held(pk)`, asked before each message,
    renews the lease of the whole batch once a third of it has passed, so a
    slow server never lets another worker take rows this one is still
    sending. A row this worker lost (it stalled past the expiry and another
    worker claimed the row) is neither sent nor recorded by it, except as
    sent when it was. Successive holders of a row have growing tokens (a row
    is claimed again only after its lease expired, and renewed only while
    held), so a stale worker's token never matches.
    """

    def __init__(
        self,
        rows: Sequence[Claimed],
        *,
        seconds: int | None = None,
        now_fn: Callable[[], datetime] = timezone.now,
    ) -> None:
        self.ids = {row.pk for row in rows}
        self.token = rows[0].lease if rows else None
        self.seconds = seconds or settings.DELIVERY_LEASE_SECONDS
        self.now_fn = now_fn
        self._confirmed = time.monotonic()

    def held(self, pk: int) -> bool:
        """Whether row `pk` is still this worker's (renewing when due)."""
        if time.monotonic() - self._confirmed >= self.seconds / 3:
            self.renew()
        return pk in self.ids

    def renew(self) -> None:
        """Extend the lease of the rows still held; forget the others."""
        if self.ids:
            token = self.now_fn() + timedelta(seconds=self.seconds)
            ids = list(self.ids)
            renewed = self.rows(ids).update(lease_expires_at=token)
            self.token = token
            if renewed < len(ids):
                self.ids = set(self.rows(ids).values_list("pk", flat=True))
        self._confirmed = time.monotonic()

    def rows(self, ids: Iterable[int]):
        """The rows among `ids` this claim still holds, for a statement."""
        return Delivery.objects.filter(
            pk__any_of=list(ids), status=DeliveryStatus.SENDING, lease_expires_at=self.token
        )


# --- Outcomes ------------------------------------------------------------------


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
    )


def _mark_sent_each(rows: Sequence[Claimed], *, now: datetime, provider_ids: dict[int, str]):
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


def delivery_mark_failed(
    rows: Sequence[Claimed], *, error: str, now: datetime, lease: Lease
) -> None:
    if rows:
        lease.rows(row.pk for row in rows).update(
            status=DeliveryStatus.FAILED,
            last_error=error[:2000],
            lease_expires_at=None,
            updated_at=now,
        )


def delivery_mark_deferred(
    rows: Sequence[Claimed], *, error: str, now: datetime, lease: Lease
) -> None:
    """Rows that were never attempted (the server could not be reached, a
    rate limit): back to the queue after the base backoff, the attempt
    given back."""
    if rows:
        lease.rows(row.pk for row in rows).update(
            status=DeliveryStatus.QUEUED,
            attempts=F("attempts") - 1,
            next_attempt_at=now + timedelta(seconds=settings.DELIVERY_BACKOFF_SECONDS),
            lease_expires_at=None,
            last_error=error[:2000],
            updated_at=now,
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
    base = settings.DELIVERY_BACKOFF_SECONDS
    delay = min(base * (2 ** max(attempts - 1, 0)), settings.DELIVERY_BACKOFF_MAX_SECONDS)
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
    attempts are used up, failed (or unknown when the message may have gone
    out: `in_doubt`)."""
    if not rows:
        return
    exhausted = [row for row in rows if row.attempts >= settings.DELIVERY_MAX_ATTEMPTS]
    retry = [row for row in rows if row.attempts < settings.DELIVERY_MAX_ATTEMPTS]
    if exhausted:
        lease.rows(row.pk for row in exhausted).update(
            status=DeliveryStatus.UNKNOWN if in_doubt else DeliveryStatus.FAILED,
            last_error=f"{error} (gave up after {settings.DELIVERY_MAX_ATTEMPTS} attempts)"[:2000],
            lease_expires_at=None,
            updated_at=now,
        )
    if retry:
        # One group (a multicast) retries together, at one time.
        wait = delay if delay is not None else backoff_seconds(max(row.attempts for row in retry))
        lease.rows(row.pk for row in retry).update(
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


def sends_progress(send_ids: Iterable[int]) -> dict[int, SendProgress]:
    """Each send's counts by status and skip reason, in one query (a
    changelist page of campaigns); a send without rows counts zero."""
    send_ids = list(send_ids)
    counts: dict[int, tuple[dict[str, int], dict[str, int]]] = {i: ({}, {}) for i in send_ids}
    rows = (
        Delivery.objects.filter(send_id__in=send_ids)
        .values("send_id", "status", "skip_reason")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        by_status, by_reason = counts[row["send_id"]]
        by_status[row["status"]] = by_status.get(row["status"], 0) + row["n"]
        if row["skip_reason"]:
            by_reason[row["skip_reason"]] = row["n"]
    return {
        send_id: SendProgress(sum(by_status.values()), by_status, by_reason)
        for send_id, (by_status, by_reason) in counts.items()
    }


def send_progress(send: Send) -> SendProgress:
    """Counts by status and skip reason, in one query."""
    return sends_progress([send.pk])[send.pk]


# --- Rate limits shared by every worker ----------------------------------------------


def rate_acquire(
    name: str, *, rate_per_second: float, tokens: float = 1.0, burst: float | None = None
) -> None:
    """Take `tokens` from the shared bucket `name`, sleeping until they are
    there. The bucket is one row; its lock is held only for the update."""
    burst = burst if burst is not None else max(rate_per_second, tokens)
    if connection.vendor == "postgresql" and _rate_take(name, rate_per_second, tokens, burst):
        return
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


def _rate_take(name: str, rate_per_second: float, tokens: float, burst: float) -> bool:
    """The common case of rate_acquire in one statement: refill the bucket
    for the time elapsed and take the tokens if they are there (False: the
    bucket is missing or short; the caller waits). The row lock of the
    UPDATE serialises workers as SELECT ... FOR UPDATE did, without its
    transaction (four round trips a batch, not one)."""
    table = connection.ops.quote_name(RateBucket._meta.db_table)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    available = (
        "LEAST(%s, tokens + GREATEST("
        "EXTRACT(EPOCH FROM (%s::timestamptz - updated_at))::float8, 0) * %s)"
    )
    sql = f"""
        UPDATE {table} SET tokens = {available} - %s, updated_at = %s
        WHERE name = %s AND {available} >= %s
    """
    refill = [burst, now, rate_per_second]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*refill, tokens, now, name, *refill, tokens])
        return cursor.rowcount == 1
