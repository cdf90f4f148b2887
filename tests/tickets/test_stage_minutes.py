"""Each response stage's time, stored in the clock of the inquiry's SLA
policy when the stage is reached (the monthly report aggregates them)."""

from datetime import datetime, timedelta
from importlib import import_module
from zoneinfo import ZoneInfo

import pytest
from django.apps import apps as django_apps
from django.utils import timezone

from tests.tickets import factories
from tickets.models import BusinessCalendar, Category, Inquiry, SlaPolicy
from tickets.services import (
    InboundMessage,
    inquiry_assign,
    inquiry_category_set,
    inquiry_inbound_add,
    inquiry_reply,
    inquiry_status_set,
)

pytestmark = pytest.mark.django_db
JST = ZoneInfo("Asia/Tokyo")
FRIDAY_EVENING = datetime(2026, 11, 20, 17, 30, tzinfo=JST)  # 11/23 (Mon) is a holiday


@pytest.fixture
def clock(monkeypatch):
    """Django's clock set by the test: stages are reached "now"."""

    def set_to(moment: datetime) -> None:
        monkeypatch.setattr(timezone, "now", lambda: moment)

    return set_to


@pytest.fixture
def phone_policy():
    return SlaPolicy.objects.create(
        name="電話: 営業時間で8時間",
        channel="phone",
        first_reply_minutes=480,
        clock="business",
        calendar=BusinessCalendar.objects.get(),
    )


def _work_through(inquiry, colleague, clock, *, triaged, replied, resolved):
    clock(triaged)
    inquiry_category_set(inquiry=inquiry, category=Category.objects.first(), actor=colleague)
    inquiry_assign(inquiry=inquiry, assignee=colleague, actor=colleague)
    clock(replied)
    inquiry_reply(inquiry=inquiry, body="確認いたします。", actor=colleague)
    clock(resolved)
    inquiry_status_set(inquiry=inquiry, status="resolved", actor=colleague)
    inquiry.refresh_from_db()
    return inquiry


def test_business_hour_policy_stores_open_minutes_past_weekend_and_holiday(
    colleague, clock, phone_policy
):
    inquiry = factories.inquiry(channel="phone", received_at=FRIDAY_EVENING)
    inquiry = _work_through(
        inquiry,
        colleague,
        clock,
        triaged=datetime(2026, 11, 24, 9, 45, tzinfo=JST),
        replied=datetime(2026, 11, 24, 10, 0, tzinfo=JST),
        resolved=datetime(2026, 11, 24, 13, 0, tzinfo=JST),
    )
    # Friday 17:30–18:00 is 30 open minutes; Saturday to Monday (勤労感謝の日) are closed.
    assert (inquiry.triage_minutes, inquiry.first_reply_minutes, inquiry.resolution_minutes) == (
        75,
        90,
        270,
    )


def test_calendar_clock_policy_stores_wall_minutes(colleague, clock):
    inquiry = factories.inquiry(channel="email", received_at=FRIDAY_EVENING)
    inquiry = _work_through(
        inquiry,
        colleague,
        clock,
        triaged=datetime(2026, 11, 20, 17, 50, tzinfo=JST),
        replied=datetime(2026, 11, 21, 17, 30, tzinfo=JST),
        resolved=datetime(2026, 11, 24, 17, 30, tzinfo=JST),
    )
    assert (inquiry.triage_minutes, inquiry.first_reply_minutes, inquiry.resolution_minutes) == (
        20,
        1440,
        5760,
    )


def test_reopening_clears_the_resolution_minutes(colleague, clock):
    inquiry = factories.inquiry(channel="email", received_at=FRIDAY_EVENING)
    inquiry = _work_through(
        inquiry,
        colleague,
        clock,
        triaged=datetime(2026, 11, 20, 18, 0, tzinfo=JST),
        replied=datetime(2026, 11, 20, 18, 30, tzinfo=JST),
        resolved=datetime(2026, 11, 20, 19, 0, tzinfo=JST),
    )
    assert inquiry.resolution_minutes == 90
    inquiry_inbound_add(
        inquiry=inquiry,
        message=InboundMessage(
            body_text="まだ解決していません。", received_at=datetime(2026, 11, 21, 9, 0, tzinfo=JST)
        ),
    )
    inquiry.refresh_from_db()
    assert inquiry.resolved_at is None and inquiry.resolution_minutes is None
    clock(datetime(2026, 11, 21, 10, 0, tzinfo=JST))
    inquiry_status_set(inquiry=inquiry, status="closed", actor=colleague)
    inquiry.refresh_from_db()
    assert inquiry.resolution_minutes == 990


def test_the_migration_backfills_existing_inquiries_in_their_policy_clock(
    colleague, clock, phone_policy
):
    inquiry = factories.inquiry(channel="phone", received_at=FRIDAY_EVENING)
    _work_through(
        inquiry,
        colleague,
        clock,
        triaged=datetime(2026, 11, 24, 9, 45, tzinfo=JST),
        replied=datetime(2026, 11, 24, 10, 0, tzinfo=JST),
        resolved=datetime(2026, 11, 24, 13, 0, tzinfo=JST),
    )
    Inquiry.objects.update(triage_minutes=None, first_reply_minutes=None, resolution_minutes=None)
    migration = import_module("tickets.migrations.0015_inquiry_stage_minutes")
    migration.backfill(django_apps, None)
    assert Inquiry.objects.values_list(
        "triage_minutes", "first_reply_minutes", "resolution_minutes"
    ).get() == (75, 90, 270)


def test_a_first_reply_that_never_reached_the_customer_clears_its_minutes(colleague, settings):
    # given: the first reply's only attempt ended in doubt and the worker gave up
    from outreach import ledger
    from tickets.services.reply_outcomes import reply_outcomes_settle

    settings.DELIVERY_MAX_ATTEMPTS = 1
    inquiry = factories.inquiry(received_at=timezone.now() - timedelta(hours=2))
    reply = inquiry_reply(inquiry=inquiry, body="確認いたします。", actor=colleague)
    inquiry.refresh_from_db()
    assert inquiry.first_reply_minutes == 120
    now = timezone.now()
    rows = ledger.delivery_claim_batch(send=reply.delivery.send, limit=10, now=now)
    ledger.delivery_mark_retry(
        rows, error="TimeoutError", now=now, in_doubt=True, lease=ledger.Lease(rows)
    )
    # when the outcome is taken in, the clock re-opens: no first reply, no minutes
    reply_outcomes_settle()
    inquiry.refresh_from_db()
    assert inquiry.first_replied_at is None and inquiry.first_reply_minutes is None
