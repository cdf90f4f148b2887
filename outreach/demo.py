"""Japanese demo templates and campaigns, created idempotently.

Called by the demo data command. Everything goes through the services
(`template_save` validates every template as the admin would); existing
rows, found by name, are left as they are — a marketer may have edited
them. The texts are Japanese data, not UI strings.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django.utils import timezone

from core.types import Actor
from crm.models import Customer, Order, OrderStatus
from crm.services import OrderLineData, order_upsert
from outreach.models import (
    Campaign,
    DeliveryChannel,
    Journey,
    JourneyStep,
    JourneyTrigger,
    MessageChannel,
    MessageTemplate,
    Purpose,
    Segment,
    SegmentKind,
)
from outreach.services import (
    campaign_save,
    campaign_schedule,
    journey_activate,
    journey_save,
    segment_save,
    segments_builtin_ensure,
    template_save,
)

WINTER_SALE = "冬のセールのお知らせ"
NEW_ARRIVALS = "新商品入荷のお知らせ"
BIRTHDAY = "お誕生日クーポン"
SHIPPED = "発送のお知らせ"
REVIEW = "レビューのお願い"
DELAY = "配送遅延のお詫び"

DEMO_TEMPLATES: list[dict[str, Any]] = [
    {
        "name": WINTER_SALE,
        "channel": MessageChannel.EMAIL,
        "purpose": Purpose.MARKETING,
        "description": "メールマガジン: 冬のセール (個人名入り)",
        "subject": "【{{ shop.name }}】{{ customer.name }}様へ 冬のセールのお知らせ",
        "body_text": (
            "{{ customer.name }}様\n\n"
            "いつも{{ shop.name }}をご利用いただき、ありがとうございます。\n"
            "本日より冬のセールを開催いたします。\n\n"
            "■ 期間: 12月1日(月)〜12月14日(日)\n"
            "■ 内容: 冬の人気商品が最大30%オフ\n"
            "{% if customer.order_count %}"
            "■ これまで{{ customer.order_count }}回のご注文、誠にありがとうございます。\n"
            "{% endif %}\n"
            "セール会場はこちら: {{ shop.url }}\n"
        ),
        "body_html": (
            "<p>{{ customer.name }}様</p>\n"
            "<p>いつも{{ shop.name }}をご利用いただき、ありがとうございます。<br>"
            "本日より<strong>冬のセール</strong>を開催いたします。</p>\n"
            "<ul><li>期間: 12月1日(月)〜12月14日(日)</li>"
            "<li>内容: 冬の人気商品が最大30%オフ</li></ul>\n"
            '<p><a href="{{ shop.url }}">セール会場はこちら</a></p>\n'
        ),
    },
    {
        # No personal variables: one multicast request reaches 500 friends.
        "name": NEW_ARRIVALS,
        "channel": MessageChannel.LINE,
        "purpose": Purpose.MARKETING,
        "description": "LINE: 全員に同じ内容 (一斉配信)",
        "line_messages": [
            "【{{ shop.name }}】新商品入荷のお知らせ\n"
            "静岡の新茶を使った季節限定の煎茶が入荷しました🍵",
            "数量限定です。詳しくはこちらからご覧ください。\n{{ shop.url }}",
        ],
    },
    {
        "name": BIRTHDAY,
        "channel": MessageChannel.LINE,
        "purpose": Purpose.MARKETING,
        "description": "LINE: お名前入り (個別配信)",
        "line_messages": [
            "{{ customer.given_name }}様、お誕生日おめでとうございます🎂",
            "日頃の感謝を込めて、今月末までお使いいただける500円分のクーポンを"
            "お届けします。\nクーポンコード: BIRTHDAY500\n{{ shop.url }}",
        ],
    },
    {
        "name": SHIPPED,
        "channel": MessageChannel.EMAIL,
        "purpose": Purpose.TRANSACTIONAL,
        "description": "注文: 発送通知",
        "subject": (
            "【{{ shop.name }}】ご注文の商品を発送しました (注文番号 {{ order.order_number }})"
        ),
        "body_text": (
            "{{ customer.name }}様\n\n"
            "ご注文いただいた商品を発送いたしました。\n\n"
            "注文番号: {{ order.order_number }}\n"
            "ご注文日時: {{ order.ordered_at|date:'Y年n月j日 H:i' }}\n"
            "ご注文金額: {{ order.total }}円\n\n"
            "お届けまで今しばらくお待ちください。\n"
            "ご不明な点は {{ shop.contact_email }} までお問い合わせください。\n\n"
            "{{ shop.company }}\n{{ shop.name }}\n"
        ),
    },
    {
        # Neutral wording (mall rules): no incentive, no request for a good rating.
        "name": REVIEW,
        "channel": MessageChannel.EMAIL,
        "purpose": Purpose.TRANSACTIONAL,
        "description": "注文: レビュー依頼 (配達から5〜30日後、1注文につき1回)",
        "subject": "【{{ shop.name }}】お届けした商品のご感想をお聞かせください",
        "body_text": (
            "{{ customer.name }}様\n\n"
            "先日は{{ shop.name }}をご利用いただき、ありがとうございました。\n"
            "注文番号 {{ order.order_number }} の商品はお手元に届きましたでしょうか。\n\n"
            "よろしければ、商品のご感想をレビューとしてお寄せください。\n"
            "良かった点も、気になった点も、率直なご意見を今後の参考にさせていただきます。\n"
            "レビューの投稿は任意です。\n\n"
            "{{ shop.company }}\n{{ shop.name }}\n"
        ),
    },
    {
        # A concrete date, never "しばらく" (the sales-stop rule).
        "name": DELAY,
        "channel": MessageChannel.EMAIL,
        "purpose": Purpose.TRANSACTIONAL,
        "description": "配送遅延: お届け予定日を具体的な日付で ({{ extra.expected_date }})",
        "subject": "【{{ shop.name }}】配送遅延のお詫び (注文番号 {{ order.order_number }})",
        "body_text": (
            "{{ customer.name }}様\n\n"
            "ご注文いただいた商品 (注文番号 {{ order.order_number }}) のお届けが"
            "遅れておりますことを、心よりお詫び申し上げます。\n\n"
            "お届け予定日: {{ extra.expected_date }}\n\n"
            "予定日までに発送し、発送時に改めてご連絡いたします。\n"
            "ご注文のキャンセルをご希望の場合は、このメールにご返信ください。\n\n"
            "{{ shop.company }}\n{{ shop.name }}\n"
            "お問い合わせ: {{ shop.contact_email }} / {{ shop.contact_phone }}\n"
        ),
    },
]


def demo_templates_ensure(
    *, actor: Actor = None, definitions: list[dict] | None = None
) -> dict[str, MessageTemplate]:
    """The demo templates by name (DEMO_TEMPLATES, or another app's
    `definitions`), created through template_save when missing."""
    definitions = DEMO_TEMPLATES if definitions is None else definitions
    names = [values["name"] for values in definitions]
    existing = {t.name: t for t in MessageTemplate.objects.filter(name__in=names)}
    templates = {}
    for values in definitions:
        template = existing.get(values["name"])
        if template is None:
            template = template_save(template=MessageTemplate(**values), actor=actor)
        templates[template.name] = template
    return templates


def _lifecycle_segment(value: str) -> Segment | None:
    segments_builtin_ensure()
    return Segment.objects.filter(kind=SegmentKind.LIFECYCLE, lifecycle_segment=value).first()


def demo_campaign_ensure(*, actor: Actor = None, scheduled: bool = True) -> list[Campaign]:
    """A draft email campaign (winter sale to regular customers) and, when
    `scheduled`, a LINE campaign (new arrivals to VIP customers) scheduled
    for 10:00 a week from now. Found by name; never launched here."""
    templates = demo_templates_ensure(actor=actor)
    campaigns = []
    plans = [
        ("冬のセール (一般のお客様)", WINTER_SALE, "regular", None),
        ("新商品入荷 (優良のお客様)", NEW_ARRIVALS, "vip", 7),
    ]
    for name, template_name, lifecycle, days in plans:
        if days is not None and not scheduled:
            continue
        campaign = Campaign.objects.filter(name=name).first()
        if campaign is None:
            template = templates[template_name]
            campaign = campaign_save(
                campaign=None,
                name=name,
                channel=template.channel,
                template=template,
                segment=_lifecycle_segment(lifecycle),
                actor=actor,
            )
            if days is not None:
                at = datetime.combine(
                    timezone.localdate() + timedelta(days=days),
                    time(10, 0),
                    tzinfo=timezone.get_current_timezone(),
                )
                campaign = campaign_schedule(campaign=campaign, at=at, actor=actor)
        campaigns.append(campaign)
    return campaigns


# The demo's postal DM campaign: a draft whose address list the marketer
# downloads (the download records its recipients sent).
DEMO_DM = "春の新作カタログ (郵送DM)"


DEMO_DM_SEGMENT = "郵送DMに同意したお客様"


def demo_dm_campaign_ensure(*, actor=None) -> Campaign:
    """A draft postal DM campaign to the customers who opted in to postal
    DM (a custom segment, made if missing). Found by name."""
    campaign = Campaign.objects.filter(name=DEMO_DM).first()
    if campaign is None:
        segment = Segment.objects.filter(name=DEMO_DM_SEGMENT).first() or segment_save(
            segment=None,
            name=DEMO_DM_SEGMENT,
            kind=SegmentKind.CUSTOM,
            rule={
                "match": "all",
                "conditions": [{"field": "consent", "op": "granted", "value": ["dm"]}],
            },
            description="店頭の会員申込書で郵送DMに同意したお客様",
            actor=actor,
        )
        campaign = campaign_save(
            campaign=None,
            name=DEMO_DM,
            channel=DeliveryChannel.DM,
            template=None,
            segment=segment,
            actor=actor,
        )
    return campaign


def outreach_demo(ctx) -> None:
    """Demo step for `manage.py demo_data`: templates, the built-in
    segments and three campaigns (a draft, one scheduled a week ahead, and
    a postal DM draft)."""
    before = (MessageTemplate.objects.count(), Campaign.objects.count())
    marketer = ctx.users.get("marketer")
    segments_builtin_ensure()
    demo_campaign_ensure(actor=marketer)
    demo_dm_campaign_ensure(actor=marketer)
    after = (MessageTemplate.objects.count(), Campaign.objects.count())
    ctx.created["message templates"] += after[0] - before[0]
    ctx.created["campaigns"] += after[1] - before[1]


# The built-in journey the demo turns on, and its demo orders.
DEMO_JOURNEY = "到着後のフォロー"
DEMO_JOURNEY_ORDERS = 4


def journey_demo(ctx) -> None:
    """Demo step: the marketer turns on the built-in follow-up after
    delivery; four consenting customers' orders were delivered three days
    ago, so their follow-ups are due (the worker sends them), and one of
    those orders is then cancelled: its follow-up is withdrawn. All through
    the services; a second run leaves them as they are."""
    journey = Journey.objects.filter(name=DEMO_JOURNEY, is_builtin=True).first()
    if journey is None:
        return
    journey_activate(journey=journey, actor=ctx.users.get("marketer"))
    customers = list(
        Customer.objects.filter(
            consent_states__channel="email",
            consent_states__granted=True,
            is_claimant=False,
            merged_into__isnull=True,
        )
        .exclude(email="")
        .order_by("pk")[:DEMO_JOURNEY_ORDERS]
    )
    delivered = timezone.now() - timedelta(days=3, minutes=5)
    for index, customer in enumerate(customers, start=1):
        number = f"DEMO-FOLLOW-{index}"
        if Order.objects.filter(channel="own_site", order_number=number).exists():
            continue  # a second run
        fields: dict[str, Any] = {
            "channel": "own_site",
            "order_number": number,
            "customer": customer,
            "ordered_at": delivered - timedelta(days=2),
            "total": 3300 * index,
            "shipped_at": delivered - timedelta(days=1),
            "delivered_at": delivered,
        }
        lines = [
            OrderLineData(
                sku="TEA-GIFT-01", name="煎茶ギフトセット", quantity=index, unit_price=3300
            )
        ]
        order_upsert(status=OrderStatus.DELIVERED, lines=lines, **fields)
        if index == len(customers):
            order_upsert(status=OrderStatus.CANCELLED, **fields)


# A journey of the marketer's own on two channels (LINE, then email) whose
# step keeps a holdout, and its demo orders.
DEMO_THANKS_JOURNEY = "ご購入のお礼（LINE優先）"
DEMO_THANKS_ORDERS = 8
DEMO_THANKS_TEMPLATES: list[dict[str, Any]] = [
    {
        "name": "ご購入のお礼（LINE）",
        "channel": MessageChannel.LINE,
        "purpose": Purpose.MARKETING,
        "description": "ステップ配信: ご購入の翌日のお礼 (LINE)",
        "line_messages": [
            "{{ customer.name }}様、昨日はご注文ありがとうございました。"
            "お届けまで今しばらくお待ちください。{{ shop.url }}"
        ],
    },
    {
        "name": "ご購入のお礼（メール）",
        "channel": MessageChannel.EMAIL,
        "purpose": Purpose.MARKETING,
        "description": "ステップ配信: ご購入の翌日のお礼 (LINEで届かない方へメール)",
        "subject": "【{{ shop.name }}】ご注文ありがとうございました",
        "body_text": (
            "{{ customer.name }}様\n\n"
            "昨日は{{ shop.name }}でのご注文、誠にありがとうございました。\n"
            "お届けまで今しばらくお待ちください。\n\n{{ shop.url }}\n"
        ),
    },
]


def journey_channels_demo(ctx) -> None:
    """Demo step: the marketer's thank-you journey on LINE, then email, the
    day after an order, holding out a quarter of the people to measure it;
    eight consenting customers ordered 36 hours ago, so the step is due
    (the worker sends it on LINE or by email, or holds it out). All through
    the services; a second run leaves it as it is."""
    marketer = ctx.users.get("marketer")
    journey = Journey.objects.filter(name=DEMO_THANKS_JOURNEY).first()
    if journey is None:
        templates = demo_templates_ensure(actor=marketer, definitions=DEMO_THANKS_TEMPLATES)
        line, mail = (templates[values["name"]] for values in DEMO_THANKS_TEMPLATES)
        journey = journey_save(
            journey=Journey(
                name=DEMO_THANKS_JOURNEY,
                description="ご注文の翌日にお礼 (LINEで届かない方はメール、4人に1人は比較グループ)",
                trigger=JourneyTrigger.ORDER_PLACED,
                channel=MessageChannel.LINE,
                next_channel=MessageChannel.EMAIL,
            ),
            steps=[
                JourneyStep(
                    name="ご購入のお礼",
                    delay_days=1,
                    template=line,
                    next_template=mail,
                    holdout_percent=25,
                )
            ],
            actor=marketer,
        )
        journey_activate(journey=journey, actor=marketer)
    customers = (
        Customer.objects.filter(
            consent_states__granted=True, is_claimant=False, merged_into__isnull=True
        )
        .distinct()
        .order_by("-pk")[:DEMO_THANKS_ORDERS]
    )
    ordered = timezone.now() - timedelta(hours=36)
    for index, customer in enumerate(customers, start=1):
        number = f"DEMO-THANKS-{index}"
        if Order.objects.filter(channel="own_site", order_number=number).exists():
            continue  # a second run
        order_upsert(
            channel="own_site",
            order_number=number,
            customer=customer,
            ordered_at=ordered,
            total=2200 * index,
            status=OrderStatus.PAID,
            lines=[
                OrderLineData(
                    sku="TEA-HOJI-01", name="ほうじ茶 100g", quantity=index, unit_price=2200
                )
            ],
        )


DEMO_STEPS = [outreach_demo, journey_demo, journey_channels_demo]
