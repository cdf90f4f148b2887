"""The emergency broadcast through the REAL worker (`manage.py qcluster`,
tests/worker.py) into the in-process SMTP server: it starts at once,
progress reaches 100 %, and a pause holds and a cancel stops it, with the
ledger matching the mail the server holds."""

from __future__ import annotations

import time

import pytest

from crisis.services.broadcasts import (
    broadcast_cancel,
    broadcast_pause,
    broadcast_resume,
    broadcast_send,
)
from crm import services as crm
from crm.models import ChannelIdentity, Customer
from outreach.admin.deliveries import progress_data
from outreach.ledger import PENDING
from outreach.models import Delivery, DeliveryStatus, Send, SendStatus, SkipReason
from outreach.selectors import send_progress
from tests.crisis.broadcasting import broadcast_template, incident
from tests.outreach.audience import consented_customers
from tests.outreach.test_worker_faults import smtp_recipients, wait_until_done

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def rakuten_customers(count: int) -> list[Customer]:
    """`count` customers who opted in to email, known on Rakuten."""
    customers = consented_customers(count, line=False)
    ChannelIdentity.objects.bulk_create(
        ChannelIdentity(customer=c, channel="rakuten", external_id=f"rakuten-{c.pk}")
        for c in customers
    )
    return customers


def wait_for(condition, *, timeout: float, worker, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout}s\n{worker.log_tail()}")
        time.sleep(0.05)


def sent_count(send) -> int:
    return Delivery.objects.filter(send=send, status=DeliveryStatus.SENT).count()


def test_the_broadcast_goes_out_at_once_and_progress_reaches_100(cluster, smtp_server, owner):
    reachable = rakuten_customers(30)
    claimant = rakuten_customers(1)[0]
    crm.customer_claimant_set(customer=claimant, reason="暴言が続く", actor=None)
    cluster.start()
    outage = incident(actor=owner, channel="rakuten")
    began = time.monotonic()
    sent = broadcast_send(
        incident=outage, channel="email", template=broadcast_template(), actor=owner
    )
    took = wait_until_done(sent.send, timeout=60, worker=cluster)
    progress = progress_data(send_progress(sent.send), status=sent.send.status)
    assert progress["percent"] == 100
    assert {(item["reason"], item["count"]) for item in progress["by_reason"]} == {
        (SkipReason.CLAIMANT, 1)
    }
    assert smtp_recipients(smtp_server) == {c.email for c in reachable}
    assert len(smtp_server.received) == 30
    wait_for(
        lambda: Send.objects.get(pk=sent.send_id).status == SendStatus.COMPLETED,
        timeout=10,
        worker=cluster,
        what="send completed",
    )
    # no launch delay: the worker took it up at once (the queue, not a minute's tick)
    assert time.monotonic() - began < 30, took


def test_pause_holds_resume_goes_on_and_cancel_stops_the_broadcast(cluster, smtp_server, owner):
    rakuten_customers(400)
    smtp_server.handler.delay = 0.03  # ~10 s of mail: time to pause mid-way
    cluster.env["EMAIL_BATCH_SIZE"] = "10"
    cluster.start()
    outage = incident(actor=owner, channel="rakuten")
    sent = broadcast_send(
        incident=outage, channel="email", template=broadcast_template(), actor=owner
    )
    send = sent.send
    wait_for(lambda: sent_count(send) >= 20, timeout=60, worker=cluster, what="first mail")

    # when the manager pauses, the batches in hand finish and nothing more is claimed
    broadcast_pause(incident_send=sent, actor=owner)
    wait_for(
        lambda: not Delivery.objects.filter(send=send, status=DeliveryStatus.SENDING).exists(),
        timeout=30,
        worker=cluster,
        what="batches in hand finished",
    )
    held = sent_count(send)
    time.sleep(2)
    assert sent_count(send) == held < 400
    assert len(smtp_server.received) == held

    # resume: sending goes on
    broadcast_resume(incident_send=sent, actor=owner)
    wait_for(lambda: sent_count(send) > held + 20, timeout=60, worker=cluster, what="resumed")

    # cancel: what is not sent yet never goes out
    broadcast_cancel(incident_send=sent, actor=owner)
    wait_for(
        lambda: not Delivery.objects.filter(send=send, status__in=PENDING).exists(),
        timeout=30,
        worker=cluster,
        what="cancel settled",
    )
    time.sleep(1)
    final = send_progress(send)
    assert final.percent == 100
    delivered = final.by_status.get(DeliveryStatus.SENT, 0)
    assert 0 < delivered < 400
    assert final.by_reason.get(SkipReason.CANCELLED, 0) > 0
    assert delivered + final.by_status.get("skipped", 0) + final.by_status.get("unknown", 0) == 400
    assert len(smtp_server.received) == delivered  # the ledger is what the server holds
    assert len(smtp_recipients(smtp_server)) == delivered  # each once
    send.refresh_from_db()
    assert send.status == SendStatus.CANCELLED
