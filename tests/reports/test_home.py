"""The admin home per role (reports.home): each role sees its own work, in
a number of queries that does not grow with the rows, and nobody else's."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core.roles import AGENT, MARKETER
from crisis.models import Incident, IncidentKind, Suspension, SuspensionReason
from crm import services as crm
from outreach import services as outreach
from outreach.models import (
    Campaign,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    MessageTemplate,
    Segment,
    SegmentKind,
)
from reports.home import MALL_HEALTH_WINDOWS_KEY
from reports.models import Countermeasure, CountermeasureStatus
from tests.crm import factories as crm_factories
from tickets.models import Inquiry, InquiryMessage, MessageKind, OutboundState
from tickets.services import InboundMessage, inquiries_bulk_assign, inquiry_create

pytestmark = pytest.mark.django_db

HOME = reverse("admin:index")


@pytest.fixture(autouse=True)
def _no_kept_figures():
    """The mall-health figures a page keeps for 5 minutes (per process) are
    not carried from one test into the next."""
    cache.delete(MALL_HEALTH_WINDOWS_KEY)


@pytest.fixture
def marketer(django_user_model):
    user = django_user_model.objects.create_user(
        "marketer", password="pw-marketer-1234", is_staff=True, last_name="高橋"
    )
    user.groups.add(Group.objects.get(name=MARKETER))
    return user


@pytest.fixture
def agent2(django_user_model):
    user = django_user_model.objects.create_user(
        "agent2", password="pw-agent2-1234", is_staff=True, last_name="伊藤"
    )
    user.groups.add(Group.objects.get(name=AGENT))
    return user


def inquiry(*, hours_ago: float, channel: str = "email", subject: str = "お問い合わせ") -> Inquiry:
    return inquiry_create(
        customer=crm_factories.customer(),
        channel=channel,
        message=InboundMessage(
            subject=subject,
            body_text="教えてください。",
            received_at=timezone.now() - timedelta(hours=hours_ago),
        ),
    )


def assign(inquiries, user, actor) -> None:
    inquiries_bulk_assign(inquiries=list(inquiries), assignee=user, actor=actor)


def reply(inquiry: Inquiry, author, state: str) -> InquiryMessage:
    """A reply in a given sending state (the ledger's outcome is not what
    these tests are about)."""
    return InquiryMessage.objects.create(
        inquiry=inquiry,
        kind=MessageKind.OUTBOUND,
        channel="email",
        author=author,
        body_text="ご連絡ありがとうございます。",
        outbound_state=state,
    )


def section(html: str, block_id: str) -> str:
    """The HTML of the home block whose heading has `block_id`."""
    match = re.search(rf'<section[^>]*aria-labelledby="{block_id}".*?</section>', html, re.S)
    assert match, f"no block {block_id}"
    return match.group(0)


def references(html: str) -> list[str]:
    return re.findall(r"Q-\d{4}-\d{5}", html)


def get_home(client, user) -> str:
    client.force_login(user)
    response = client.get(HOME)
    assert response.status_code == 200
    return response.content.decode()


# --- Agent -------------------------------------------------------------------------------


def test_agents_home_lists_their_open_inquiries_breached_then_at_risk_first(
    client, colleague, agent2, owner
):
    # given (24-hour policy, at risk from 20 h): on track, at risk, breached
    on_track = inquiry(hours_ago=1)
    breached = inquiry(hours_ago=30)
    at_risk = inquiry(hours_ago=21)
    # and one answered two days ago, waiting for the customer: its
    # deadline long past, but nothing is late
    answered = inquiry(hours_ago=50)
    Inquiry.objects.filter(pk=answered.pk).update(
        first_replied_at=answered.created_at + timedelta(hours=1), status="waiting_customer"
    )
    # and one answered late, three days ago: late, but nothing to hurry now
    answered_late = inquiry(hours_ago=60)
    Inquiry.objects.filter(pk=answered_late.pk).update(
        first_replied_at=answered_late.created_at + timedelta(hours=30),
        status="waiting_customer",
        sla_state="breached",
    )
    assign([on_track, breached, at_risk, answered, answered_late], colleague, owner)
    someone_elses = inquiry(hours_ago=29)
    assign([someone_elses], agent2, owner)
    unassigned = inquiry(hours_ago=2)

    html = get_home(client, colleague)

    mine = section(html, "home-mine")
    assert references(mine) == [
        breached.reference,
        at_risk.reference,
        on_track.reference,
        answered.reference,
        answered_late.reference,
    ]
    assert re.findall(r'home-number">(\d+)<', mine) == ["5", "1", "1"]  # open, overdue, at risk
    assert "?assignee=mine&amp;sla=breached" in mine
    assert references(section(html, "home-unassigned")) == [unassigned.reference]
    assert someone_elses.reference not in html
    # the model tables are still there, below the work
    assert html.index('id="home-mine"') < html.index('id="home-tables-title"')
    assert 'class="app-tickets' in html


def test_agents_home_shows_their_replies_that_failed_or_wait_for_approval(
    client, colleague, agent2, owner
):
    failed, held, returned, sent, others = (inquiry(hours_ago=n) for n in (1, 2, 3, 4, 5))
    reply(failed, colleague, OutboundState.FAILED)
    reply(held, colleague, OutboundState.AWAITING_APPROVAL)
    reply(returned, colleague, OutboundState.RETURNED)
    reply(sent, colleague, OutboundState.SENT)
    reply(others, agent2, OutboundState.FAILED)

    block = section(get_home(client, colleague), "home-replies")

    assert sorted(references(block)) == sorted(
        [failed.reference, held.reference, returned.reference]
    )
    assert block.count("home-state-failed") == 1
    assert block.count("home-state-awaiting_approval") == 1


def test_agents_home_has_no_manager_or_marketer_blocks(client, colleague):
    html = get_home(client, colleague)
    for block in ("home-health", "home-approvals", "home-overdue", "home-running"):
        assert f'id="{block}"' not in html
    assert "home-health-chart" not in html


# --- Manager -----------------------------------------------------------------------------


def manager_data(owner, colleague, *, n: int) -> None:
    """n of everything the manager's home counts."""
    now = timezone.now()
    for i in range(n):
        breached = inquiry(hours_ago=30 + i, channel="rakuten")
        inquiry(hours_ago=21, channel="amazon")  # at risk
        reply(breached, colleague, OutboundState.AWAITING_APPROVAL)
        Incident.objects.create(
            kind=IncidentKind.MALL_OUTAGE,
            title=f"楽天 障害 {i}",
            channel="rakuten",
            started_at=now - timedelta(hours=2),
            opened_by=owner,
        )
        Suspension.objects.create(
            sku=f"SKU-{n}-{i}",
            product_name=f"商品 {i}",
            channels=["rakuten", "yahoo"],
            reason=SuspensionReason.STOCK_OUT,
            expected_resume_at=now + timedelta(days=3),
            decided_by=owner,
            decided_at=now,
        )
        Countermeasure.objects.create(
            month=date(2026, 10, 1),
            channel="rakuten",
            cause="出荷確認の漏れ",
            action=f"出荷前チェックリスト {i}",
            owner=owner,
            due_date=timezone.localdate() - timedelta(days=1 + i),
            status=CountermeasureStatus.IN_PROGRESS,
        )
        crm_factories.order(
            customer=crm_factories.customer(),
            channel="rakuten",
            ordered_at=now - timedelta(days=2),
        )


def test_managers_home_shows_sla_today_approvals_incidents_suspensions_and_overdue_measures(
    client, owner, colleague
):
    manager_data(owner, colleague, n=2)
    Countermeasure.objects.create(
        month=date(2026, 10, 1),
        cause="—",
        action="期限前の対策",
        owner=owner,
        due_date=timezone.localdate() + timedelta(days=3),
    )
    Countermeasure.objects.create(
        month=date(2026, 10, 1),
        cause="—",
        action="済んだ対策",
        owner=owner,
        due_date=timezone.localdate() - timedelta(days=30),
        status=CountermeasureStatus.DONE,
    )

    html = get_home(client, owner)

    sla = section(html, "home-sla")
    numbers = re.findall(r'home-number">(\d+)<', sla)
    assert numbers[1:] == ["2", "2"]  # at risk, overdue
    assert "?sla=breached" in sla
    assert re.findall(r'home-number">(\d+)<', section(html, "home-approvals")) == ["2"]
    incidents = section(html, "home-incidents")
    assert re.findall(r'home-number">(\d+)<', incidents) == ["2", "2"]
    assert "楽天 障害 0" in incidents and "楽天市場、Yahoo!ショッピング" in incidents
    overdue = section(html, "home-overdue")
    assert re.findall(r'home-number">(\d+)<', overdue) == ["2"]
    assert "出荷前チェックリスト 1" in overdue
    assert "期限前の対策" not in overdue and "済んだ対策" not in overdue
    assert reverse("admin:reports_countermeasure_monthly") in overdue  # the monthly analysis
    health = section(html, "home-health")
    assert "楽天市場" in health and 'id="home-health-chart"' in health
    # the formula on hover, and the colour band
    assert re.search(r'class="home-cell band-\w+" title="[^"]*÷', health)
    assert "band-bad" in health


def test_the_windowed_mall_health_figures_are_kept_five_minutes_and_open_ones_are_live(
    client, owner, colleague
):
    # given a manager's home already counted once
    inquiry(hours_ago=30, channel="rakuten")  # breached, not answered
    client.force_login(owner)
    first = section(client.get(HOME).content.decode(), "home-health")
    # when a rakuten inquiry is answered in time and another one is overdue
    answered = inquiry(hours_ago=3, channel="rakuten")
    Inquiry.objects.filter(pk=answered.pk).update(
        first_replied_at=answered.created_at + timedelta(hours=1)
    )
    inquiry(hours_ago=40, channel="rakuten")
    with CaptureQueriesContext(connection) as kept:
        second = section(client.get(HOME).content.decode(), "home-health")
    # then the compliance (0 of 1) is as counted before, the overdue (2) live
    assert compliance_cells(second) == compliance_cells(first) == ["0.0%"] * 3
    assert overdue_cell(first) == "1" and overdue_cell(second) == "2"
    assert not [q for q in kept if "crm_order" in q["sql"]]
    # and once the kept figures are dropped (after 5 minutes), counted again
    cache.delete(MALL_HEALTH_WINDOWS_KEY)
    third = section(client.get(HOME).content.decode(), "home-health")
    assert compliance_cells(third) == ["33.3%"] * 3  # 1 of 3


def rakuten_row(health: str) -> str:
    return re.search(r"<tr>\s*<th scope=\"row\"[^>]*>楽天市場</th>.*?</tr>", health, re.S).group(0)


def compliance_cells(health: str) -> list[str]:
    return re.findall(r"<td[^>]*>(\d+\.\d%)</td>", rakuten_row(health))[:3]


def overdue_cell(health: str) -> str:
    return re.search(r'sla=breached[^"]*channel__exact=rakuten">(\d+)<', rakuten_row(health)).group(
        1
    )


def test_a_superuser_sees_the_managers_home(client, django_user_model):
    admin = django_user_model.objects.create_superuser("root", password="pw-root-1234")
    html = get_home(client, admin)
    assert 'id="home-health"' in html and 'id="home-overdue"' in html


def test_managers_home_shows_no_agents_own_list(client, owner):
    html = get_home(client, owner)
    assert 'id="home-mine"' not in html and 'id="home-running"' not in html


# --- Marketer ----------------------------------------------------------------------------


@pytest.fixture
def template() -> MessageTemplate:
    return outreach.template_save(
        template=MessageTemplate(
            name="冬のセール",
            channel="email",
            purpose="marketing",
            subject="{{ customer.name }}様へ 冬のセール",
            body_text="{{ customer.family_name }}様\n\nセール開催中です。",
        )
    )


@pytest.fixture
def segment() -> Segment:
    return Segment.objects.create(name="新規", kind=SegmentKind.LIFECYCLE, lifecycle_segment="new")


def consented(n: int) -> None:
    for _ in range(n):
        customer = crm_factories.customer()
        crm_factories.order(customer=customer)
        crm.consent_record(customer=customer, channel="email", action="opt_in", source="web_form")


def marketer_data(template, segment, *, n: int, first: int = 0) -> None:
    """n campaigns sending, n scheduled, n completed (one sent, one failed,
    one skipped each), n segments more."""
    for i in range(first, first + n):
        running = Campaign.objects.create(
            name=f"送信中 {i}", channel="email", template=template, segment=segment
        )
        outreach.campaign_launch(campaign=running)
        scheduled = Campaign.objects.create(
            name=f"予約 {i}", channel="email", template=template, segment=segment
        )
        outreach.campaign_schedule(campaign=scheduled, at=timezone.now() + timedelta(days=1 + i))
        done = outreach.campaign_launch(
            campaign=Campaign.objects.create(
                name=f"完了 {i}", channel="email", template=template, segment=segment
            )
        )
        deliveries = list(Delivery.objects.filter(send=done.send).order_by("pk"))
        for delivery, status in zip(
            deliveries,
            (DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED),
            strict=True,
        ):
            Delivery.objects.filter(pk=delivery.pk).update(
                status=status, skip_reason="no_consent" if status == DeliveryStatus.SKIPPED else ""
            )
        Campaign.objects.filter(pk=done.pk).update(
            status=CampaignStatus.COMPLETED, completed_at=timezone.now()
        )
        Segment.objects.create(
            name=f"条件 {i}",
            kind=SegmentKind.CUSTOM,
            rule={
                "match": "all",
                "conditions": [{"field": "order_count", "op": "gte", "value": 1}],
            },
        )


def test_marketers_home_shows_campaigns_results_and_segment_sizes(
    client, marketer, template, segment
):
    consented(3)
    marketer_data(template, segment, n=1)

    html = get_home(client, marketer)

    running = section(html, "home-running")
    assert "送信中 0" in running and "?status__exact=sending" in running
    scheduled = section(html, "home-scheduled")
    assert "予約 0" in scheduled
    starts = timezone.localtime(Campaign.objects.get(name="予約 0").scheduled_at)
    assert f"{starts:%-m/%-d}" in scheduled and f"{starts:%H:%M}" in scheduled
    recent = section(html, "home-recent")
    assert "完了 0" in recent
    for status in ("sent", "failed", "skipped"):
        assert re.search(rf'data-status="{status}">\D*1\D*</span>', recent), status
    segments = section(html, "home-segments")
    assert re.search(r"新規</a></td>\s*<td class=\"num\">3</td>", segments)


def test_marketers_home_has_no_inquiries_and_no_mall_health(client, marketer, colleague, owner):
    mine = inquiry(hours_ago=30)
    assign([mine], colleague, owner)
    html = get_home(client, marketer)
    assert mine.reference not in html
    for block in ("home-mine", "home-health", "home-approvals", "home-overdue"):
        assert f'id="{block}"' not in html


# --- Outsiders ---------------------------------------------------------------------------


def test_staff_without_a_role_get_only_the_list_of_tables(client, django_user_model):
    staff = django_user_model.objects.create_user("temp", password="pw-temp-1234", is_staff=True)
    html = get_home(client, staff)
    assert "home-grid" not in html


def test_someone_not_staff_is_sent_to_the_login_page(client, outsider):
    client.force_login(outsider)
    response = client.get(HOME)
    assert response.status_code == 302 and "/login/" in response["Location"]


# --- Queries -----------------------------------------------------------------------------


def queries_for(client, user) -> int:
    client.force_login(user)
    client.get(HOME)  # warm the session and caches as a working day has them
    with CaptureQueriesContext(connection) as queries:
        assert client.get(HOME).status_code == 200
    return len(queries)


def test_agents_home_queries_do_not_grow_with_inquiries(client, colleague, owner):
    def more(n):
        rows = [inquiry(hours_ago=h) for h in (1, 21, 30) for _ in range(n)]
        assign(rows, colleague, owner)
        for row in rows[:n]:
            reply(row, colleague, OutboundState.FAILED)
        for _ in range(n):
            inquiry(hours_ago=2)

    more(1)
    few = queries_for(client, colleague)
    more(6)
    assert queries_for(client, colleague) == few


def test_managers_home_queries_do_not_grow_with_rows(client, owner, colleague):
    manager_data(owner, colleague, n=1)
    few = queries_for(client, owner)
    manager_data(owner, colleague, n=6)
    assert queries_for(client, owner) == few


def test_marketers_home_queries_do_not_grow_with_campaigns(client, marketer, template, segment):
    consented(3)
    marketer_data(template, segment, n=1)
    few = queries_for(client, marketer)
    marketer_data(template, segment, n=4, first=1)
    consented(3)
    assert queries_for(client, marketer) == few
