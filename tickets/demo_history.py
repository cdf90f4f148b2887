"""Thirteen months of past inquiries for `manage.py demo_data`, so that the
monthly trouble analysis, its 12-month trend and its charts show something
real (run through tickets.demo's DEMO_STEPS, before its live scenarios).

About 60–120 inquiries a month for the default 300 demo people (more in
the gift seasons; fewer for a smaller demo, at least MIN_PER_MONTH),
across the channels and the categories, with a spike of delivery delays in
the month the demo countermeasure reviews (reports/demo.py) and fewer
after it. Staff work in shifts (STAFF_HOURS: 9:00–21:00 on weekdays,
10:00–18:00 at weekends, every day of the year): what arrives at night
waits for the morning, and that, with a few slow cases, is where the
triage and first-reply breaches come from, as in a real shop. (The longest
wait, a night, is well inside the NEWEST_DAYS_AGO days between the past
and today, so every past inquiry is triaged and answered before today.)

The past is written set-based, not a service call per inquiry: the
services' per-row writes (about 80 statements and a queued send per
answered inquiry) took over a minute for a year of inquiries on SQLite,
and each reply would have queued a send for the worker. What the rows hold
comes from the services' own rules: the SLA policy (sla_policy_for), the
deadlines (sla_times), the triage target (triage_due), the reference
numbering per month, the SLA outcome of the first reply, the status each
step leaves and the timeline event each step writes; the replies are
recorded as sent (they are history, nothing goes to the ledger). The times
Django stamps on insert are then set to each row's own.

Deterministic (one random generator per month and inquiry) and safe to run
again: each inquiry carries a fixed Message-ID and is made only when
missing. The texts are Japanese data, not UI strings.

What the past holds (the volumes, weights, shifts, texts and each
inquiry's life) is drawn in tickets.demo_history_lives; this module writes it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.db import connection
from django.db.models import F, Model
from django.utils import timezone

from core.choices import Channel
from crm.models import ChannelIdentity, Customer, Order
from outreach.models import MessageChannel
from tickets import calendar as cal
from tickets.demo_history_lives import (
    ANSWERS,
    CHANNEL_WEIGHTS,
    MESSAGE_ID_PREFIX,
    REPLY,
    STAFF_HOURS,
    Life,
    delay_spike_month,
    lives,
    message_id,
    month_starts,
)
from tickets.models import (
    Category,
    Inquiry,
    InquiryEvent,
    InquiryEventKind,
    InquiryMessage,
    InquiryStatus,
    MessageKind,
    OutboundState,
    Priority,
    ReferenceCounter,
    SlaPolicy,
    SlaState,
)
from tickets.services import sla_policy_for, sla_times, triage_due
from tickets.services.reading import last_message_fields, search_text_with
from tickets.services.sla import policy_clock_minutes

BATCH = 500


def _reply_channel(life: Life) -> str:
    """As reply_channel_for: LINE inquiries on LINE, the rest by email."""
    return MessageChannel.LINE if life.channel == Channel.LINE else MessageChannel.EMAIL


@dataclass
class _Rows:
    """What one past inquiry leaves in the database, before it is written."""

    inquiry: Inquiry
    messages: list[InquiryMessage]
    events: list[InquiryEvent]


def _status_reached(life: Life) -> str:
    status = InquiryStatus.OPEN  # assigned at triage
    for at, reached in (
        (life.replied_at, InquiryStatus.WAITING_CUSTOMER),
        (life.resolved_at, InquiryStatus.RESOLVED),
        (life.closed_at, InquiryStatus.CLOSED),
    ):
        if at is not None:
            status = reached
    return status


def _rows(life: Life, *, reference: str, customer, order, staff, category, policy) -> _Rows:
    """The inquiry, its messages and its timeline as the services leave
    them (see the module docstring)."""
    due, at_risk = sla_times(policy, life.received_at) if policy else (None, None)
    late = life.replied_at is not None and due is not None and life.replied_at > due
    outcome = SlaState.BREACHED if late else SlaState.MET
    inquiry = Inquiry(
        reference=reference,
        customer=customer,
        channel=life.channel,
        order=order,
        subject=life.subject,
        category=category,
        priority=Priority.NORMAL,
        status=_status_reached(life),
        assignee=staff,
        sla_policy=policy,
        first_reply_due_at=due,
        at_risk_at=at_risk,
        first_replied_at=life.replied_at,
        sla_state=outcome if life.replied_at else SlaState.ON_TRACK,
        triaged_at=life.triaged_at,
        triage_due_at=triage_due(policy, life.received_at),
        solution_proposed_at=life.proposed_at,
        resolved_at=life.resolved_at,
        closed_at=life.closed_at,
        last_inbound_at=life.received_at,
        created_at=life.received_at,
    )
    # The stage durations the monthly report aggregates, in the policy's
    # clock, as the services store them when each stage is reached.
    for field, at in (
        ("triage_minutes", life.triaged_at),
        ("first_reply_minutes", life.replied_at),
        ("resolution_minutes", life.resolved_at),
    ):
        if at is not None:
            setattr(inquiry, field, policy_clock_minutes(inquiry, at))
    messages = [
        InquiryMessage(
            kind=MessageKind.INBOUND,
            channel=life.channel,
            author=staff if life.channel == Channel.PHONE else None,
            subject=life.subject,
            body_text=life.body,
            visible_text=life.body,
            message_id=message_id(life.number),
            created_at=life.received_at,
        )
    ]

    def event(at, kind, *, old="", new="", actor: User | None = staff) -> InquiryEvent:
        return InquiryEvent(kind=kind, actor=actor, old=old, new=new, data={}, created_at=at)

    policy_name = policy.name if policy else ""
    events = [
        event(life.received_at, InquiryEventKind.CREATED, new=life.channel, actor=None),
        event(life.triaged_at, InquiryEventKind.ASSIGNED, new=staff.get_username()),
        event(life.triaged_at, InquiryEventKind.CATEGORY, new=str(category or "")),
        event(life.triaged_at, InquiryEventKind.STAGE, new="triaged", actor=None),
    ]
    events[0].data = {"policy": policy_name}
    if life.replied_at is not None:
        channel = _reply_channel(life)
        messages.append(
            InquiryMessage(
                kind=MessageKind.OUTBOUND,
                channel=channel,
                author=staff,
                subject=f"Re: {life.subject} [{reference}]"
                if channel == MessageChannel.EMAIL
                else "",
                body_text=REPLY.format(name=customer.display_name, answer=ANSWERS[life.category]),
                outbound_state=OutboundState.SENT,
                created_at=life.replied_at,
            )
        )
        events += [
            event(life.replied_at, InquiryEventKind.MESSAGE, new=MessageKind.OUTBOUND),
            event(life.replied_at, InquiryEventKind.SLA, old=SlaState.ON_TRACK, new=outcome),
            event(life.replied_at, InquiryEventKind.STAGE, new="first_contact"),
            event(
                life.replied_at,
                InquiryEventKind.STATUS,
                old=InquiryStatus.OPEN,
                new=InquiryStatus.WAITING_CUSTOMER,
            ),
        ]
    if life.proposed_at is not None:
        events.append(event(life.proposed_at, InquiryEventKind.STAGE, new="solution_proposed"))
    for at, old, new in (
        (life.resolved_at, InquiryStatus.WAITING_CUSTOMER, InquiryStatus.RESOLVED),
        (life.closed_at, InquiryStatus.RESOLVED, InquiryStatus.CLOSED),
    ):
        if at is not None:
            events.append(event(at, InquiryEventKind.STATUS, old=old, new=new))
    inquiry.updated_at = max(e.created_at for e in events)
    for name, value in last_message_fields(messages[-1].body_text, messages[-1].created_at).items():
        setattr(inquiry, name, value)
    inbound = [m.body_text for m in messages if m.kind == MessageKind.INBOUND]
    inquiry.search_text = search_text_with("", inquiry.subject, *inbound)
    return _Rows(inquiry, messages, events)


def _references(planned: list[Life]) -> dict[str, str]:
    """Each past inquiry's reference (Q-YYMM-NNNNN), numbered in the order
    received from its month's counter, as reference_next numbers them (one
    counter update a month)."""
    by_month: dict[str, list[Life]] = defaultdict(list)
    for life in sorted(planned, key=lambda life: life.received_at):
        by_month[timezone.localtime(life.received_at).strftime("%y%m")].append(life)
    references = {}
    for month, month_lives in by_month.items():
        ReferenceCounter.objects.get_or_create(month=month)
        ReferenceCounter.objects.filter(month=month).update(last=F("last") + len(month_lives))
        last = ReferenceCounter.objects.get(month=month).last
        for number, life in enumerate(month_lives, start=last - len(month_lives) + 1):
            references[life.number] = f"Q-{month}-{number:05d}"
    return references


def _write(rows: list[_Rows]) -> None:
    """Insert the rows set-based, then give each row its own times (Django
    stamps created_at and updated_at with the present on insert)."""
    inquiries = [row.inquiry for row in rows]
    times: dict[type[Model], list[tuple[datetime, ...]]] = {
        Inquiry: [(i.created_at, i.updated_at) for i in inquiries]
    }
    Inquiry.objects.bulk_create(inquiries, batch_size=BATCH)
    for row in rows:
        for item in (*row.messages, *row.events):
            item.inquiry = row.inquiry  # type: ignore[attr-defined]  # messages and events: mypy joins them to Model
    messages = [message for row in rows for message in row.messages]
    events = [event for row in rows for event in row.events]
    times[InquiryMessage] = [(message.created_at,) for message in messages]
    times[InquiryEvent] = [(event.created_at,) for event in events]
    InquiryMessage.objects.bulk_create(messages, batch_size=BATCH)
    InquiryEvent.objects.bulk_create(events, batch_size=BATCH)
    for model, objects in (
        (Inquiry, inquiries),
        (InquiryMessage, messages),
        (InquiryEvent, events),
    ):
        _stamp(model, objects, times[model])


def _stamp(model, objects: list, times: list[tuple]) -> None:
    """created_at (and updated_at, when given) of each row, by primary key:
    one executemany a table."""
    columns = ("created_at", "updated_at")[: len(times[0])]
    assignments = ", ".join(f"{connection.ops.quote_name(c)} = %s" for c in columns)
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {connection.ops.quote_name(model._meta.db_table)} "
            f"SET {assignments} WHERE id = %s",
            [
                [*(adapt(at) for at in stamped), obj.pk]
                for obj, stamped in zip(objects, times, strict=True)
            ],
        )


def history_demo(ctx) -> None:
    """The past 13 months of inquiries (see the module docstring)."""
    if not ctx.customers:
        return
    open_time = cal.calendar_from_spec(
        STAFF_HOURS, tz="Asia/Tokyo", japanese_holidays=False, year_end_closure=None
    )
    spike = delay_spike_month(ctx.today)
    planned = [
        life
        for month in month_starts(ctx.today)
        for life in lives(ctx=ctx, month=month, spike=spike, open_time=open_time)
    ]
    existing = set(
        InquiryMessage.objects.filter(message_id__startswith=MESSAGE_ID_PREFIX).values_list(
            "message_id", flat=True
        )
    )
    todo = [life for life in planned if message_id(life.number) not in existing]
    ctx.kept["past inquiries"] += len(planned) - len(todo)
    if not todo:
        return
    by_channel = customers_by_channel(ctx.customers)
    anyone = by_channel[Channel.EMAIL] or ctx.customers
    orders: dict[int, list[Order]] = defaultdict(list)
    for order in Order.objects.filter(customer__in=ctx.customers).order_by("ordered_at", "pk"):
        orders[order.customer_id].append(order)
    categories = {category.code: category for category in Category.objects.all()}
    policies: dict[str, SlaPolicy | None] = {
        channel: sla_policy_for(channel=channel, priority=Priority.NORMAL)
        for channel in CHANNEL_WEIGHTS
    }
    agent, manager = ctx.users["agent"], ctx.users["manager"]
    references = _references(todo)
    rows = []
    for life in todo:
        pool = by_channel.get(life.channel) or anyone
        if life.channel != Channel.LINE:  # replies go by email
            pool = [c for c in pool if c.email] or anyone
        customer = ctx.rng("history-customer", life.number).choice(pool)
        before = [o for o in orders[customer.pk] if o.ordered_at < life.received_at]
        rows.append(
            _rows(
                life,
                reference=references[life.number],
                customer=customer,
                order=before[-1] if before else None,
                staff=manager if life.by_manager else agent,
                category=categories.get(life.category),
                policy=policies[life.channel],
            )
        )
    _write(rows)
    ctx.created["past inquiries"] += len(rows)


def customers_by_channel(customers: list[Customer]) -> dict[str, list[Customer]]:
    """Demo customers known on each channel, claimants apart (asked of the
    database: crm's claimant step flagged them after `customers` loaded)."""
    claimants = set(
        Customer.objects.filter(pk__in=[c.pk for c in customers], is_claimant=True).values_list(
            "pk", flat=True
        )
    )
    by_id = {customer.pk: customer for customer in customers if customer.pk not in claimants}
    found: dict[str, list[Customer]] = defaultdict(list)
    rows = ChannelIdentity.objects.filter(customer_id__in=list(by_id)).order_by("customer_id")
    for customer_id, channel in rows.values_list("customer_id", "channel"):
        found[channel].append(by_id[customer_id])
    real_email = [c for c in by_id.values() if c.email and "marketplace.amazon" not in c.email]
    found[Channel.EMAIL] = real_email
    found[Channel.PHONE] = [c for c in real_email if c.phone]
    return found


def history_inquiries():
    """The demo's past inquiries."""
    return Inquiry.objects.filter(messages__message_id__startswith=MESSAGE_ID_PREFIX)
