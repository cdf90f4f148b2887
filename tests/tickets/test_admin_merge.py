"""The merge and split pages, the inbox's merge action and the merge panel
of the inquiry page (tickets/admin/merge_pages.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core.roles import MARKETER
from tests.crm import factories as crm_factories
from tests.tickets import factories
from tickets.models import Inquiry, InquiryMessage, InquiryStatus
from tickets.services import (
    AttachmentData,
    InboundMessage,
    inquiries_merge,
    inquiry_inbound_add,
    inquiry_note_add,
    inquiry_split,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def merge_url(inquiry, *others) -> str:
    url = reverse("admin:tickets_inquiry_merge", args=[inquiry.pk])
    return f"{url}?with={','.join(str(o.pk) for o in others)}" if others else url


def split_url(inquiry) -> str:
    return reverse("admin:tickets_inquiry_split", args=[inquiry.pk])


def page_url(inquiry) -> str:
    return reverse("admin:tickets_inquiry_change", args=[inquiry.pk])


def _pair(hours_apart: float = 2):
    customer = crm_factories.customer()
    order = crm_factories.order(customer=customer)
    start = timezone.now() - timedelta(days=1)
    first = factories.inquiry(customer=customer, order=order, received_at=start)
    second = factories.inquiry(
        customer=customer,
        order=order,
        subject="再送のお願い",
        received_at=start + timedelta(hours=hours_apart),
    )
    return first, second


def _more_messages(inquiry, count: int, author) -> None:
    for index in range(count):
        inquiry_inbound_add(
            inquiry=inquiry,
            message=InboundMessage(
                body_text=f"追加の写真です {index}",
                attachments=[AttachmentData(f"写真{index}.jpg", "image/jpeg", b"jpg", 3)],
            ),
        )
        inquiry_note_add(inquiry=inquiry, body=f"確認中 {index}", actor=author)


def flash(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- The merge page -------------------------------------------------------------------


def test_merge_page_shows_which_inquiry_is_kept_and_what_moves(client, colleague):
    first, second = _pair()
    client.force_login(colleague)

    response = client.get(merge_url(second, first))

    assert response.status_code == 200
    assert response.context["kept"] == first
    assert response.context["kept_is_default"]
    rows = {row["inquiry"].pk: row for row in response.context["rows"]}
    assert rows[first.pk]["kept"] and rows[second.pk]["chosen"]
    assert rows[second.pk]["moves"].startswith("1件のメッセージと")
    text = response.content.decode()
    assert "受付が最も早いもの" in text
    assert InquiryMessage.objects.filter(inquiry=second).count() == 1  # nothing written


def test_merge_page_query_count_does_not_grow_with_messages(
    client, colleague, django_assert_num_queries
):
    first, second = _pair()
    client.force_login(colleague)
    _more_messages(second, 2, colleague)
    # session, user, the inquiry with its joins, permissions (2), the customer's
    # inquiries with their message and event counts, the incident banner
    with django_assert_num_queries(7):
        client.get(merge_url(second, first))

    _more_messages(second, 6, colleague)
    _more_messages(first, 6, colleague)
    with django_assert_num_queries(7):
        response = client.get(merge_url(second, first))
    rows = {row["inquiry"].pk: row["inquiry"] for row in response.context["rows"]}
    assert rows[second.pk].message_count == 17


def test_merging_from_the_page_moves_the_messages_and_opens_the_survivor(client, colleague):
    first, second = _pair()
    client.force_login(colleague)

    response = client.post(
        merge_url(second),
        {"inquiries": [first.pk, second.pk], "survivor": second.pk, "confirm": "1"},
    )

    assert response.status_code == 302 and response["Location"] == page_url(second)
    assert flash(response) == [f"1件の問い合わせを {second.reference} に統合しました。"]
    first.refresh_from_db()
    assert first.merged_into_id == second.pk and first.status == InquiryStatus.CLOSED
    assert InquiryMessage.objects.filter(inquiry=second).count() == 2


def test_show_the_new_choice_writes_nothing(client, colleague):
    first, second = _pair()
    client.force_login(colleague)

    response = client.post(
        merge_url(first), {"inquiries": [first.pk, second.pk], "survivor": second.pk}
    )

    assert response.status_code == 200
    assert response.context["kept"] == second and not response.context["kept_is_default"]
    assert Inquiry.objects.filter(merged_into__isnull=False).count() == 0


def test_a_refused_merge_says_why_on_the_page(client, colleague):
    first, second = _pair()
    client.force_login(colleague)
    from tickets.services import inquiry_status_set

    inquiry_status_set(inquiry=first, status=InquiryStatus.CLOSED, actor=colleague)

    response = client.post(
        merge_url(first),
        {"inquiries": [first.pk, second.pk], "survivor": first.pk, "confirm": "1"},
    )

    assert response.status_code == 200
    assert "対応中の問い合わせを残す側に選んでください" in response.context["refusal"]
    assert Inquiry.objects.filter(merged_into__isnull=False).count() == 0


def test_the_merge_page_of_a_merged_inquiry_leads_to_its_survivor(client, colleague):
    first, second = _pair()
    inquiries_merge(inquiries=[first, second], actor=colleague)
    client.force_login(colleague)

    response = client.get(merge_url(second))

    assert response.status_code == 302 and response["Location"] == page_url(first)


# --- The inbox action -----------------------------------------------------------------


def test_the_inbox_merge_action_opens_the_merge_page_of_the_chosen(client, colleague):
    first, second = _pair()
    client.force_login(colleague)

    response = client.post(
        reverse("admin:tickets_inquiry_changelist"),
        {"action": "merge_inquiries", "_selected_action": [second.pk, first.pk]},
    )

    assert response.status_code == 302
    assert response["Location"] == merge_url(first, second).replace(",", "%2C")


def test_the_inbox_merge_action_refuses_different_customers_in_japanese(client, colleague):
    first = factories.inquiry()
    other = factories.inquiry()
    client.force_login(colleague)

    response = client.post(
        reverse("admin:tickets_inquiry_changelist"),
        {"action": "merge_inquiries", "_selected_action": [first.pk, other.pk]},
        follow=True,
    )

    assert any("別のお客様" in text for text in flash(response))
    assert Inquiry.objects.filter(merged_into__isnull=False).count() == 0


def test_the_inbox_filter_lists_the_inquiries_with_a_merge_suggestion(client, colleague):
    first, second = _pair()
    far_first, far_second = _pair(hours_apart=8 * 24)
    alone = factories.inquiry()
    client.force_login(colleague)

    response = client.get(reverse("admin:tickets_inquiry_changelist"), {"merge": "suggested"})

    listed = {row.pk for row in response.context["cl"].result_list}
    assert listed == {first.pk, second.pk}
    assert not listed & {far_first.pk, far_second.pk, alone.pk}


# --- The split page -------------------------------------------------------------------


def test_split_page_query_count_does_not_grow_with_messages(
    client, colleague, django_assert_num_queries
):
    inquiry = factories.inquiry()
    client.force_login(colleague)
    _more_messages(inquiry, 2, colleague)
    # session, user, the inquiry, permissions (2), messages with authors and
    # deliveries, their attachments, the incident banner
    with django_assert_num_queries(8):
        client.get(split_url(inquiry))

    _more_messages(inquiry, 8, colleague)
    with django_assert_num_queries(8):
        response = client.get(split_url(inquiry))
    assert len(response.context["messages_shown"]) == 21


def test_splitting_from_the_page_opens_the_new_inquiry(client, colleague):
    inquiry = factories.inquiry()
    question = inquiry_inbound_add(
        inquiry=inquiry, message=InboundMessage(body_text="別件ですが、領収書をください")
    )
    client.force_login(colleague)

    response = client.post(split_url(inquiry), {"message": question.pk, "subject": "領収書"})

    new = Inquiry.objects.get(split_from=inquiry)
    assert response.status_code == 302 and response["Location"] == page_url(new)
    assert new.subject == "領収書"
    assert list(new.messages.values_list("pk", flat=True)) == [question.pk]


def test_split_page_refuses_a_staff_message(client, colleague):
    inquiry = factories.inquiry()
    note = inquiry_note_add(inquiry=inquiry, body="メモ", actor=colleague)
    client.force_login(colleague)

    response = client.post(split_url(inquiry), {"message": note.pk})

    assert response.status_code == 200
    assert "お客様からのメッセージを選んでください" in response.content.decode()
    assert Inquiry.objects.count() == 1


# --- Who may -------------------------------------------------------------------------


def test_outsiders_and_marketers_cannot_merge_or_split(client, outsider, django_user_model):
    first, second = _pair()
    marketer = django_user_model.objects.create_user("marketer", is_staff=True)
    marketer.groups.add(Group.objects.get(name=MARKETER))

    client.force_login(outsider)
    for url in (merge_url(first, second), split_url(first)):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]
    client.force_login(marketer)
    for url in (merge_url(first, second), split_url(first)):
        assert client.get(url).status_code == 403
    response = client.post(merge_url(first), {"inquiries": [first.pk, second.pk], "confirm": "1"})
    assert response.status_code == 403
    assert Inquiry.objects.filter(merged_into__isnull=False).count() == 0


# --- The inquiry page's panel ---------------------------------------------------------


def test_the_inquiry_page_suggests_the_same_order_inquiry(client, colleague):
    first, second = _pair()
    client.force_login(colleague)

    text = client.get(page_url(second)).content.decode()

    assert 'id="merge-suggestion"' in text
    assert first.reference in text
    assert merge_url(second, first).replace("?with=", "?with=") in text


def test_the_merge_panel_costs_the_same_queries_however_many_suggestions(client, colleague):
    first, second = _pair()
    client.force_login(colleague)
    with CaptureQueriesContext(connection) as one:
        client.get(page_url(second))

    for hours in (3, 4, 5):
        factories.inquiry(
            customer=first.customer,
            order=first.order,
            received_at=first.created_at + timedelta(hours=hours),
        )
    with CaptureQueriesContext(connection) as four:
        response = client.get(page_url(second))

    assert response.content.decode().count('class="merge-suggestion-link"') == 4
    assert len(four) == len(one)


def test_a_merged_inquiry_page_links_to_its_survivor(client, colleague):
    first, second = _pair()
    inquiries_merge(inquiries=[first, second], actor=colleague)
    client.force_login(colleague)

    text = client.get(page_url(second)).content.decode()

    assert f"この問い合わせは {first.reference} に統合されました" in text
    assert f'href="{page_url(first)}"' in text
    assert 'id="merge-suggestion"' not in text


def test_a_split_inquiry_page_links_to_the_original(client, colleague):
    inquiry = factories.inquiry()
    question = inquiry_inbound_add(inquiry=inquiry, message=InboundMessage(body_text="別件です"))
    new = inquiry_split(message=question, actor=colleague)
    client.force_login(colleague)

    text = client.get(page_url(new)).content.decode()

    assert f"{inquiry.reference} から分割" in text


def test_the_customer_panel_says_an_absorbed_inquiry_was_merged_not_done(client, colleague):
    customer = crm_factories.customer()
    first = factories.inquiry(customer=customer, received_at=timezone.now() - timedelta(hours=3))
    second = factories.inquiry(customer=customer, subject="再度のお問い合わせ")
    inquiries_merge(inquiries=[first, second], actor=colleague)
    client.force_login(colleague)

    html = client.get(page_url(first)).content.decode()

    panel = html.split('class="customer-inquiries"')[1].split("</ul>")[0]
    assert second.reference in panel
    assert "他の問い合わせに統合" in panel
    assert "完了" not in panel
