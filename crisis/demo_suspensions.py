"""Demo data of sales suspensions (see crm/management/commands/demo_data.py):
the notice templates, and a delay of 八女玉露 50g recorded last week as a
sales stop on Rakuten and the own site, its delay notice to the customers
whose orders were waiting, lifted with the 入荷・発送再開 notice, the orders
shipped since. Everything through the services; a second run finds the
suspension (by its SKU) and the templates (by name) and makes nothing.
The texts are Japanese data, not UI strings.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from core.choices import Channel
from core.types import Actor
from crisis.models import Suspension, SuspensionReason
from crisis.services.suspensions import suspension_lift, suspension_record
from crm.models import ChannelIdentity, Customer, OrderStatus
from crm.services import OrderLineData, order_upsert
from outreach.models import MessageChannel, MessageTemplate, Purpose
from outreach.services import template_save

DEMO_SKU = "TEA-GYOKURO-50"
DEMO_PRODUCT = "八女玉露 50g"
DEMO_PRICE = 2160
DELAY_EMAIL = "遅延のお知らせ（メール）"
DELAY_LINE = "遅延のお知らせ（LINE）"
RESUME_EMAIL = "入荷・発送再開のお知らせ（メール）"
RESUME_LINE = "入荷・発送再開のお知らせ（LINE）"

TEMPLATES: list[dict[str, Any]] = [
    {
        "name": DELAY_EMAIL,
        "channel": MessageChannel.EMAIL,
        "purpose": Purpose.TRANSACTIONAL,
        "description": "販売停止: ご注文の商品の入荷遅延 (再開予定日を具体的に)",
        "subject": "【{{ shop.name }}】{{ extra.product_name }} 入荷遅延のお知らせとお詫び",
        "body_text": (
            "{{ customer.name }}様\n\n"
            "いつも{{ shop.name }}をご利用いただき、ありがとうございます。\n"
            "ご注文いただいた「{{ extra.product_name }}」は、仕入れ先からの入荷が遅れており、"
            "ご案内していた日に発送できなくなりました。ご迷惑をおかけし、申し訳ございません。\n\n"
            "■ 発送予定日: {{ extra.expected_resume }}\n"
            "■ 商品番号: {{ extra.sku }}\n\n"
            "発送しましたら、改めてご連絡いたします。\n"
            "お急ぎの場合やキャンセルをご希望の場合は、このメールにご返信ください。\n\n"
            "{{ shop.company }}\n{{ shop.name }}\n"
            "お問い合わせ: {{ shop.contact_email }} / {{ shop.contact_phone }}\n"
        ),
    },
    {
        "name": DELAY_LINE,
        "channel": MessageChannel.LINE,
        "purpose": Purpose.TRANSACTIONAL,
        "description": "販売停止: 入荷遅延のお知らせ (LINE)",
        "line_messages": [
            "{{ customer.name }}様\nご注文の「{{ extra.product_name }}」は入荷が遅れており、"
            "発送は{{ extra.expected_resume }}になります。ご迷惑をおかけし申し訳ございません。",
            "キャンセルをご希望の場合は、このトークでお知らせください。",
        ],
    },
    {
        "name": RESUME_EMAIL,
        "channel": MessageChannel.EMAIL,
        "purpose": Purpose.TRANSACTIONAL,
        "description": "販売停止の解除: 入荷・発送再開のお知らせ",
        "subject": "【{{ shop.name }}】{{ extra.product_name }} 入荷・発送再開のお知らせ",
        "body_text": (
            "{{ customer.name }}様\n\n"
            "お待たせいたしました。「{{ extra.product_name }}」が入荷し、"
            "ご注文の商品を本日発送いたしました。\n"
            "お届けまで、配送業者の通常の日数をお見込みください。\n\n"
            "このたびはお待たせしてしまい、申し訳ございませんでした。\n\n"
            "{{ shop.company }}\n{{ shop.name }}\n"
        ),
    },
    {
        "name": RESUME_LINE,
        "channel": MessageChannel.LINE,
        "purpose": Purpose.TRANSACTIONAL,
        "description": "販売停止の解除: 入荷・発送再開のお知らせ (LINE)",
        "line_messages": [
            "お待たせいたしました。「{{ extra.product_name }}」が入荷し、"
            "ご注文の商品を本日発送いたしました。"
        ],
    },
]

# The orders that waited: one per channel, numbered for the demo.
ORDER_CHANNELS = (Channel.RAKUTEN, Channel.AMAZON, Channel.YAHOO, Channel.OWN_SITE)


def notice_templates_ensure(*, actor: Actor = None) -> dict[str, MessageTemplate]:
    """The four notice templates by name, made through template_save when
    missing (a manager may have edited them: left as they are)."""
    names = [values["name"] for values in TEMPLATES]
    existing = {t.name: t for t in MessageTemplate.objects.filter(name__in=names)}
    return {
        values["name"]: existing.get(values["name"])
        or template_save(template=MessageTemplate(**values), actor=actor)
        for values in TEMPLATES
    }


def _waiting_customers(ctx) -> list[tuple[Customer, str]]:
    """Demo customers to have ordered the product: one known on each mall
    and on the own site, and one on LINE, first come first served."""
    ids = [customer.pk for customer in ctx.customers]
    identities = ChannelIdentity.objects.filter(customer_id__in=ids).values_list(
        "customer_id", "channel"
    )
    channels_of: dict[int, set[str]] = {}
    for customer_id, channel in identities:
        channels_of.setdefault(customer_id, set()).add(channel)
    chosen: list[tuple[Customer, str]] = []
    taken: set[int] = set()
    for channel in ORDER_CHANNELS:
        for customer in ctx.customers:
            if customer.pk not in taken and channel in channels_of.get(customer.pk, ()):
                chosen.append((customer, channel))
                taken.add(customer.pk)
                break
    for customer in ctx.customers:  # someone told on LINE
        known = channels_of.get(customer.pk, set())
        order_channel = next((c for c in ORDER_CHANNELS if c in known), None)
        if customer.pk not in taken and Channel.LINE in known and order_channel:
            chosen.append((customer, order_channel))
            break
    return chosen


def _order(customer: Customer, channel: str, number: int, ordered_at: datetime, **state):
    order, _created = order_upsert(
        channel=channel,
        order_number=f"DEMO-GYOKURO-{number:03d}",
        customer=customer,
        ordered_at=ordered_at,
        total=DEMO_PRICE + 650,
        lines=[OrderLineData(sku=DEMO_SKU, name=DEMO_PRODUCT, quantity=1, unit_price=DEMO_PRICE)],
        **state,
    )
    return order


def suspensions_demo(ctx) -> None:
    """A lifted suspension with its notices. Decided six days ago (the
    delay was to last until four days later), lifted two days ago."""
    manager = ctx.users.get("manager")
    before = MessageTemplate.objects.count()
    templates = notice_templates_ensure(actor=manager)
    ctx.created["message templates"] += MessageTemplate.objects.count() - before
    if Suspension.objects.filter(sku=DEMO_SKU).exists():
        ctx.kept["suspensions"] += 1
        return
    waiting = _waiting_customers(ctx)
    if manager is None or not waiting:
        return
    decided = ctx.today - timedelta(days=6) + timedelta(hours=10)
    resume = ctx.today - timedelta(days=2) + timedelta(hours=15)
    orders = [
        _order(customer, channel, number, decided - timedelta(hours=20 + number), status="paid")
        for number, (customer, channel) in enumerate(waiting, start=1)
    ]
    suspension = suspension_record(
        sku=DEMO_SKU,
        product_name=DEMO_PRODUCT,
        channels=[Channel.RAKUTEN, Channel.OWN_SITE],
        reason=SuspensionReason.DELIVERY_DELAY,
        expected_resume_at=resume,
        sales_stopped=True,
        note="仕入れ先（八女の茶園）の出荷遅れ。入荷予定日は仕入れ先に確認済み。",
        email_template=templates[DELAY_EMAIL],
        line_template=templates[DELAY_LINE],
        actor=manager,
        now=decided,
    )
    suspension_lift(
        suspension=suspension,
        actor=manager,
        email_template=templates[RESUME_EMAIL],
        line_template=templates[RESUME_LINE],
        now=resume - timedelta(hours=2),
    )
    shipped = resume - timedelta(hours=1)
    for order in orders:
        _order(
            order.customer,
            order.channel,
            int(order.order_number.rsplit("-", 1)[1]),
            order.ordered_at,
            status=OrderStatus.SHIPPED,
            shipped_at=shipped,
        )
    ctx.created["suspensions"] += 1
    ctx.created["orders"] += len(orders)


STEPS: list = [suspensions_demo]
