"""Phone calls: logged on an existing inquiry (an inbound phone message with
its length and notes, an event in words), or as a new phone inquiry; a call
answered on the spot is the first reply; the new-inquiry pickers tell two
「山本 一郎」 apart and offer only the chosen customer's orders."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from core.choices import Channel
from core.roles import MARKETER
from outreach import ledger
from tests.crm import factories as crm_factories
from tests.tickets import factories
from tickets.admin.calls import customer_choice_label
from tickets.models import (
    Inquiry,
    InquiryEvent,
    InquiryEventKind,
    InquiryMessage,
    MessageKind,
    SlaState,
)
from tickets.services import inquiry_call_create, inquiry_call_log, inquiry_reply
from tickets.services.reply_outcomes import reply_outcomes_settle

pytestmark = pytest.mark.django_db

AUTOCOMPLETE = reverse("admin:autocomplete")


@pytest.fixture
def marketer(django_user_model):
    user = django_user_model.objects.create_user("marketer", is_staff=True, last_name="高橋")
    user.groups.add(Group.objects.get(name=MARKETER))
    return user


def ago(**delta) -> timezone.datetime:
    return timezone.now() - timedelta(**delta)


def call_event(inquiry: Inquiry) -> InquiryEvent:
    return InquiryEvent.objects.get(inquiry=inquiry, kind=InquiryEventKind.CALL)


# --- A call on an existing inquiry ---------------------------------------------------


def test_a_call_logged_on_an_existing_inquiry_is_an_inbound_phone_message(colleague):
    inquiry = factories.inquiry(channel="email", received_at=ago(hours=2))
    with translation.override("ja"):
        message = inquiry_call_log(
            inquiry=inquiry,
            notes="お届け日の確認のお電話。明日の午前に届く予定とお伝えした。",
            minutes=12,
            actor=colleague,
        )
    assert message.inquiry_id == inquiry.pk
    assert (message.kind, message.channel, message.author) == (
        MessageKind.INBOUND,
        Channel.PHONE,
        colleague,
    )
    assert message.body_text.startswith("お届け日の確認")
    stored = InquiryMessage.objects.get(pk=message.pk)
    assert (stored.call_minutes, stored.call_answered) == (12, False)
    event = call_event(inquiry)
    assert (event.actor, event.new) == (colleague, "12分")
    inquiry.refresh_from_db()
    assert inquiry.first_replied_at is None  # not answered on the spot: the clock runs


def test_a_call_needs_notes_and_a_length(colleague):
    inquiry = factories.inquiry()
    with pytest.raises(ValidationError) as caught:
        inquiry_call_log(inquiry=inquiry, notes="  ", minutes=None, actor=colleague)
    assert set(caught.value.message_dict) == {"notes", "minutes"}
    assert not InquiryMessage.objects.filter(inquiry=inquiry, channel=Channel.PHONE).exists()


def test_a_call_answered_on_the_spot_meets_the_first_reply_at_the_call(colleague):
    inquiry = factories.inquiry(channel="email", received_at=ago(hours=3))
    due = inquiry.first_reply_due_at
    called_at = ago(minutes=5)

    inquiry_call_log(
        inquiry=inquiry,
        notes="返品の方法をお電話でご案内した。",
        minutes=8,
        answered=True,
        actor=colleague,
        at=called_at,
    )

    inquiry.refresh_from_db()
    assert inquiry.first_replied_at == called_at
    assert inquiry.sla_state == SlaState.MET
    assert inquiry.first_reply_due_at == due  # no new clock
    assert InquiryEvent.objects.filter(
        inquiry=inquiry, kind=InquiryEventKind.SLA, new=SlaState.MET
    ).exists()
    assert InquiryEvent.objects.filter(
        inquiry=inquiry, kind=InquiryEventKind.STAGE, new="first_contact", actor=colleague
    ).exists()
    # A written reply afterwards does not move the first reply.
    inquiry_reply(inquiry=inquiry, body="お電話ありがとうございました。", actor=colleague)
    inquiry.refresh_from_db()
    assert inquiry.first_replied_at == called_at


def test_a_call_answered_after_the_deadline_is_a_late_first_reply(colleague):
    inquiry = factories.inquiry(channel="email", received_at=ago(days=3))
    inquiry_call_log(
        inquiry=inquiry,
        notes="遅れてのご連絡をお詫びした。",
        minutes=3,
        answered=True,
        actor=colleague,
    )
    inquiry.refresh_from_db()
    assert inquiry.first_replied_at is not None
    assert inquiry.sla_state == SlaState.BREACHED


def test_a_new_phone_inquiry_answered_on_the_spot_is_replied_at_the_call(colleague):
    customer = crm_factories.customer(family_name="山本", given_name="一郎")
    with translation.override("ja"):
        inquiry = inquiry_call_create(
            customer=customer,
            subject="配送先の変更",
            notes="配送先を勤務先に変更したいとのこと。変更済みとお伝えした。",
            minutes=6,
            answered=True,
            actor=colleague,
        )
    assert inquiry.channel == Channel.PHONE
    message = inquiry.messages.get()
    assert (message.call_minutes, message.call_answered, message.author) == (6, True, colleague)
    assert inquiry.first_replied_at == message.created_at == inquiry.created_at
    assert inquiry.sla_state == SlaState.MET
    assert call_event(inquiry).new == "6分・その場で回答"


def test_a_new_phone_inquiry_not_answered_keeps_its_clock(colleague):
    inquiry = inquiry_call_create(
        customer=crm_factories.customer(),
        subject="返品について",
        notes="折り返しご連絡すると伝えた。",
        minutes=4,
        actor=colleague,
    )
    assert inquiry.first_replied_at is None
    assert inquiry.first_reply_due_at is not None


# --- The inquiry page's call form ----------------------------------------------------


def test_the_agent_logs_a_call_from_the_inquiry_page(client, colleague):
    inquiry = factories.inquiry(channel="email")
    client.force_login(colleague)
    page = client.get(reverse("admin:tickets_inquiry_change", args=[inquiry.pk]))
    assert 'id="call-form"' in page.content.decode()

    response = client.post(
        reverse("admin:tickets_inquiry_call", args=[inquiry.pk]),
        {"call-minutes": "7", "call-notes": "交換品の発送日を確認された。", "call-answered": "on"},
    )

    assert response.status_code == 302
    message = InquiryMessage.objects.get(inquiry=inquiry, channel=Channel.PHONE)
    assert (message.call_minutes, message.call_answered) == (7, True)
    with translation.override("ja"):
        page = client.get(response["Location"], HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert "7分・その場で回答" in page
    assert "交換品の発送日を確認された。" in page


def test_a_call_without_notes_shows_the_form_again_with_the_reason(client, colleague):
    inquiry = factories.inquiry(channel="email")
    client.force_login(colleague)
    response = client.post(
        reverse("admin:tickets_inquiry_call", args=[inquiry.pk]),
        {"call-minutes": "7", "call-notes": ""},
    )
    assert response.status_code == 200
    assert response.context_data["call_form"].errors["notes"]
    assert not InquiryMessage.objects.filter(inquiry=inquiry, channel=Channel.PHONE).exists()


def test_only_staff_who_may_reply_log_calls(client, outsider, marketer):
    inquiry = factories.inquiry(channel="email")
    url = reverse("admin:tickets_inquiry_call", args=[inquiry.pk])
    data = {"call-minutes": "1", "call-notes": "テスト"}
    client.force_login(outsider)
    assert client.post(url, data).status_code == 302  # to the login page
    client.force_login(marketer)
    assert client.post(url, data).status_code == 403
    assert not InquiryMessage.objects.filter(inquiry=inquiry, channel=Channel.PHONE).exists()


# --- The new phone inquiry -----------------------------------------------------------


def test_the_add_form_enters_a_call_answered_on_the_spot(client, colleague):
    customer = crm_factories.customer(family_name="山本", given_name="一郎")
    order = crm_factories.order(customer=customer)
    client.force_login(colleague)
    response = client.post(
        reverse("admin:tickets_inquiry_add"),
        {
            "customer": customer.pk,
            "channel": "phone",
            "order": order.pk,
            "subject": "お届け日の確認",
            "body_text": "お届け日を確認された。明日着とお伝えした。",
            "call_minutes": "5",
            "call_answered": "on",
            "priority": "normal",
        },
    )
    assert response.status_code == 302
    inquiry = Inquiry.objects.get(subject="お届け日の確認")
    assert inquiry.order == order and inquiry.first_replied_at is not None
    assert inquiry.sla_state == SlaState.MET


def test_the_add_form_refuses_another_customers_order(client, colleague):
    customer = crm_factories.customer(family_name="山本", given_name="一郎")
    stranger_order = crm_factories.order(customer=crm_factories.customer())
    client.force_login(colleague)
    response = client.post(
        reverse("admin:tickets_inquiry_add"),
        {
            "customer": customer.pk,
            "channel": "phone",
            "order": stranger_order.pk,
            "subject": "お届け日の確認",
            "body_text": "お届け日を確認された。",
            "call_minutes": "5",
            "priority": "normal",
        },
    )
    assert response.status_code == 200
    assert response.context_data["adminform"].form.errors["order"]
    assert not Inquiry.objects.filter(subject="お届け日の確認").exists()


def autocomplete(client, field: str, **params) -> list[dict]:
    query = {"app_label": "tickets", "model_name": "inquiry", "field_name": field, **params}
    response = client.get(AUTOCOMPLETE, query)
    assert response.status_code == 200
    return response.json()["results"]


def yamamoto(n: int, **profile):
    return crm_factories.customer(
        family_name="山本",
        given_name="一郎",
        family_name_kana="ヤマモト",
        given_name_kana="イチロウ",
        email=f"ichiro{n}@example.jp",
        phone=f"090-1234-{n:04d}",
        **profile,
    )


def test_the_customer_picker_tells_two_yamamoto_ichiro_apart(client, colleague):
    first, second = yamamoto(1), yamamoto(2)
    client.force_login(colleague)
    texts = {r["id"]: r["text"] for r in autocomplete(client, "customer", term="山本")}
    assert texts[str(first.pk)] == customer_choice_label(first)
    assert "（ヤマモト イチロウ）" in texts[str(first.pk)]
    assert "090-1234-0001" in texts[str(first.pk)] and "ichiro1@example.jp" in texts[str(first.pk)]
    assert "ichiro2@example.jp" in texts[str(second.pk)]
    assert texts[str(first.pk)] != texts[str(second.pk)]


def test_the_order_picker_offers_only_the_chosen_customers_orders(client, colleague):
    first, second = yamamoto(1), yamamoto(2)
    mine = [crm_factories.order(customer=first) for _ in range(2)]
    crm_factories.order(customer=second)
    client.force_login(colleague)

    offered = {r["id"] for r in autocomplete(client, "order", customer=first.pk)}
    assert offered == {str(order.pk) for order in mine}
    assert autocomplete(client, "order") == []  # no customer chosen yet: nothing
    text = autocomplete(client, "order", customer=first.pk, term=mine[0].order_number)[0]["text"]
    assert mine[0].order_number in text and "¥3,000" in text


def test_picker_query_counts_do_not_grow_with_rows(client, colleague):
    first = yamamoto(1)
    for n in range(2, 4):
        yamamoto(n)
    for _ in range(3):
        crm_factories.order(customer=first)
    client.force_login(colleague)

    def counted(field: str, **params) -> int:
        with CaptureQueriesContext(connection) as queries:
            autocomplete(client, field, **params)
        return len(queries)

    customers_3, orders_3 = counted("customer", term="山本"), counted("order", customer=first.pk)
    for n in range(4, 13):
        yamamoto(n)
    for _ in range(9):
        crm_factories.order(customer=first)
    assert len(autocomplete(client, "customer", term="山本")) == 12
    assert len(autocomplete(client, "order", customer=first.pk)) == 12
    assert counted("customer", term="山本") == customers_3
    assert counted("order", customer=first.pk) == orders_3


def test_a_new_phone_inquiry_may_leave_the_call_length_unknown(colleague):
    inquiry = inquiry_call_create(
        customer=crm_factories.customer(),
        subject="返品について",
        notes="返品の方法をご案内した。",
        minutes=None,
        answered=True,
        actor=colleague,
    )
    assert inquiry.messages.get().call_minutes is None
    assert inquiry.sla_state == SlaState.MET
    with translation.override("ja"):
        assert call_event(inquiry).new == "その場で回答"


def test_a_reply_that_fails_after_an_answered_call_does_not_reopen_the_clock(colleague, settings):
    # given: a call answered on the spot, then a written reply whose only
    # attempt ended in doubt
    settings.DELIVERY_MAX_ATTEMPTS = 1
    inquiry = factories.inquiry(channel="email", received_at=ago(hours=2))
    called_at = ago(minutes=30)
    inquiry_call_log(
        inquiry=inquiry,
        notes="その場でご案内した。",
        minutes=5,
        answered=True,
        actor=colleague,
        at=called_at,
    )
    reply = inquiry_reply(inquiry=inquiry, body="念のためメールでもご案内します。", actor=colleague)
    now = timezone.now()
    rows = ledger.delivery_claim_batch(send=reply.delivery.send, limit=10, now=now)
    ledger.delivery_mark_retry(
        rows, error="TimeoutError", now=now, in_doubt=True, lease=ledger.Lease(rows)
    )
    # when the outcomes are taken in / then the call still is the first reply
    assert reply_outcomes_settle()["reopened"] == 0
    inquiry.refresh_from_db()
    assert inquiry.first_replied_at == called_at and inquiry.sla_state == SlaState.MET
