"""Holdout groups: a random share of an audience kept back to measure what
a message earned (the lift). Held-out rows stay in the ledger, skipped with
the reason SkipReason.HOLDOUT: never sent, not counted as sent nor in a
send's progress, and compared with the recipients in the results
(outreach.selectors.results).

One function for every send that keeps a holdout: a campaign at launch,
and a journey step when its rows are scheduled."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet
from django.db.models.functions import Random
from django.utils import timezone

from outreach.models import Delivery, DeliveryStatus, SkipReason


def holdout_size(sendable: int, percent: int) -> int:
    """How many of `sendable` rows a holdout of `percent` keeps back
    (rounded down: a holdout never takes someone it should not)."""
    if percent <= 0 or sendable <= 0:
        return 0
    return sendable * min(percent, 100) // 100


def holdout_pick(
    *, deliveries: QuerySet[Delivery], percent: int, now: datetime | None = None
) -> int:
    """Hold out a random `percent` of the queued rows of `deliveries` (a
    send's new rows: a campaign's snapshot, a journey step's schedule) in
    one UPDATE: they become skipped, reason holdout. Only queued rows are
    drawn: the ineligible were never going to be sent, and a comparison
    group must be people the message could have reached. Returns how many
    rows were held out."""
    if percent <= 0:
        return 0
    now = now or timezone.now()
    queued = deliveries.filter(status=DeliveryStatus.QUEUED)
    size = holdout_size(queued.count(), percent)
    if not size:
        return 0
    picked = queued.order_by(Random()).values("pk")[:size]
    return Delivery.objects.filter(pk__in=picked, status=DeliveryStatus.QUEUED).update(
        status=DeliveryStatus.SKIPPED,
        skip_reason=SkipReason.HOLDOUT,
        next_attempt_at=None,
        updated_at=now,
    )
