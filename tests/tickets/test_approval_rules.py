"""Reply approval rules (tickets/services/approval_rules.py): set and
removed through the service, from the admin too, each change in the audit
trail."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext

from core.models import AuditAction, AuditEntry
from tickets.models import ReplyApprovalRule
from tickets.services import reply_approval_rule_delete, reply_approval_rule_save

pytestmark = pytest.mark.django_db


def ja(text: str) -> str:
    with translation.override("ja"):
        return gettext(text)


def _audit() -> list[tuple[str, str, str]]:
    return [
        (entry.action, entry.user.get_username(), entry.what)
        for entry in AuditEntry.objects.order_by("id")
    ]


def test_a_new_rule_records_who_set_it_in_the_rule_and_the_audit_trail(owner):
    group = Group.objects.create(name="研修中")

    rule = reply_approval_rule_save(rule=ReplyApprovalRule(group=group), actor=owner)

    assert rule.created_by == owner
    expected = ja("Replies by %(group)s now wait for a manager's approval.") % {"group": "研修中"}
    assert _audit() == [(AuditAction.CHANGE, "owner", expected)]


def test_a_rule_set_in_the_admin_goes_through_the_service(client, owner):
    group = Group.objects.create(name="研修中")
    client.force_login(owner)

    response = client.post(
        reverse("admin:tickets_replyapprovalrule_add"),
        {"group": group.pk},
        HTTP_ACCEPT_LANGUAGE="ja",
    )

    assert response.status_code == 302
    assert ReplyApprovalRule.objects.get().created_by == owner
    expected = ja("Replies by %(group)s now wait for a manager's approval.") % {"group": "研修中"}
    assert _audit() == [(AuditAction.CHANGE, "owner", expected)]


def test_a_rule_removed_in_the_admin_is_recorded_in_the_audit_trail(client, owner):
    rule = ReplyApprovalRule.objects.create(group=Group.objects.create(name="研修中"))
    other = ReplyApprovalRule.objects.create(group=Group.objects.create(name="派遣"))
    client.force_login(owner)

    response = client.post(
        reverse("admin:tickets_replyapprovalrule_delete", args=[rule.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    response = client.post(
        reverse("admin:tickets_replyapprovalrule_changelist"),
        {"action": "delete_selected", "_selected_action": [other.pk], "post": "yes"},
    )
    assert response.status_code == 302

    assert not ReplyApprovalRule.objects.exists()
    removed = ja("Replies by %(group)s no longer wait for approval.")
    assert [what for _action, _user, what in _audit()] == [
        removed % {"group": "研修中"},
        removed % {"group": "派遣"},
    ]


def test_removing_a_rule_lets_the_groups_replies_go_out_unchecked(owner):
    rule = reply_approval_rule_save(
        rule=ReplyApprovalRule(group=Group.objects.create(name="研修中")), actor=owner
    )

    reply_approval_rule_delete(rule=rule, actor=owner)

    assert not ReplyApprovalRule.objects.exists()
    assert len(_audit()) == 2
