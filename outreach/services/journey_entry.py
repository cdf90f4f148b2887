"""Entering journeys: the triggers (called by the order and lifecycle
services as things change, and the daily birthday job) schedule every step
of the journeys they start in the delivery ledger, with its due time.

Entering a journey writes one ledger row per step and (order or customer)
— `context_key` names the order (`order:<id>`) or the customer's occasion
(`sleeping:<date of the last order>`, `birthday:<year>`) — queued,
`next_attempt_at` the step's due time. The unique constraint of the ledger
(send, customer, channel, context_key) makes a step go once per order or
occasion, and rows survive restarts. People always enter on the journey's
first channel: a row moves to its next channel only when due (outreach.
dispatch), the first channel's row skipped, so a step goes once across
channels. The tick (outreach.tasks.journeys_tick) starts the worker for
sends with due rows; the worker checks each row again when it is due
(outreach.selectors.journey_rows_withdrawn, the usual send-time check and
the step's holdout).

All steps are scheduled at entry, not one by one as the previous goes out:
the due times are then fixed by the trigger (a quiet-hours wait or a worker
that was down does not push the later steps back), every row is written in
the same transaction as the change that caused it, and the funnel reads who
entered and what is still waiting from the ledger alone. A step that must
not go once things changed (an order since the previous step, a cancelled
order) is withdrawn when it is due, with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import connection, transaction
from django.db.models import CharField, Expression, Q, QuerySet, Value
from django.db.models.functions import Cast, Concat, TruncDate
from django.utils import timezone

from core.choices import Channel
from crm.models import NON_COUNTING_ORDER_STATUSES, Customer, Order
from outreach.models import (
    Delivery,
    DeliveryStatus,
    Journey,
    JourneyStep,
    JourneyTrigger,
    SendKind,
    SkipReason,
)
from outreach.segments.compiler import segment_q
from outreach.services.journeys import step_send_ensure
from outreach.services.unsubscribe import queued_skip

if TYPE_CHECKING:
    from tickets.models import BusinessCalendar

# A step whose due time is further in the past than this when its trigger
# arrives (an order imported with its history) is not scheduled.
LATE_GRACE = timedelta(days=1)

# --- Due times ----------------------------------------------------------------------


def business_days_add(
    at: datetime, days: int, calendar: BusinessCalendar | None = None
) -> datetime:
    """`at` moved `days` open days of the business calendar later, at the
    same local time (closed days — weekends, holidays, the year-end closure
    — are not counted)."""
    from tickets import calendar as cal
    from tickets.services.sla import calendar_for

    pure = calendar_for(calendar) if calendar is not None else cal.default_calendar()
    local = timezone.localtime(at)
    day = local.date()
    while days > 0:
        day += timedelta(days=1)
        if cal.is_business_day(pure, day):
            days -= 1
    return local.replace(year=day.year, month=day.month, day=day.day)


def step_due_times(steps: Sequence[JourneyStep], base: datetime) -> list[datetime]:
    """When each step is due for a trigger at `base`: each step's delay
    after the previous step's due time (the first's after the trigger)."""
    due, times = base, []
    for step in steps:
        if step.business_days:
            due = business_days_add(due, step.delay_days, step.calendar)
        else:
            due = due + timedelta(days=step.delay_days)
        due += timedelta(hours=step.delay_hours)
        times.append(due)
    return times


# --- Entering a journey -------------------------------------------------------------


def _active_journeys(triggers: Iterable[str]) -> list[tuple[Journey, list[JourneyStep]]]:
    """The active journeys of `triggers` with their steps in order: one
    query (an order upsert runs it for every new order)."""
    steps = (
        JourneyStep.objects.filter(journey__active=True, journey__trigger__in=list(triggers))
        .select_related("journey__segment", "calendar")
        .order_by("journey_id", "position")
    )
    journeys: dict[int, tuple[Journey, list[JourneyStep]]] = {}
    for step in steps:
        journeys.setdefault(step.journey_id, (step.journey, []))[1].append(step)
    return list(journeys.values())


def _audience(
    journey: Journey, customers: QuerySet[Customer], *, now: datetime
) -> QuerySet[Customer]:
    if journey.lifecycle_segments:
        customers = customers.filter(lifecycle_segment__in=journey.lifecycle_segments)
    if journey.segment is not None:
        customers = customers.filter(segment_q(journey.segment, now=now))
    return customers


def _rows_insert(
    *,
    step: JourneyStep,
    customers: QuerySet[Customer],
    key: str | Expression,
    due: datetime,
    now: datetime,
    skip_reason: str = "",
) -> int:
    """One ledger row per customer of `customers` for `step`, due at `due`,
    as one INSERT ... SELECT; a row already there stays as it is."""
    key_expression = key if isinstance(key, Expression) else Value(key, output_field=CharField())
    select = (
        customers.order_by().annotate(journey_key=key_expression).values_list("pk", "journey_key")
    )
    select_sql, select_params = select.query.sql_with_params()
    stamp = connection.ops.adapt_datetimefield_value
    status = DeliveryStatus.SKIPPED if skip_reason else DeliveryStatus.QUEUED
    sql = f"""
        INSERT INTO outreach_delivery (
            send_id, customer_id, channel, context_key, status, skip_reason, attempts,
            next_attempt_at, provider_message_id, address, last_error, created_at, updated_at
        )
        SELECT %s, a.pk, %s, a.journey_key, %s, %s, 0, %s, '', '', '', %s, %s
        FROM ({select_sql}) AS a (pk, journey_key)
        WHERE 1 = 1 ON CONFLICT DO NOTHING
    """
    if connection.vendor != "postgresql":
        sql = sql.replace("AS a (pk, journey_key)", "AS a")
    params = [
        step.send_id,
        step.journey.channel,
        status.value,
        skip_reason,
        stamp(due),
        stamp(now),
        stamp(now),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *select_params])
        return int(cursor.rowcount)


def _enter(
    journey: Journey,
    steps: list[JourneyStep],
    *,
    customers: QuerySet[Customer],
    key: str | Expression,
    base: datetime,
    now: datetime,
    order: Order | None = None,
) -> int:
    """Schedule every step of `journey` for `customers` (the trigger at
    `base`). Steps already past their time by more than LATE_GRACE (a
    trigger that arrives late: an imported history) are left out."""
    customers = _audience(journey, customers, now=now)
    written = 0
    for step, due in zip(steps, step_due_times(steps, base), strict=True):
        if due < now - LATE_GRACE:
            continue
        step.journey = journey
        if step.send_id is None:  # a built-in journey's step, entered the first time
            step_send_ensure(step, journey=journey)
        skip_reason = ""
        if step.is_review_request and order is not None and _review_requested(order):
            skip_reason = SkipReason.REVIEW_ONCE
        written += _rows_insert(
            step=step,
            customers=customers,
            key=key,
            due=due,
            now=now,
            skip_reason=skip_reason,
        )
    return written


def order_context_key(order_id: int) -> str:
    return f"order:{order_id}"


def _review_requested(order: Order) -> bool:
    """A review request is in the ledger for this order (sent, or waiting)."""
    return (
        Delivery.objects.filter(
            customer_id=order.customer_id,
            context_key=order_context_key(order.pk),
        )
        .filter(
            Q(send__journey_step__is_review_request=True)
            | Q(send__journey_next_step__is_review_request=True)
        )
        .exclude(status=DeliveryStatus.SKIPPED)
        .exists()
    )


def journeys_order_changed(
    *,
    order: Order,
    created: bool,
    before: tuple[str, datetime | None, datetime | None] | None,
    now: datetime | None = None,
) -> int:
    """What an order upsert means for journeys (crm.services.order_upsert
    calls it, after the lifecycle recompute): a cancelled or returned order
    withdraws its waiting steps; a new order, a new shipment or delivery
    enters the journeys of that trigger. `before`: the order's (status,
    shipped_at, delivered_at) before the upsert (None if created). Returns
    the ledger rows written or withdrawn."""
    now = now or timezone.now()
    old_status, old_shipped, old_delivered = before or ("", None, None)
    if order.status in NON_COUNTING_ORDER_STATUSES:
        if order.status != old_status:
            return journeys_order_withdraw(order=order)
        return 0
    fired: dict[str, datetime] = {}
    if created:
        fired[JourneyTrigger.ORDER_PLACED] = order.ordered_at
        fired[JourneyTrigger.FIRST_ORDER] = order.ordered_at
    if order.shipped_at is not None and old_shipped is None:
        fired[JourneyTrigger.ORDER_SHIPPED] = order.shipped_at
    if order.delivered_at is not None and old_delivered is None:
        fired[JourneyTrigger.ORDER_DELIVERED] = order.delivered_at
    if not fired:
        return 0
    journeys = _active_journeys(fired)
    if not journeys:
        return 0
    written = 0
    customers = Customer.objects.filter(pk=order.customer_id)
    for journey, steps in journeys:
        if journey.order_channels and order.channel not in journey.order_channels:
            continue
        if order.channel == Channel.AMAZON and not journey.is_transactional:
            continue  # SPEC rule 9: no marketing to Amazon buyers
        if journey.trigger == JourneyTrigger.FIRST_ORDER and _counted_orders(order) != 1:
            continue
        written += _enter(
            journey,
            steps,
            customers=customers,
            key=order_context_key(order.pk),
            base=fired[journey.trigger],
            now=now,
            order=order,
        )
    return written


def _counted_orders(order: Order) -> int:
    return (
        Order.objects.filter(customer_id=order.customer_id)
        .exclude(status__in=NON_COUNTING_ORDER_STATUSES)
        .count()
    )


def journeys_order_withdraw(*, order: Order) -> int:
    """Withdraw the waiting steps of a cancelled or returned order."""
    return queued_skip(
        Delivery.objects.filter(
            customer_id=order.customer_id,
            context_key=order_context_key(order.pk),
            send__kind=SendKind.JOURNEY,
        ),
        reason=SkipReason.ORDER_CANCELLED,
    )


def journeys_sleeping_enter(*, customers: QuerySet[Customer], now: datetime | None = None) -> int:
    """Customers who just became sleeping (crm.services.lifecycle_recompute
    passes them as one query) enter the journeys of that trigger, once per
    sleep: the key is the date of the last order before it."""
    now = now or timezone.now()
    journeys = _active_journeys([JourneyTrigger.BECAME_SLEEPING])
    key = Concat(
        Value("sleeping:"), Cast(TruncDate("last_order_at"), CharField()), output_field=CharField()
    )
    return sum(
        _enter(journey, steps, customers=customers, key=key, base=now, now=now)
        for journey, steps in journeys
    )


def journeys_birthday_enter(*, now: datetime | None = None) -> int:
    """Customers whose birthday is in this month (Asia/Tokyo) enter the
    birthday journeys, once a year (run daily: a journey turned on in the
    middle of the month still reaches this month's people)."""
    now = now or timezone.now()
    journeys = _active_journeys([JourneyTrigger.BIRTHDAY_MONTH])
    if not journeys:
        return 0
    local = timezone.localtime(now)
    customers = Customer.objects.filter(merged_into__isnull=True, birthday__month=local.month)
    return sum(
        _enter(journey, steps, customers=customers, key=f"birthday:{local.year}", base=now, now=now)
        for journey, steps in journeys
    )


# Why a person cannot get a step on one channel but may on another: the
# channel's address, consent or a bounced address. (Merged, claimant,
# known only through Amazon hold on every channel.)
CHANNEL_SKIP_REASONS = (
    SkipReason.NO_CONSENT,
    SkipReason.UNSUBSCRIBED,
    SkipReason.NO_ADDRESS,
    SkipReason.SUPPRESSED,
)


def journey_rows_next_channel(*, step: JourneyStep, ids: Sequence[int], now: datetime) -> int:
    """Move due rows of `step`'s first channel (people it cannot reach
    there: CHANNEL_SKIP_REASONS) to the journey's next channel, due now:
    a row there (once per step and order or customer, the ledger's unique
    key) and the first channel's row skipped with the reason next_channel,
    in one transaction. The tick starts the next channel's send. Returns
    the rows moved."""
    if not ids or not step.next_send_id or not step.journey.next_channel:
        return 0
    with transaction.atomic():
        pending = Delivery.objects.filter(
            pk__in=list(ids), status__in=[DeliveryStatus.QUEUED, DeliveryStatus.SENDING]
        )
        Delivery.objects.bulk_create(
            [
                Delivery(
                    send_id=step.next_send_id,
                    customer_id=customer_id,
                    channel=step.journey.next_channel,
                    context_key=context_key,
                    status=DeliveryStatus.QUEUED,
                    next_attempt_at=now,
                )
                for customer_id, context_key in pending.values_list("customer_id", "context_key")
            ],
            ignore_conflicts=True,
        )
        return pending.update(
            status=DeliveryStatus.SKIPPED,
            skip_reason=SkipReason.NEXT_CHANNEL,
            lease_expires_at=None,
            updated_at=now,
        )
