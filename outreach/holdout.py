"""Holdout groups: a random share of an audience kept back to measure what
a message earned (the lift). Held-out rows stay in the ledger, skipped with
the reason SkipReason.HOLDOUT: never sent, not counted as sent nor in a
send's progress, and compared with the recipients in the results
(outreach.selectors.results).

A campaign draws its holdout at launch (holdout_pick, from the whole
audience); a journey step when its rows are due, after the send-time check
(holdout_draw and holdout_mark, from the people the step could reach)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime

from django.db.models import QuerySet
from django.db.models.functions import Random
from django.utils import timezone

from outreach.models import Delivery, DeliveryStatus, SkipReason

_random = random.SystemRandom()


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


def holdout_draw(
    ids: Sequence[int], percent: int, *, rng: random.Random | None = None
) -> list[int]:
    """A random `percent` of `ids`, for rows that arrive a few at a time (a
    journey step's due rows: often one). The share is rounded at random,
    up with the probability of its fraction (1 row at 10 %: held out one
    time in ten), so the step's holdout is `percent` of its people over
    time; holdout_size's rounding down would hold out nobody."""
    if percent <= 0 or not ids:
        return []
    rng = rng or _random
    exact = len(ids) * min(percent, 100) / 100
    size = int(exact) + (1 if rng.random() < exact - int(exact) else 0)
    return rng.sample(list(ids), size)


def holdout_mark(ids: Sequence[int], *, now: datetime) -> int:
    """Hold out the claimed rows `ids` (queued or being sent): skipped,
    reason holdout, never sent. `next_attempt_at` keeps the moment they
    were held out, when they would have been sent: their attribution window
    starts there (outreach.selectors.results)."""
    if not ids:
        return 0
    return Delivery.objects.filter(
        pk__in=list(ids), status__in=[DeliveryStatus.QUEUED, DeliveryStatus.SENDING]
    ).update(
        status=DeliveryStatus.SKIPPED,
        skip_reason=SkipReason.HOLDOUT,
        lease_expires_at=None,
        next_attempt_at=now,
        updated_at=now,
    )
