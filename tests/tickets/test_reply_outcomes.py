"""The replies' final outcome (tickets.services.reply_outcomes): a reply the
server refuses, or whose outcome stays unknown, reopens the clock it had
stopped, at its original deadline; the watch tells once."""

from datetime import timedelta

import pytest
from django.utils import timezone

from outreach import ledger
from outreach.dispatch import send_dispatch
from tests.tickets import factories
from tests.tickets.test_sla import HOUR, targets, write  # noqa: F401 (targets: fixture)
from tickets.models import (
    Inquiry,
    InquiryEvent,
    OutboundState,
    SlaState,
    StaffNotification,
)
from tickets.services import inquiry_assign, inquiry_reply, sla_watch
from tickets.services.reply_outcomes import reply_outcomes_settle
from tickets.tasks import sla_watch_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def fast_worker(settings):
    settings.QUIET_HOURS_START = settings.QUIET_HOURS_END = 0
    settings.EMAIL_RATE = 10_000


def reply_and_send(inquiry, *, actor, body="ご不便をおかけしております。"):
    """A person's reply, sent by the worker's own code to the SMTP server."""
    reply = inquiry_reply(inquiry=inquiry, body=body, actor=actor)
    send_dispatch(send_id=reply.delivery.send_id)
    reply.refresh_from_db()
    return reply


def test_a_first_reply_the_server_refuses_reopens_the_clock_at_its_original_deadline(
    smtp, fast_worker, colleague
):
    # given: a reply in time to an address the mail server refuses
    inquiry = factories.inquiry(received_at=timezone.now() - timedelta(hours=2))
    due = inquiry.first_reply_due_at
    smtp.refuse(inquiry.customer.email)
    reply = reply_and_send(inquiry, actor=colleague)
    assert reply.delivery.status == "failed"
    inquiry.refresh_from_db()
    assert inquiry.first_replied_at is not None  # stopped when handed over
    # when: the SLA tick runs
    sla_watch_task()
    # then: the reply is failed, the clock runs again to the same deadline
    reply.refresh_from_db()
    inquiry.refresh_from_db()
    assert reply.outbound_state == OutboundState.FAILED
    assert inquiry.first_replied_at is None and inquiry.first_reply_due_at == due
    assert inquiry.sla_state == SlaState.ON_TRACK
    kinds = InquiryEvent.objects.filter(inquiry=inquiry).values_list("kind", "old", "new")
    assert list(kinds.filter(kind__in=["reply_failed", "clock_reopened", "sla"])) == [
        ("sla", "on_track", "met"),
        ("reply_failed", "", ""),
        ("clock_reopened", "", ""),
        ("sla", "met", "on_track"),
    ]
    notices = StaffNotification.objects.filter(kind="reply_failed")
    assert list(notices.values_list("user__username", "inquiry", "key")) == [
        ("colleague", inquiry.pk, str(reply.pk))
    ]
    # and a second tick changes nothing
    sla_watch_task()
    assert InquiryEvent.objects.filter(inquiry=inquiry, kind="reply_failed").count() == 1
    assert notices.count() == 1


def test_a_failed_first_reply_past_its_deadline_breaches_and_the_watch_tells_once(
    smtp, fast_worker, colleague, owner, watch_path
):
    inquiry = factories.inquiry(received_at=timezone.now() - timedelta(hours=23))
    inquiry_assign(inquiry=inquiry, assignee=colleague, actor=owner)
    smtp.refuse(inquiry.customer.email)
    reply_and_send(inquiry, actor=colleague)
    assert reply_outcomes_settle() == {"sent": 0, "failed": 1, "reopened": 1}
    late = inquiry.first_reply_due_at + timedelta(minutes=1)
    assert sla_watch(now=late) == {"at_risk": 0, "breached": 1}
    assert sla_watch(now=late) == {"at_risk": 0, "breached": 0}
    inquiry.refresh_from_db()
    assert inquiry.sla_state == SlaState.BREACHED and inquiry.first_replied_at is None
    breached = StaffNotification.objects.filter(inquiry=inquiry, kind="breached")
    assert sorted(breached.values_list("user__username", flat=True)) == ["colleague", "owner"]


def test_the_clock_stops_at_the_first_reply_that_reached_the_customer(smtp, fast_worker, colleague):
    # given: a first reply refused, then (the address fixed) a second one sent
    inquiry = factories.inquiry(received_at=timezone.now() - timedelta(hours=2))
    smtp.refuse(inquiry.customer.email)
    first = reply_and_send(inquiry, actor=colleague)
    smtp.handler.permanent_for.clear()
    second = reply_and_send(inquiry, actor=colleague, body="再送いたします。")
    assert (first.delivery.status, second.delivery.status) == ("failed", "sent")
    # when
    assert reply_outcomes_settle() == {"sent": 1, "failed": 1, "reopened": 0}
    # then: answered when the second reply went out, in time
    inquiry.refresh_from_db()
    second.refresh_from_db()
    assert second.outbound_state == OutboundState.SENT
    assert inquiry.first_replied_at == second.delivery.created_at
    assert inquiry.sla_state == SlaState.MET


def test_a_later_reply_that_fails_leaves_the_stopped_clock_alone(smtp, fast_worker, colleague):
    inquiry = factories.inquiry(received_at=timezone.now() - timedelta(hours=2))
    reply_and_send(inquiry, actor=colleague)
    inquiry.refresh_from_db()
    stopped_at = inquiry.first_replied_at
    smtp.refuse(inquiry.customer.email)
    reply_and_send(inquiry, actor=colleague, body="追加のご案内です。")
    assert reply_outcomes_settle() == {"sent": 1, "failed": 1, "reopened": 0}
    inquiry.refresh_from_db()
    assert inquiry.first_replied_at == stopped_at and inquiry.sla_state == SlaState.MET


def test_a_first_reply_whose_outcome_stays_unknown_reopens_the_clock(colleague, settings):
    # given: the worker's only attempt ended in doubt (a timeout), and it gave up
    settings.DELIVERY_MAX_ATTEMPTS = 1
    inquiry = factories.inquiry(received_at=timezone.now() - timedelta(hours=2))
    reply = inquiry_reply(inquiry=inquiry, body="確認いたします。", actor=colleague)
    now = timezone.now()
    rows = ledger.delivery_claim_batch(send=reply.delivery.send, limit=10, now=now)
    ledger.delivery_mark_retry(
        rows, error="TimeoutError", now=now, in_doubt=True, lease=ledger.Lease(rows)
    )
    reply.delivery.refresh_from_db()
    assert reply.delivery.status == "unknown"
    # when / then
    assert reply_outcomes_settle() == {"sent": 0, "failed": 1, "reopened": 1}
    inquiry.refresh_from_db()
    assert inquiry.first_replied_at is None and inquiry.sla_state == SlaState.ON_TRACK


def test_replies_that_failed_are_taken_in_batch_by_batch(smtp, fast_worker, colleague, monkeypatch):
    monkeypatch.setattr("tickets.services.reply_outcomes.OUTCOME_BATCH", 2)
    inquiries = [factories.inquiry() for _ in range(3)]
    for inquiry in inquiries:
        smtp.refuse(inquiry.customer.email)
        reply_and_send(inquiry, actor=colleague)
    assert reply_outcomes_settle() == {"sent": 0, "failed": 3, "reopened": 3}
    assert reply_outcomes_settle() == {"sent": 0, "failed": 0, "reopened": 0}
    assert not Inquiry.objects.filter(first_replied_at__isnull=False).exists()


@pytest.mark.usefixtures("fast_worker")
def test_a_next_reply_the_server_refuses_reopens_the_next_reply_clock(smtp, colleague, targets):  # noqa: F811
    # given: a first reply that arrived, then the customer wrote again
    inquiry = factories.inquiry(received_at=timezone.now() - HOUR)
    reply_and_send(inquiry, actor=colleague)
    inquiry = write(inquiry)
    due = inquiry.next_reply_due_at
    # when: the next reply is refused by the customer's mail server
    smtp.refuse(inquiry.customer.email)
    reply_and_send(inquiry, actor=colleague)
    inquiry.refresh_from_db()
    assert inquiry.next_reply_state == SlaState.MET  # stopped when handed over
    sla_watch_task()
    # then: the next reply is owed again, by the same deadline
    inquiry.refresh_from_db()
    assert inquiry.next_replied_at is None and inquiry.next_reply_due_at == due
    assert inquiry.next_reply_state == SlaState.ON_TRACK
    assert inquiry.first_replied_at is not None  # the first reply did arrive
    events = InquiryEvent.objects.filter(inquiry=inquiry, kind="sla_next_reply")
    assert list(events.values_list("old", "new")) == [("on_track", "met"), ("met", "on_track")]
