"""Reply templates: their variables, validation, rendering for the reply
box, and the Japanese seed templates (SPEC rules 3 and 4).

A reply template is written in the Django template language against the
context an agent's reply has: the customer, the order the inquiry is about,
the inquiry, the shop and free `extra` values the agent enters on the page
(a concrete date: never vague wording). The texts below are Japanese data,
not UI strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from core.templating import Roots, template_check
from core.types import Actor
from crm.models import Order
from outreach.templating import (
    TEMPLATE_CONTEXT,
    customer_context,
    order_context,
    render_string,
    shop_context,
    variable_label,
)
from tickets.models import AutoAcknowledgement, Category, Inquiry, ReplyTemplate

# What a reply template may read (core.templating.template_check).
REPLY_ROOTS: Roots = {
    "customer": tuple(TEMPLATE_CONTEXT["customer"]),
    "order": tuple(TEMPLATE_CONTEXT["order"]),
    "inquiry": ("reference", "subject", "channel_name"),
    "shop": tuple(TEMPLATE_CONTEXT["shop"]),
    "extra": None,
}
# What an automatic acknowledgement is rendered with (replies.inquiry_auto_acknowledge).
ACK_ROOTS: Roots = {
    "customer": ("name",),
    "inquiry": ("reference", "subject"),
    "shop": tuple(TEMPLATE_CONTEXT["shop"]),
}
# The extra values the inquiry page fills from its date (and time) inputs.
EXTRA_FROM_DATE = ("expected_date", "restock_date", "recovery_eta")


def template_variables_check(
    source: str, *, roots: Roots = REPLY_ROOTS, field: str = "body"
) -> set[str]:
    """The dotted variables `source` reads; ValidationError on `field` for a
    syntax error, a tag left open or a variable outside `roots`."""
    variables, errors = template_check(source or "", roots=roots)
    if errors:
        raise ValidationError({field: errors})
    return variables


# A LINE variant is a chat message: short, no mail signature, no wording that
# only makes sense in a mail.
LINE_VARIANT_MAX_CHARS = 500
_MAIL_WORDING = re.compile(r"本メール|このメール|当メール|メールにて|メールへのご返信")
_SIGNATURE_LINE = re.compile(r"^\s*(?:[―─━—\-=＝_＿~〜]{4,}|E-?mail\s*[:：].*)\s*$", re.M | re.I)


def line_variant_check(text: str) -> None:
    """ValidationError on `line_body` when a LINE variant reads like a mail:
    longer than LINE_VARIANT_MAX_CHARS, a mail signature, 「本メール」 wording."""
    errors = []
    wording = _MAIL_WORDING.search(text)
    if wording:
        errors.append(
            _(
                "The LINE text says 「%(words)s」: on LINE the customer is not reading a "
                "mail. Write it as a chat message."
            )
            % {"words": wording.group(0)}
        )
    if _SIGNATURE_LINE.search(text):
        errors.append(
            _(
                "The LINE text has a mail signature (a ruled line or an E-mail line): LINE "
                "shows the shop's account name, leave the signature out."
            )
        )
    if len(text) > LINE_VARIANT_MAX_CHARS:
        errors.append(
            _(
                "The LINE text is %(count)d characters long: keep it within %(max)d, a "
                "chat message is read on a phone."
            )
            % {"count": len(text), "max": LINE_VARIANT_MAX_CHARS}
        )
    if errors:
        raise ValidationError({"line_body": errors})


def reply_template_save(*, template: ReplyTemplate, actor: Actor = None) -> ReplyTemplate:
    """Create or update a reply template after checking its variables, and
    its LINE variant's wording (line_variant_check)."""
    template.body = (template.body or "").replace("\r\n", "\n").strip() + "\n"
    template_variables_check(template.body)
    template.line_body = (template.line_body or "").replace("\r\n", "\n").strip()
    if template.line_body:
        template_variables_check(template.line_body, field="line_body")
        line_variant_check(template.line_body)
    template.full_clean()
    template.save()
    return template


# --- Rendering for the reply box ----------------------------------------------------

WEEKDAYS_JA = "月火水木金土日"


def japanese_date(day: date) -> str:
    """2026年12月5日（土）"""
    return f"{day.year}年{day.month}月{day.day}日（{WEEKDAYS_JA[day.weekday()]}）"


def japanese_eta(moment: datetime | date) -> str:
    """2026年12月5日（土）15時頃 / 15時30分頃 (a date alone without a time)."""
    if not isinstance(moment, datetime):
        return japanese_date(moment)
    clock = f"{moment.hour}時" + (f"{moment.minute}分" if moment.minute else "")
    return f"{japanese_date(moment.date())}{clock}頃"


def extra_from_date(day: date | None, at: datetime | None = None) -> dict[str, str]:
    """The `extra` values of the page's date (and optional time) inputs."""
    if day is None:
        return {}
    return {
        "expected_date": japanese_date(day),
        "restock_date": japanese_date(day),
        "recovery_eta": japanese_eta(at or day),
    }


def reply_context(
    *, inquiry: Inquiry, order: Order | None = None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "customer": customer_context(inquiry.customer),
        "order": order_context(order),
        "inquiry": {
            "reference": inquiry.reference,
            "subject": inquiry.subject,
            "channel_name": inquiry.get_channel_display(),
        },
        "shop": shop_context(),
        "extra": extra or {},
    }


@dataclass(frozen=True)
class RenderedReply:
    body: str
    missing: tuple[str, ...]  # variables the template uses that have no value
    is_line_variant: bool = False

    @property
    def missing_labels(self) -> tuple[str, ...]:
        """The missing values as the agent knows them (お届け予定日), not as
        the template writes them (extra.expected_date)."""
        return tuple(dict.fromkeys(variable_label(path) for path in self.missing))


def reply_template_source(template: ReplyTemplate, *, channel: str) -> str:
    """The text that fits the reply channel: the LINE variant for a reply by
    LINE when the template has one, else the template's text."""
    if channel == "line" and template.line_body:
        return template.line_body
    return template.body


def reply_template_render(
    *,
    template: ReplyTemplate,
    inquiry: Inquiry,
    order: Order | None = None,
    extra: dict[str, Any] | None = None,
    channel: str = "email",
) -> RenderedReply:
    """`template` filled in for `inquiry`, in the variant for `channel` (the
    reply's: "email" or "line")."""
    context = reply_context(inquiry=inquiry, order=order, extra=extra)
    source = reply_template_source(template, channel=channel)
    try:
        variables = template_variables_check(source)
    except ValidationError:
        variables = set()
    missing = []
    for path in sorted(variables):
        value: Any = context
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value in (None, ""):
            missing.append(path)
    return RenderedReply(
        body=render_string(source, context),
        missing=tuple(missing),
        is_line_variant=channel == "line" and bool(template.line_body),
    )


# --- Seed templates (Japanese data) -------------------------------------------------

SIGNATURE = (
    "今後とも{{ shop.name }}をよろしくお願い申し上げます。\n\n"
    "――――――――――――――――――――\n"
    "{{ shop.name }} カスタマーサポート\n"
    "{{ shop.company }}\n"
    "TEL: {{ shop.contact_phone }}\n"
    "E-mail: {{ shop.contact_email }}\n"
    "{{ shop.url }}\n"
    "――――――――――――――――――――\n"
)
GREETING = (
    "{{ customer.name }}様\n\nいつも{{ shop.name }}をご利用いただき、誠にありがとうございます。\n"
)

ACKNOWLEDGE = "受付のご連絡"
DELIVERY_DELAY = "配送遅延のお詫び"
OUT_OF_STOCK = "欠品・入荷予定のご案内"
SYSTEM_FAILURE = "システム障害のお知らせ"
PRODUCT_DEFECT = "商品不良のお詫びと返品手順"

# name, category code ("" for none), body
SEED_TEMPLATES: tuple[tuple[str, str, str], ...] = (
    (
        ACKNOWLEDGE,
        "",
        "{{ customer.name }}様\n\n"
        "このたびは{{ shop.name }}にお問い合わせいただき、誠にありがとうございます。\n"
        "下記の内容にて、お問い合わせを確かに承りました。\n\n"
        "　受付番号: {{ inquiry.reference }}\n"
        "　件名: {{ inquiry.subject }}\n\n"
        "担当者が内容を確認のうえ、24時間以内にご連絡いたします。\n"
        "ご返信の際は、件名の受付番号を消さずにお送りくださいますようお願いいたします。\n\n"
        + SIGNATURE,
    ),
    (
        DELIVERY_DELAY,
        "delivery_delay",
        GREETING + "\n"
        "ご注文いただいた商品（注文番号: {{ order.order_number }}）のお届けが遅れており、\n"
        "ご迷惑とご心配をおかけしておりますことを、心よりお詫び申し上げます。\n\n"
        "確認いたしましたところ、下記の日程でお届けいたします。\n\n"
        "　お届け予定日: {{ extra.expected_date }}\n\n"
        "発送が完了しましたら、お荷物の伝票番号を改めてご連絡いたします。\n"
        "お届け予定日でのお受け取りが難しい場合や、ご注文のキャンセルをご希望の場合は、\n"
        "本メールへのご返信、またはお電話（{{ shop.contact_phone }}）にてお申し付けください。\n\n"
        "このたびはご迷惑をおかけし、誠に申し訳ございません。\n" + SIGNATURE,
    ),
    (
        OUT_OF_STOCK,
        "out_of_stock",
        GREETING + "\n"
        "ご注文いただいた商品（注文番号: {{ order.order_number }}）につきまして、\n"
        "当店の在庫管理に不備があり、現在欠品となっております。\n"
        "ご迷惑をおかけしておりますことを、深くお詫び申し上げます。\n\n"
        "メーカーに確認いたしましたところ、入荷予定日は下記のとおりです。\n\n"
        "　入荷予定日: {{ extra.restock_date }}\n\n"
        "入荷後、翌営業日までに発送し、発送時に改めてご連絡いたします。\n"
        "入荷までお待ちいただけるか、ご注文のキャンセル（全額ご返金）をご希望か、\n"
        "お手数ですが本メールへのご返信にてお知らせください。\n\n" + SIGNATURE,
    ),
    (
        SYSTEM_FAILURE,
        "system_failure",
        GREETING + "\n"
        "現在、当店のシステムに障害が発生しており、ご注文・お問い合わせの一部が\n"
        "ご利用いただけない状態となっております。\n"
        "ご不便をおかけしておりますことを、深くお詫び申し上げます。\n\n"
        "　復旧見込み: {{ extra.recovery_eta }}\n\n"
        "復旧までの間は、下記の窓口にてご注文・お問い合わせを承っております。\n"
        "　・お電話: {{ shop.contact_phone }}\n"
        "　・メール: {{ shop.contact_email }}\n"
        "{% if order.order_number %}\n"
        "ご注文（注文番号: {{ order.order_number }}）の状況は、復旧後に確認のうえ"
        "ご連絡いたします。\n"
        "{% endif %}\n"
        "復旧いたしましたら、改めてご連絡いたします。\n\n" + SIGNATURE,
    ),
    (
        PRODUCT_DEFECT,
        "product_defect",
        GREETING + "\n"
        "このたびはお届けした商品（注文番号: {{ order.order_number }}）に不具合があり、\n"
        "ご迷惑とご不快の念をおかけしましたことを、心よりお詫び申し上げます。\n\n"
        "お手数をおかけいたしますが、下記の手順にて返品をお願いいたします。\n"
        "良品との交換、またはご返金のいずれかにて対応いたします。\n\n"
        "【返品の手順】\n"
        "1. 不具合の箇所がわかる写真を、本メールへのご返信にてお送りください。\n"
        "2. 確認後、返送用の着払い伝票（送料は当店負担）をご案内いたします。\n"
        "3. 商品をお届け時の箱に入れ、着払いにてご返送ください。\n"
        "4. 商品の到着を確認しましたら、ご希望に応じて交換品の発送、"
        "またはご返金の手続きをいたします。\n\n"
        "交換品の発送日、またはご返金日は、商品の到着後に改めてご連絡いたします。\n\n" + SIGNATURE,
    ),
)

# The LINE variants of seed templates (name -> text): a chat message.
SEED_LINE_VARIANTS: dict[str, str] = {
    DELIVERY_DELAY: (
        "{{ customer.name }}様\n"
        "いつもご利用ありがとうございます。{{ shop.name }}です。\n\n"
        "ご注文（{{ order.order_number }}）のお届けが遅れており、大変申し訳ございません。\n"
        "お届け予定日は {{ extra.expected_date }} です。"
        "発送しましたら、こちらのLINEで改めてお知らせします。\n\n"
        "キャンセルをご希望の場合は、このトークにご返信ください。"
    ),
    OUT_OF_STOCK: (
        "{{ customer.name }}様\n"
        "{{ shop.name }}です。ご注文（{{ order.order_number }}）の商品が欠品となり、"
        "大変申し訳ございません。\n\n"
        "入荷予定日: {{ extra.restock_date }}\n"
        "入荷後、翌営業日までに発送いたします。\n\n"
        "お待ちいただけるか、キャンセル（全額ご返金）をご希望か、このトークにご返信ください。"
    ),
    PRODUCT_DEFECT: (
        "{{ customer.name }}様\n"
        "{{ shop.name }}です。お届けした商品（注文番号: {{ order.order_number }}）に"
        "不具合があり、大変申し訳ございません。\n\n"
        "お手数ですが、不具合の箇所がわかる写真をこのトークに送ってください。"
        "確認後、返品の方法（送料は当店負担）をご案内し、交換またはご返金で対応いたします。"
    ),
}

AUTO_ACK_EMAIL = (
    "{{ customer.name }}様\n\n"
    "{{ shop.name }}にお問い合わせいただき、ありがとうございます。\n"
    "このメールは、お問い合わせを受け付けたことをお知らせする自動送信メールです。\n\n"
    "　受付番号: {{ inquiry.reference }}\n"
    "　件名: {{ inquiry.subject }}\n\n"
    "担当者が内容を確認し、24時間以内にご返信いたします。\n"
    "ご返信の際は、件名の受付番号を消さずにお送りください。\n\n"
    "{{ shop.name }} カスタマーサポート\n"
    "TEL: {{ shop.contact_phone }}\n"
)


def reply_templates_ensure(*, actor: Actor = None) -> tuple[dict[str, ReplyTemplate], int]:
    """The seed templates by name, created when missing; existing ones (found
    by name) are left as they are, since staff may have edited them.
    Returns (templates, how many were created)."""
    names = [name for name, _code, _body in SEED_TEMPLATES]
    templates = {t.name: t for t in ReplyTemplate.objects.filter(name__in=names)}
    categories = {c.code: c for c in Category.objects.all()}
    created = 0
    with transaction.atomic():
        for name, code, body in SEED_TEMPLATES:
            if name in templates:
                continue
            template = ReplyTemplate(
                name=name,
                category=categories.get(code),
                body=body,
                line_body=SEED_LINE_VARIANTS.get(name, ""),
            )
            templates[name] = reply_template_save(template=template, actor=actor)
            created += 1
    return templates, created


def auto_acknowledgement_ensure() -> tuple[AutoAcknowledgement, bool]:
    """The email channel's automatic acknowledgement (left as it is if set)."""
    template_variables_check(AUTO_ACK_EMAIL, roots=ACK_ROOTS)
    return AutoAcknowledgement.objects.get_or_create(
        channel="email", defaults={"body": AUTO_ACK_EMAIL}
    )
