"""The contact form's service (tickets/services/contact_form.py): the
customer made from what they typed, the inquiry opened and acknowledged.
The API around it is tested in test_api.py."""

from __future__ import annotations

import pytest

from crm.models import ChannelIdentity
from tests.crm import factories as crm_factories
from tickets.models import AutoAcknowledgement, MessageKind
from tickets.services import inquiry_submit

pytestmark = pytest.mark.django_db


def test_a_logged_in_member_is_found_by_their_member_id_with_the_name_split(smtp):
    AutoAcknowledgement.objects.update_or_create(
        channel="own_site", defaults={"body": "受け付けました。", "is_active": True}
    )

    inquiry = inquiry_submit(
        channel="own_site",
        name="山田\u3000太郎",
        name_kana="ヤマダ タロウ",
        email="taro@example.jp",
        external_id="M-1001",
        text="\n  届いた箱が潰れていました。\n交換できますか。",
    )

    customer = inquiry.customer
    assert (customer.family_name, customer.given_name) == ("山田", "太郎")
    assert (customer.family_name_kana, customer.given_name_kana) == ("ヤマダ", "タロウ")
    assert ChannelIdentity.objects.filter(
        customer=customer, channel="own_site", external_id="M-1001"
    ).exists()
    assert inquiry.subject == "届いた箱が潰れていました。"  # the text's first line
    kinds = list(inquiry.messages.order_by("id").values_list("kind", "is_automatic"))
    assert kinds == [(MessageKind.INBOUND, False), (MessageKind.OUTBOUND, True)]


def test_a_guest_is_found_by_email_and_their_order_number_links_their_order():
    customer = crm_factories.customer(email="hanako@example.jp")
    order = crm_factories.order(customer=customer, order_number="OS-42")
    identities = set(ChannelIdentity.objects.values_list("channel", "external_id"))

    inquiry = inquiry_submit(
        channel="own_site",
        name="花子",
        email="hanako@example.jp",
        subject="注文について",
        text="いつ届きますか",
        order_number="OS-42",
        order_channels=["own_site"],
    )

    assert inquiry.customer == customer
    assert inquiry.order == order and inquiry.subject == "注文について"
    # no member id: no site identity is made up for the guest
    assert set(ChannelIdentity.objects.values_list("channel", "external_id")) <= identities | {
        ("email", "hanako@example.jp")
    }
