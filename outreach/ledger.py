"""The delivery ledger: claiming work with a lease and recording outcomes.

A worker claims a small batch of due rows of one send with a conditional
UPDATE (`FOR UPDATE SKIP LOCKED` on PostgreSQL), marking them `sending`
with a lease. A crashed worker's rows come back when the lease expires.

LINE requests carry a retry key stored *before* the request. A request
that already has one is an earlier request whose outcome is not known (a
crash, a timeout, a 5xx): it is claimed whole, as the same group, and sent
again with the same key, so LINE either accepts it now or answers 409
"already accepted" — never a second message. A push's key is on its row;
a multicast's is on its MulticastRequest, which is what its claim writes
(see `_claim_multicast`).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, Exists, F, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from outreach.models import (
    Delivery,
    DeliveryStatus,
    MulticastRequest,
    Send,
    SendStatus,
)

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
    expiry the claim wrote, is also the claim's token (see Lease). A row of
    a multicast stays queued: `request_id` is its MulticastRequest, whose
    attempts, key and lease these are."""

    pk: int
    send_id: int
    customer_id: int
    context_key: str
    attempts: int
    retry_key: uuid.UUID | None
    lease: datetime
    request_id: int | None = None


def _claim(
    ids_queryset: QuerySet[Delivery],
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
    params: list[Any]
    sets, params = ["status = %s"], [DeliveryStatus.SENDING.value]
    if retry_key_per == "batch":
        # One key for the rows that have none, in the same UPDATE.
        sets.append("retry_key = COALESCE(retry_key, %s)")
        params.append(key_field.get_db_prep_value(uuid.uuid4(), connection))
    elif retry_key_per == "row" and connection.vendor == "postgresql":
        # A key each, made by the server in the same UPDATE (PostgreSQL 13+).
        sets.append("retry_key = COALESCE(retry_key, gen_random_uuid())")
    # A row taken over from a worker whose lease ran out (still `sending`:
    # the right-hand side reads the row as it was) may have gone out.
    sets.append("in_doubt = (in_doubt OR status = %s)")
    params.append(DeliveryStatus.SENDING.value)
    sets += ["lease_expires_at = %s", "attempts = attempts + 1", "updated_at = %s"]
    params += [stamp(lease), stamp(now)]
    table = quote(Delivery._meta.db_table)
    # The row's own columns: Claimed's fields from send_id to retry_key.
    columns: list[str] = [Delivery._meta.get_field(name).column for name in Claimed._fields[1:-2]]  # type: ignore[union-attr, misc]  # concrete fields, which have a column
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
                Claimed(*row[:-1], key_field.to_python(row[-1]), lease)  # type: ignore[call-arg]  # mypy counts a star argument as filling every field
                for row in cursor.fetchall()
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
    (rows sharing a retry key; a multicast's request) is claimed whole,
    before any fresh rows. `retry_key_per="batch"` (a multicast): see
    `_claim_multicast`."""
    lease_seconds = lease_seconds or settings.DELIVERY_LEASE_SECONDS
    if retry_key_per == "batch":
        return _claim_multicast(send, limit=limit, now=now, lease_seconds=lease_seconds)
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


_CLAIMED_COLUMNS = ("id", "send_id", "customer_id", "context_key")


def _claim_multicast(send: Send, *, limit: int, now: datetime, lease_seconds: int) -> list[Claimed]:
    """Claim the next multicast of `send`: an open request that is due (a
    retry whose time has come, or one whose worker's lease expired: in
    doubt), else up to `limit` fresh rows under a new request.

    Writes one MulticastRequest row, not the rows it names. Fresh rows are
    the send's queued, due rows past the highest id of its requests, taken
    by id; new requests of a send are made one at a time (the send's row
    is locked for it, which also checks it is still sending). Rows left
    behind — queued, due, below that mark and in no open request (a row
    that was not due when the claims passed it, or whose request settled
    without it) — are taken when no fresh row is left."""
    lease = now + timedelta(seconds=lease_seconds)
    while True:
        with transaction.atomic():
            request = _claim_open_request(send, now=now, lease=lease)
            if request is not None:
                rows = _claimed_rows(
                    Delivery.objects.filter(
                        pk__any_of=request.delivery_ids, status=DeliveryStatus.QUEUED
                    ),
                    request=request,
                )
                if rows:
                    return rows
                # Nothing of it is queued any more: its rows were recorded
                # meanwhile (sent by a worker that had lost the lease).
                MulticastRequest.objects.filter(pk=request.pk).update(
                    settled_at=now, lease_expires_at=None
                )
                continue
            return _claim_fresh(send, limit=limit, now=now, lease=lease)


def _claim_open_request(send: Send, *, now: datetime, lease: datetime) -> MulticastRequest | None:
    """Take the first due open request of `send` (skipping one another
    worker is taking), counting an attempt and writing the lease."""
    found = (
        MulticastRequest.objects.filter(
            while_sending(send), send=send, settled_at__isnull=True, next_attempt_at__lte=now
        )
        .order_by("next_attempt_at", "id")
        .only("attempts", "retry_key", "delivery_ids", "lease_expires_at")
    )
    if connection.features.has_select_for_update_skip_locked:
        found = found.select_for_update(skip_locked=True)
    request = found.first()
    if request is None:
        return None
    if request.lease_expires_at is not None:
        # Taken over from a worker whose lease ran out during the request
        # (a rescheduled one has none): its rows may have gone out.
        Delivery.objects.filter(
            pk__any_of=request.delivery_ids, status=DeliveryStatus.QUEUED
        ).update(in_doubt=True)
    MulticastRequest.objects.filter(pk=request.pk).update(
        attempts=F("attempts") + 1, lease_expires_at=lease, next_attempt_at=lease
    )
    request.attempts += 1
    request.lease_expires_at = lease
    return request


def request_columns(request: Claimed | MulticastRequest) -> dict:
    """What a multicast's rows carry once they have an outcome: its
    request's key and attempts (nothing for a row claimed on its own)."""
    if isinstance(request, Claimed) and request.request_id is None:
        return {}
    return {"attempts": request.attempts, "retry_key": request.retry_key}


def sends_lock(sends: QuerySet[Send]) -> list[int]:
    """Lock the rows of `sends` (a Send queryset) against claims, in the
    caller's transaction: a new multicast request of a send is made only
    under this lock, so once it is held, every open request is visible and
    no new one appears until the caller commits. Returns the ids locked."""
    return list(sends.order_by("pk").select_for_update(no_key=True).values_list("pk", flat=True))


def _claimed_rows(rows: QuerySet[Delivery], *, request: MulticastRequest) -> list[Claimed]:
    return _as_claimed(rows.order_by("id").values_list(*_CLAIMED_COLUMNS), request=request)


def _as_claimed(rows: Iterable[tuple], *, request: MulticastRequest) -> list[Claimed]:
    lease = request.lease_expires_at
    return [Claimed(*row, request.attempts, request.retry_key, lease, request.pk) for row in rows]  # type: ignore[call-arg]  # mypy counts a star argument as filling every field


def _claim_fresh(send: Send, *, limit: int, now: datetime, lease: datetime) -> list[Claimed]:
    """A new request for the next fresh (or left-behind) rows of `send`,
    inside the caller's transaction."""
    if not sends_lock(Send.objects.filter(pk=send.pk, status=SendStatus.SENDING)):
        return []  # paused or cancelled: no claim
    mark = Coalesce(
        Subquery(
            MulticastRequest.objects.filter(send=send)
            .order_by("-last_delivery_id")
            .values("last_delivery_id")[:1]
        ),
        0,
    )
    queued = Delivery.objects.filter(send=send, status=DeliveryStatus.QUEUED)
    fresh = queued.filter(pk__gt=mark).values_list(*_CLAIMED_COLUMNS)
    # Due retries first (a quiet-hours wait), then the rest by id: each part
    # one range of the queue index, past the mark, not a walk from its start.
    rows = list(fresh.filter(next_attempt_at__lte=now).order_by("next_attempt_at", "id")[:limit])
    if len(rows) < limit:
        rows += fresh.filter(next_attempt_at__isnull=True).order_by("id")[: limit - len(rows)]
    if not rows:
        rows = _left_behind(send, queued, now=now, limit=limit)
        if not rows:
            return []
    rows.sort()
    ids = [row[0] for row in rows]
    request = MulticastRequest.objects.create(
        send=send,
        retry_key=uuid.uuid4(),
        delivery_ids=ids,
        last_delivery_id=ids[-1],
        lease_expires_at=lease,
        next_attempt_at=lease,
    )
    return _as_claimed(rows, request=request)


def _left_behind(
    send: Send, queued: QuerySet[Delivery], *, now: datetime, limit: int
) -> list[tuple]:
    """Queued, due rows (all below the mark, there being none past it) that
    no open request names."""
    taken = set(multicast_open_ids(Send.objects.filter(pk=send.pk)))
    due = queued.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    candidates = due.order_by("id").values_list(*_CLAIMED_COLUMNS)[: limit + len(taken)]
    return [row for row in candidates if row[0] not in taken][:limit]


def multicast_open_ids(sends: QuerySet[Send]) -> list[int]:
    """The ledger rows named by the open multicast requests of `sends` (a
    Send queryset): they may have gone out; their request settles them."""
    return [
        pk
        for ids in MulticastRequest.objects.filter(
            send__in=sends, settled_at__isnull=True
        ).values_list("delivery_ids", flat=True)
        for pk in ids
    ]


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

    A multicast's lease and token are its MulticastRequest's, the same way:
    its rows stay queued and are this worker's while the request is.
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
        self.request_id = rows[0].request_id if rows else None
        self.written = request_columns(rows[0]) if rows else {}
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
            if self.request_id:
                renewed = self._request().update(lease_expires_at=token, next_attempt_at=token)
                self.token = token
                if not renewed:
                    self.ids = set()
            else:
                renewed = self.rows(ids).update(lease_expires_at=token)
                self.token = token
                if renewed < len(ids):
                    self.ids = set(self.rows(ids).values_list("pk", flat=True))
        self._confirmed = time.monotonic()

    def rows(self, ids: Iterable[int]) -> QuerySet[Delivery]:
        """The rows among `ids` this claim still holds, for a statement in
        the caller's transaction. A multicast's request is locked first:
        a worker taking it over meanwhile has either committed (and the
        request is not held any more) or waits for the caller's commit."""
        if self.request_id:
            held = self._request().select_for_update(no_key=True).values_list("pk", flat=True)
            if not list(held):
                return Delivery.objects.none()
            return Delivery.objects.filter(pk__any_of=list(ids), status=DeliveryStatus.QUEUED)
        return Delivery.objects.filter(
            pk__any_of=list(ids), status=DeliveryStatus.SENDING, lease_expires_at=self.token
        )

    def writing(self) -> AbstractContextManager[Any]:
        """The transaction a statement on `rows()` runs in: a multicast's
        (its request is locked for it); nothing more for other rows."""
        return transaction.atomic() if self.request_id else nullcontext()

    def _request(self) -> QuerySet[MulticastRequest]:
        return MulticastRequest.objects.filter(pk=self.request_id, lease_expires_at=self.token)  # type: ignore[misc]  # called with a request_id

    def reschedule(self, at: datetime, *, attempt_given_back: bool = False) -> None:
        """A multicast to try again at `at`: its request, released."""
        if self.request_id:
            attempts = F("attempts") - 1 if attempt_given_back else F("attempts")
            self._request().update(next_attempt_at=at, lease_expires_at=None, attempts=attempts)

    def close(self, now: datetime) -> None:
        """The batch is done: a multicast's request, if still held and not
        rescheduled, is settled (its rows have their outcome)."""
        if self.request_id:
            self._request().update(settled_at=now, lease_expires_at=None, next_attempt_at=None)


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
