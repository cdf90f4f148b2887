"""What an agent has read (tickets.services.reading) and the inbox that shows
it: subject and the latest message in one line, unread marks per agent with
their count, the news endpoint the inbox polls,
badges for replies held for approval, and the admin's titles in a support
team's words."""

from __future__ import annotations

import importlib
import re
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

from core.roles import AGENT, MARKETER
from tests.tickets import factories
from tests.tickets.test_admin_inquiry import trainee  # noqa: F401  (a fixture)
from tickets.models import AutoAcknowledgement, Inquiry, InquiryReadState
from tickets.services import (
    InboundMessage,
    inquiry_assign,
    inquiry_auto_acknowledge,
    inquiry_inbound_add,
    inquiry_note_add,
    inquiry_reply,
    inquiry_reply_return,
)

pytestmark = pytest.mark.django_db

INBOX = reverse("admin:tickets_inquiry_changelist")
NEWS = reverse("admin:tickets_inquiry_inbox_news")


def page_url(inquiry: Inquiry) -> str:
    return reverse("admin:tickets_inquiry_change", args=[inquiry.pk])


def row_html(response, inquiry: Inquiry) -> str:
    html = response.content.decode()
    start = html.index(f">{inquiry.reference}</a>")
    return html[html.rindex("<tr", 0, start) : html.index("</tr>", start)]


def is_unread(response, inquiry: Inquiry) -> bool:
    return 'class="inbox-unread"' in row_html(response, inquiry)


def unread_text(response) -> str:
    return re.search(r'id="inbox-unread-count">([^<]*)<', response.content.decode()).group(1)


def ja(text: str) -> str:
    with translation.override("ja"):
        return gettext(text)


@pytest.fixture
def agent_b(django_user_model):
    user = django_user_model.objects.create_user("agent-b", is_staff=True, last_name="田中")
    user.groups.add(Group.objects.get(name=AGENT))
    return user


# --- Subject and the latest message -------------------------------------------------------


def test_each_row_shows_the_subject_and_the_latest_message_in_one_line(client, colleague):
    # given: a customer's mail of several lines
    inquiry = factories.inquiry(
        subject="届いた商品が違います",
        body="お世話になっております。\n\n注文した緑茶ではなく\r\n紅茶が届きました。",
    )
    client.force_login(colleague)
    # when / then: the subject, and the mail folded into one line
    row = row_html(client.get(INBOX), inquiry)
    assert "届いた商品が違います" in row
    assert "お世話になっております。 注文した緑茶ではなく 紅茶が届きました。" in row


def test_the_latest_message_follows_replies_and_new_customer_messages_not_notes(client, colleague):
    inquiry = factories.inquiry(body="まだ届きません。")
    client.force_login(colleague)
    # a reply of ours: shown as ours
    inquiry_reply(inquiry=inquiry, body="確認してご連絡いたします。", actor=colleague)
    row = row_html(client.get(INBOX), inquiry)
    assert f"{ja('Reply: ')}確認してご連絡いたします。" in row
    # an internal note is not a message to or from the customer
    inquiry_note_add(inquiry=inquiry, body="倉庫に確認中", actor=colleague)
    assert "倉庫に確認中" not in row_html(client.get(INBOX), inquiry)
    # the customer writes again
    inquiry_inbound_add(
        inquiry=inquiry,
        message=InboundMessage(body_text="今日届きました。ありがとうございました。"),
    )
    row = row_html(client.get(INBOX), inquiry)
    assert "今日届きました。ありがとうございました。" in row
    assert ja("Reply: ") not in row


def test_an_automatic_acknowledgement_leaves_the_customers_words_as_the_latest(colleague):
    AutoAcknowledgement.objects.update_or_create(
        channel="email", defaults={"body": "お問い合わせを受け付けました。", "is_active": True}
    )
    inquiry = factories.inquiry(body="返品したいです。")
    assert inquiry_auto_acknowledge(inquiry=inquiry) is not None
    inquiry.refresh_from_db()
    assert inquiry.last_message_excerpt == "返品したいです。"


def test_a_long_message_is_cut_to_the_excerpt_length():
    inquiry = factories.inquiry(body="あ" * 500)
    assert Inquiry.objects.get(pk=inquiry.pk).last_message_excerpt == "あ" * 120


def test_the_migration_fills_the_latest_message_of_existing_inquiries(colleague):
    # given: inquiries as they were before the columns existed
    replied = factories.inquiry(body="一行目\n二行目")
    inquiry_reply(inquiry=replied, body="承知いたしました。", actor=colleague)
    inquiry_note_add(inquiry=replied, body="メモ", actor=colleague)
    waiting = factories.inquiry(body="まだですか")
    Inquiry.objects.update(last_message_excerpt="", last_message_at=None)
    # when
    migration = importlib.import_module("tickets.migrations.0020_inbox_excerpt_read_state")
    migration.last_message_backfill(apps, None)
    # then
    replied.refresh_from_db()
    waiting.refresh_from_db()
    assert replied.last_message_excerpt == "承知いたしました。"
    assert replied.last_message_at == replied.messages.get(kind="outbound").created_at
    assert waiting.last_message_excerpt == "まだですか"


# --- Unread per agent -----------------------------------------------------------------------


def test_opening_an_inquiry_marks_it_read_for_that_agent_only(client, colleague, agent_b):
    # given: two inquiries nobody has opened
    opened, other = factories.inquiry(), factories.inquiry()
    client.force_login(colleague)
    response = client.get(INBOX)
    assert is_unread(response, opened) and is_unread(response, other)
    assert unread_text(response) == ja("%(count)s unread") % {"count": 2} == "未読 2件"
    # when: agent A (colleague) opens one
    assert client.get(page_url(opened)).status_code == 200
    # then: read for A ...
    response = client.get(INBOX)
    assert not is_unread(response, opened) and is_unread(response, other)
    assert unread_text(response) == "未読 1件"
    # ... and still unread for agent B
    client.force_login(agent_b)
    response = client.get(INBOX)
    assert is_unread(response, opened) and is_unread(response, other)
    assert unread_text(response) == "未読 2件"


def test_a_new_customer_message_makes_an_opened_inquiry_unread_again(client, colleague):
    inquiry = factories.inquiry(received_at=timezone.now() - timedelta(hours=2))
    client.force_login(colleague)
    client.get(page_url(inquiry))
    assert not is_unread(client.get(INBOX), inquiry)
    # a mail polled late still counts: it is later than the one the agent saw
    inquiry_inbound_add(
        inquiry=inquiry,
        message=InboundMessage(
            body_text="追加で質問です。", received_at=timezone.now() - timedelta(hours=1)
        ),
    )
    assert is_unread(client.get(INBOX), inquiry)
    # a reply of ours does not make it unread
    client.get(page_url(inquiry))
    inquiry_reply(inquiry=inquiry, body="お答えします。", actor=colleague)
    assert not is_unread(client.get(INBOX), inquiry)


def test_the_unread_count_is_that_of_the_list_as_filtered(client, colleague, owner):
    mine = factories.inquiry()
    inquiry_assign(inquiry=mine, assignee=colleague, actor=owner)
    factories.inquiry()
    client.force_login(colleague)
    assert unread_text(client.get(INBOX)) == "未読 2件"
    assert unread_text(client.get(INBOX, {"assignee": "mine"})) == "未読 1件"


def test_read_state_is_one_row_per_agent_and_inquiry(client, colleague):
    inquiry = factories.inquiry()
    client.force_login(colleague)
    client.get(page_url(inquiry))
    client.get(page_url(inquiry))
    state = InquiryReadState.objects.get()
    assert (state.inquiry_id, state.user_id) == (inquiry.pk, colleague.pk)
    assert state.seen_inbound_at == Inquiry.objects.get(pk=inquiry.pk).last_inbound_at


# --- The news endpoint the inbox polls -------------------------------------------------------


def test_the_news_endpoint_counts_customer_messages_since_the_page_and_unread(
    client, colleague, owner
):
    # given: a page drawn now, over two inquiries, one of them read
    old = factories.inquiry(received_at=timezone.now() - timedelta(hours=3))
    mine = factories.inquiry(received_at=timezone.now() - timedelta(hours=2))
    inquiry_assign(inquiry=mine, assignee=colleague, actor=owner)
    client.force_login(colleague)
    client.get(page_url(old))
    since = client.get(INBOX).context["inbox_since"]
    assert client.get(NEWS, {"since": since}).json()["new"] == 0
    # when: a customer writes on each, and a new inquiry comes in
    inquiry_inbound_add(inquiry=old, message=InboundMessage(body_text="どうなりましたか"))
    inquiry_inbound_add(inquiry=mine, message=InboundMessage(body_text="至急お願いします"))
    factories.inquiry()
    # then: three new and three unread in the whole list ...
    data = client.get(NEWS, {"since": since}).json()
    assert (data["new"], data["unread"]) == (3, 3)
    assert data["new_text"] == ja("%(count)s new — refresh") % {"count": 3} == "新着 3件 — 更新"
    assert data["unread_text"] == "未読 3件"
    # ... and one under the page's own filter
    data = client.get(NEWS, {"since": since, "assignee": "mine"}).json()
    assert (data["new"], data["unread"]) == (1, 1)


def test_the_news_endpoint_refuses_a_request_without_the_page_time_or_with_a_bad_filter(
    client, colleague
):
    client.force_login(colleague)
    assert client.get(NEWS).status_code == 400
    since = timezone.now().isoformat()
    assert client.get(NEWS, {"since": since, "no_such_field": "1"}).status_code == 400


def test_the_news_endpoint_is_refused_to_those_who_cannot_see_the_inbox(
    client, outsider, django_user_model
):
    since = timezone.now().isoformat()
    client.force_login(outsider)
    assert client.get(NEWS, {"since": since}).status_code == 302  # to the login page
    marketer = django_user_model.objects.create_user("marketer", is_staff=True)
    marketer.groups.add(Group.objects.get(name=MARKETER))
    client.force_login(marketer)
    assert client.get(NEWS, {"since": since}).status_code == 403


# --- Replies held for approval ------------------------------------------------------------


def test_a_reply_waiting_for_approval_or_returned_is_badged_in_words(
    client, colleague, owner, request
):
    held_author = request.getfixturevalue("trainee")  # replies wait for approval
    # given: a held reply, a returned one, and a sent one
    held, returned, sent = (factories.inquiry() for _ in range(3))
    inquiry_reply(inquiry=held, body="確認いたします。", actor=held_author)
    draft = inquiry_reply(inquiry=returned, body="確認します", actor=held_author)
    inquiry_reply_return(message=draft, actor=owner, note="敬語を直してください")
    inquiry_reply(inquiry=sent, body="確認いたします。", actor=colleague)
    client.force_login(colleague)
    # when
    response = client.get(INBOX)
    # then
    assert "承認待ち" in row_html(response, held)
    assert 'class="reply-held-badge"' in row_html(response, held)
    assert ja("Returned for changes") in row_html(response, returned)
    assert "reply-held-badge" not in row_html(response, sent)
    assert "reply-failed-badge" not in row_html(response, held)


# --- Query counts ---------------------------------------------------------------------------


def _inquiries(count: int, reader) -> None:
    """`count` inquiries, every other one opened by `reader`."""
    for index in range(count):
        inquiry = factories.inquiry()
        if index % 2:
            InquiryReadState.objects.create(
                inquiry=inquiry,
                user=reader,
                seen_inbound_at=inquiry.last_inbound_at,
                opened_at=timezone.now(),
            )


def test_the_unread_marks_and_the_news_endpoint_keep_the_query_count_flat(
    client, colleague, django_assert_num_queries
):
    client.force_login(colleague)
    since = timezone.now().isoformat()
    _inquiries(3, colleague)
    client.get(INBOX)  # a first request warms the session
    # session, user, permissions (2), filter choices (2), the count with the unread count,
    # the rows (with their read state), the incident banner, the audit row, automatic
    # assignment (the viewer's presence, the round-robin rules)
    with django_assert_num_queries(12):
        response = client.get(INBOX)
    assert sum(is_unread(response, inquiry) for inquiry in Inquiry.objects.all()) == 2
    # session, user, permissions (2), the assignee and category filter choices (the
    # list's filters are read as the page reads them), the counts
    with django_assert_num_queries(7):
        client.get(NEWS, {"since": since})

    _inquiries(12, colleague)
    with django_assert_num_queries(12):
        response = client.get(INBOX)
    assert sum(is_unread(response, inquiry) for inquiry in Inquiry.objects.all()) == 8
    with django_assert_num_queries(7):
        assert client.get(NEWS, {"since": since}).json()["unread"] == 8


# --- Titles ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "title"),
    [
        (reverse("admin:tickets_inquiry_changelist"), "問い合わせ一覧"),
        (reverse("admin:crm_customer_changelist"), "顧客一覧"),
        (reverse("admin:outreach_campaign_changelist"), "キャンペーン一覧"),
        (reverse("admin:tickets_inquiry_add"), "問い合わせを追加"),
        (reverse("admin:crm_customer_add"), "顧客を追加"),
    ],
)
def test_list_and_form_titles_read_as_a_support_team_says_them(client, owner, url, title):
    client.force_login(owner)
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert f"<h1>{title}</h1>" in html
    assert f"<title>{title} |" in html
    assert "を選択" not in html.split("</title>")[0]


def test_the_add_button_and_a_change_form_title_read_plainly(client, owner):
    client.force_login(owner)
    html = client.get(reverse("admin:tickets_category_changelist")).content.decode()
    assert "カテゴリを追加" in html and "カテゴリ を追加" not in html
    category = apps.get_model("tickets", "Category").objects.first()
    response = client.get(reverse("admin:tickets_category_change", args=[category.pk]))
    assert response.context["title"] == "カテゴリを編集"


def test_a_title_a_page_sets_itself_is_left_as_it_is(client, colleague):
    inquiry = factories.inquiry(subject="返品について")
    client.force_login(colleague)
    response = client.get(page_url(inquiry))
    assert response.context["title"] == f"{inquiry.reference} 返品について"
