"""The bulk path's batch validation says what full_clean says, row by row."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from crm.models import Customer, Order
from crm.services import (
    NewCustomer,
    NewOrder,
    OrderLineData,
    customers_create_bulk,
    order_clean,
    orders_clean_bulk,
)
from crm.services.customers import _profile_full_clean
from crm.services.profile import _clean_profile

pytestmark = pytest.mark.django_db

TOKYO = timezone.get_default_timezone()
MAY = datetime(2024, 5, 1, 10, 0, tzinfo=TOKYO)


def new_order(**changes) -> NewOrder:
    values = {
        "channel": "own_site",
        "order_number": "W-1",
        "customer": None,
        "ordered_at": MAY,
        "total": 1200,
        "status": "paid",
        "shipped_at": None,
        "delivered_at": None,
        "lines": [OrderLineData(sku="TEA-1", name="煎茶", quantity=1, unit_price=1200)],
    }
    return NewOrder(**{**values, **changes})


ORDERS = [
    new_order(),
    new_order(order_number="W-" + "9" * 70),
    new_order(order_number=""),
    new_order(channel="fax"),
    new_order(status="lost"),
    new_order(total=-1),
    new_order(ordered_at=datetime(1999, 12, 31, tzinfo=TOKYO)),
    new_order(shipped_at=MAY - timedelta(days=1), delivered_at=MAY - timedelta(days=2)),
    new_order(ordered_at=timezone.now() + timedelta(days=400), shipped_at=MAY, status="x"),
    new_order(
        order_number="", channel="", total=-5, delivered_at=datetime(1990, 1, 1, tzinfo=TOKYO)
    ),
]


def one_by_one(data: NewOrder):
    order = Order(
        channel=data.channel,
        order_number=data.order_number,
        ordered_at=data.ordered_at,
        total=data.total,
        status=data.status,
        shipped_at=data.shipped_at,
        delivered_at=data.delivered_at,
    )
    try:
        order_clean(order)
    except ValidationError as error:
        return error.message_dict
    return None


def test_orders_checked_as_a_batch_are_refused_with_full_cleans_messages_in_its_order():
    in_batch = [
        None if error is None else error.message_dict for error in orders_clean_bulk(orders=ORDERS)
    ]

    expected = [one_by_one(data) for data in ORDERS]
    assert [list((e or {}).items()) for e in in_batch] == [
        list((e or {}).items()) for e in expected
    ]
    assert expected[0] is None and all(expected[1:])


PROFILES = [
    {"family_name": "山田", "email": "taro@example.jp"},
    {"family_name": "山" * 101},
    {"address": "渋谷区" * 90, "given_name": "名" * 120},
    {"email": "a" * 250 + "@example.jp"},
    {"email": "docomo..legacy.@docomo.ne.jp", "phone": "0" * 31},
    {"postal_code": "150-0001", "prefecture": "東京都", "birthday": MAY.date()},
]


def test_new_customers_checked_as_a_batch_are_refused_with_full_cleans_messages():
    people = [
        NewCustomer(channel="own_site", external_id=f"M{n}", identity_display_name="", profile=p)
        for n, p in enumerate(PROFILES)
    ]

    in_batch = customers_create_bulk(people=people)

    expected = []
    for profile in PROFILES:
        try:
            _profile_full_clean(Customer(**_clean_profile(profile)))
            expected.append(None)
        except ValidationError as error:
            expected.append(error.message_dict)
    got = [r.message_dict if isinstance(r, ValidationError) else None for r in in_batch]
    assert got == expected
    assert expected[0] is None and expected[-1] is None and all(expected[1:-1])
    assert Customer.objects.count() == 2
