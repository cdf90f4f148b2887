"""The customer page as a customer 360: who they are and what happened
(identities, consent, orders, inquiries, messages sent, timeline), read
before the edit form, in words, with a flat query count."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.urls import reverse
from django.utils import timezone

from crm.models import Customer
from crm.selectors import CUSTOMER_PAGE_ROWS
from crm.services import consent_record, customer_claimant_set, customer_update
from outreach.models import MessageTemplate, Segment, SegmentKind
from outreach.services import campaign_launch, campaign_save, template_save
from tests.crm import factories
from tests.tickets import factories as ticket_factories
from tickets.services import inquiry_reply

pytestmark = pytest.mark.django_db


def customer_page(customer: Customer) -> str:
    return reverse("admin:crm_customer_change", args=[customer.pk])


@pytest.fixture
def campaign_template() -> MessageTemplate:
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


class VisibleText(HTMLParser):
    """The text a person sees in the page's content: no scripts, styles,
    attribute values or the form's hidden inputs."""

    HIDDEN = {"script", "style", "template", "noscript", "textarea"}

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.HIDDEN:
            self.hidden += 1

    def handle_endtag(self, tag):
        if tag in self.HIDDEN and self.hidden:
            self.hidden -= 1

    def handle_data(self, data):
        if not self.hidden and data.strip():
            self.parts.append(data.strip())


def visible_text(html: str) -> str:
    parser = VisibleText()
    parser.feed(html.split('id="content"', 1)[1])
    return "\n".join(parser.parts)


SNAKE_CASE = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")
ENUM_VALUES = re.compile(
    r"\b(rakuten|amazon|yahoo|own_site|email|line|queued|sending|sent|skipped|campaign|reply"
    r"|new|open|resolved|closed|delivered|shipped|paid|on_track|at_risk|breached|met"
    r"|opt_in|opt_out|web_form|created|updated)\b"
)


def internal_values(text: str, *, usernames: tuple[str, ...]) -> list[str]:
    """Words of the program, not of the shop, found in `text`."""
    found = SNAKE_CASE.findall(text) + ENUM_VALUES.findall(text)
    found += [name for name in usernames if re.search(rf"\b{name}\b", text)]
    found += re.findall(r"[{}]", text)
    return found


def test_the_customer_page_shows_each_section_with_data_from_each_app(
    client, colleague, campaign_template
):
    customer = customer_with_history(2, template=campaign_template, agent=colleague)
    customer_claimant_set(customer=customer, reason="暴言が続いたため", actor=colleague)
    client.force_login(colleague)

    html = client.get(customer_page(customer)).content.decode()

    text = visible_text(html)
    # who they are
    assert "岡田 彩" in text
    assert "090-1234-5678" in text  # stored as 09012345678
    assert "楽天市場" in text  # the identity's channel in words
    assert "⚠ クレーマー" in text and "暴言が続いたため" in text
    assert "ライフサイクルセグメント\nクレーマー" in text
    assert re.search(r"メール:\s*同意あり\n\(\d{4}-\d\d-\d\d · Webフォーム\)", text)
    assert re.search(r"LINE:\s*記録なし", text)
    # orders (crm), amounts with separators
    orders = html.split('id="customer-orders"')[1].split("</section>")[0]
    assert f"R-{customer.pk}-000" in orders and "¥12,345" in orders
    # inquiries (tickets): reference, subject, status and first-reply state in words
    inquiries = html.split('id="customer-inquiries"')[1].split("</section>")[0]
    inquiry = customer.inquiries.order_by("-created_at", "-id").first()
    assert inquiry.reference in inquiries
    assert reverse("admin:tickets_inquiry_change", args=[inquiry.pk]) in inquiries
    assert "配送について 1" in inquiries
    answered, waiting = inquiries.split("<tbody>")[1].split("</tr>")[:2]
    assert "お客様の返答待ち" in answered and "期限内に返信済み" in answered
    assert "新規" in waiting and "期限内" in waiting
    # messages and campaigns sent (outreach's ledger): the campaign by name, the reply
    sent = html.split('id="customer-deliveries"')[1].split("</section>")[0]
    assert "冬のセール 1" in sent and "キャンペーン" in sent
    assert "問い合わせへの返信" in sent and inquiry.reference in sent
    # the timeline (crm events) in words
    timeline = html.split('id="customer-timeline"')[1].split("</section>")[0]
    assert "佐藤" in timeline and "変更した項目: メモ" in timeline


def test_the_overview_comes_before_the_edit_form(client, colleague, campaign_template):
    customer = customer_with_history(1, template=campaign_template, agent=colleague)
    client.force_login(colleague)

    html = client.get(customer_page(customer)).content.decode()

    overview = html.index('id="customer-overview"')
    assert overview < html.index('name="family_name"')
    # the rarely edited parts of the form are folded
    assert html.count("<details>") >= 4


def test_each_section_shows_the_newest_rows_with_a_link_to_all(
    client, colleague, campaign_template
):
    customer = customer_with_history(
        CUSTOMER_PAGE_ROWS + 2, template=campaign_template, agent=colleague
    )
    client.force_login(colleague)

    response = client.get(customer_page(customer))

    overview = response.context["overview"]
    for section in (overview.orders, overview.inquiries, overview.deliveries, overview.events):
        assert len(section.rows) == CUSTOMER_PAGE_ROWS
        assert section.more
    assert overview.orders.rows[0].order_number == f"R-{customer.pk}-000"  # the newest
    html = response.content.decode()
    everything = {
        "crm_order_changelist": f"?customer__id__exact={customer.pk}",
        "tickets_inquiry_changelist": f"?customer__id__exact={customer.pk}&amp;status=all",
        "outreach_delivery_changelist": f"?customer__id__exact={customer.pk}",
        "crm_customer_history": "",
    }
    for name, query in everything.items():
        url = reverse(f"admin:{name}", args=[customer.pk] if name.endswith("history") else [])
        assert f'href="{url}{query}"' in html, name


def test_the_links_to_all_rows_open_the_customers_rows(client, owner, campaign_template):
    customer = customer_with_history(
        CUSTOMER_PAGE_ROWS + 1, template=campaign_template, agent=owner
    )
    factories.order(customer=factories.customer(), order_number="STRANGER-1")
    client.force_login(owner)

    orders = client.get(reverse("admin:crm_order_changelist"), {"customer__id__exact": customer.pk})
    inquiries = client.get(
        reverse("admin:tickets_inquiry_changelist"),
        {"customer__id__exact": customer.pk, "status": "all"},
    )
    deliveries = client.get(
        reverse("admin:outreach_delivery_changelist"), {"customer__id__exact": customer.pk}
    )

    assert {o.customer_id for o in orders.context["cl"].result_list} == {customer.pk}
    assert orders.context["cl"].result_count == CUSTOMER_PAGE_ROWS + 1
    assert inquiries.context["cl"].result_count == CUSTOMER_PAGE_ROWS + 1
    assert {d.customer_id for d in deliveries.context["cl"].result_list} == {customer.pk}


def test_the_customer_page_query_count_does_not_grow_with_history(
    client, owner, campaign_template, django_assert_num_queries
):
    small = customer_with_history(2, template=campaign_template, agent=owner)
    large = customer_with_history(
        CUSTOMER_PAGE_ROWS + 3, template=campaign_template, agent=owner, phone="0312345678"
    )
    client.force_login(owner)
    client.get(customer_page(small))  # warm the content-type cache

    counts = []
    for customer in (small, large):
        with django_assert_num_queries(15) as captured:
            assert client.get(customer_page(customer)).status_code == 200
        counts.append(len(captured))
    assert counts[0] == counts[1]


def test_the_customer_page_shows_no_internal_values(client, colleague, campaign_template):
    customer = customer_with_history(3, template=campaign_template, agent=colleague)
    consent_record(
        customer=customer,
        channel="line",
        action="opt_out",
        source="staff",
        note="お電話で配信停止のご希望",
        actor=colleague,
    )
    client.force_login(colleague)

    text = visible_text(client.get(customer_page(customer)).content.decode())

    assert internal_values(text, usernames=("colleague",)) == []


def test_the_internal_values_scan_catches_what_it_looks_for():
    # The scan above proves nothing unless it finds each kind of leak.
    for leak in ("own_site", "on_track", "queued", '{"channel": 1}', "by colleague"):
        assert internal_values(leak, usernames=("colleague",)), leak
    assert internal_values("岡田 彩 / 楽天市場 / ¥12,345", usernames=("colleague",)) == []
