"""Replies (tickets/services/replies.py): an agent who answers an inquiry
nobody has takes it."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth.models import Group
from django.db import connection, transaction

from core.roles import AGENT
from tests.tickets import factories
from tickets.models import (
    InquiryEventKind,
    InquiryMessage,
    InquiryStatus,
    MessageKind,
    ReplyApprovalRule,
)
from tickets.services import (
    ReplyCollision,
    inquiry_assign,
    inquiry_auto_acknowledge,
    inquiry_reply,
)

pytestmark = pytest.mark.django_db


def _assignments(inquiry) -> list[tuple[str, str, str]]:
    return [
        (event.old, event.new, event.actor.get_username() if event.actor else "")
        for event in inquiry.events.filter(kind=InquiryEventKind.ASSIGNED)
    ]


def test_a_reply_to_an_unassigned_inquiry_assigns_it_to_its_author(colleague):
    inquiry = factories.inquiry()
    assert inquiry.assignee is None

    inquiry_reply(inquiry=inquiry, body="確認いたします。", actor=colleague)

    inquiry.refresh_from_db()
    assert inquiry.assignee == colleague
    assert _assignments(inquiry) == [("", "colleague", "colleague")]
    assert inquiry.status == InquiryStatus.WAITING_CUSTOMER


def test_a_reply_leaves_an_assigned_inquiry_with_its_assignee(colleague, owner):
    inquiry = factories.inquiry()
    inquiry_assign(inquiry=inquiry, assignee=owner, actor=owner)

    inquiry_reply(inquiry=inquiry, body="代わりにお答えします。", actor=colleague)

    inquiry.refresh_from_db()
    assert inquiry.assignee == owner
    assert _assignments(inquiry) == [("", "owner", "owner")]


def test_a_reply_held_for_approval_assigns_its_author_too(django_user_model, owner):
    trainee = django_user_model.objects.create_user("trainee", is_staff=True, last_name="新人")
    group = Group.objects.create(name="研修中")
    ReplyApprovalRule.objects.create(group=group, created_by=owner)
    trainee.groups.add(group, Group.objects.get(name=AGENT))
    inquiry = factories.inquiry()

    inquiry_reply(inquiry=inquiry, body="確認いたします。", actor=trainee)

    inquiry.refresh_from_db()
    assert inquiry.assignee == trainee


def test_an_automatic_acknowledgement_assigns_nobody():
    from tickets.models import AutoAcknowledgement

    AutoAcknowledgement.objects.create(channel="email", body="受付しました")
    inquiry = factories.inquiry()

    assert inquiry_auto_acknowledge(inquiry=inquiry) is not None

    inquiry.refresh_from_db()
    assert inquiry.assignee is None and _assignments(inquiry) == []


def test_a_reply_by_someone_who_cannot_be_assigned_assigns_nobody(django_user_model):
    # a staff account in no group (not an agent nor a manager) writing through the API
    helper = django_user_model.objects.create_user("helper", is_staff=True)
    inquiry = factories.inquiry()

    inquiry_reply(inquiry=inquiry, body="確認いたします。", actor=helper)

    inquiry.refresh_from_db()
    assert inquiry.assignee is None


# --- The collision check ------------------------------------------------------------


def _latest_id(inquiry) -> int:
    return inquiry.messages.order_by("-pk").values_list("pk", flat=True).first()


def test_a_reply_by_someone_else_after_the_message_seen_refuses_the_send(colleague, owner):
    inquiry = factories.inquiry()
    seen = _latest_id(inquiry)
    first = inquiry_reply(inquiry=inquiry, body="佐藤が先に回答しました。", actor=colleague)

    with pytest.raises(ReplyCollision) as refused:
        inquiry_reply(
            inquiry=inquiry, body="店長からの回答です。", actor=owner, seen_message_id=seen
        )

    assert [reply.pk for reply in refused.value.replies] == [first.pk]
    assert not inquiry.messages.filter(author=owner).exists()
    # the agent has read it: their reply goes too
    inquiry_reply(
        inquiry=inquiry,
        body="店長からの回答です。",
        actor=owner,
        seen_message_id=seen,
        confirm_collision=True,
    )
    assert inquiry.messages.filter(author=owner, kind=MessageKind.OUTBOUND).count() == 1


def test_ones_own_replies_notes_and_acknowledgements_are_no_collision(colleague, owner):
    inquiry = factories.inquiry()
    seen = _latest_id(inquiry)
    inquiry_reply(inquiry=inquiry, body="まず確認します。", actor=owner)
    inquiry_reply(inquiry=inquiry, body="受け付けました。", actor=None, is_automatic=True)

    reply = inquiry_reply(inquiry=inquiry, body="続きです。", actor=owner, seen_message_id=seen)

    assert reply.author == owner


@pytest.mark.django_db(transaction=True)
def test_two_agents_sending_at_once_after_the_same_message_send_one_reply(colleague, owner):
    # given: the colleague's reply is written but not yet committed ...
    inquiry = factories.inquiry()
    seen = _latest_id(inquiry)
    written, release = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def colleague_sends() -> None:
        try:
            with transaction.atomic():
                inquiry_reply(
                    inquiry=inquiry, body="佐藤です。", actor=colleague, seen_message_id=seen
                )
                written.set()
                release.wait(10)
        finally:
            connection.close()

    def owner_sends() -> None:
        try:
            inquiry_reply(inquiry=inquiry, body="店長です。", actor=owner, seen_message_id=seen)
            outcome["owner"] = "sent"
        except ReplyCollision:
            outcome["owner"] = "held"
        finally:
            connection.close()

    first = threading.Thread(target=colleague_sends)
    first.start()
    assert written.wait(10)
    # ... when: the owner sends after the same message meanwhile
    second = threading.Thread(target=owner_sends)
    second.start()
    second.join(1)  # it waits for the inquiry's lock
    release.set()
    first.join(10)
    second.join(10)

    # then: the owner's send is held back; one reply reached the customer
    assert outcome == {"owner": "held"}
    replies = InquiryMessage.objects.filter(inquiry=inquiry, kind=MessageKind.OUTBOUND)
    assert [m.author for m in replies] == [colleague]
