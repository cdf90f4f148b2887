"""Reads shared by the admin pages: who else replied since a message, and
who may be assigned an inquiry."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from core.roles import AGENT, MARKETER
from tests.tickets import factories
from tickets.models import AutoAcknowledgement
from tickets.selectors import assignable_staff, inquiry_messages_after, replies_by_others
from tickets.services import (
    inquiry_auto_acknowledge,
    inquiry_inbound_add,
    inquiry_note_add,
    inquiry_reply,
)

pytestmark = pytest.mark.django_db


def test_replies_by_others_leave_out_mine_notes_automatic_and_older_ones(
    owner, colleague, django_assert_num_queries
):
    # given: messages of every kind, before and after the one `owner` saw
    AutoAcknowledgement.objects.create(channel="email", body="受付しました")
    inquiry = factories.inquiry()
    older = inquiry_reply(inquiry=inquiry, body="以前の回答", actor=colleague)
    inquiry_auto_acknowledge(inquiry=inquiry)
    inquiry_inbound_add(inquiry=inquiry, body_text="まだですか")
    inquiry_note_add(inquiry=inquiry, body="確認中", actor=colleague)
    inquiry_reply(inquiry=inquiry, body="店長の回答", actor=owner)
    theirs = [
        inquiry_reply(inquiry=inquiry, body=f"佐藤の回答 {n}", actor=colleague) for n in range(3)
    ]
    # when: one query, however many messages, authors included
    with django_assert_num_queries(1):
        newer = list(inquiry_messages_after(inquiry, message_id=older.pk))
        names = [m.author.last_name for m in replies_by_others(newer, user=owner)]
    # then
    assert len(newer) == 7
    assert [m.pk for m in replies_by_others(newer, user=owner)] == [m.pk for m in theirs]
    assert names == ["佐藤"] * 3
    assert [m.body_text for m in replies_by_others(newer, user=colleague)] == ["店長の回答"]


def test_assignable_staff_are_active_agents_managers_and_superusers(
    owner, colleague, outsider, django_user_model, django_assert_num_queries
):
    root = django_user_model.objects.create_superuser("root", last_name="管理")
    marketer = django_user_model.objects.create_user("marketer", is_staff=True)
    marketer.groups.add(Group.objects.get(name=MARKETER))
    gone = django_user_model.objects.create_user("gone", is_staff=True, is_active=False)
    gone.groups.add(Group.objects.get(name=AGENT))
    not_staff = django_user_model.objects.create_user("not-staff")
    not_staff.groups.add(Group.objects.get(name=AGENT))
    # in the agent and the manager group at once: listed once
    colleague.groups.add(*owner.groups.all())
    with django_assert_num_queries(1):
        staff = list(assignable_staff())
    # by family name (佐藤, 店長, 管理), then given name and login
    assert staff == sorted(
        [colleague, root, owner], key=lambda u: (u.last_name, u.first_name, u.username)
    )
