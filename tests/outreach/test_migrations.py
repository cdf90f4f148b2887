"""Data migrations of the outreach app, run on the test database."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from outreach import ledger
from outreach.models import Delivery, MulticastRequest, Send
from tests.migrating import migrate
from tests.outreach.audience import consented_customers

BEFORE = ("outreach", "0006_delivery_customer_unconstrained")
MULTICAST_REQUESTS = ("outreach", "0007_multicast_request")


@pytest.mark.django_db(transaction=True)
def test_multicasts_in_flight_before_0007_become_open_requests_with_their_keys():
    customers = consented_customers(7, email=False)
    now = timezone.now()
    old = migrate(BEFORE)
    try:
        Template = old.get_model("outreach", "MessageTemplate")
        OldSend = old.get_model("outreach", "Send")
        OldDelivery = old.get_model("outreach", "Delivery")
        same = Template.objects.create(
            name="一斉", channel="line", purpose="marketing", line_messages=["x"], is_personal=False
        )
        personal = Template.objects.create(
            name="個別", channel="line", purpose="marketing", line_messages=["y"]
        )
        multicast = OldSend.objects.create(
            kind="campaign", channel="line", purpose="marketing", template=same
        )
        push = OldSend.objects.create(
            kind="campaign", channel="line", purpose="marketing", template=personal
        )
        in_flight, retrying, pushed = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

        def row(send, customer, **fields):
            return OldDelivery.objects.create(
                send=send, customer_id=customer.pk, channel="line", **fields
            ).pk

        lease = now + timedelta(seconds=30)
        flying = [
            row(
                multicast,
                c,
                status="sending",
                retry_key=in_flight,
                attempts=1,
                lease_expires_at=lease,
            )
            for c in customers[:3]
        ]
        waiting = [
            row(
                multicast,
                c,
                status="queued",
                retry_key=retrying,
                attempts=2,
                next_attempt_at=now - timedelta(seconds=1),
            )
            for c in customers[3:5]
        ]
        fresh = row(multicast, customers[5], status="queued")
        push_row = row(
            push,
            customers[6],
            status="sending",
            retry_key=pushed,
            attempts=1,
            lease_expires_at=lease,
        )
    finally:
        migrate()

    requests = {r.retry_key: r for r in MulticastRequest.objects.all()}
    assert set(requests) == {in_flight, retrying}
    assert requests[in_flight].delivery_ids == flying
    assert requests[in_flight].next_attempt_at == lease
    assert requests[retrying].delivery_ids == waiting
    assert requests[retrying].attempts == 2
    assert all(r.settled_at is None and r.lease_expires_at is None for r in requests.values())
    assert set(
        Delivery.objects.filter(pk__in=flying + waiting).values_list("status", "lease_expires_at")
    ) == {("queued", None)}
    assert Delivery.objects.get(pk=push_row).status == "sending"  # a push keeps its own key

    # the new claims re-send each group with its key, and the fresh row on its own
    send = Send.objects.get(pk=multicast.pk)
    first = ledger.delivery_claim_batch(send=send, limit=500, now=now, retry_key_per="batch")
    assert [r.pk for r in first] == waiting and {r.retry_key for r in first} == {retrying}
    assert {r.attempts for r in first} == {3}
    after_lease = lease + timedelta(seconds=1)
    second = ledger.delivery_claim_batch(
        send=send, limit=500, now=after_lease, retry_key_per="batch"
    )
    assert [r.pk for r in second] == flying and {r.retry_key for r in second} == {in_flight}
    third = ledger.delivery_claim_batch(
        send=send, limit=500, now=after_lease, retry_key_per="batch"
    )
    assert [r.pk for r in third] == [fresh]


@pytest.mark.django_db(transaction=True)
def test_line_rows_waiting_to_retry_a_request_are_in_doubt_after_0008():
    customers = consented_customers(4, email=False)
    old = migrate(MULTICAST_REQUESTS)
    try:
        OldSend = old.get_model("outreach", "Send")
        OldDelivery = old.get_model("outreach", "Delivery")
        send = OldSend.objects.create(
            kind="campaign", channel="line", purpose="marketing", content={"line": ["x"]}
        )

        def row(customer, **fields):
            return OldDelivery.objects.create(
                send=send, customer_id=customer.pk, channel="line", **fields
            ).pk

        retrying = row(customers[0], status="queued", retry_key=uuid.uuid4(), attempts=1)
        deferred = row(customers[1], status="queued", retry_key=uuid.uuid4(), attempts=0)
        fresh = row(customers[2], status="queued")
        sent = row(customers[3], status="sent", retry_key=uuid.uuid4(), attempts=1)
    finally:
        migrate()
    doubt = dict(Delivery.objects.values_list("pk", "in_doubt"))
    assert doubt == {retrying: True, deferred: False, fresh: False, sent: False}
