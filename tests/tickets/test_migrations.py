"""Data migrations of the tickets app, run on the test database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.migrating import migrate
from tests.tickets import factories
from tickets.models import Inquiry
from tickets.services import InboundMessage, inquiry_inbound_add, inquiry_reply, inquiry_status_set

BEFORE = ("tickets", "0018_merge_inquiry_merge_split")


@pytest.mark.django_db(transaction=True)
def test_existing_inquiries_owe_a_next_reply_only_where_the_customer_wrote_after_a_reply(
    colleague,
):
    # given: inquiries from before the next-reply clock
    now = timezone.now()
    owes = factories.inquiry(received_at=now - timedelta(hours=3))
    inquiry_reply(inquiry=owes, body="確認いたします。", actor=colleague)
    wrote_at = timezone.now()
    inquiry_inbound_add(
        inquiry=owes, message=InboundMessage(body_text="まだですか", received_at=wrote_at)
    )
    inquiry_inbound_add(
        inquiry=owes,
        message=InboundMessage(
            body_text="至急お願いします", received_at=wrote_at + timedelta(seconds=1)
        ),
    )
    answered = factories.inquiry(received_at=now - timedelta(hours=3))
    inquiry_reply(inquiry=answered, body="確認いたします。", actor=colleague)
    unanswered = factories.inquiry(received_at=now - timedelta(hours=3))
    closed = factories.inquiry(received_at=now - timedelta(days=3))
    inquiry_reply(inquiry=closed, body="確認いたします。", actor=colleague)
    inquiry_inbound_add(
        inquiry=closed, message=InboundMessage(body_text="ありがとう", received_at=timezone.now())
    )
    inquiry_status_set(inquiry=closed, status="closed", actor=colleague)
    # when: the migration runs on them
    migrate(BEFORE)
    migrate()
    # then: only the one the customer wrote to after the reply owes one, from their first message
    owes, answered, unanswered, closed = (
        Inquiry.objects.get(pk=inquiry.pk) for inquiry in (owes, answered, unanswered, closed)
    )
    assert owes.next_reply_since == wrote_at
    assert owes.next_reply_due_at == wrote_at + timedelta(hours=24)
    assert owes.next_reply_at_risk_at == wrote_at + timedelta(hours=20)
    assert owes.next_reply_state == "on_track" and owes.next_replied_at is None
    for inquiry in (answered, unanswered, closed):
        assert inquiry.next_reply_since is None and inquiry.next_reply_due_at is None
        assert inquiry.next_reply_state == ""
