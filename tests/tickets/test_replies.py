"""Replies (tickets/services/replies.py): an agent who answers an inquiry
nobody has takes it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from core.roles import AGENT
from tests.tickets import factories
from tickets.models import InquiryEventKind, InquiryStatus, ReplyApprovalRule
from tickets.services import inquiry_assign, inquiry_auto_acknowledge, inquiry_reply

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
