"""Dates through the API: only trade's years go in, and what comes out is
always valid RFC 3339 (no offset with seconds)."""

import re
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from crm.models import ConsentEvent, Customer, Order
from tests.api_client import api_client
from tests.conftest import make_api_key
from tests.crm import factories
from tests.tickets import factories as ticket_factories
from tickets.models import Inquiry

pytestmark = pytest.mark.django_db

ORDER = {
    "channel": "own_site",
    "order_number": "OS-20261122-0001",
    "customer": {"external_id": "member-77", "email": "hina@example.jp"},
    "ordered_at": "2026-11-20T10:15:00+09:00",
    "total": 1000,
}
RFC3339_OFFSET = re.compile(r"(Z|[+-]\d\d:\d\d)$")


@pytest.fixture
def writer():
    return api_client(make_api_key(channels=["own_site"])[1])


def _in(days: int) -> str:
    return (timezone.now() + timedelta(days=days)).isoformat()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ordered_at": "1850-01-01T00:00:00+09:00"}, "ordered_at"),
        ({"ordered_at": "0001-01-01T00:00:00Z"}, "ordered_at"),
        ({"ordered_at": "1999-12-31T23:59:59+09:00"}, "ordered_at"),
        ({"ordered_at": None}, "ordered_at"),  # replaced below: more than a year ahead
        ({"shipped_at": "2026-11-20T10:14:59+09:00"}, "shipped_at"),
        ({"delivered_at": "2026-11-19T23:00:00+09:00"}, "delivered_at"),
        ({"shipped_at": "2126-11-21T10:00:00+09:00"}, "shipped_at"),
    ],
)
def test_implausible_order_dates_are_refused_naming_the_field(writer, change, field):
    if change == {"ordered_at": None}:
        change = {"ordered_at": _in(380)}
    response = writer.post("/api/v1/orders/", {**ORDER, **change}, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert list(error["fields"]) == [field], error
    assert field in error["message"]
    assert not Order.objects.exists() and not Customer.objects.exists()


def test_dates_at_the_edges_of_trade_are_accepted(writer):
    body = {
        **ORDER,
        "ordered_at": "2000-01-01T00:00:00+09:00",
        "shipped_at": "2000-01-01T00:00:00+09:00",
        "delivered_at": _in(360),
    }
    response = writer.post("/api/v1/orders/", body, format="json")
    assert response.status_code == 201, response.content


def test_a_consent_event_before_2000_is_refused_naming_the_field(writer):
    customer = factories.customer()
    body = {
        "customer_id": customer.pk,
        "channel": "email",
        "action": "opt_in",
        "wording_version": "v1",
        "occurred_at": "1887-12-31T00:00:00+09:00",
    }
    response = writer.post("/api/v1/consent-events/", body, format="json")
    assert response.status_code == 400, response.content
    assert list(response.json()["error"]["fields"]) == ["occurred_at"]
    assert not ConsentEvent.objects.exists()


def test_a_datetime_stored_before_1888_comes_back_without_a_seconds_offset(writer):
    # Given rows from before this rule, with 1 January 1887 (LMT in Asia/Tokyo, +09:18:59)
    long_ago = datetime(1887, 1, 1, 12, 0, tzinfo=timezone.get_current_timezone())
    customer = factories.customer()
    order = factories.order(customer=customer)
    writer.post(
        "/api/v1/consent-events/",
        {
            "customer_id": customer.pk,
            "channel": "email",
            "action": "opt_in",
            "wording_version": "v1",
        },
        format="json",
    )
    inquiry = ticket_factories.inquiry(customer=customer, channel="own_site")
    Order.objects.filter(pk=order.pk).update(ordered_at=long_ago, shipped_at=long_ago)
    Customer.objects.filter(pk=customer.pk).update(first_order_at=long_ago, created_at=long_ago)
    ConsentEvent.objects.update(occurred_at=long_ago)
    Inquiry.objects.filter(pk=inquiry.pk).update(created_at=long_ago)
    # When the API shows them
    shown = [
        writer.get(f"/api/v1/orders/{order.pk}/").json(),
        writer.get(f"/api/v1/customers/{customer.pk}/").json(),
        writer.get("/api/v1/consent-events/").json()["results"][0],
        writer.get(f"/api/v1/inquiries/{inquiry.reference}/").json(),
    ]
    # Then every datetime ends in Z or ±hh:mm, and means the same instant
    values = [
        shown[0]["ordered_at"],
        shown[0]["shipped_at"],
        shown[1]["first_order_at"],
        shown[1]["created_at"],
        shown[2]["occurred_at"],
        shown[3]["created_at"],
    ]
    for value in values:
        assert RFC3339_OFFSET.search(value), value
        assert datetime.fromisoformat(value) == long_ago
    assert RFC3339_OFFSET.search(shown[0]["created_at"])
    assert shown[0]["created_at"].endswith("+09:00")  # today's dates stay in Tokyo time
