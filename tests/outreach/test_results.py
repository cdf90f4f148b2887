"""A campaign's results: attributed orders and revenue per group against a
hand-computed fixture, the lift, the page (quiet hours, progress, submit
row, results table, chart data, CSV) and its query counts."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from outreach import services
from outreach.models import Campaign, CampaignStatus, Delivery, DeliveryStatus, SkipReason
from outreach.selectors import results_for_campaign
from tests.crm import factories
from tests.outreach.test_campaign_admin import (
    _no_quiet_hours,  # noqa: F401 (autouse fixture)
    campaign_make,
    change_url,
    consented,
    marketer,  # noqa: F401 (fixture)
    progress_url,
    segment,  # noqa: F401 (fixture)
    template,  # noqa: F401 (fixture)
)

pytestmark = pytest.mark.django_db
JST = ZoneInfo("Asia/Tokyo")
LAUNCH = datetime(2026, 11, 1, 10, 0, tzinfo=JST)


def launched(tpl, seg, **fields) -> Campaign:
    """A campaign as launch leaves it (its send, sending), its rows written
    by the test."""
    send = services.send_create(kind="campaign", channel="email", purpose="marketing", template=tpl)
    return campaign_make(
        tpl,
        seg,
        send=send,
        status=CampaignStatus.COMPLETED,
        launched_at=LAUNCH,
        **fields,
    )


def row(campaign, customer, *, sent_at=None, holdout=False, skip="", clicks=0):
    status = DeliveryStatus.SENT if sent_at else DeliveryStatus.SKIPPED
    return Delivery.objects.create(
        send=campaign.send,
        customer=customer,
        channel="email",
        status=status,
        skip_reason=SkipReason.HOLDOUT if holdout else skip,
        sent_at=sent_at,
        attempts=1 if sent_at else 0,
        click_count=clicks,
        first_clicked_at=sent_at + timedelta(minutes=5) if clicks else None,
    )


def order(customer, at, total, status="delivered"):
    return factories.order(customer=customer, ordered_at=at, total=total, status=status)


@pytest.fixture
def fixture_campaign(template, segment):  # noqa: F811
    campaign = launched(template, segment, holdout_percent=50)
    hour = timedelta(hours=1)
    a, b, c = (factories.customer() for _ in range(3))
    row(campaign, a, sent_at=LAUNCH + hour)
    order(a, LAUNCH - timedelta(days=1), 5000)  # before the message
    order(a, LAUNCH + 2 * hour, 3000)  # counts
    order(a, LAUNCH + 3 * hour, 7000, status="cancelled")  # cancelled
    order(a, LAUNCH + timedelta(days=6), 2000)  # counts (within 7 days of 11:00)
    order(a, LAUNCH + timedelta(days=8), 9999)  # after the window
    row(campaign, b, sent_at=LAUNCH + hour, clicks=3)  # clicked, no order
    row(campaign, c, sent_at=LAUNCH + hour)
    order(c, LAUNCH + timedelta(minutes=30), 4000)  # before c's message
    h1, h2, h3, h4 = (factories.customer() for _ in range(4))
    for held in (h1, h2, h3, h4):
        row(campaign, held, holdout=True)
    order(h1, LAUNCH + timedelta(days=1), 1000)  # counts (after the launch)
    order(h2, LAUNCH - timedelta(minutes=1), 8000)  # before the launch
    ineligible = factories.customer()
    row(campaign, ineligible, skip=SkipReason.NO_CONSENT)
    order(ineligible, LAUNCH + hour, 50000)  # not in either group
    return campaign


def test_attributed_orders_and_revenue_equal_the_hand_computed_fixture(fixture_campaign):
    results = results_for_campaign(fixture_campaign)

    sent, held = results.recipients, results.holdout
    assert (sent.members, sent.clicked, sent.converted, sent.orders, sent.revenue) == (
        3,
        1,
        1,
        2,
        5000,
    )
    assert (held.members, held.clicked, held.converted, held.orders, held.revenue) == (
        4,
        0,
        1,
        1,
        1000,
    )
    # 1/3 of the recipients ordered, 1/4 of the holdout: a third more often
    assert results.lift == pytest.approx((1 / 3 - 1 / 4) / (1 / 4))
    # 5,000 less 3 recipients × 250 a head (the holdout's 1,000 / 4)
    assert results.incremental_revenue == 4250


def test_the_attribution_window_is_the_campaigns(fixture_campaign):
    fixture_campaign.attribution_days = 1
    results = results_for_campaign(fixture_campaign)
    assert (results.recipients.orders, results.recipients.revenue) == (1, 3000)
    assert (results.holdout.orders, results.holdout.revenue) == (0, 0)  # 24 h exactly: out


def test_the_results_page_shows_the_table_the_chart_data_and_the_csv(
    client,
    marketer,  # noqa: F811
    fixture_campaign,
):
    client.force_login(marketer)
    response = client.get(change_url(fixture_campaign))
    content = response.content.decode()
    assert response.context["results_rows"][5][1:] == ("¥5,000", "¥1,000")
    assert response.context["results_chart"]["counts"]["datasets"][0]["data"] == [3, 1, 1]
    assert 'id="report-charts"' in content and 'data-chart="counts"' in content
    assert "+33.3%" in content

    csv = client.get(reverse("admin:outreach_campaign_results_csv", args=[fixture_campaign.pk]))
    text = csv.content.decode("utf-8")
    assert text.startswith("\ufeff")
    lines = text.lstrip("\ufeff").splitlines()
    assert lines[0] == "指標,受信者,比較グループ"
    assert '"¥5,000","¥1,000"' in lines[6]


def test_the_campaign_page_and_its_results_read_as_many_queries_with_more_deliveries(
    client,
    marketer,  # noqa: F811
    fixture_campaign,
):
    client.force_login(marketer)
    url = change_url(fixture_campaign)
    client.get(url)  # caches warm
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for _ in range(10):
        customer = factories.customer()
        row(fixture_campaign, customer, sent_at=LAUNCH, clicks=1)
        order(customer, LAUNCH + timedelta(hours=2), 1200)
    with CaptureQueriesContext(connection) as many:
        response = client.get(url)
    assert response.context["results"].recipients.members == 13
    assert len(many.captured_queries) == len(few.captured_queries)
    csv_url = reverse("admin:outreach_campaign_results_csv", args=[fixture_campaign.pk])
    with CaptureQueriesContext(connection) as csv_queries:
        client.get(csv_url)
    assert len(csv_queries.captured_queries) <= 7  # session, user, campaign, perms, results


def test_before_any_send_progress_is_zero_with_the_ineligible_apart(
    client,
    marketer,  # noqa: F811
    template,  # noqa: F811
    segment,  # noqa: F811
):
    for _ in range(3):
        consented()
    for _ in range(2):
        consented(email="")  # no address: ineligible
    campaign = services.campaign_launch(campaign=campaign_make(template, segment))
    client.force_login(marketer)
    data = client.get(progress_url(campaign)).json()
    # 2 of 5 skipped at the snapshot used to read as 40 % done
    assert (data["percent"], data["done"], data["total"], data["ineligible"]) == (0, 0, 3, 2)
    assert [(r["reason"], r["count"]) for r in data["by_reason"]] == [("no_address", 2)]


def test_progress_leaves_the_holdout_out_and_counts_what_was_attempted(
    template,  # noqa: F811
    segment,  # noqa: F811
):
    campaign = launched(template, segment)
    for _ in range(2):
        row(campaign, factories.customer(), sent_at=LAUNCH)
    row(campaign, factories.customer(), holdout=True)
    row(campaign, factories.customer(), skip=SkipReason.CLAIMANT)
    Delivery.objects.create(send=campaign.send, customer=factories.customer(), channel="email")
    progress = services_progress(campaign)
    assert (progress.sendable, progress.attempted, progress.percent) == (3, 2, 66)
    assert (progress.held_out, progress.ineligible, progress.pending) == (1, 1, 1)


def services_progress(campaign):
    from outreach.selectors import send_progress

    return send_progress(campaign.send)


def test_while_quiet_hours_hold_the_campaign_the_page_says_when_it_resumes(
    client,
    marketer,  # noqa: F811
    template,  # noqa: F811
    segment,  # noqa: F811
    settings,
    monkeypatch,
):
    consented()
    campaign = services.campaign_launch(campaign=campaign_make(template, segment))
    settings.QUIET_HOURS_START, settings.QUIET_HOURS_END = 21, 9
    night = datetime(2026, 12, 5, 23, 30, tzinfo=JST)
    monkeypatch.setattr(timezone, "now", lambda: night)
    client.force_login(marketer)
    data = client.get(progress_url(campaign)).json()
    assert data["notice"] == "配信停止時間帯のため 09:00 に再開します。"
    assert (
        "配信停止時間帯のため 09:00 に再開します。"
        in client.get(change_url(campaign)).content.decode()
    )

    settings.QUIET_HOURS_START = settings.QUIET_HOURS_END = 0
    assert client.get(progress_url(campaign)).json()["notice"] == ""


@pytest.mark.parametrize("status", ["sending", "paused", "completed", "cancelled"])
def test_a_launched_campaigns_page_has_no_close_link_that_reads_as_mark_done(
    client,
    marketer,  # noqa: F811
    template,  # noqa: F811
    segment,  # noqa: F811
    status,
):
    consented()
    campaign = services.campaign_launch(campaign=campaign_make(template, segment))
    Campaign.objects.filter(pk=campaign.pk).update(status=status)
    client.force_login(marketer)
    content = client.get(change_url(campaign)).content.decode()
    assert "完了にする" not in content
    assert "closelink" not in content
    assert "キャンペーン一覧に戻る" in content


def test_a_draft_keeps_its_save_buttons(
    client,
    marketer,  # noqa: F811
    template,  # noqa: F811
    segment,  # noqa: F811
):
    campaign = campaign_make(template, segment)
    client.force_login(marketer)
    content = client.get(change_url(campaign)).content.decode()
    assert 'name="_save"' in content and "キャンペーン一覧に戻る" not in content


def test_a_marketer_sets_the_holdout_and_window_on_the_draft_and_launch_holds_them_out(
    client,
    marketer,  # noqa: F811
    template,  # noqa: F811
    segment,  # noqa: F811
):
    for _ in range(10):
        consented()
    client.force_login(marketer)
    data = {"name": "冬", "channel": "email", "template": template.pk, "segment": segment.pk}
    add = reverse("admin:outreach_campaign_add")
    assert client.post(add, {**data, "holdout_percent": "60"}).status_code == 200  # at most 50
    response = client.post(add, {**data, "holdout_percent": "20", "attribution_days": "14"})
    assert response.status_code == 302
    campaign = Campaign.objects.get()
    assert (campaign.holdout_percent, campaign.attribution_days) == (20, 14)

    client.post(reverse("admin:outreach_campaign_action", args=[campaign.pk, "launch"]))
    campaign.refresh_from_db()
    assert campaign.events.get(kind="launched").data["held_out"] == 2
    progress = client.get(progress_url(campaign)).json()
    assert (progress["total"], progress["held_out"]) == (8, 2)
