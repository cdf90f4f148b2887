"""Claiming work: a batch of due rows of one send taken with a conditional UPDATE and a lease;
multicast requests claimed whole, with the retry key written before the request.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

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
