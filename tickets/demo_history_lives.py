"""What the demo history holds, before anything is written (tickets.demo_history):
the volumes per month, the channel and category weights with the delivery-delay
spike, the staff's shifts, the Japanese texts and answers, and each past
inquiry's life (when it came and when each step of its handling happened),
drawn deterministically per month and inquiry.
"""

from __future__ import annotations

import calendar as stdlib_calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from random import Random

from django.utils import timezone

from core.choices import Channel
from tickets import calendar as cal

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
