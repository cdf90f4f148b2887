"""Journey steps through the real worker (`manage.py qcluster`, tests/worker.py):
the schedule is ledger rows, so a cluster stopped between scheduling and
sending loses nothing and sends nothing twice."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.brokers import get_broker

from outreach.ledger import PENDING
from outreach.models import Delivery, Journey
from outreach.tasks import journeys_tick
from tests.outreach.journeys import consented, journey, order
from tests.outreach.test_worker_faults import (  # noqa: F401 (fixtures)
    cluster,
    line,
    message_ids,
    smtp_server,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_steps_scheduled_before_a_worker_restart_go_once_after_it(cluster, smtp_server):  # noqa: F811
    Journey.objects.filter(is_builtin=True).update(active=False)  # only this journey
    thanks = journey("ご購入のお礼", trigger="order_placed", steps=[{"delay_days": 1}])
    step = thanks.steps.get()
    cluster.start()
    # due in a little while: ordered a day ago, less that while
    placed_at = timezone.now() - timedelta(days=1) + timedelta(seconds=30)
    for index in range(20):
        order(consented(email=f"restart{index}@example.jp"), f"W-{index}", ordered_at=placed_at)
    assert Delivery.objects.filter(send_id=step.send_id, status="queued").count() == 20
    assert journeys_tick() == 0  # nothing due yet
    cluster.kill()  # the cluster goes away between scheduling and sending
    due = placed_at + timedelta(days=1)
    time.sleep(max((due - timezone.now()).total_seconds(), 0))
    cluster.start()

    broker = get_broker()
    deadline = time.monotonic() + 120
    while Delivery.objects.filter(send_id=step.send_id, status__in=PENDING).exists():
        assert time.monotonic() < deadline, cluster.log_tail()
        if broker.queue_size() == 0:
            journeys_tick()  # the test plays the every-minute schedule
        time.sleep(0.5)
    journeys_tick()
    time.sleep(1)

    assert Delivery.objects.filter(send_id=step.send_id, status="sent").count() == 20
    sent = message_ids(smtp_server)
    assert len(sent) == 20 and set(sent.values()) == {1}
