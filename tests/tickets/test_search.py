"""The inbox's search (tickets.search): a customer's name without the space,
a phone, the last digits of an order number, the number part of a
reference, an email in any case, words of the subject or of the
customer's messages; the hint when only the closed filter hides what was
found; a flat query count; the indexes PostgreSQL reads."""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

from tests.crm import factories as crm_factories
from tests.crm.test_search import (  # 岡田 彩 with her phone, email and order; EXPLAIN
    needs_postgres,
    okada,  # noqa: F401
    plan_of,
)
from tests.tickets import factories
from tickets.models import Inquiry, InquiryStatus, ReferenceCounter
from tickets.search import inquiry_search
from tickets.services import inquiry_note_add, inquiry_reply, inquiry_status_set

pytestmark = pytest.mark.django_db

INBOX = reverse("admin:tickets_inquiry_changelist")


def references(response) -> list[str]:
    return sorted(inquiry.reference for inquiry in response.context["cl"].result_list)


def the_32nd_reference() -> None:
    """The next inquiry of this month is numbered 00032."""
    month = timezone.localtime().strftime("%y%m")
    ReferenceCounter.objects.update_or_create(month=month, defaults={"last": 31})


@pytest.fixture
def okada_inquiry(okada):  # noqa: F811
    """Okada Aya's inquiry about her Amazon order, numbered 00032."""
    the_32nd_reference()
    return factories.inquiry(
        customer=okada,
        order=okada.orders.get(),
        subject="湯呑みが割れていました",
        body="届いた波佐見焼の湯呑みにひびが入っていました。交換をお願いします。",
    )


@pytest.fixture
def other_inquiries():
    """Inquiries a loose search would wrongly find."""
    kenta = crm_factories.customer(
        family_name="岡本", given_name="健太", family_name_kana="オカモト", phone="090-1234-5679"
    )
    crm_factories.order(customer=kenta, channel="amazon", order_number="123-4567890-1234568")
    return [
        factories.inquiry(customer=kenta, subject="配送日の変更", body="到着日を変えたいです。"),
        factories.inquiry(subject="請求書の再発行", body="領収書をお願いします。"),
    ]


@pytest.mark.parametrize(
    "term",
    [
        "岡田彩",
        "オカダアヤ",
        "おかだあや",
        "ｵｶﾀﾞｱﾔ",
        "09012345678",
        "1234-5678",
        "1234567",  # the last digits of the order number
        "00032",  # the number part of the reference
        "AYA.OKADA@EXAMPLE.JP",
        "湯呑み",  # a word of the subject
        "波佐見焼",  # a word of the customer's message
        "交換",  # two characters of the message
        "割れ",  # two characters of the subject
    ],
)
def test_the_inbox_finds_the_inquiry_by_each_kind_of_search(
    client, colleague, okada_inquiry, other_inquiries, term
):
    client.force_login(colleague)

    response = client.get(INBOX, {"q": term})

    assert references(response) == [okada_inquiry.reference], term
    assert okada_inquiry.reference.endswith("-00032")


def test_an_order_number_finds_the_inquiry_its_customer_typed_unlinked(client, colleague):
    typed = factories.inquiry(order_number="OS-2611-4417")
    factories.inquiry(order_number="OS-2611-4418")
    client.force_login(colleague)

    response = client.get(INBOX, {"q": "4417"})

    assert references(response) == [typed.reference]


def test_words_of_agents_replies_and_notes_are_not_the_customers_messages(
    client, colleague, other_inquiries
):
    inquiry = other_inquiries[1]
    inquiry_reply(inquiry=inquiry, body="代替品を手配いたしました。", actor=colleague)
    inquiry_note_add(inquiry=inquiry, body="代替品の在庫を確認", actor=colleague)

    for word in ("代替品", "代替"):
        assert list(inquiry_search(Inquiry.objects.all(), word)) == [], word


def test_a_reference_typed_whole_or_in_part(okada_inquiry, other_inquiries):
    month = okada_inquiry.reference.split("-")[1]
    for term in (okada_inquiry.reference.lower(), f"{month}-00032", "32"):
        found = list(inquiry_search(Inquiry.objects.all(), term))
        assert found == [okada_inquiry], term


# --- Hidden by the closed filter ---------------------------------------------------------


def hint_of(response) -> str:
    return " ".join(str(message) for message in response.context["messages"])


def test_a_search_that_finds_only_closed_inquiries_offers_to_search_them_all(
    client, colleague, okada_inquiry
):
    second = factories.inquiry(customer=okada_inquiry.customer, subject="再送のお願い")
    for inquiry in (okada_inquiry, second):
        inquiry_status_set(inquiry=inquiry, status=InquiryStatus.CLOSED, actor=colleague)
    client.force_login(colleague)

    with translation.override("ja"):
        response = client.get(INBOX, {"q": "岡田彩"}, HTTP_ACCEPT_LANGUAGE="ja")
        expected = gettext("Search including closed ones (%(count)d)") % {"count": 2}

    assert references(response) == []
    html = response.content.decode()
    assert "完了済みを含めて検索 (2件)" in html
    assert expected in hint_of(response)
    assert 'href="?q=%E5%B2%A1%E7%94%B0%E5%BD%A9&amp;status=all"' in html

    response = client.get(INBOX, {"q": "岡田彩", "status": "all"})
    assert references(response) == sorted([okada_inquiry.reference, second.reference])
    assert hint_of(response) == ""


def test_no_hint_when_the_search_finds_open_inquiries_or_nothing_at_all(
    client, colleague, okada_inquiry
):
    client.force_login(colleague)

    response = client.get(INBOX, {"q": "岡田彩"})
    assert references(response) == [okada_inquiry.reference]
    assert hint_of(response) == ""

    response = client.get(INBOX, {"q": "存在しない言葉"})
    assert references(response) == []
    assert hint_of(response) == ""


# --- Query count -------------------------------------------------------------------------


def test_inbox_search_query_count_does_not_grow_with_matches(
    client, colleague, django_assert_num_queries
):
    client.force_login(colleague)
    customer = crm_factories.customer(
        family_name="岡田", given_name="彩", family_name_kana="オカダ"
    )

    def add(count: int) -> None:
        for _ in range(count):
            factories.inquiry(customer=customer, subject="湯呑みが割れていました")

    add(3)
    # session, user, permissions (2), assignee and category filter choices,
    # the customers found, page count, the rows, the incident banner, the
    # audit row, automatic assignment (the viewer's presence, the round-robin rules),
    # the search's transaction for custom plans (savepoint, SET LOCAL, release)
    with django_assert_num_queries(16):
        response = client.get(INBOX, {"q": "湯呑み"})
    assert len(references(response)) == 3

    add(9)
    with django_assert_num_queries(16):
        response = client.get(INBOX, {"q": "おかだ"})
    assert len(references(response)) == 12


# --- PostgreSQL's indexes ------------------------------------------------------------------


@needs_postgres
@pytest.mark.parametrize(
    ("term", "index"),
    [
        ("00032", "tickets_inquiry_reference_suffix"),
        ("OS-2611-4417", "tickets_inquiry_order_given_suffix"),
        ("湯呑み", "tickets_inquiry_search_trgm"),  # the subject
        ("波佐見焼", "tickets_inquiry_search_trgm"),  # the customer's message
        ("割れ", "tickets_inquiry_search_bigrams"),  # two characters: their pair
        ("交換", "tickets_inquiry_search_bigrams"),
        ("岡田彩", "tickets_customer_inquiries"),  # the customers found (crm.search), by id
    ],
)
def test_each_kind_of_inbox_search_reads_its_index(okada_inquiry, term, index):
    with connection.cursor() as cursor:
        for table in ("tickets_inquiry", "tickets_inquirymessage", "crm_customer", "crm_order"):
            cursor.execute(f"ANALYZE {table}")

    plan = plan_of(inquiry_search(Inquiry.objects.all(), term))

    assert index in plan, plan


def test_quotes_and_backslashes_in_two_characters_are_words_not_syntax(other_inquiries):
    quoted = factories.inquiry(subject="Tom's order", body="It's \\o/ broken")

    assert list(inquiry_search(Inquiry.objects.all(), "'S")) == [quoted]
    assert list(inquiry_search(Inquiry.objects.all(), "\\o")) == [quoted]
    assert list(inquiry_search(Inquiry.objects.all(), "%_")) == []
