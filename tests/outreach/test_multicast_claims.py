"""Claims of LINE multicasts: one MulticastRequest row a claim, the rows
written once, with their outcome."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm import services as crm_services
from crm.models import Customer
from outreach import ledger, services
from outreach.models import Delivery, MessageTemplate, MulticastRequest, Send
from tests.concurrency import at_once
from tests.outreach.audience import consented_customers

pytestmark = pytest.mark.django_db


def multicast_send(count: int) -> Send:
    """A LINE marketing send of one identical message to `count` followers."""
    consented_customers(count, email=False)
    template = services.template_save(
        template=MessageTemplate(
            name="一斉", channel="line", purpose="marketing", line_messages=["お知らせ"]
        )
    )
    send = services.send_create(
        kind="campaign", channel="line", purpose="marketing", template=template
    )
    services.deliveries_snapshot(send=send, audience=Customer.objects.all(), now=timezone.now())
    return send


def claim(send: Send, now, limit: int = 500, **kwargs) -> list[ledger.Claimed]:
    return ledger.delivery_claim_batch(
        send=send, limit=limit, now=now, retry_key_per="batch", **kwargs
    )


def test_a_claim_writes_its_request_and_none_of_its_rows():
    send = multicast_send(30)
    now = timezone.now()
    with CaptureQueriesContext(connection) as queries:
        rows = claim(send, now, limit=20)
    assert not [q for q in queries if q["sql"].startswith('UPDATE "outreach_delivery"')]
    request = MulticastRequest.objects.get()
    assert request.delivery_ids == [row.pk for row in rows] == sorted(request.delivery_ids)
    assert len(rows) == 20
    assert request.last_delivery_id == rows[-1].pk
    assert request.attempts == 1 and request.settled_at is None
    assert {(r.retry_key, r.attempts, r.lease, r.request_id) for r in rows} == {
        (request.retry_key, 1, request.lease_expires_at, request.pk)
    }
    # the rows are untouched until their outcome
    assert set(Delivery.objects.values_list("status", "attempts", "retry_key")) == {
        ("queued", 0, None)
    }
    # the next claim starts past the last row of the first
    assert [row.pk for row in claim(send, now)] == sorted(
        Delivery.objects.exclude(pk__in=request.delivery_ids).values_list("pk", flat=True)
    )


def test_the_outcome_writes_the_rows_once_with_the_requests_key_and_settles_it():
    send = multicast_send(3)
    now = timezone.now()
    rows = claim(send, now)
    lease = ledger.Lease(rows)
    ledger.delivery_mark_sent(rows, now=now, provider_id="req-1")
    lease.close(now)
    request = MulticastRequest.objects.get()
    assert request.settled_at == now and request.lease_expires_at is None
    assert set(Delivery.objects.values_list("status", "attempts", "retry_key")) == {
        ("sent", 1, request.retry_key)
    }
    assert claim(send, now + timedelta(hours=1)) == []  # settled: never again


def test_a_retry_releases_the_request_and_its_next_claim_is_the_same_group_in_doubt():
    send = multicast_send(4)
    now = timezone.now()
    rows = claim(send, now)
    lease = ledger.Lease(rows)
    ledger.delivery_mark_retry(rows, error="LINE 500", now=now, delay=60, lease=lease)
    lease.close(now)  # rescheduled: closing leaves it open
    request = MulticastRequest.objects.get()
    assert request.settled_at is None and request.lease_expires_at is None
    assert request.next_attempt_at == now + timedelta(seconds=60)
    assert set(Delivery.objects.values_list("status", "attempts", "last_error")) == {
        ("queued", 1, "LINE 500")
    }
    assert claim(send, now + timedelta(seconds=59)) == []  # not yet due; no fresh rows left
    again = claim(send, now + timedelta(seconds=61))
    assert [row.pk for row in again] == [row.pk for row in rows]
    assert {(row.retry_key, row.attempts) for row in again} == {(request.retry_key, 2)}
    assert MulticastRequest.objects.count() == 1


def test_a_deferred_multicast_gets_its_attempt_back():
    send = multicast_send(2)
    now = timezone.now()
    rows = claim(send, now)
    lease = ledger.Lease(rows)
    ledger.delivery_mark_deferred(rows, error="rate limited", now=now, lease=lease)
    assert MulticastRequest.objects.get().attempts == 0
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {0}
    later = claim(send, now + timedelta(hours=1))
    assert {row.attempts for row in later} == {1}  # a first attempt again: checked as fresh


def test_a_worker_that_lost_its_request_writes_nothing_but_sent():
    send = multicast_send(3)
    now = timezone.now()
    slow = claim(send, now, lease_seconds=30)
    slow_lease = ledger.Lease(slow, seconds=30, now_fn=lambda: now + timedelta(seconds=40))
    # its lease ran out; another worker takes the request, in doubt
    taken = claim(send, now + timedelta(seconds=31), lease_seconds=30)
    assert [row.attempts for row in taken] == [2, 2, 2]
    ledger.delivery_mark_failed(slow, error="LINE 400", now=now, lease=slow_lease)
    slow_lease.close(now)
    assert set(Delivery.objects.values_list("status", flat=True)) == {"queued"}
    slow_lease.renew()
    assert not slow_lease.held(slow[0].pk)
    # the other worker's outcome stands, and settles the request
    taken_lease = ledger.Lease(taken)
    ledger.delivery_mark_failed(taken, error="LINE 400", now=now, lease=taken_lease)
    taken_lease.close(now)
    assert set(Delivery.objects.values_list("status", flat=True)) == {"failed"}
    assert MulticastRequest.objects.get().settled_at is not None


def test_a_row_passed_by_while_not_due_is_claimed_once_the_fresh_rows_are_gone():
    send = multicast_send(5)
    now = timezone.now()
    ids = list(Delivery.objects.order_by("pk").values_list("pk", flat=True))
    Delivery.objects.filter(pk=ids[1]).update(next_attempt_at=now + timedelta(hours=1))
    first = claim(send, now)
    assert [row.pk for row in first] == [ids[0], *ids[2:]]
    ledger.delivery_mark_sent(first, now=now, provider_id="r1")
    ledger.Lease(first).close(now)
    assert claim(send, now) == []  # not due yet
    late = claim(send, now + timedelta(hours=2))
    assert [row.pk for row in late] == [ids[1]]
    assert MulticastRequest.objects.count() == 2


def test_a_row_its_request_settled_without_is_not_lost():
    # given a request in doubt whose member's customer was deleted meanwhile
    # (the worker drops it and settles the request)...
    send = multicast_send(3)
    now = timezone.now()
    rows = claim(send, now)
    dropped = rows[1]
    sent = [rows[0], rows[2]]
    ledger.delivery_mark_sent(sent, now=now, provider_id="r1")
    ledger.Lease(rows).close(now)
    # ...the row still queued is taken again, by a request of its own
    again = claim(send, now)
    assert [row.pk for row in again] == [dropped.pk]
    assert again[0].retry_key != rows[0].retry_key


def test_cancel_and_unsubscribe_leave_the_rows_of_an_open_request():
    send = multicast_send(6)
    now = timezone.now()
    held = claim(send, now, limit=3)
    customer = Customer.objects.get(pk=held[0].customer_id)
    crm_services.consent_withdraw(customer=customer, channel="line", source="line")
    rest = Delivery.objects.exclude(pk__in=[row.pk for row in held])
    assert set(Delivery.objects.filter(pk=held[0].pk).values_list("status", flat=True)) == {
        "queued"
    }
    outsider = Customer.objects.get(pk=rest.order_by("pk").first().customer_id)
    crm_services.consent_withdraw(customer=outsider, channel="line", source="line")
    assert Delivery.objects.get(send=send, customer=outsider).skip_reason == "unsubscribed"
    Send.objects.filter(pk=send.pk).update(status="cancelled")
    assert services.send_settle_cancelled(send) == 2
    assert Counter(Delivery.objects.values_list("status", flat=True)) == {
        "queued": 3,
        "skipped": 3,
    }


def test_a_paused_send_makes_no_request():
    send = multicast_send(2)
    Send.objects.filter(pk=send.pk).update(status="paused")
    assert claim(send, timezone.now()) == []
    assert not MulticastRequest.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_workers_claiming_at_once_never_share_a_row():
    send = multicast_send(1000)
    now = timezone.now()

    def work() -> None:
        while rows := claim(send, now, limit=37):
            lease = ledger.Lease(rows)
            ledger.delivery_mark_sent(rows, now=now, provider_id="x")
            lease.close(now)

    assert at_once(work, 4) == []
    named = Counter(
        pk for ids in MulticastRequest.objects.values_list("delivery_ids", flat=True) for pk in ids
    )
    assert set(named.values()) == {1}
    assert len(named) == 1000
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


class Held(threading.Thread):
    """A claim in another connection, its transaction kept open until
    `release()`: what a worker is doing between its claim's statements and
    its commit."""

    def __init__(self, send: Send, now, **kwargs) -> None:
        super().__init__()
        self.send, self.now, self.kwargs = send, now, kwargs
        self.claimed = threading.Event()
        self._release = threading.Event()
        self.rows: list[ledger.Claimed] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        from django.db import transaction

        try:
            with transaction.atomic():
                self.rows = claim(self.send, self.now, **self.kwargs)
                self.claimed.set()
                assert self._release.wait(10)
        except BaseException as exc:  # reported in the test's thread
            self.error = exc
        finally:
            self.claimed.set()
            connection.close()

    def release(self) -> None:
        self._release.set()
        self.join(10)
        assert self.error is None


def in_thread(function, *args, **kwargs) -> threading.Thread:
    """Run `function` in another connection; `.done` is set when it returns."""

    def run() -> None:
        try:
            function(*args, **kwargs)
        finally:
            done.set()
            connection.close()

    done = threading.Event()
    thread = threading.Thread(target=run)
    thread.done = done
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_an_unsubscribe_waits_for_a_claim_in_progress_and_leaves_its_rows():
    send = multicast_send(4)
    held = Held(send, timezone.now(), limit=2)
    held.start()
    held.claimed.wait(10)
    customer = Customer.objects.get(pk=held.rows[0].customer_id)
    unsubscribe = in_thread(
        crm_services.consent_withdraw, customer=customer, channel="line", source="line"
    )
    # it waits for the claim's commit (before it, the request is not visible)...
    assert not unsubscribe.done.wait(0.5)
    held.release()
    assert unsubscribe.done.wait(10)
    # ...and then leaves the row of the request alone: it may have gone out
    assert Delivery.objects.get(pk=held.rows[0].pk).status == "queued"


@pytest.mark.django_db(transaction=True)
def test_a_worker_whose_request_is_being_taken_over_writes_no_outcome():
    send = multicast_send(3)
    now = timezone.now()
    slow = claim(send, now, lease_seconds=30)
    slow_lease = ledger.Lease(slow, seconds=30)
    # another worker is taking the request over (the lease ran out)...
    takeover = Held(send, now + timedelta(seconds=31), lease_seconds=30)
    takeover.start()
    takeover.claimed.wait(10)
    assert [row.attempts for row in takeover.rows] == [2, 2, 2]
    # ...as the slow worker records a failure: it waits for the takeover
    failing = in_thread(
        ledger.delivery_mark_failed, slow, error="LINE 400", now=now, lease=slow_lease
    )
    assert not failing.done.wait(0.5)
    takeover.release()
    assert failing.done.wait(10)
    # and writes nothing: the request is the other worker's now
    assert set(Delivery.objects.values_list("status", flat=True)) == {"queued"}


@pytest.mark.django_db(transaction=True)
def test_two_workers_never_hold_one_request():
    send = multicast_send(3)
    now = timezone.now()
    claim(send, now, lease_seconds=30)  # its worker dies
    later = now + timedelta(seconds=31)
    first = Held(send, later, lease_seconds=30)
    first.start()
    first.claimed.wait(10)
    assert len(first.rows) == 3
    assert claim(send, later) == []  # the request is being taken; no fresh rows
    first.release()
    assert claim(send, later) == []  # taken, under a lease that has not run out
    assert MulticastRequest.objects.get().attempts == 2
