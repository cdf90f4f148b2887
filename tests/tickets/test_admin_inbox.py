"""The agent inbox (the inquiry changelist): open inquiries by deadline,
filters, search, the claimant badge, time left by SLA state, bulk actions
through the services, a flat query count; and the admin around it."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.admin.templatetags import admin_list
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

from core.roles import MARKETER
from crm.services import customer_claimant_set
from outreach.dispatch import send_dispatch
from outreach.models import Delivery
from tests.crm import factories as crm_factories
from tests.tickets import factories
from tickets.admin import inbox_rows
from tickets.admin.display import duration_text
from tickets.models import (
    Category,
    InboundMail,
    Inquiry,
    InquiryEvent,
    InquiryStatus,
    StaffNotification,
)
from tickets.services import (
    inquiry_assign,
    inquiry_category_set,
    inquiry_reply,
    inquiry_status_set,
)
from tickets.services.inbound import mail_ingest

pytestmark = pytest.mark.django_db

INBOX = reverse("admin:tickets_inquiry_changelist")


@pytest.fixture
def marketer(django_user_model):
    user = django_user_model.objects.create_user("marketer", is_staff=True, last_name="高橋")
    user.groups.add(Group.objects.get(name=MARKETER))
    return user


def ago(**kwargs):
    return timezone.now() - timedelta(**kwargs)


def references(response) -> list[str]:
    return [inquiry.reference for inquiry in response.context["cl"].result_list]


def row_html(response, inquiry: Inquiry) -> str:
    """The changelist row of `inquiry`."""
    html = response.content.decode()
    start = html.index(f">{inquiry.reference}</a>")
    return html[html.rindex("<tr", 0, start) : html.index("</tr>", start)]


def category(code: str) -> Category:
    return Category.objects.get(code=code)


# --- Query count ------------------------------------------------------------------


def _inquiries(count: int, owner, colleague) -> None:
    for index in range(count):
        inquiry = factories.inquiry(channel=("email", "line", "rakuten")[index % 3])
        inquiry_assign(inquiry=inquiry, assignee=(owner, colleague)[index % 2], actor=owner)
        inquiry_category_set(inquiry=inquiry, category=category("delivery_delay"), actor=owner)


def test_inbox_query_count_does_not_grow_with_rows(
    client, owner, colleague, django_assert_num_queries
):
    client.force_login(owner)
    _inquiries(3, owner, colleague)
    # session, user, permissions (2), assignee and category filter choices,
    # page count, the rows with customer, category and assignee joined, the incident banner,
    # the audit row (the list's query), automatic assignment (the viewer's presence, the
    # round-robin rules)
    with django_assert_num_queries(12):
        response = client.get(INBOX)
    assert len(references(response)) == 3

    _inquiries(12, owner, colleague)
    with django_assert_num_queries(12):
        response = client.get(INBOX)
    assert len(references(response)) == 15


# --- Default view, filters, search ------------------------------------------------------


@pytest.fixture
def queue(colleague, owner):
    """Inquiries in every state the inbox distinguishes."""
    mine = factories.inquiry(channel="email", received_at=ago(hours=1))
    inquiry_assign(inquiry=mine, assignee=colleague, actor=owner)
    inquiry_category_set(inquiry=mine, category=category("delivery_delay"), actor=owner)
    at_risk = factories.inquiry(channel="line", received_at=ago(hours=21))
    breached = factories.inquiry(channel="amazon", received_at=ago(hours=30))
    inquiry_category_set(inquiry=breached, category=category("product_defect"), actor=owner)
    replied = factories.inquiry(channel="email", received_at=ago(hours=2))
    inquiry_assign(inquiry=replied, assignee=owner, actor=owner)
    inquiry_reply(inquiry=replied, body="ご連絡ありがとうございます。", actor=owner)
    closed = factories.inquiry(channel="rakuten", received_at=ago(hours=40))
    inquiry_status_set(inquiry=closed, status=InquiryStatus.CLOSED, actor=owner)
    return {
        "mine": mine,
        "at_risk": at_risk,
        "breached": breached,
        "replied": replied,
        "closed": closed,
    }


def test_default_view_is_open_inquiries_next_deadline_first(client, colleague, queue):
    client.force_login(colleague)
    response = client.get(INBOX)
    expected = [queue[name].reference for name in ("breached", "at_risk", "mine", "replied")]
    assert references(response) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("assignee=mine", ["mine"]),
        ("assignee=none", ["breached", "at_risk"]),
        ("sla=at_risk", ["at_risk"]),
        ("sla=breached", ["breached"]),
        ("sla=met", ["replied"]),
        ("channel__exact=line", ["at_risk"]),
        ("category__id__exact={product_defect}", ["breached"]),
        ("status=closed", ["closed"]),
        ("status=waiting_customer", ["replied"]),
        ("status=all&channel__exact=rakuten", ["closed"]),
    ],
)
def test_each_filter_returns_its_rows(client, colleague, queue, query, expected):
    client.force_login(colleague)
    query = query.format(product_defect=category("product_defect").pk)
    response = client.get(f"{INBOX}?{query}")
    assert response.status_code == 200
    assert sorted(references(response)) == sorted(queue[name].reference for name in expected)


def test_each_row_links_to_its_inquiry_keeping_the_filters_and_can_be_selected(
    client, colleague, queue
):
    client.force_login(colleague)
    response = client.get(f"{INBOX}?channel__exact=line&assignee=none")
    inquiry = queue["at_risk"]
    row = row_html(response, inquiry)
    url = reverse("admin:tickets_inquiry_change", args=[inquiry.pk])
    assert (
        f'<a href="{url}?_changelist_filters=channel__exact%3Dline%26assignee%3Dnone">'
        f"{inquiry.reference}</a>"
    ) in row
    with translation.override("ja"):  # the inbox speaks Japanese by default
        label = gettext("Select this object for an action - {}").format(inquiry)
    assert (
        f'<input type="checkbox" name="_selected_action" value="{inquiry.pk}"'
        f' class="action-select" aria-label="{label}">'
    ) in row
    unfiltered = row_html(client.get(INBOX), inquiry)
    assert f'<a href="{url}">{inquiry.reference}</a>' in unfiltered


@pytest.mark.parametrize(
    "query",
    ["", "?channel__exact=line&assignee=none", "?status=all&o=-9", "?q=注文&sla=met"],
)
def test_rows_are_the_html_the_admin_itself_renders(client, colleague, owner, queue, query):
    customer_claimant_set(customer=queue["breached"].customer, reason="<強い口調>", actor=owner)
    client.force_login(colleague)
    response = client.get(f"{INBOX}{query}")
    cl = response.context["cl"]
    assert inbox_rows._cells(cl) is not None  # the fast rows, not the fallback
    expected = [list(row) for row in admin_list.results(cl)]
    assert [list(row) for row in inbox_rows.inbox_results(cl)] == expected
    for row in expected:
        assert "".join(row) in response.content.decode()


def test_the_at_risk_and_on_track_views_list_the_next_deadline_first(client, colleague):
    client.force_login(colleague)
    later = factories.inquiry(received_at=ago(hours=21))
    sooner = factories.inquiry(received_at=ago(hours=22))
    on_track_later = factories.inquiry(received_at=ago(hours=1))
    on_track_sooner = factories.inquiry(received_at=ago(hours=2))
    response = client.get(f"{INBOX}?sla=at_risk")
    assert references(response) == [sooner.reference, later.reference]
    response = client.get(f"{INBOX}?sla=on_track")
    assert references(response) == [on_track_sooner.reference, on_track_later.reference]


def test_sla_filters_agree_with_the_state_the_watch_stores(client, colleague, queue):
    from tickets.services import sla_watch

    sla_watch()
    client.force_login(colleague)
    for state in ("at_risk", "breached"):
        response = client.get(f"{INBOX}?sla={state}")
        stored = Inquiry.objects.filter(sla_state=state, first_replied_at__isnull=True)
        assert references(response) == [inquiry.reference for inquiry in stored]


def test_search_by_reference_kana_email_and_order_number(client, colleague):
    client.force_login(colleague)
    suzuki = crm_factories.customer(
        family_name="鈴木", family_name_kana="スズキ", email="hanako@example.jp"
    )
    order = crm_factories.order(customer=suzuki, order_number="338761-20261120-0000000042")
    by_suzuki = factories.inquiry(customer=suzuki, order=order)
    other = factories.inquiry()

    for term in (by_suzuki.reference, by_suzuki.reference.lower(), "すずき", "hanako@example.jp"):
        response = client.get(INBOX, {"q": term})
        assert references(response) == [by_suzuki.reference], term
    response = client.get(INBOX, {"q": order.order_number})
    assert references(response) == [by_suzuki.reference]
    response = client.get(INBOX, {"q": other.reference})
    assert references(response) == [other.reference]


def test_search_finds_an_inquiry_by_the_order_number_the_customer_typed(client, colleague):
    client.force_login(colleague)
    unmatched = factories.inquiry(order_number="OS-2611-0099")
    factories.inquiry()
    response = client.get(INBOX, {"q": "OS-2611-0099"})
    assert references(response) == [unmatched.reference]


# --- What a row shows ----------------------------------------------------------------


def test_a_claimants_inquiry_carries_the_badge(client, colleague, owner):
    client.force_login(colleague)
    claimant = crm_factories.customer(family_name="田村")
    customer_claimant_set(customer=claimant, reason="暴言あり。店長対応。", actor=owner)
    flagged = factories.inquiry(customer=claimant)
    plain = factories.inquiry()
    response = client.get(INBOX)
    with translation.override("ja"):
        badge = gettext("⚠ Claimant")
    assert 'class="claimant-badge"' in row_html(response, flagged)
    assert badge in row_html(response, flagged)
    assert "暴言あり。店長対応。" in row_html(response, flagged)  # the reason, on hover
    assert "claimant-badge" not in row_html(response, plain)


def test_an_inquiry_whose_latest_reply_did_not_reach_the_customer_carries_the_badge(
    client, colleague, smtp, settings
):
    # given: replies the mail server took, refused, and refused then took
    settings.QUIET_HOURS_START = settings.QUIET_HOURS_END = 0
    refused, sent, resent = (factories.inquiry() for _ in range(3))
    unanswered = factories.inquiry()
    smtp.refuse(refused.customer.email, resent.customer.email)
    for inquiry in (refused, sent, resent):
        reply = inquiry_reply(inquiry=inquiry, body="確認いたします。", actor=colleague)
        send_dispatch(send_id=reply.delivery.send_id)
    smtp.handler.permanent_for.clear()
    reply = inquiry_reply(inquiry=resent, body="再送いたします。", actor=colleague)
    send_dispatch(send_id=reply.delivery.send_id)
    client.force_login(colleague)
    # when
    response = client.get(INBOX)
    # then: only the inquiry whose latest reply failed says so, in Japanese
    assert "送信失敗" in row_html(response, refused)
    assert 'class="reply-failed-badge"' in row_html(response, refused)
    for inquiry in (sent, resent, unanswered):
        assert "reply-failed-badge" not in row_html(response, inquiry)


def test_a_reply_whose_outcome_is_unknown_is_badged_as_unknown_not_failed(client, colleague):
    # given: a reply whose outcome the ledger could not learn
    inquiry = factories.inquiry()
    reply = inquiry_reply(inquiry=inquiry, body="確認いたします。", actor=colleague)
    Delivery.objects.filter(pk=reply.delivery_id).update(status="unknown")
    client.force_login(colleague)
    # when
    row = row_html(client.get(INBOX), inquiry)
    # then
    assert 'class="reply-failed-badge"' in row
    assert "送信結果不明" in row and "送信失敗" not in row


def _time_texts():
    with translation.override("ja"):
        return {
            "on_track": gettext("%(time)s left") % {"time": duration_text(timedelta(hours=23))},
            "at_risk": gettext("%(time)s left")
            % {"time": duration_text(timedelta(hours=3, minutes=12))},
            "breached": gettext("%(time)s overdue") % {"time": duration_text(timedelta(hours=2))},
            "met": gettext("Replied"),
        }


def test_time_left_is_written_and_coloured_by_sla_state(client, colleague):
    client.force_login(colleague)
    inquiries = {
        # 30 seconds of margin: the text counts whole minutes
        "on_track": factories.inquiry(received_at=ago(minutes=60, seconds=-30)),
        "at_risk": factories.inquiry(received_at=ago(hours=20, minutes=47, seconds=30)),
        "breached": factories.inquiry(received_at=ago(hours=26)),
        "met": factories.inquiry(received_at=ago(hours=3)),
    }
    inquiry_reply(inquiry=inquiries["met"], body="回答いたします。", actor=colleague)
    response = client.get(INBOX)
    texts = _time_texts()
    for state, inquiry in inquiries.items():
        row = row_html(response, inquiry)
        assert f'class="sla sla-{state}"' in row, state
        assert texts[state] in row, (state, row)


def test_durations_read_as_hours_and_minutes():
    with translation.override("en"):
        assert duration_text(timedelta(hours=3, minutes=12, seconds=59)) == "3 h 12 min"
        assert duration_text(timedelta(hours=2)) == "2 h"
        assert duration_text(timedelta(minutes=5)) == "5 min"
        assert duration_text(timedelta(hours=50)) == "2 d 2 h"
        assert duration_text(timedelta(seconds=-5)) == "0 min"


# --- Bulk actions -----------------------------------------------------------------------


def _action(client, action: str, inquiries, **extra):
    data = {"action": action, "_selected_action": [i.pk for i in inquiries], **extra}
    return client.post(INBOX, data)


def test_assign_to_me_assigns_through_the_service(client, colleague):
    client.force_login(colleague)
    first, second = factories.inquiry(), factories.inquiry()
    response = _action(client, "assign_to_me", [first, second])
    assert response.status_code == 302
    assert set(Inquiry.objects.values_list("assignee__username", "status")) == {
        ("colleague", InquiryStatus.OPEN)
    }
    assert InquiryEvent.objects.filter(kind="assigned", actor=colleague).count() == 2


def test_assign_to_a_chosen_agent_asks_whom_first(client, owner, colleague):
    client.force_login(owner)
    first, second = factories.inquiry(), factories.inquiry()
    page = _action(client, "assign_to", [first, second])
    assert page.status_code == 200
    assert f'<option value="{colleague.pk}">佐藤</option>' in page.content.decode()
    assert not Inquiry.objects.filter(assignee__isnull=False).exists()

    response = _action(client, "assign_to", [first, second], post="yes", assignee=colleague.pk)
    assert response.status_code == 302
    assert list(Inquiry.objects.values_list("assignee", flat=True).distinct()) == [colleague.pk]
    # the colleague hears of it
    assert StaffNotification.objects.filter(user=colleague, kind="assigned").count() == 2


def test_assign_to_asks_again_when_nobody_or_a_non_agent_is_chosen(client, owner, marketer):
    client.force_login(owner)
    inquiry = factories.inquiry()
    for chosen in ("", marketer.pk):
        page = _action(client, "assign_to", [inquiry], post="yes", assignee=chosen)
        assert page.status_code == 200
        with translation.override("ja"):
            assert gettext("Choose who takes them.") in page.content.decode()
        assert f'<option value="{marketer.pk}">' not in page.content.decode()
    inquiry.refresh_from_db()
    assert inquiry.assignee is None


def test_assign_to_me_is_refused_to_whoever_cannot_take_inquiries(client, django_user_model):
    # given: staff allowed to change inquiries but in no role that answers them
    from django.contrib.auth.models import Permission

    clerk = django_user_model.objects.create_user("clerk", is_staff=True)
    clerk.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_inquiry", "change_inquiry"])
    )
    client.force_login(clerk)
    inquiry = factories.inquiry()
    # when
    response = _action(client, "assign_to_me", [inquiry])
    # then: nothing is assigned and the reason is shown
    assert response.status_code == 302
    inquiry.refresh_from_db()
    assert inquiry.assignee is None
    with translation.override("ja"):
        reason = gettext("Only active agents and managers can be assigned inquiries.")
        assert reason in client.get(INBOX).content.decode()


def test_close_closes_through_the_service(client, colleague):
    client.force_login(colleague)
    first, second = factories.inquiry(), factories.inquiry()
    _action(client, "close_inquiries", [first, second])
    closed = Inquiry.objects.filter(status=InquiryStatus.CLOSED, closed_at__isnull=False)
    assert closed.count() == 2
    assert references(client.get(INBOX)) == []


# --- Who may --------------------------------------------------------------------------------


def test_an_outsider_is_sent_to_the_login_page(client, outsider):
    client.force_login(outsider)
    response = client.get(INBOX)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_a_marketer_cannot_see_the_inbox_nor_act_on_it(client, marketer):
    client.force_login(marketer)
    inquiry = factories.inquiry()
    assert client.get(INBOX).status_code == 403
    _action(client, "close_inquiries", [inquiry])
    inquiry.refresh_from_db()
    assert inquiry.status == InquiryStatus.NEW


# --- Around the inbox: my notifications, inbound mail ------------------------------------------


def test_my_notifications_by_default_and_marking_them_read(client, colleague, owner):
    first, second = factories.inquiry(), factories.inquiry()
    inquiry_assign(inquiry=first, assignee=colleague, actor=owner)
    inquiry_assign(inquiry=second, assignee=owner, actor=colleague)
    url = reverse("admin:tickets_staffnotification_changelist")
    client.force_login(colleague)
    response = client.get(url)
    notes = list(response.context["cl"].result_list)
    assert [note.user for note in notes] == [colleague]
    # an agent cannot look at everyone's
    response = client.get(f"{url}?for=all", follow=True)
    assert list(response.context["cl"].result_list) == notes
    # a manager can
    client.force_login(owner)
    assert len(client.get(f"{url}?for=all").context["cl"].result_list) == 2
    assert len(client.get(url).context["cl"].result_list) == 1

    client.force_login(colleague)

    client.post(url, {"action": "mark_read", "_selected_action": [notes[0].pk]})
    assert StaffNotification.objects.get(user=colleague).read_at is not None
    assert StaffNotification.objects.get(user=owner).read_at is None


def test_failed_inbound_mail_can_be_downloaded_raw(client, owner, colleague):
    raw = b"This is not a mail at all\x00\xff"
    record = mail_ingest(raw, source="pipe")
    assert record.status == "failed"
    url = reverse("admin:tickets_inboundmail_raw", args=[record.pk])
    client.force_login(owner)
    page = client.get(reverse("admin:tickets_inboundmail_change", args=[record.pk]))
    assert url in page.content.decode()
    response = client.get(url)
    assert response["Content-Type"] == "message/rfc822"
    assert response.content == raw
    # agents have no access to the mail log
    client.force_login(colleague)
    assert client.get(url).status_code == 403
    assert InboundMail.objects.count() == 1


def test_notification_and_inbound_mail_lists_stay_flat(
    client, owner, colleague, django_assert_num_queries
):
    def notified(count: int) -> None:
        for _ in range(count):
            inquiry = factories.inquiry()
            inquiry_assign(inquiry=inquiry, assignee=colleague, actor=owner)
            mail_ingest(f"broken mail {inquiry.pk}".encode(), source="pipe")

    notes = reverse("admin:tickets_staffnotification_changelist")
    mails = reverse("admin:tickets_inboundmail_changelist")
    client.force_login(colleague)
    notified(2)
    # session, user, permissions (2), manager?, count, rows, the incident banner
    with django_assert_num_queries(8):
        assert len(client.get(notes).context["cl"].result_list) == 2
    notified(6)
    with django_assert_num_queries(8):
        assert len(client.get(notes).context["cl"].result_list) == 8
    client.force_login(owner)
    # session, user, permissions (2), count, rows, source filter choices, the
    # incident banner
    with django_assert_num_queries(8):
        assert len(client.get(mails).context["cl"].result_list) == 8


def test_the_inbox_keeps_each_reference_on_one_line():
    # a narrow column broke Q-2612-00032 over three lines (Q- / 2612- / 00032)
    css = (Path(__file__).resolve().parents[2] / "tickets/static/tickets/admin.css").read_text()
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    nowrap = {
        selector.strip()
        for selectors, rule in re.findall(r"([^{}]+)\{([^}]*)\}", css)
        if "white-space: nowrap" in rule
        for selector in selectors.split(",")
    }
    assert "#result_list .field-reference" in nowrap
