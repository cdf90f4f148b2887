"""Reads for journeys: what withdraws a due step (the worker asks when a
row is due), which sends have due steps (the tick), and the funnel."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import (
    Count,
    DateTimeField,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce

from crm.models import NON_COUNTING_ORDER_STATUSES, Order
from outreach.models import (
    Delivery,
    DeliveryStatus,
    Journey,
    JourneyStep,
    Send,
    SendKind,
    SendStatus,
    SkipReason,
    StepCondition,
)
from outreach.selectors.results import CampaignResults, results_for_journey_steps

ORDER_KEY_PREFIX = "order:"


def order_id_of(context_key: str) -> int | None:
    """The order a journey row is about (`order:<id>`), else None."""
    if context_key.startswith(ORDER_KEY_PREFIX):
        return int(context_key[len(ORDER_KEY_PREFIX) :])
    return None


def journey_rows_withdrawn(*, step: JourneyStep, rows: Sequence) -> dict[str, list[int]]:
    """Which due rows of `step` (claimed ledger rows: pk, customer_id,
    context_key) may no longer go, by reason: their order was cancelled or
    returned, or the step's condition no longer holds (the customer ordered
    again since the previous step, on whichever channel it went). Three
    queries at most per batch."""
    withdrawn: dict[str, list[int]] = defaultdict(list)
    order_rows = {row.pk: order_id_of(row.context_key) for row in rows}
    order_ids = {order_id for order_id in order_rows.values() if order_id is not None}
    if order_ids:
        gone = set(
            Order.objects.filter(
                pk__in=order_ids, status__in=NON_COUNTING_ORDER_STATUSES
            ).values_list("pk", flat=True)
        )
        for pk, order_id in order_rows.items():
            if order_id in gone:
                withdrawn[SkipReason.ORDER_CANCELLED].append(pk)
    if step.condition == StepCondition.NO_ORDER_SINCE_PREVIOUS:
        left = [row.pk for row in rows if row.pk not in withdrawn[SkipReason.ORDER_CANCELLED]]
        if left:
            withdrawn[SkipReason.CONDITION] += list(_ordered_since_previous(step, left))
    return {reason: ids for reason, ids in withdrawn.items() if ids}


def _ordered_since_previous(step: JourneyStep, ids: list[int]) -> QuerySet:
    """Rows among `ids` whose customer placed an order (one that counts)
    after the previous step went out (after entering, for the first step
    or a previous step that did not go)."""
    previous = (
        JourneyStep.objects.filter(journey_id=step.journey_id, position__lt=step.position)
        .order_by("-position")
        .first()
    )
    since: F | Coalesce = F("created_at")
    if previous is not None and previous.send_ids():
        # On whichever of its channels it went.
        previous_sent = Delivery.objects.filter(
            send_id__in=previous.send_ids(),
            customer_id=OuterRef("customer_id"),
            context_key=OuterRef("context_key"),
            sent_at__isnull=False,
        ).values("sent_at")[:1]
        since = Coalesce(Subquery(previous_sent), F("created_at"), output_field=DateTimeField())
    ordered = Order.objects.filter(
        customer_id=OuterRef("customer_id"), ordered_at__gt=OuterRef("since")
    ).exclude(status__in=NON_COUNTING_ORDER_STATUSES)
    return (
        Delivery.objects.filter(pk__in=ids)
        .annotate(since=since)
        .filter(Exists(ordered))
        .values_list("pk", flat=True)
    )


def journey_sends_due(*, now: datetime, limit: int = 100) -> list[int]:
    """The open journey sends with a row due (queued and due, or sending
    under a dead lease): one index probe per open send (the ledger's queue
    index, send first), however many rows wait for later."""
    # A journey row always has its due time, and a row being sent was due
    # when it was claimed: both are in the range next_attempt_at <= now of
    # the queue index (send, next_attempt_at, id), which is empty when
    # nothing is due, however many rows wait for later. (Testing the lease
    # beside it with OR read every waiting row of the send: 400 ms at
    # 100,000 rows, bench/journeys.py.)
    due = Delivery.objects.filter(
        send=OuterRef("pk"),
        status__in=[DeliveryStatus.QUEUED, DeliveryStatus.SENDING],
        next_attempt_at__lte=now,
    ).filter(
        Q(status=DeliveryStatus.QUEUED) | Q(status=DeliveryStatus.SENDING, lease_expires_at__lt=now)
    )
    return list(
        Send.objects.filter(status=SendStatus.SENDING, kind=SendKind.JOURNEY)
        .filter(Exists(due))
        .values_list("pk", flat=True)[:limit]
    )


# --- The funnel -----------------------------------------------------------------------


@dataclass
class StepFunnel:
    step: JourneyStep
    sent: int = 0
    waiting: int = 0
    failed: int = 0
    held_out: int = 0
    # channel → sent on it, for a journey on more than one channel
    sent_by_channel: dict[str, int] = field(default_factory=dict)
    # (reason label, count), most first; the holdout apart (held_out)
    withdrawn: list[tuple[str, int]] = field(default_factory=list)
    # Recipients next to the holdout within the journey's window.
    results: CampaignResults | None = None

    @property
    def withdrawn_total(self) -> int:
        return sum(count for _label, count in self.withdrawn)

    @property
    def converted(self) -> int:
        """Recipients who ordered within the window after the step."""
        return self.results.recipients.converted if self.results else 0


@dataclass
class JourneyFunnel:
    entered: int
    steps: list[StepFunnel]
    window_days: int

    @property
    def has_holdout(self) -> bool:
        return any(row.held_out or row.step.holdout_percent for row in self.steps)


def journey_funnel(journey: Journey) -> JourneyFunnel:
    """Entered (distinct order or customer occasions), and per step: sent,
    waiting, failed, held out, withdrawn by reason (in words), and what the
    recipients ordered within the journey's window after the step went out
    next to the holdout (outreach.selectors.results). Three aggregate
    queries, whatever the journey's size."""
    steps = list(journey.steps.order_by("position"))
    step_sends = {step.pk: step.send_ids() for step in steps}
    send_ids = [send_id for ids in step_sends.values() for send_id in ids]
    rows = Delivery.objects.filter(send_id__in=send_ids)
    entered = rows.values("customer_id", "context_key").distinct().count() if send_ids else 0
    funnels = [StepFunnel(step=step) for step in steps]
    # (A built-in journey's step has no send before anyone entered it.)
    channels = {step.send_id: journey.channel for step in steps if step.send_id} | {
        step.next_send_id: journey.next_channel for step in steps if step.next_send_id
    }
    by_send = {send_id: funnel for funnel in funnels for send_id in step_sends[funnel.step.pk]}
    labels = dict(SkipReason.choices)
    withdrawn: dict[int, Counter] = defaultdict(Counter)
    for send_id, status, reason, count in (
        rows.values("send_id", "status", "skip_reason")
        .annotate(n=Count("id"))
        .values_list("send_id", "status", "skip_reason", "n")
        .order_by()
    ):
        funnel = by_send[send_id]
        if status == DeliveryStatus.SENT:
            funnel.sent += count
            channel = channels[send_id]
            funnel.sent_by_channel[channel] = funnel.sent_by_channel.get(channel, 0) + count
        elif reason == SkipReason.NEXT_CHANNEL:
            continue  # moved to the next channel: counted there
        elif status in (DeliveryStatus.QUEUED, DeliveryStatus.SENDING):
            funnel.waiting += count
        elif reason == SkipReason.HOLDOUT:
            funnel.held_out += count
        elif status == DeliveryStatus.SKIPPED:
            withdrawn[funnel.step.pk][reason] += count
        else:
            funnel.failed += count
    results = (
        results_for_journey_steps(steps, days=journey.conversion_window_days) if send_ids else {}
    )
    for funnel in funnels:
        reasons = sorted(withdrawn[funnel.step.pk].items(), key=lambda item: (-item[1], item[0]))
        funnel.withdrawn = [(str(labels.get(reason, reason)), n) for reason, n in reasons]
        funnel.results = results.get(funnel.step.pk)
    return JourneyFunnel(
        entered=entered,
        steps=funnels,
        window_days=journey.conversion_window_days,
    )
