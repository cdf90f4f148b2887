"""A customer with a history in every app (orders, inquiries, messages and
campaigns sent, timeline events), for the customer page's tests; and the
scan for internal values in a page's visible text."""

from __future__ import annotations

import re
from datetime import timedelta

from django.utils import timezone

from crm.models import Customer
from crm.services import consent_record, customer_update, customer_upsert
from outreach.models import MessageTemplate, Segment, SegmentKind
from outreach.services import campaign_launch, campaign_save, template_save
from tests.crm import factories
from tests.tickets import factories as ticket_factories
from tickets.services import inquiry_reply


def marketing_template() -> MessageTemplate:
    return template_save(
        template=MessageTemplate(
            name="冬のセール",
            channel="email",
            purpose="marketing",
            subject="{{ customer.name }}様へ 冬のセール",
            body_text="{{ customer.family_name }}様\n\nセール開催中です。",
        )
    )


def campaign_send(customer: Customer, template: MessageTemplate, name: str) -> None:
    """A campaign to this customer alone, launched: a row in the ledger."""
    segment = Segment.objects.create(
        name=f"{name}の対象 ({customer.pk})",
        kind=SegmentKind.CUSTOM,
        rule={"match": "all", "conditions": [{"field": "tag", "op": "has_any", "value": [name]}]},
    )
    customer.tags.add(*customer.tags.model.objects.get_or_create(name=name)[:1])
    campaign = campaign_save(
        campaign=None, name=name, channel="email", template=template, segment=segment
    )
    campaign_launch(campaign=campaign)


def customer_with_history(
    rows: int, *, template: MessageTemplate, agent, phone: str = "09012345678"
) -> Customer:
    """A customer with `rows` orders, inquiries (one answered by `agent`),
    campaigns sent and profile edits, and their email consent."""
    customer = factories.customer(
        channel="rakuten", family_name="岡田", given_name="彩", phone=phone
    )
    consent_record(customer=customer, channel="email", action="opt_in", source="web_form")
    # a mall member ID is the customer's own data, kept out of the page's text
    customer_upsert(channel="yahoo", external_id=f"aya_okada{customer.pk}", email=customer.email)
    for index in range(rows):
        factories.order(
            customer=customer,
            channel="rakuten",
            total=12_345 + index,
            order_number=f"R-{customer.pk}-{index:03d}",
            ordered_at=timezone.now() - timedelta(days=index + 1),
        )
        inquiry = ticket_factories.inquiry(
            customer=customer, channel="email", subject=f"配送について {index}"
        )
        campaign_send(customer, template, f"冬のセール {index}")
        customer_update(customer=customer, actor=agent, notes=f"メモ {index}")
    inquiry_reply(inquiry=inquiry, body="お問い合わせありがとうございます。", actor=agent)
    customer.refresh_from_db()
    return customer


EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
SNAKE_CASE = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")
ENUM_VALUES = re.compile(
    r"\b(rakuten|amazon|yahoo|own_site|email|line|queued|sending|sent|skipped|campaign|reply"
    r"|new|open|resolved|closed|delivered|shipped|paid|on_track|at_risk|breached|met"
    r"|opt_in|opt_out|web_form|created|updated)\b"
)


def internal_values(text: str, *, usernames: tuple[str, ...]) -> list[str]:
    """Words of the program, not of the shop, found in `text` (email
    addresses are the customer's: ogawa_n77@… is not a leak)."""
    text = EMAIL.sub(" ", text)
    found = SNAKE_CASE.findall(text) + ENUM_VALUES.findall(text)
    found += [name for name in usernames if re.search(rf"\b{name}\b", text)]
    found += re.findall(r"[{}]", text)
    return found
