"""The hand-computed month of tests/reports/test_monthly.py (see its
docstring), built through the services with Django's clock set by the test."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from crisis.models import Incident, Suspension
from tests.crm import factories as crm_factories
from tests.tickets import factories
from tickets.models import BusinessCalendar, Category, SlaPolicy
from tickets.services import (
    inquiry_assign,
    inquiry_category_set,
    inquiry_reply,
    inquiry_status_set,
)

JST = ZoneInfo("Asia/Tokyo")
NOVEMBER = date(2026, 11, 1)
NOW = datetime(2026, 12, 10, 12, 0, tzinfo=JST)


def at(day: str, hour: int, minute: int = 0) -> datetime:
    month, dom = (int(part) for part in day.split("-"))
    return datetime(2026, month, dom, hour, minute, tzinfo=JST)


@pytest.fixture
def clock(monkeypatch):
    def set_to(moment: datetime) -> None:
        monkeypatch.setattr(timezone, "now", lambda: moment)

    return set_to


def make_inquiry(clock, *, channel, received, customer=None, order=None):
    clock(received)
    return factories.inquiry(channel=channel, received_at=received, customer=customer, order=order)


def work(clock, inquiry, *, agent, category, triaged=None, replied=None, resolved=None):
    if triaged:
        clock(triaged)
        inquiry_category_set(inquiry=inquiry, category=category, actor=agent)
        inquiry_assign(inquiry=inquiry, assignee=agent, actor=agent)
    if replied:
        clock(replied)
        inquiry_reply(inquiry=inquiry, body="ご連絡ありがとうございます。", actor=agent)
    if resolved:
        clock(resolved)
        inquiry_status_set(inquiry=inquiry, status="resolved", actor=agent)


@pytest.fixture
def november(clock, owner, colleague):
    """The month in the module docstring; the clock left at NOW."""
    SlaPolicy.objects.create(
        name="電話: 営業時間で8時間",
        channel="phone",
        first_reply_minutes=480,
        clock="business",
        calendar=BusinessCalendar.objects.get(),
    )
    delivery = Category.objects.get(code="delivery_delay")
    defect = Category.objects.get(code="product_defect")
    first = crm_factories.customer()
    order_1 = crm_factories.order(customer=first, ordered_at=at("10-28", 9))
    order_2 = crm_factories.order(customer=first, ordered_at=at("11-05", 9))

    a = make_inquiry(
        clock, channel="email", received=at("11-02", 10), customer=first, order=order_1
    )
    work(
        clock,
        a,
        agent=colleague,
        category=delivery,
        triaged=at("11-02", 10, 20),
        replied=at("11-02", 11),
        resolved=at("11-02", 15),
    )
    b = make_inquiry(clock, channel="email", received=at("11-10", 9), customer=first, order=order_2)
    work(
        clock,
        b,
        agent=owner,
        category=defect,
        triaged=at("11-10", 9, 45),
        replied=at("11-10", 13),
        resolved=at("11-12", 9),
    )
    c = make_inquiry(clock, channel="phone", received=at("11-20", 17, 30))
    work(
        clock,
        c,
        agent=colleague,
        category=defect,
        triaged=at("11-24", 9, 45),
        replied=at("11-24", 10),
    )
    d_customer = crm_factories.customer()
    order_3 = crm_factories.order(customer=d_customer, ordered_at=at("11-20", 9))
    d = make_inquiry(
        clock, channel="amazon", received=at("11-30", 23), customer=d_customer, order=order_3
    )
    work(
        clock,
        d,
        agent=colleague,
        category=delivery,
        triaged=at("12-01", 0, 10),
        replied=at("12-01", 2),
        resolved=at("12-02", 23),
    )
    make_inquiry(clock, channel="yahoo", received=at("11-25", 10))
    h = make_inquiry(clock, channel="email", received=at("11-28", 10))
    work(
        clock,
        h,
        agent=owner,
        category=delivery,
        triaged=at("11-28", 10, 30),
        replied=at("11-29", 12),
    )
    f = make_inquiry(clock, channel="email", received=at("10-31", 23, 30))
    work(
        clock,
        f,
        agent=colleague,
        category=delivery,
        triaged=at("10-31", 23, 40),
        replied=at("11-01", 0, 30),
    )
    make_inquiry(clock, channel="email", received=at("12-01", 0))
    # Crisis rows: one of each in November, one outside it (the SKU's
    # November stop was lifted before it was stopped again in December).
    for decided, lifted in ((at("11-15", 10), at("11-18", 10)), (at("12-02", 10), None)):
        Suspension.objects.create(
            sku="TEA-1",
            product_name="静岡煎茶",
            channels=["rakuten"],
            reason="stock_out",
            expected_resume_at=decided + timedelta(days=3),
            decided_by=owner,
            decided_at=decided,
            lifted_at=lifted,
            lifted_by=owner if lifted else None,
        )
    for started in (at("10-20", 10), at("11-18", 10)):
        Incident.objects.create(
            kind="mall_outage",
            title="楽天 RMS 障害",
            channel="rakuten",
            started_at=started,
            opened_by=owner,
        )
    clock(NOW)
    return {"delivery": delivery, "defect": defect, "b": b}
