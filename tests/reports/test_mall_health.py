"""Mall health (reports.selectors.mall_health) against a fixture computed by
hand: every expected figure below is written out, with how it comes about.

The clock is Monday 2026-11-30 12:00 in Tokyo. Amazon's SLA policy counts
business hours here (weekdays 09:00–18:00, 8 business hours), so that
Amazon's own 24-calendar-hour rule can be seen to differ from it."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crisis.models import Incident, IncidentKind, IncidentStatus, Suspension, SuspensionReason
from crm.models import OrderStatus
from reports.selectors.mall_health import BAD, GOOD, WARNING, mall_health
from tests.crm import factories as crm_factories
from tickets.models import BusinessCalendar, Inquiry, InquiryStatus, SlaClock, SlaPolicy
from tickets.services import InboundMessage, inquiry_create

pytestmark = pytest.mark.django_db

TOKYO = ZoneInfo("Asia/Tokyo")
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=TOKYO)  # a Monday


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=TOKYO)


def received(channel: str, when: datetime, *, replied_after: timedelta | None = None) -> Inquiry:
    """An inquiry received at `when`, answered `replied_after` later (the
    reply service stamps the present, so the first reply's time is set
    back to when it happened)."""
    inquiry = inquiry_create(
        customer=crm_factories.customer(),
        channel=channel,
        message=InboundMessage(
            subject="お問い合わせ", body_text="商品について教えてください。", received_at=when
        ),
    )
    if replied_after is not None:
        Inquiry.objects.filter(pk=inquiry.pk).update(
            first_replied_at=when + replied_after, status=InquiryStatus.WAITING_CUSTOMER
        )
    return inquiry


@pytest.fixture
def amazon_in_business_hours():
    calendar = BusinessCalendar.objects.create(
        name="平日 9–18時",
        hours={day: ["09:00-18:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
    )
    SlaPolicy.objects.filter(channel="amazon").update(
        clock=SlaClock.BUSINESS, calendar=calendar, first_reply_minutes=8 * 60
    )


@pytest.fixture
def fixture_data(amazon_in_business_hours, owner):
    hours = lambda n: timedelta(hours=n)  # noqa: E731
    # Rakuten: the default policy, 24 calendar hours.
    received("rakuten", NOW - timedelta(days=2), replied_after=hours(3))  # met
    received("rakuten", NOW - timedelta(days=3), replied_after=hours(30))  # late
    received("rakuten", NOW - hours(5))  # due in 19 h: not judged yet
    received("rakuten", NOW - timedelta(days=10))  # unanswered, past due: breach
    received("rakuten", NOW - timedelta(days=40), replied_after=hours(1))  # met (90 days)
    received("rakuten", NOW - timedelta(days=100))  # outside every window; still a breach

    # Amazon: the policy counts 8 business hours; Amazon counts 24 calendar hours.
    # Saturday 10:00, answered Monday 10:00: inside the policy (due Monday
    # 17:00), 48 hours for Amazon: late.
    received("amazon", at(11, 28, 10), replied_after=hours(48))
    # Thursday 10:00, answered 20:00: policy missed (due 18:00), Amazon on time.
    received("amazon", at(11, 26, 10), replied_after=hours(10))
    # Friday 12:00, answered Saturday 11:00 (23 h): policy due Monday 11:00: met.
    received("amazon", at(11, 27, 12), replied_after=hours(23))
    # Wednesday 09:00, answered exactly 24 h later: on time for Amazon;
    # policy due Wednesday 17:00: missed.
    received("amazon", at(11, 25, 9), replied_after=hours(24))
    # Sunday 13:00, not answered, 23 hours old: judged by neither yet.
    received("amazon", at(11, 29, 13))
    # 20 days ago, never answered: late, missed, and an open breach.
    received("amazon", NOW - timedelta(days=20))

    # Yahoo: 12 calendar hours.
    received("yahoo", NOW - timedelta(days=1), replied_after=hours(6))  # met
    received("yahoo", NOW - timedelta(days=2), replied_after=hours(18))  # late
    received("yahoo", NOW - timedelta(days=20), replied_after=hours(66))  # late
    received("yahoo", NOW - timedelta(days=60), replied_after=hours(102))  # late
    received("yahoo", NOW - hours(1))  # unanswered, due in 11 h: in no average

    # Orders: Rakuten 2 placed in 30 days, 1 cancelled (and a cancelled
    # one 31 days ago, outside); Amazon 1 placed, none cancelled.
    customer = crm_factories.customer()
    for channel, days, status in (
        ("rakuten", 5, OrderStatus.DELIVERED),
        ("rakuten", 12, OrderStatus.CANCELLED),
        ("rakuten", 31, OrderStatus.CANCELLED),
        ("amazon", 3, OrderStatus.SHIPPED),
    ):
        crm_factories.order(
            customer=customer,
            channel=channel,
            ordered_at=NOW - timedelta(days=days),
            status=status,
        )

    # Incidents (no crisis service writes them yet): one ongoing on Rakuten,
    # one recovered on Rakuten, one ongoing with no channel (a carrier).
    for channel, status in (
        ("rakuten", IncidentStatus.OPEN),
        ("rakuten", IncidentStatus.RECOVERED),
        ("", IncidentStatus.OPEN),
    ):
        Incident.objects.create(
            kind=IncidentKind.MALL_OUTAGE if channel else IncidentKind.CARRIER_DELAY,
            title="障害",
            channel=channel,
            status=status,
            started_at=NOW - hours(3),
            recovered_at=None if status == IncidentStatus.OPEN else NOW - hours(1),
            opened_by=owner,
        )
    # Suspensions: one active on Rakuten and Yahoo, one lifted on Amazon.
    for channels, lifted in ((["rakuten", "yahoo"], False), (["amazon"], True)):
        Suspension.objects.create(
            sku="TEA-01",
            product_name="静岡煎茶",
            channels=channels,
            reason=SuspensionReason.STOCK_OUT,
            expected_resume_at=NOW + timedelta(days=3),
            decided_by=owner,
            decided_at=NOW - timedelta(days=1),
            lifted_at=NOW - hours(2) if lifted else None,
            lifted_by=owner if lifted else None,
        )


def figures(ratio_by_window):
    return {days: (r.part, r.whole, r.percent, r.band) for days, r in ratio_by_window.items()}


def test_mall_health_figures_equal_the_hand_computed_fixture(fixture_data):
    health = mall_health(now=NOW)
    rows = {row.channel: row for row in health.rows}
    # Only the malls: no other channel has anything to show.
    assert [row.channel for row in health.rows] == ["rakuten", "amazon", "yahoo"]

    rakuten, amazon, yahoo = rows["rakuten"], rows["amazon"], rows["yahoo"]
    # Rakuten: 7 d: met 1 of 2; 30 d: + the breach: 1 of 3; 90 d: + the 40-day one: 2 of 4.
    assert figures(rakuten.compliance) == {
        7: (1, 2, 50.0, BAD),
        30: (1, 3, 33.3, BAD),
        90: (2, 4, 50.0, BAD),
    }
    assert rakuten.open_breaches == 2
    assert rakuten.amazon_late is None and rakuten.yahoo_average is None
    assert (rakuten.cancellation.part, rakuten.cancellation.whole) == (1, 2)
    assert rakuten.cancellation.band == BAD
    assert (rakuten.open_incidents, rakuten.active_suspensions) == (1, 1)

    # Amazon, by its policy (business hours): Saturday's and Friday's met,
    # Thursday's and Wednesday's missed; the 20-day-old one missed.
    assert figures(amazon.compliance) == {
        7: (2, 4, 50.0, BAD),
        30: (2, 5, 40.0, BAD),
        90: (2, 5, 40.0, BAD),
    }
    # Amazon's own rule (24 calendar hours, weekends included): the
    # Saturday one answered on Monday is late although the policy was met;
    # exactly 24 hours is on time; Sunday's is not 24 hours old yet.
    assert figures(amazon.amazon_late) == {
        7: (1, 4, 25.0, BAD),
        30: (2, 5, 40.0, BAD),
        90: (2, 5, 40.0, BAD),
    }
    assert amazon.open_breaches == 1
    assert (amazon.cancellation.part, amazon.cancellation.whole) == (0, 1)
    assert amazon.cancellation.band == GOOD
    assert (amazon.open_incidents, amazon.active_suspensions) == (0, 0)

    # Yahoo: averages (6 + 18) / 2 = 12 h exactly: the top band; with 66 h:
    # 30 h, middle; with 102 h: 48 h exactly: the bottom band.
    averages = {d: (a.value, a.count, a.band) for d, a in yahoo.yahoo_average.items()}
    assert averages == {
        7: (timedelta(hours=12), 2, GOOD),
        30: (timedelta(hours=30), 3, WARNING),
        90: (timedelta(hours=48), 4, BAD),
    }
    assert figures(yahoo.compliance) == {
        7: (1, 2, 50.0, BAD),
        30: (1, 3, 33.3, BAD),
        90: (1, 4, 25.0, BAD),
    }
    assert yahoo.cancellation.whole == 0 and yahoo.cancellation.band is None
    assert (yahoo.open_breaches, yahoo.open_incidents, yahoo.active_suspensions) == (0, 0, 1)

    assert health.incidents_without_channel == 1
    # Open and unanswered, all channels: past due (2 Rakuten, 1 Amazon);
    # due today (Amazon's Sunday one at 17:00, Yahoo's at 23:00).
    assert health.open_totals == {"overdue": 3, "at_risk": 0, "due_today": 2}


def test_compliance_and_late_rate_bands_follow_their_thresholds(amazon_in_business_hours):
    # 19 of 20 Amazon inquiries answered in 2 h, one in 30 h: compliance
    # 95 % (good, its lower edge) and 5 % late (warning, its lower edge).
    for n in range(20):
        received("amazon", at(11, 24, 10), replied_after=timedelta(hours=30 if n == 0 else 2))
    amazon = next(row for row in mall_health(now=NOW).rows if row.channel == "amazon")
    assert figures(amazon.compliance)[7] == (19, 20, 95.0, GOOD)
    assert figures(amazon.amazon_late)[7] == (1, 20, 5.0, WARNING)


def test_a_channel_beyond_the_malls_appears_once_it_has_inquiries():
    received("email", NOW - timedelta(days=1), replied_after=timedelta(hours=2))
    rows = {row.channel: row for row in mall_health(now=NOW).rows}
    assert list(rows) == ["rakuten", "amazon", "yahoo", "email"]
    assert figures(rows["email"].compliance)[7] == (1, 1, 100.0, GOOD)
    assert rows["email"].cancellation is None  # email takes no orders


def test_mall_health_takes_five_queries_however_many_inquiries(fixture_data):
    with CaptureQueriesContext(connection) as few:
        mall_health(now=NOW)
    for n in range(10):
        received(("rakuten", "amazon", "yahoo", "own_site")[n % 4], NOW - timedelta(days=n))
    with CaptureQueriesContext(connection) as more:
        mall_health(now=NOW)
    assert len(few) == len(more) == 5
