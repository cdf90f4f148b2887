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
"""

from __future__ import annotations

import calendar as stdlib_calendar
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from random import Random

from django.contrib.auth.models import User
from django.db import connection
from django.db.models import F, Model
from django.utils import timezone

from core.choices import Channel
from crm.models import ChannelIdentity, Customer, Order
from outreach.models import MessageChannel
from tickets import calendar as cal
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

MONTHS = 13  # this month and the twelve before it
# Inquiries a month for DEFAULT_PEOPLE demo people, by calendar month: the
# summer and year-end gift seasons (お中元, お歳暮) bring more.
MONTHLY_VOLUME = {
    1: 70,
    2: 64,
    3: 72,
    4: 68,
    5: 78,
    6: 80,
    7: 96,
    8: 88,
    9: 66,
    10: 72,
    11: 98,
    12: 110,
}
DEFAULT_PEOPLE = 300
MIN_PER_MONTH = 4  # every month has some, however small the demo
# The month of the delivery-delay spike the demo countermeasure reviews
# (reports/demo.py), in months before this one.
DELAY_SPIKE_MONTHS_AGO = 5
# The newest history is this many days old: the last two days belong to
# tickets.demo's scenarios, which the SLA watch moves live.
NEWEST_DAYS_AGO = 3

CHANNEL_WEIGHTS = {
    Channel.RAKUTEN: 30,
    Channel.AMAZON: 20,
    Channel.YAHOO: 12,
    Channel.OWN_SITE: 15,
    Channel.LINE: 10,
    Channel.EMAIL: 8,
    Channel.PHONE: 3,
    Channel.STORE: 2,
}
CATEGORY_WEIGHTS = {
    "delivery_delay": 24,
    "product_defect": 17,
    "return_exchange": 15,
    "out_of_stock": 10,
    "payment": 8,
    "system_failure": 6,
    "other": 20,
}
# When staff are at work (tickets.calendar's spec).
STAFF_HOURS = {
    **{day: ["09:00-21:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
    **{day: ["10:00-18:00"] for day in ("sat", "sun")},
}
# When customers write, by hour (Asia/Tokyo): lunch and the evening.
HOUR_WEIGHTS = (1, 1, 0, 0, 0, 0, 1, 2, 3, 4, 6, 7, 8, 6, 5, 5, 5, 5, 6, 7, 8, 8, 6, 3)

# category: (subject, body) pairs a customer writes
TEXTS = {
    "delivery_delay": (
        (
            "注文した商品がまだ届きません",
            "注文から1週間経ちますが、まだ商品が届きません。状況を教えてください。",
        ),
        (
            "配送予定日を過ぎています",
            "お届け予定日を過ぎましたが、追跡番号で確認しても動きがありません。",
        ),
        ("発送はいつになりますか", "発送のお知らせがまだ届きません。いつ頃発送になりますか。"),
        ("ギフトの到着日について", "贈答用に注文しました。指定日に届くか心配です。"),
    ),
    "product_defect": (
        (
            "商品が破損していました",
            "届いた商品が割れていました。写真をお送りしますので交換をお願いします。",
        ),
        ("急須から水漏れします", "購入した急須の注ぎ口から水が漏れます。確認をお願いできますか。"),
        (
            "賞味期限が近い商品が届きました",
            "届いたお菓子の賞味期限が残り数日しかありませんでした。",
        ),
    ),
    "return_exchange": (
        (
            "返品したいです",
            "イメージと違ったため、未開封のまま返品したいです。手順を教えてください。",
        ),
        ("サイズ違いの交換", "サイズを間違えて注文してしまいました。交換は可能でしょうか。"),
        ("注文と違う商品が届きました", "注文した商品と違うものが届きました。交換をお願いします。"),
    ),
    "out_of_stock": (
        ("再入荷の予定について", "在庫切れの商品はいつ再入荷しますか。入荷したら購入したいです。"),
        ("欠品の連絡が来ました", "注文した商品が欠品とのことですが、いつ発送になりますか。"),
    ),
    "payment": (
        ("二重に請求されています", "カード明細に同じ金額が2回請求されています。確認してください。"),
        ("支払い方法の変更", "代金引換からクレジットカード払いに変更できますか。"),
    ),
    "system_failure": (
        (
            "注文完了画面が表示されません",
            "決済のあとエラーが表示され、注文できたのか分かりません。",
        ),
        ("クーポンが使えません", "クーポンコードを入力するとエラーになります。"),
    ),
    "other": (
        ("領収書の発行について", "会社名で領収書を発行していただけますか。"),
        ("ギフト包装はできますか", "のし紙とギフト包装をお願いしたいのですが可能でしょうか。"),
        ("店舗の営業時間", "店舗の営業時間と定休日を教えてください。"),
        ("メールマガジンについて", "メールマガジンの配信先アドレスを変更したいです。"),
    ),
}
REPLY = (
    "{name}様\n\nお問い合わせいただき、誠にありがとうございます。\n\n"
    "ご連絡の件、確認いたしました。{answer}\n\n"
    "ご不明な点がございましたら、本メールにご返信ください。\n"
)
ANSWERS = {
    "delivery_delay": "配送業者に確認のうえ、お届け予定日を改めてご案内いたします。",
    "product_defect": "ご迷惑をおかけし申し訳ございません。良品と交換させていただきます。",
    "return_exchange": "返品・交換を承ります。返送用の伝票をお送りいたします。",
    "out_of_stock": "入荷予定日が分かり次第、ご連絡いたします。",
    "payment": "決済代行会社に確認し、結果をご連絡いたします。",
    "system_failure": "ご注文は正常に承っております。ご不便をおかけし申し訳ございません。",
    "other": "ご案内いたしますので、ご確認ください。",
}


@dataclass(frozen=True)
class Life:
    """One past inquiry: when it came, what it was, and when each step of
    its handling happened (None: not reached before today)."""

    number: str  # YYMM-NNN, the Message-ID's
    received_at: datetime
    channel: str
    category: str
    subject: str
    body: str
    by_manager: bool
    triaged_at: datetime
    replied_at: datetime | None
    proposed_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None


MESSAGE_ID_PREFIX = "<demo-history-"


def message_id(number: str) -> str:
    return f"{MESSAGE_ID_PREFIX}{number}@madoguchi.example>"


def history_end(today: datetime) -> datetime:
    """The past ends here (exclusive): NEWEST_DAYS_AGO days before today."""
    return today - timedelta(days=NEWEST_DAYS_AGO)


def month_starts(today: datetime) -> list[date]:
    """The first days of the MONTHS months of the past, oldest first: up to
    the month of its last day (this month, unless it is only a few days old)."""
    first = (history_end(today) - timedelta(days=1)).date().replace(day=1)
    months = []
    for back in range(MONTHS - 1, -1, -1):
        year, month = divmod(first.year * 12 + first.month - 1 - back, 12)
        months.append(date(year, month + 1, 1))
    return months


def delay_spike_month(today: datetime) -> date:
    """The month of the delivery-delay spike (the countermeasure's month)."""
    return month_starts(today)[MONTHS - 1 - DELAY_SPIKE_MONTHS_AGO]


def _category_weights(month: date, spike: date) -> dict[str, float]:
    weights: dict[str, float] = dict(CATEGORY_WEIGHTS)
    if month == spike:
        weights["delivery_delay"] *= 2  # the spike
    elif month > spike:
        weights["delivery_delay"] *= 0.6  # the countermeasure worked
    return weights


def _pick(rng: Random, weights: dict) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def lives(*, ctx, month: date, spike: date, open_time: cal.BusinessCalendar) -> list[Life]:
    """The month's past inquiries, each drawn from a generator of its own."""
    tz = timezone.get_current_timezone()
    days = stdlib_calendar.monthrange(month.year, month.month)[1]
    # The last month has only the days before the end of the past.
    days_past = min(days, (history_end(ctx.today).date() - month).days)
    volume = MONTHLY_VOLUME[month.month] * ctx.people / DEFAULT_PEOPLE * days_past / days
    count = max(MIN_PER_MONTH, round(volume * ctx.rng("history", month, "n").uniform(0.9, 1.1)))
    categories = _category_weights(month, spike)
    found = []
    for index in range(count):
        rng = ctx.rng("history", month, index)
        day = rng.randrange(days_past)
        hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
        start = datetime(month.year, month.month, 1, tzinfo=tz)
        received = start + timedelta(days=day, hours=hour, minutes=rng.randrange(60))
        category = _pick(rng, categories)
        subject, body = rng.choice(TEXTS[category])
        found.append(
            _life(
                rng,
                number=f"{month:%y%m}-{index:03d}",
                received=received,
                channel=_pick(rng, CHANNEL_WEIGHTS),
                category=category,
                subject=subject,
                body=body,
                open_time=open_time,
                now=ctx.today,
            )
        )
    return found


def _life(rng: Random, *, number, received, channel, category, subject, body, open_time, now):
    """When each step happened: minutes of the staff's open time after the
    one before (a few slow ones), the customer's answers in wall time."""

    def after(at: datetime | None, minutes: float) -> datetime | None:
        if at is None:
            return None
        moment = cal.business_deadline(at, timedelta(minutes=minutes), open_time)
        return moment if moment < now else None

    slow = rng.random()
    triage = rng.uniform(2, 25) if slow < 0.85 else rng.uniform(25, 90) if slow < 0.96 else 240
    triaged = cal.business_deadline(received, timedelta(minutes=triage), open_time)
    reply = rng.uniform(10, 150) if rng.random() < 0.9 else rng.uniform(300, 700)
    replied = after(triaged, reply)
    proposes = category in ("delivery_delay", "product_defect", "return_exchange", "payment")
    proposed = after(replied, rng.uniform(30, 600)) if proposes else None
    wait = timedelta(days=rng.uniform(0.5, 4))  # the customer's answer
    last = proposed or replied
    resolved = after(last + wait, rng.uniform(5, 60)) if last else None
    closed = after(resolved + timedelta(days=rng.uniform(3, 8)), 5) if resolved else None
    return Life(
        number=number,
        received_at=received,
        channel=channel,
        category=category,
        subject=subject,
        body=body,
        by_manager=rng.random() < 0.25,
        triaged_at=triaged,
        replied_at=replied,
        proposed_at=proposed,
        resolved_at=resolved,
        closed_at=closed,
    )


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
