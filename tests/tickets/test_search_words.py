"""The inbox's word search on Inquiry.search_text: the words of every
customer message are found (a later one, after a merge or a split, not
after anonymisation); the first page and the count equal the unlimited
query's over the subjects and the customer's messages; a search counted
up to the cap says so in Japanese (「4件以上」, 「未読 4件以上」)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import Q
from django.urls import reverse

from tests.tickets import factories
from tickets.admin.inbox import INBOX_ORDER
from tickets.admin.inquiries import InquiryAdmin
from tickets.models import OPEN_STATUSES, Inquiry, InquiryMessage, InquiryStatus, MessageKind
from tickets.search import inquiry_search
from tickets.services import (
    InboundMessage,
    inquiries_merge,
    inquiry_inbound_add,
    inquiry_reply,
    inquiry_split,
    inquiry_status_set,
)

pytestmark = pytest.mark.django_db

INBOX = reverse("admin:tickets_inquiry_changelist")
WORD = "土鍋"


def found(word: str) -> set[int]:
    return set(inquiry_search(Inquiry.objects.all(), word).values_list("pk", flat=True))


def test_the_words_of_a_later_customer_message_are_found(colleague):
    inquiry = factories.inquiry(subject="配送について", body="いつ届きますか。")

    inquiry_inbound_add(
        inquiry=inquiry, message=InboundMessage(body_text="益子焼の土鍋にひびがありました。")
    )

    assert found("益子焼の土鍋") == {inquiry.pk}
    assert found(WORD) == {inquiry.pk}


def test_merged_and_split_messages_are_found_where_they_now_are(colleague):
    first = factories.inquiry(subject="配送について", body="いつ届きますか。")
    second = factories.inquiry(
        customer=first.customer, subject="追加の質問", body="土鍋の蓋が割れていました。"
    )

    kept = inquiries_merge(inquiries=[first, second], survivor=first, actor=colleague)
    assert found(WORD) == {kept.pk}

    message = kept.messages.get(body_text__contains=WORD)
    new = inquiry_split(message=message, actor=colleague)
    assert found(WORD) == {new.pk}
    assert found("いつ届き") == {first.pk}


def oracle(word: str):
    """The unlimited query the search replaced: the word in the subject or
    in one of the customer's messages (not in replies), every match."""
    in_messages = InquiryMessage.objects.filter(
        kind=MessageKind.INBOUND, body_text__icontains=word
    ).values("inquiry_id")
    return Inquiry.objects.filter(Q(subject__icontains=word) | Q(pk__in=in_messages))


@pytest.fixture
def word_inquiries(colleague):
    """Open inquiries with the word in the subject, in the first or a later
    customer message, in a reply only (not a match), closed ones, others."""
    inquiries = [
        factories.inquiry(subject="土鍋が割れていました", body="交換できますか。"),
        factories.inquiry(subject="返品したい", body="益子焼の土鍋が大きすぎました。"),
        factories.inquiry(subject="配送について", body="いつ届きますか。"),
        factories.inquiry(subject="ギフト包装", body="のし紙をお願いします。"),
        factories.inquiry(subject="サイズ", body="ＤＯＮＡＢＥ 土鍋の直径は？"),
        factories.inquiry(subject="色違い", body="青を注文しました。"),
    ]
    inquiry_inbound_add(
        inquiry=inquiries[2], message=InboundMessage(body_text="土鍋も一緒に届きますか。")
    )
    inquiry_reply(inquiry=inquiries[3], body="土鍋は別便でお届けします。", actor=colleague)
    closed = factories.inquiry(subject="土鍋の在庫", body="再入荷はいつですか。")
    inquiry_status_set(inquiry=closed, status=InquiryStatus.CLOSED, actor=colleague)
    return inquiries


def page_references(response) -> list[str]:
    return [inquiry.reference for inquiry in response.context["cl"].result_list]


def test_the_first_page_and_count_equal_the_unlimited_query(
    client, colleague, word_inquiries, monkeypatch
):
    monkeypatch.setattr(InquiryAdmin, "list_per_page", 2)
    client.force_login(colleague)
    expected = oracle(WORD).filter(status__in=OPEN_STATUSES)
    in_order = list(
        expected.order_by(INBOX_ORDER, "-last_inbound_at", "-pk").values_list(
            "reference", flat=True
        )
    )
    assert len(in_order) == 4  # subject, first message, later message, full-width text

    response = client.get(INBOX, {"q": WORD})

    assert page_references(response) == in_order[:2]
    assert response.context["cl"].result_count == 4
    assert "4件" in response.content.decode()
    assert "4件以上" not in response.content.decode()
    response = client.get(INBOX, {"q": WORD, "status": "all"})
    assert response.context["cl"].result_count == oracle(WORD).count() == 5
    assert found("ｄｏｎａｂｅ") == found("donabe") == {word_inquiries[4].pk}


def test_a_search_counted_up_to_the_cap_says_so(client, colleague, word_inquiries, monkeypatch):
    monkeypatch.setattr("tickets.admin.inbox.SEARCH_COUNT_CAP", 3)
    monkeypatch.setattr(InquiryAdmin, "list_per_page", 2)
    client.force_login(colleague)
    in_order = list(
        oracle(WORD)
        .filter(status__in=OPEN_STATUSES)
        .order_by(INBOX_ORDER, "-last_inbound_at", "-pk")
        .values_list("reference", flat=True)
    )

    response = client.get(INBOX, {"q": WORD}, HTTP_ACCEPT_LANGUAGE="ja")

    html = response.content.decode()
    assert page_references(response) == in_order[:2]
    assert response.context["cl"].result_count == 3
    assert "3件以上" in html  # the count stopped at the cap: there are more
    assert "未読 3件以上" in html  # the colleague opened none of them
    response = client.get(INBOX, {"q": WORD, "p": "2"})
    assert page_references(response) == in_order[2:3]


def test_a_search_under_the_cap_is_counted_whole(client, colleague, word_inquiries, monkeypatch):
    monkeypatch.setattr("tickets.admin.inbox.SEARCH_COUNT_CAP", 4)
    client.force_login(colleague)

    response = client.get(INBOX, {"q": WORD}, HTTP_ACCEPT_LANGUAGE="ja")

    html = response.content.decode()
    assert response.context["cl"].result_count == 4
    assert "以上" not in html.split('id="inbox-unread-count"')[1].split("</span>")[0]
    assert "未読 4件" in html


def test_a_common_two_character_word_is_tested_row_by_row_with_the_same_result(
    client, colleague, word_inquiries, monkeypatch
):
    # PostgreSQL expects every pair in more inquiries than this: strpos on
    # each row instead of the pairs' index (「返品」 at 1,000,000 inquiries).
    monkeypatch.setattr("tickets.search.COMMON_PAIR_ROWS", -1)
    client.force_login(colleague)

    response = client.get(INBOX, {"q": WORD, "status": "all"})

    expected = sorted(oracle(WORD).values_list("reference", flat=True))
    assert sorted(page_references(response)) == expected
    assert len(expected) == 5
    assert found("ｄｏｎａｂｅ"[:2]) == {word_inquiries[4].pk}  # folded: 「do」


def test_the_closed_hint_says_when_its_count_stopped_at_the_cap(
    client, colleague, word_inquiries, monkeypatch
):
    monkeypatch.setattr("tickets.admin.inbox.SEARCH_COUNT_CAP", 1)
    for inquiry in word_inquiries:
        inquiry_status_set(inquiry=inquiry, status=InquiryStatus.CLOSED, actor=colleague)
    client.force_login(colleague)

    response = client.get(INBOX, {"q": WORD}, HTTP_ACCEPT_LANGUAGE="ja")

    assert page_references(response) == []
    assert "完了済みを含めて検索 (1件以上)" in response.content.decode()


def test_a_two_character_search_costs_the_same_queries_with_more_matches(
    client, colleague, django_assert_num_queries
):
    client.force_login(colleague)

    def add(count: int) -> None:
        for _ in range(count):
            factories.inquiry(subject="土鍋について", body="蓋が割れていました。")

    add(3)
    # session, user, permissions (2), assignee and category filter choices,
    # the customers found, the pair's estimate (EXPLAIN), page count, the
    # rows, the incident banner, the audit row, automatic assignment (2),
    # and the search's transaction for custom plans (savepoint, SET LOCAL,
    # release: core.db.custom_plans)
    with django_assert_num_queries(17):
        response = client.get(INBOX, {"q": WORD})
    assert len(page_references(response)) == 3

    add(9)
    with django_assert_num_queries(17):
        response = client.get(INBOX, {"q": WORD})
    assert len(page_references(response)) == 12


def test_a_search_is_planned_for_the_word_typed_every_time(client, colleague, word_inquiries):
    # Prepared statements get a generic plan after a few runs, one plan for
    # any word: good for a rare word, a walk of the whole inbox for a common
    # one (「返品」: 10 ms, then 500 ms from the sixth search at 1,000,000
    # inquiries). The inbox's search statements are planned for their word.
    client.force_login(colleague)
    for _ in range(8):
        assert client.get(INBOX, {"q": WORD}).status_code == 200
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE %s",
            ["%search_text%"],
        )
        statements = cursor.fetchall()
    assert statements  # the search's statements were prepared and run again
    assert [statement for statement, generic, _custom in statements if generic] == []
