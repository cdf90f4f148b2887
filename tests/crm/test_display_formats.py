"""Money and phone numbers as people read them on the screens that show
them: ¥28,560, 090-1234-5678 (whatever was stored)."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from crm.services import OrderLineData
from tests.crm import factories
from tests.tickets import factories as ticket_factories

pytestmark = pytest.mark.django_db


def test_the_order_page_shows_the_total_and_unit_prices_with_separators(client, colleague):
    customer = factories.customer()
    order = factories.order(
        customer=customer,
        total=28_560,
        lines=[OrderLineData(sku="TEA-GIFT", name="贈答用煎茶", quantity=2, unit_price=14_280)],
    )
    client.force_login(colleague)

    html = client.get(reverse("admin:crm_order_change", args=[order.pk])).content.decode()

    assert "¥28,560" in html and "¥14,280" in html
    assert "28560" not in html and "14280" not in html


def test_the_customer_list_shows_phone_numbers_in_their_usual_format(client, colleague):
    factories.customer(phone="+81 90 1234 5678")
    factories.customer(phone="0422515131")
    client.force_login(colleague)

    html = client.get(reverse("admin:crm_customer_changelist")).content.decode()

    assert "090-1234-5678" in html and "0422-51-5131" in html
    assert "+81 90 1234 5678" not in html and "0422515131" not in html


def test_the_customer_page_shows_the_phone_number_in_its_usual_format(client, colleague):
    customer = factories.customer(phone="0312345678")
    client.force_login(colleague)

    html = client.get(reverse("admin:crm_customer_change", args=[customer.pk])).content.decode()

    card = html.split('id="customer-overview"')[1].split("</section>")[0]
    assert "03-1234-5678" in card


def test_the_inquiry_page_shows_the_customers_phone_in_its_usual_format(client, colleague):
    customer = factories.customer(phone="0120444444")
    inquiry = ticket_factories.inquiry(customer=customer)
    client.force_login(colleague)

    html = client.get(reverse("admin:tickets_inquiry_change", args=[inquiry.pk])).content.decode()

    panel = html.split('id="customer-panel"')[1].split("</section>")[0]
    assert "0120-444-444" in panel and "0120444444" not in panel


def test_the_merge_confirmation_shows_phone_numbers_in_their_usual_format(client, owner):
    first = factories.customer(phone="09011112222")
    second = factories.customer(phone="0668881234")
    client.force_login(owner)

    html = client.post(
        reverse("admin:crm_customer_changelist"),
        {"action": "merge_customers", ACTION_CHECKBOX_NAME: [first.pk, second.pk]},
    ).content.decode()

    assert "090-1111-2222" in html and "06-6888-1234" in html


def test_the_personal_data_summary_shows_order_amounts_with_separators(client, owner):
    customer = factories.customer()
    factories.order(customer=customer, total=28_560)
    client.force_login(owner)

    html = client.post(
        reverse("admin:crm_customer_privacy_export", args=[customer.pk]),
        {"reason": "本人の開示請求", "output": "summary"},
    ).content.decode()

    assert "¥28,560" in html and "¥28560" not in html
