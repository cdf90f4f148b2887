"""Journeys (ステップ配信): saving and turning them on and off, the marketplace
rules, and scheduling their steps in the delivery ledger.

Every step of a journey has one Send (kind journey, kept open while the
journey exists). Entering a journey writes one ledger row per step and
(order or customer) — `context_key` names the order (`order:<id>`) or the
customer's occasion (`sleeping:<date of the last order>`, `birthday:<year>`)
— queued, `next_attempt_at` the step's due time. The unique constraint of
the ledger (send, customer, channel, context_key) makes a step go once per
order or occasion, and rows survive restarts. The tick (outreach.tasks.
journeys_tick) starts the worker for sends with due rows; the worker checks
each row again when it is due (outreach.selectors.journey_rows_withdrawn and
the usual send-time check).

All steps are scheduled at entry, not one by one as the previous goes out:
the due times are then fixed by the trigger (a quiet-hours wait or a worker
that was down does not push the later steps back), every row is written in
the same transaction as the change that caused it, and the funnel reads who
entered and what is still waiting from the ledger alone. A step that must
not go once things changed (an order since the previous step, a cancelled
order) is withdrawn when it is due, with the reason.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import CharField, Expression, F, QuerySet, Value
from django.db.models.functions import Cast, Concat, TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from core.choices import Channel
from core.timeline import actor_or_none
from core.types import Actor
from crm.models import NON_COUNTING_ORDER_STATUSES, Customer, Order
from outreach.models import (
    ORDER_TRIGGERS,
    Delivery,
    DeliveryStatus,
    Journey,
    JourneyEvent,
    JourneyEventKind,
    JourneyStep,
    JourneyTrigger,
    MessageTemplate,
    Purpose,
    Send,
    SendKind,
    SendStatus,
    SkipReason,
)
from outreach.segments.compiler import segment_q
from outreach.services.sends import send_create, template_snapshot
from outreach.services.unsubscribe import queued_skip

if TYPE_CHECKING:
    from tickets.models import BusinessCalendar

# A step whose due time is further in the past than this when its trigger
# arrives (an order imported with its history) is not scheduled.
LATE_GRACE = timedelta(days=1)

# Amazon's buyer-seller messaging: a review request 5–30 days after delivery.
REVIEW_MIN_DAYS = 5
REVIEW_MAX_DAYS = 30


# --- The review request wording (SPEC rule 9) -------------------------------------------

# Wording that asks for a positive review only (compared after NFKC, so
# ★５ and ★5 are one).
POSITIVE_ONLY_PHRASES = (
    "高評価",
    "★5",
    "☆5",
    "星5つ",
    "星5",
    "5つ星",
    "良いレビュー",
    "いいレビュー",
)
_REVIEW_WORDS = re.compile(r"レビュー|口コミ|クチコミ|評価|感想")
_INCENTIVE_WORDS = re.compile(r"ポイント|クーポン|割引|値引|プレゼント|特典|キャッシュバック|謝礼")
_SENTENCE_END = re.compile(r"[。！？!?\n]")


def review_wording_problems(texts: Iterable[str]) -> list[str]:
    """Why a review request's wording may not go out (empty if it may): it
    asks for a positive review, or offers something (points, a coupon) for
    a review. Amazon forbids both, and so do the other malls."""
    problems = []
    for text in texts:
        text = unicodedata.normalize("NFKC", text or "")
        for phrase in POSITIVE_ONLY_PHRASES:
            if phrase in text:
                problem = _(
                    "A review request may not ask for a good review only (「%(phrase)s」): "
                    "ask for an honest review."
                ) % {"phrase": phrase}
                if problem not in problems:
                    problems.append(problem)
        for sentence in _SENTENCE_END.split(text):
            if _REVIEW_WORDS.search(sentence) and _INCENTIVE_WORDS.search(sentence):
                problem = _(
                    "A review request may not offer points, coupons or gifts for a review "
                    "(「%(sentence)s」)."
                ) % {"sentence": sentence.strip()[:60]}
                problems.append(problem)
    return problems


def template_texts(template: MessageTemplate) -> list[str]:
    return [
        template.subject,
        template.body_text,
        template.body_html,
        *[str(message) for message in template.line_messages or []],
    ]


def review_template_check(template: MessageTemplate) -> None:
    """Refuse a review request template whose wording breaks the rule."""
    problems = review_wording_problems(template_texts(template))
    if problems:
        raise ValidationError(problems)


def template_saved(template: MessageTemplate) -> None:
    """Called by template_save before it saves: a template used by a review
    step is checked; journey steps send the template as it now is."""
    if template.pk is None:
        return
    if JourneyStep.objects.filter(template=template, is_review_request=True).exists():
        review_template_check(template)


def template_saved_after(template: MessageTemplate) -> None:
    Send.objects.filter(kind=SendKind.JOURNEY, template=template).update(
        content={"template": template_snapshot(template)}
    )


# --- Saving a journey ---------------------------------------------------------------


def _total_delay(steps: Sequence[JourneyStep], upto: JourneyStep) -> tuple[timedelta, bool]:
    """The delay from the trigger to `upto` (calendar time), and whether a
    step up to it counts business days."""
    total, business = timedelta(), False
    for step in steps:
        total += timedelta(days=step.delay_days, hours=step.delay_hours)
        business = business or step.business_days
        if step is upto:
            break
    return total, business


def journey_problems(journey: Journey, steps: Sequence[JourneyStep]) -> dict[str, list[str]]:
    """What keeps a journey from being saved, by field ("__all__", "steps")."""
    problems: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        problems.setdefault(field, []).append(message)

    if journey.order_channels and journey.trigger not in ORDER_TRIGGERS:
        add("order_channels", _("Order channels apply only to journeys started by an order."))
    if Channel.AMAZON in (journey.order_channels or []) and not journey.is_transactional:
        add(
            "order_channels",
            _(
                "Amazon orders may only enter transactional journeys: Amazon's buyer-seller "
                "messaging allows no marketing."
            ),
        )
    if not steps:
        add("steps", _("A journey needs at least one step."))
    reviews = [step for step in steps if step.is_review_request]
    if len(reviews) > 1:
        add("steps", _("A journey may have one review request step."))
    for step in steps:
        template = step.template
        if template.channel != journey.channel:
            add(
                "steps",
                _("Step 「%(step)s」: the template is for another channel.") % {"step": step.name},
            )
        if journey.is_transactional and template.purpose != Purpose.TRANSACTIONAL:
            add(
                "steps",
                _(
                    "Step 「%(step)s」: a transactional journey sends transactional templates "
                    "only (no step that sells)."
                )
                % {"step": step.name},
            )
    for step in reviews:
        delay, business = _total_delay(steps, step)
        if journey.trigger != JourneyTrigger.ORDER_DELIVERED:
            add(
                "steps",
                _("A review request follows the delivery: use the trigger 「Order delivered」."),
            )
        elif business or not (
            timedelta(days=REVIEW_MIN_DAYS) <= delay <= timedelta(days=REVIEW_MAX_DAYS)
        ):
            add(
                "steps",
                _(
                    "A review request goes %(min)d to %(max)d days after delivery "
                    "(counted in calendar days)."
                )
                % {"min": REVIEW_MIN_DAYS, "max": REVIEW_MAX_DAYS},
            )
        for problem in review_wording_problems(template_texts(step.template)):
            add("steps", problem)
    return problems


def journey_save(
    *,
    journey: Journey,
    steps: Sequence[JourneyStep],
    actor: Actor = None,
    deleted: Sequence[JourneyStep] = (),
) -> Journey:
    """Validate (the marketplace rules, the review wording), save the journey
    and its steps in the order given, give each step its open Send, and
    record the change."""
    problems = journey_problems(journey, steps)
    if problems:
        raise ValidationError(problems)
    created = journey.pk is None
    with transaction.atomic():
        if created:
            journey.created_by = actor_or_none(actor)
        journey.full_clean()
        journey.save()
        for step in deleted:
            if step.pk and step.send_id and not step.send.deliveries.exists():  # type: ignore[union-attr]  # send_id is set
                send = step.send
                step.delete()
                send.delete()  # type: ignore[union-attr]  # send_id is set
            elif step.pk:
                raise ValidationError(
                    {"steps": [_("A step that has sent messages cannot be deleted.")]}
                )
        # Positions first moved out of the way (they are unique per journey).
        JourneyStep.objects.filter(journey=journey).update(position=F("position") + 1000)
        for position, step in enumerate(steps, start=1):
            step.journey = journey
            step.position = position
            step.save()
            _step_send_ensure(step, journey=journey, actor=actor)
        JourneyEvent.objects.create(
            journey=journey,
            kind=JourneyEventKind.CREATED if created else JourneyEventKind.EDITED,
            actor=actor_or_none(actor),
        )
    return journey


def _step_send_ensure(step: JourneyStep, *, journey: Journey, actor: Actor = None) -> Send:
    """The step's open Send, on the journey's channel and purpose, with the
    step's template as it now is."""
    purpose = journey.purpose
    if step.send_id is None:
        step.send = send_create(
            kind=SendKind.JOURNEY,
            channel=journey.channel,
            purpose=purpose,
            template=step.template,
            actor=actor,
        )
        JourneyStep.objects.filter(pk=step.pk).update(send=step.send)
        return step.send
    Send.objects.filter(pk=step.send_id).update(
        channel=journey.channel,
        purpose=purpose,
        template=step.template,
        respect_quiet_hours=purpose == Purpose.MARKETING,
        content={"template": template_snapshot(step.template)},
    )
    return step.send  # type: ignore[return-value]  # send_id is set


def journey_activate(*, journey: Journey, actor: Actor = None) -> bool:
    """Turn a journey on: from now on its trigger enters people. False if
    it was on."""
    with transaction.atomic():
        changed = Journey.objects.filter(pk=journey.pk, active=False).update(active=True)
        if changed:
            Send.objects.filter(journey_step__journey=journey).update(status=SendStatus.SENDING)
            JourneyEvent.objects.create(
                journey=journey, kind=JourneyEventKind.ACTIVATED, actor=actor_or_none(actor)
            )
    journey.active = True
    return bool(changed)


def journey_deactivate(*, journey: Journey, actor: Actor = None) -> bool:
    """Turn a journey off: nobody enters any more, and the steps still
    waiting are withdrawn (reason: the journey was turned off). False if it
    was off."""
    with transaction.atomic():
        changed = Journey.objects.filter(pk=journey.pk, active=True).update(active=False)
        withdrawn = 0
        if changed:
            withdrawn = queued_skip(
                Delivery.objects.filter(send__journey_step__journey=journey),
                reason=SkipReason.JOURNEY_OFF,
            )
            JourneyEvent.objects.create(
                journey=journey,
                kind=JourneyEventKind.DEACTIVATED,
                actor=actor_or_none(actor),
                data={"withdrawn": withdrawn},
            )
    journey.active = False
    return bool(changed)


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
    if journey.segment_id is not None:
        customers = customers.filter(segment_q(journey.segment, now=now))  # type: ignore[arg-type]  # segment_id is set
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
        return cursor.rowcount  # type: ignore[no-any-return]  # the DB-API cursor's rowcount is an int


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
            _step_send_ensure(step, journey=journey)
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
            send__journey_step__is_review_request=True,
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
