"""The triage target (状況確認, SPEC rule 2) live: category and assignee set
within TRIAGE_TARGET_MINUTES of the policy's clock, or the inbox badges the
inquiry and the SLA watch job warns once."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from tests.smtp_server import SmtpServer
from tests.tickets import factories
from tests.tickets.test_admin_inbox import INBOX, ago, row_html
from tickets.models import (
    BusinessCalendar,
    Category,
    Inquiry,
    InquiryEvent,
    InquiryStatus,
    NotificationKind,
    SlaPolicy,
    StaffNotification,
)
from tickets.services import (
    inquiry_assign,
    inquiry_category_set,
    inquiry_priority_set,
    inquiry_status_set,
    triage_watch,
)
from tickets.services.notices import staff_notifications_email
from tickets.tasks import sla_watch_task

pytestmark = pytest.mark.django_db

JST = ZoneInfo("Asia/Tokyo")
BADGE = "状況確認 30分超過"


def references(response) -> set[str]:
    return {inquiry.reference for inquiry in response.context["cl"].result_list}


def triage(inquiry: Inquiry, *, assignee, actor) -> Inquiry:
    """状況確認 as an agent does it: assignee and category set."""
    inquiry_assign(inquiry=inquiry, assignee=assignee, actor=actor)
    return inquiry_category_set(
        inquiry=inquiry, category=Category.objects.get(code="delivery_delay"), actor=actor
    )


@pytest.fixture
def untriaged(colleague, owner):
    """Inquiries either side of the 30-minute target, triaged or not."""
    late = factories.inquiry(received_at=ago(minutes=31))
    assigned_only = factories.inquiry(received_at=ago(minutes=45))
    inquiry_assign(inquiry=assigned_only, assignee=colleague, actor=owner)
    early = factories.inquiry(received_at=ago(minutes=29))
    triaged = triage(
        factories.inquiry(received_at=ago(minutes=50)), assignee=colleague, actor=owner
    )
    closed = factories.inquiry(received_at=ago(hours=2))
    inquiry_status_set(inquiry=closed, status=InquiryStatus.CLOSED, actor=owner)
    return {
        "late": late,
        "assigned_only": assigned_only,
        "early": early,
        "triaged": triaged,
        "closed": closed,
    }


# --- The target -------------------------------------------------------------------


def test_the_target_is_thirty_minutes_of_wall_time_under_a_24_7_policy():
    received = datetime(2026, 11, 21, 23, 0, tzinfo=JST)  # a Saturday night
    inquiry = factories.inquiry(channel="amazon", received_at=received)
    assert inquiry.triage_due_at == received + timedelta(minutes=30)


def test_the_target_counts_business_hours_under_a_business_hours_policy():
    SlaPolicy.objects.create(
        name="電話: 営業時間で4時間",
        channel="phone",
        first_reply_minutes=240,
        clock="business",
        calendar=BusinessCalendar.objects.get(),
    )
    friday_evening = datetime(2026, 11, 20, 19, 0, tzinfo=JST)
    inquiry = factories.inquiry(channel="phone", received_at=friday_evening)
    # Sat, Sun closed, 11/23 is 勤労感謝の日: the next opening is Tue 9:00
    assert inquiry.triage_due_at == datetime(2026, 11, 24, 9, 30, tzinfo=JST)


def test_the_target_follows_the_setting(settings):
    settings.TRIAGE_TARGET_MINUTES = 15
    received = ago(minutes=5)
    assert factories.inquiry(received_at=received).triage_due_at == received + timedelta(minutes=15)


def test_a_priority_that_changes_the_clock_moves_the_target_until_triaged(colleague, owner):
    SlaPolicy.objects.create(
        name="低: 営業時間で48時間",
        priority="low",
        first_reply_minutes=48 * 60,
        clock="business",
        calendar=BusinessCalendar.objects.get(),
    )
    friday_evening = datetime(2026, 11, 20, 19, 0, tzinfo=JST)
    inquiry = factories.inquiry(received_at=friday_evening)
    inquiry = inquiry_priority_set(inquiry=inquiry, priority="low", actor=owner)
    assert inquiry.triage_due_at == datetime(2026, 11, 24, 9, 30, tzinfo=JST)


# --- The inbox --------------------------------------------------------------------


def test_the_inbox_badges_an_untriaged_inquiry_past_the_target_and_no_other(
    client, colleague, untriaged
):
    client.force_login(colleague)
    response = client.get(INBOX)
    for name in ("late", "assigned_only"):
        row = row_html(response, untriaged[name])
        assert 'class="triage-late-badge"' in row and BADGE in row, name
    for name in ("early", "triaged"):
        assert "triage-late-badge" not in row_html(response, untriaged[name]), name
    closed = client.get(INBOX + "?status=all")
    assert "triage-late-badge" not in row_html(closed, untriaged["closed"])


def test_the_badge_goes_once_the_inquiry_is_triaged(client, colleague, owner, untriaged):
    client.force_login(colleague)
    triage(untriaged["late"], assignee=colleague, actor=owner)
    response = client.get(INBOX)
    assert "triage-late-badge" not in row_html(response, untriaged["late"])


def test_the_triage_filter_lists_the_inquiries_past_the_target(client, colleague, untriaged):
    client.force_login(colleague)
    late = client.get(INBOX + "?triage=late")
    assert references(late) == {untriaged[n].reference for n in ("late", "assigned_only")}
    pending = client.get(INBOX + "?triage=pending")
    assert references(pending) == {
        untriaged[n].reference for n in ("late", "assigned_only", "early")
    }
    assert references(client.get(INBOX + "?triage=done")) == {untriaged["triaged"].reference}
    assert "目標時間超過" in late.content.decode()  # the filter's choice, in Japanese


def test_the_inbox_query_count_stays_flat_with_badges_and_the_filter(
    client, owner, colleague, django_assert_num_queries
):
    client.force_login(owner)

    def late(count: int) -> None:
        for index in range(count):
            inquiry = factories.inquiry(received_at=ago(hours=1))
            inquiry_assign(inquiry=inquiry, assignee=(owner, colleague)[index % 2], actor=owner)

    # the same 12 queries as the plain inbox (test_admin_inbox): the badge
    # reads the row's own columns, the filter's choices are fixed
    late(3)
    for query in ("", "?triage=late"):
        with django_assert_num_queries(12):
            response = client.get(INBOX + query)
        assert len(references(response)) == 3
    late(12)
    for query in ("", "?triage=late"):
        with django_assert_num_queries(12):
            response = client.get(INBOX + query)
        assert len(references(response)) == 15
        assert response.content.decode().count('class="triage-late-badge"') == 15


# --- The warning ------------------------------------------------------------------


def test_the_watch_warns_the_assignee_or_else_the_managers_once(
    colleague, owner, untriaged, watch_path
):
    # when: the watch runs twice
    assert triage_watch() == 2
    assert triage_watch() == 0
    # then: the assignee of one, the manager of the unassigned one, once each
    notes = StaffNotification.objects.filter(kind=NotificationKind.TRIAGE_LATE)
    assert sorted(notes.values_list("user__username", "inquiry")) == sorted(
        [("colleague", untriaged["assigned_only"].pk), ("owner", untriaged["late"].pk)]
    )
    events = InquiryEvent.objects.filter(kind="triage_late")
    assert sorted(events.values_list("inquiry", flat=True)) == sorted(
        [untriaged["late"].pk, untriaged["assigned_only"].pk]
    )
    warned = Inquiry.objects.filter(triage_warned_at__isnull=False)
    assert set(warned.values_list("pk", flat=True)) == {
        untriaged["late"].pk,
        untriaged["assigned_only"].pk,
    }


def test_an_inquiry_triaged_in_time_is_never_warned(colleague, owner, watch_path):
    inquiry = factories.inquiry(received_at=ago(minutes=10))
    triage(inquiry, assignee=colleague, actor=owner)
    assert triage_watch(now=timezone.now() + timedelta(hours=1)) == 0
    assert not StaffNotification.objects.filter(kind=NotificationKind.TRIAGE_LATE).exists()


def test_the_warning_waits_for_the_target(owner, watch_path):
    inquiry = factories.inquiry(received_at=ago(minutes=29))
    assert triage_watch() == 0
    assert triage_watch(now=inquiry.triage_due_at) == 1
    assert triage_watch(now=inquiry.triage_due_at + timedelta(minutes=5)) == 0


def test_the_sla_job_mails_the_warning_once(smtp: SmtpServer, colleague, owner, untriaged):
    colleague.email = "sato@shop.example"
    colleague.save(update_fields=["email"])
    # when: the every-minute job runs twice and the notices are mailed
    assert sla_watch_task()["triage_late"] == 2
    assert sla_watch_task()["triage_late"] == 0
    staff_notifications_email()
    staff_notifications_email()
    # then: the assignee has one mail, saying what passed and when
    inquiry = untriaged["assigned_only"]
    [received] = [m for m in smtp.received if "状況確認" in m.message["Subject"]]
    assert received.rcpt_tos == ["sato@shop.example"]
    assert inquiry.reference in received.message["Subject"]
    text = received.message.get_body(preferencelist=("plain",)).get_content()
    assert timezone.localtime(inquiry.triage_due_at).strftime("%Y-%m-%d %H:%M") in text
