"""Reads shared by the admin pages: who else replied since a message, and
who may be assigned an inquiry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from core.roles import AGENT, MARKETER
from crm.services import customer_claimant_set
from tests.crm import factories as crm_factories
from tests.tickets import factories
from tickets.models import AutoAcknowledgement, Category
from tickets.selectors import (
    assignable_staff,
    claimant_suggestions,
    inquiry_messages_after,
    replies_by_others,
)
from tickets.services import (
    InboundMessage,
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
    inquiry_inbound_add(inquiry=inquiry, message=InboundMessage(body_text="まだですか"))
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


def complaints_make(customer, *, days_ago: tuple[int, ...]) -> list:
    defect = Category.objects.get(code="product_defect")
    now = timezone.now()
    return [
        factories.inquiry(
            customer=customer,
            category=defect,
            subject=f"不良品 {n}",
            received_at=now - timedelta(days=days, minutes=n),
        )
        for n, days in enumerate(days_ago)
    ]


def test_claimant_suggestions_list_three_recent_complaints_of_unflagged_customers(owner):
    # given: the default window of 90 days and 3 complaints
    two = crm_factories.customer()
    complaints_make(two, days_ago=(1, 2))
    three = crm_factories.customer()
    newest, *_ = complaints_make(three, days_ago=(1, 30, 89))
    factories.inquiry(customer=three)  # not a complaint: not counted
    one_too_old = crm_factories.customer()
    complaints_make(one_too_old, days_ago=(1, 2, 91))
    flagged = crm_factories.customer()
    complaints_make(flagged, days_ago=(1, 2, 3))
    customer_claimant_set(customer=flagged, reason="電話で暴言", actor=owner)

    rows = list(claimant_suggestions(now=timezone.now()))

    assert [row.pk for row in rows] == [three.pk]
    assert rows[0].complaint_count == 3
    assert rows[0].latest_complaint_id == newest.pk
    assert rows[0].latest_complaint_reference == newest.reference
    assert rows[0].latest_complaint_subject == "不良品 0"


def test_claimant_suggestions_follow_the_settings(settings):
    settings.CLAIMANT_SUGGEST_COMPLAINTS = 2
    settings.CLAIMANT_SUGGEST_DAYS = 10
    two = crm_factories.customer()
    complaints_make(two, days_ago=(1, 9))
    older = crm_factories.customer()
    complaints_make(older, days_ago=(1, 11))

    assert [row.pk for row in claimant_suggestions(now=timezone.now())] == [two.pk]


def test_claimant_suggestions_are_one_query_however_many_rows(django_assert_num_queries):
    customers = [crm_factories.customer() for _ in range(4)]
    for n, customer in enumerate(customers):
        complaints_make(customer, days_ago=tuple(range(1, 4 + n)))

    with django_assert_num_queries(1):
        rows = [
            (row.pk, row.complaint_count, row.latest_complaint_reference)
            for row in claimant_suggestions(now=timezone.now())
        ]

    assert [(pk, count) for pk, count, _ in rows] == [
        (customer.pk, 3 + n) for n, customer in reversed(list(enumerate(customers)))
    ]
