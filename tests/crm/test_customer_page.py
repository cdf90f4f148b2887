"""The customer page as a customer 360: who they are and what happened
(identities, consent, orders, inquiries, messages sent, timeline), read
before the edit form, in words, with a flat query count."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from crm.models import Customer
from crm.selectors import CUSTOMER_PAGE_ROWS
from crm.services import consent_record, customer_claimant_set
from outreach.models import MessageTemplate
from tests.crm import factories
from tests.crm.customer_history import customer_with_history, internal_values, marketing_template

pytestmark = pytest.mark.django_db


def customer_page(customer: Customer) -> str:
    return reverse("admin:crm_customer_change", args=[customer.pk])


@pytest.fixture
def campaign_template() -> MessageTemplate:
    return marketing_template()


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
        with django_assert_num_queries(16) as captured:
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
    assert (
        internal_values(
            "岡田 彩 / 楽天市場 / ¥12,345 / ogawa_n77@example.com / x@marketplace.amazon.co.jp",
            usernames=("colleague",),
        )
        == []
    )
