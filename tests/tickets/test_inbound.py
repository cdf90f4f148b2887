"""LINE messages to inquiries (SPEC rule 11): events arrive through the real
webhook (/hooks/line/, signed with the channel secret), wait in
LineWebhookEvent, and line_messages_consume() turns them into messages of
the user's open LINE inquiry or a new one. Answers go out through the
worker to the local LINE fake: by the free Reply API while the event's
token is fresh, else by push."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from crm.models import ChannelIdentity
from outreach.dispatch import send_dispatch
from outreach.linefake import LineFake, follow_event, line_signature, text_message_event
from outreach.models import Delivery, LineWebhookEvent, Send
from tickets.models import (
    AutoAcknowledgement,
    Inquiry,
    InquiryMessage,
    InquiryStatus,
    StaffNotification,
)
from tickets.services import inquiry_reply, inquiry_status_set
from tickets.services.inbound import line_messages_consume
from tickets.services.notices import staff_notifications_email
from tickets.services.reply_outcomes import reply_outcomes_settle

pytestmark = pytest.mark.django_db

SECRET = "test-line-channel-secret"
TOKEN = "test-line-channel-access-token"
ALICE = "U" + "a1" * 16
BOB = "U" + "b2" * 16
User = get_user_model()


@pytest.fixture
def line(settings):
    with LineFake(channel_access_token=TOKEN, channel_secret=SECRET) as fake:
        settings.LINE_API_HOST = fake.url
        settings.LINE_CHANNEL_ACCESS_TOKEN = TOKEN
        settings.LINE_CHANNEL_SECRET = SECRET
        settings.QUIET_HOURS_START = settings.QUIET_HOURS_END = 0
        yield fake


def deliver(line: LineFake, *events: dict) -> None:
    """POST the events to /hooks/line/ as LINE does: compact UTF-8 JSON,
    signed with the channel secret."""
    body = json.dumps(
        {"destination": line.bot_user_id, "events": list(events)},
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")
    response = Client().post(
        "/hooks/line/",
        data=body,
        content_type="application/json; charset=utf-8",
        headers={"X-Line-Signature": line_signature(body, SECRET)},
    )
    assert response.status_code == 200, response.content


def said(line: LineFake, user: str, text: str, *, seconds_ago: float = 0) -> dict:
    """A text message event with a reply token the fake issued."""
    timestamp = timezone.now() - timedelta(seconds=seconds_ago)
    return text_message_event(
        user,
        text,
        reply_token=line.issue_reply_token(user),
        timestamp_ms=round(timestamp.timestamp() * 1000),
    )


def sticker(line: LineFake, user: str) -> dict:
    """A sticker message event (StickerMessageContent)."""
    event = said(line, user, "")
    event["message"] = {
        "type": "sticker",
        "id": event["message"]["id"],
        "quoteToken": event["message"]["quoteToken"],
        "stickerId": "52002734",
        "packageId": "11537",
        "stickerResourceType": "STATIC",
        "keywords": ["OK", "了解"],
    }
    return event


def dispatch_all() -> None:
    for send in Send.objects.filter(status="sending"):
        send_dispatch(send_id=send.pk)


def test_a_text_message_becomes_a_new_line_inquiry_keeping_its_reply_token(line):
    event = said(line, ALICE, "注文した商品の色を変更できますか？\n注文番号は12345です。")
    deliver(line, event)

    assert line_messages_consume() == 1

    inquiry = Inquiry.objects.get()
    assert (inquiry.channel, inquiry.status) == ("line", InquiryStatus.NEW)
    assert inquiry.subject == "注文した商品の色を変更できますか？"
    assert inquiry.customer.identities.get().external_id == ALICE
    message = inquiry.messages.get()
    assert (message.kind, message.channel) == ("inbound", "line")
    assert message.body_text == "注文した商品の色を変更できますか？\n注文番号は12345です。"
    assert message.line_reply_token == event["replyToken"]
    # the deadline counts from when the customer wrote
    written = LineWebhookEvent.objects.get().occurred_at
    assert inquiry.created_at == written
    assert inquiry.first_reply_due_at == written + timedelta(hours=24)
    assert LineWebhookEvent.objects.get().processed_at is not None


def test_messages_join_the_users_open_line_inquiry_and_each_user_has_their_own(line, owner):
    deliver(line, said(line, ALICE, "サイズ交換をお願いしたいです。"))
    deliver(line, said(line, BOB, "営業時間を教えてください。"))
    deliver(line, said(line, ALICE, "Mサイズでお願いします。"))

    assert line_messages_consume() == 3

    alice = Inquiry.objects.get(customer__identities__external_id=ALICE)
    bob = Inquiry.objects.get(customer__identities__external_id=BOB)
    assert [m.body_text for m in alice.messages.all()] == [
        "サイズ交換をお願いしたいです。",
        "Mサイズでお願いします。",
    ]
    assert [m.body_text for m in bob.messages.all()] == ["営業時間を教えてください。"]

    # Once her inquiry is closed, Alice's next message opens a new one
    inquiry_status_set(inquiry=alice, status=InquiryStatus.CLOSED, actor=owner)
    deliver(line, said(line, ALICE, "別の件で質問です。"))
    line_messages_consume()
    newest = Inquiry.objects.filter(customer=alice.customer).latest("created_at")
    assert newest != alice
    assert newest.messages.get().body_text == "別の件で質問です。"


def test_a_sticker_becomes_a_stamp_placeholder(line):
    deliver(line, said(line, ALICE, "ありがとうございました！"))
    deliver(line, sticker(line, ALICE))

    line_messages_consume()

    inquiry = Inquiry.objects.get()
    assert [m.body_text for m in inquiry.messages.all()] == [
        "ありがとうございました！",
        "[スタンプ]",
    ]


def test_a_sticker_alone_opens_an_inquiry_titled_by_its_placeholder(line):
    deliver(line, sticker(line, BOB))

    line_messages_consume()

    assert Inquiry.objects.get().subject == "[スタンプ]"


def test_consuming_twice_or_a_redelivered_webhook_adds_nothing(line):
    event = said(line, ALICE, "届いていますか？")
    deliver(line, event)
    assert line_messages_consume() == 1

    redelivery = {**event, "deliveryContext": {"isRedelivery": True}}
    deliver(line, redelivery)

    assert line_messages_consume() == 0
    assert LineWebhookEvent.objects.count() == 1
    assert InquiryMessage.objects.count() == 1


def test_other_events_open_no_inquiry(line):
    deliver(line, follow_event(ALICE, reply_token=line.issue_reply_token(ALICE)))

    assert line_messages_consume() == 0
    assert not Inquiry.objects.exists()
    assert ChannelIdentity.objects.get().external_id == ALICE


def test_a_blank_message_is_set_aside_and_does_not_hold_up_the_others(line):
    deliver(line, said(line, ALICE, "\u3000"), said(line, BOB, "在庫はありますか？"))

    assert line_messages_consume() == 1

    blank = LineWebhookEvent.objects.get(user_id=ALICE)
    assert blank.processed_at is None
    assert blank.error.startswith("ValidationError: {'body_text'")
    assert Inquiry.objects.get().messages.get().body_text == "在庫はありますか？"
    assert line_messages_consume() == 0  # not tried again and again


# --------------------------------------------------------------------------
# Answers: Reply API while the token is fresh, push after


@pytest.fixture
def acknowledgement():
    return AutoAcknowledgement.objects.create(
        channel="line",
        body="お問い合わせを受け付けました（{{ inquiry.reference }}）。担当者よりご連絡します。",
    )


def test_the_acknowledgement_goes_out_by_the_reply_api_with_the_events_token(line, acknowledgement):
    event = said(line, ALICE, "返品したいのですが。")
    deliver(line, event)

    line_messages_consume()
    send = Send.objects.get()
    assert send.content["reply_token"] == event["replyToken"]
    dispatch_all()

    inquiry = Inquiry.objects.get()
    assert [r.endpoint for r in line.accepted_requests] == ["reply"]
    assert line.texts_for(ALICE) == [
        f"お問い合わせを受け付けました（{inquiry.reference}）。担当者よりご連絡します。"
    ]
    assert Delivery.objects.get().status == "sent"
    # the token works once: it is used up
    assert inquiry.messages.get(kind="inbound").line_reply_token == ""
    # an acknowledgement is no reply by a person
    inquiry.refresh_from_db()
    assert inquiry.first_replied_at is None

    # A follow-up message in the same inquiry gets no second acknowledgement
    deliver(line, said(line, ALICE, "注文番号は12345です。"))
    line_messages_consume()
    assert Send.objects.count() == 1


def test_a_message_consumed_after_its_token_expired_is_acknowledged_by_push(line, acknowledgement):
    # The worker was down: the event is consumed two minutes late
    deliver(line, said(line, ALICE, "返品したいのですが。", seconds_ago=120))

    line_messages_consume()
    dispatch_all()

    message = Inquiry.objects.get().messages.get(kind="inbound")
    assert timezone.now() - message.created_at > timedelta(minutes=2)  # when it was written
    assert "reply_token" not in Send.objects.get().content
    assert [r.endpoint for r in line.accepted_requests] == ["push"]
    assert len(line.texts_for(ALICE)) == 1


def test_an_agent_reply_uses_a_fresh_token_and_pushes_once_it_is_stale(line, colleague):
    deliver(line, said(line, ALICE, "ギフト包装はできますか？"))
    line_messages_consume()
    inquiry = Inquiry.objects.get()

    inquiry_reply(inquiry=inquiry, body="はい、承ります。", actor=colleague)
    dispatch_all()
    assert [r.endpoint for r in line.accepted_requests] == ["reply"]

    # The customer writes again; the agent answers after the token went stale
    deliver(line, said(line, ALICE, "のし紙もお願いできますか？"))
    line_messages_consume()
    later = inquiry.messages.get(body_text="のし紙もお願いできますか？")
    assert later.line_reply_token
    InquiryMessage.objects.filter(pk=later.pk).update(
        created_at=timezone.now() - timedelta(minutes=2)
    )
    inquiry_reply(inquiry=inquiry, body="のし紙も承ります。", actor=colleague)
    dispatch_all()

    assert [r.endpoint for r in line.accepted_requests] == ["reply", "push"]
    assert line.texts_for(ALICE) == ["はい、承ります。", "のし紙も承ります。"]
    inquiry.refresh_from_db()
    assert inquiry.first_replied_at is not None


def test_an_agent_reply_whose_answer_was_lost_is_not_pushed_and_the_page_says_so(
    line, colleague, client
):
    deliver(line, said(line, ALICE, "在庫はありますか？"))
    line_messages_consume()
    inquiry = Inquiry.objects.get()
    inquiry_reply(inquiry=inquiry, body="はい、ございます。", actor=colleague)
    line.drop_next_responses(1, endpoint="reply")  # LINE took it; the answer never came

    dispatch_all()
    dispatch_all()

    assert [r.endpoint for r in line.requests] == ["reply"]
    assert line.texts_for(ALICE) == ["はい、ございます。"]  # once
    assert Delivery.objects.get().status == "unknown"
    client.force_login(colleague)
    page = client.get(reverse("admin:tickets_inquiry_change", args=[inquiry.pk]))
    assert "お客様に届いたか確認できません" in page.content.decode()


def test_the_author_of_a_reply_whose_answer_was_lost_is_told_it_may_have_arrived(
    line, colleague, client, smtp
):
    # given: an agent's LINE reply that LINE took without its answer coming back
    deliver(line, said(line, ALICE, "在庫はありますか？"))
    line_messages_consume()
    inquiry = Inquiry.objects.get()
    reply = inquiry_reply(inquiry=inquiry, body="はい、ございます。", actor=colleague)
    line.drop_next_responses(1, endpoint="reply")
    dispatch_all()
    assert Delivery.objects.get().status == "unknown"
    # when: the SLA tick takes in the outcome and mails the notice
    reply_outcomes_settle()
    User.objects.filter(pk=colleague.pk).update(email="sato@shop.example")
    assert staff_notifications_email() == 1
    # then: neither the notice nor the timeline says it did not arrive (the
    # customer has it: an agent told so would send it twice)
    (notice,) = StaffNotification.objects.filter(user=colleague)
    assert notice.key == str(reply.pk)
    (mail,) = smtp.received
    subject, body = mail.message["Subject"], mail.message.get_content()
    assert "届きませんでした" not in subject + body
    assert "届いたか分かりません" in subject and "もう一度送る前に" in body
    client.force_login(colleague)
    page = client.get(reverse("admin:tickets_inquiry_change", args=[inquiry.pk]))
    assert "返信が届きませんでした" not in page.content.decode()
    assert "返信が届いたか不明" in page.content.decode()
