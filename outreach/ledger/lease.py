"""A worker's hold on the rows of one claim: renewal while sending, and the token that keeps
a stale worker from sending or recording rows it lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from outreach.ledger.claims import Claimed, request_columns
from outreach.models import (
    Delivery,
    DeliveryStatus,
    MulticastRequest,
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
