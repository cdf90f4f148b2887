"""The SLA watch's notices, and the first-reply clock against the replies'
final outcome."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.tickets import factories
from tickets.models import SlaPolicy, SlaState, StaffNotification
from tickets.services import inquiry_assign, inquiry_priority_set, sla_watch
from tickets.services.sla import sla_notice_key

pytestmark = pytest.mark.django_db


def test_a_moved_deadline_gets_its_own_at_risk_and_breach_notices_once(
    colleague, owner, watch_path
):
    # given: an inquiry at risk of its 24-hour deadline, its assignee warned
    SlaPolicy.objects.create(
        name="低: 48時間", priority="low", first_reply_minutes=48 * 60, at_risk_minutes=240
    )
    inquiry = factories.inquiry(received_at=timezone.now() - timedelta(hours=21))
    inquiry_assign(inquiry=inquiry, assignee=colleague, actor=owner)
    first_due = inquiry.first_reply_due_at
    assert sla_watch() == {"at_risk": 1, "breached": 0}
    # when: a lower priority gives it 48 hours, back on track
    inquiry = inquiry_priority_set(inquiry=inquiry, priority="low", actor=owner)
    assert inquiry.sla_state == SlaState.ON_TRACK
    second_due = inquiry.first_reply_due_at
    assert second_due - first_due == timedelta(hours=24)
    # then: the new deadline warns again, and breaches, each once
    at_risk_again = second_due - timedelta(hours=3)
    assert sla_watch(now=at_risk_again) == {"at_risk": 1, "breached": 0}
    assert sla_watch(now=at_risk_again + timedelta(minutes=1)) == {"at_risk": 0, "breached": 0}
    late = second_due + timedelta(minutes=1)
    assert sla_watch(now=late) == {"at_risk": 0, "breached": 1}
    assert sla_watch(now=late + timedelta(minutes=1)) == {"at_risk": 0, "breached": 0}
    notes = StaffNotification.objects.filter(inquiry=inquiry).exclude(kind="assigned")
    assert sorted(notes.values_list("user__username", "kind", "key")) == sorted(
        [
            ("colleague", "at_risk", sla_notice_key(first_due)),
            ("colleague", "at_risk", sla_notice_key(second_due)),
            ("colleague", "breached", sla_notice_key(second_due)),
            ("owner", "breached", sla_notice_key(second_due)),
        ]
    )


def test_the_notice_key_is_the_deadline_to_the_microsecond_in_utc():
    due = timezone.datetime(2026, 12, 5, 9, 30, 0, 1234, tzinfo=timezone.get_current_timezone())
    assert sla_notice_key(due) == "2026-12-05T00:30:00.001234"
