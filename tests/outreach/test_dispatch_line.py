"""LINE campaigns through the real worker code, the official SDK and the
local LINE fake."""

from __future__ import annotations

import queue
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm import services as crm
from crm.models import Customer
from outreach import ledger, services
from outreach.dispatch import send_dispatch
from outreach.linefake import LineFake
from outreach.models import (
    Campaign,
    Delivery,
    MessageTemplate,
    MulticastRequest,
    Segment,
    SegmentKind,
    Send,
)
from outreach.selectors import send_progress
from outreach.tasks import sends_tick
from tests.concurrency import at_once
from tests.crm import factories
from tests.outreach.audience import consented_customers, line_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_worker(settings):
    settings.QUIET_HOURS_START = settings.QUIET_HOURS_END = 0
    settings.DELIVERY_BACKOFF_SECONDS = 0


def follower(index: int, *, consent: bool = True) -> Customer:
    customer, _ = crm.customer_upsert(channel="line", external_id=line_user(index))
    if consent:
        crm.consent_record(customer=customer, channel="line", action="opt_in", source="line")
    return customer


def line_template(messages: list[str], name: str = "LINEセール") -> MessageTemplate:
    return services.template_save(
        template=MessageTemplate(
            name=name, channel="line", purpose="marketing", line_messages=messages
        )
    )


def line_send(template: MessageTemplate) -> Send:
    send = services.send_create(
        kind="campaign", channel="line", purpose="marketing", template=template
    )
    services.deliveries_snapshot(send=send, audience=Customer.objects.all(), now=timezone.now())
    return send


def dispatch_until_done(send: Send, rounds: int = 30, **kwargs) -> None:
    """Dispatch again and again, a virtual five minutes apart (backoffs pass)."""
    start = kwargs.pop("now_fn", timezone.now)()
    for index in range(rounds):
        moment = start + timedelta(minutes=5 * index)
        send_dispatch(send_id=send.pk, now_fn=lambda moment=moment: moment, **kwargs)
        if not Delivery.objects.filter(send=send, status__in=["queued", "sending"]).exists():
            return
    raise AssertionError("the send did not finish")


def test_identical_content_goes_by_multicast_each_follower_once(line):
    followers = [follower(i) for i in range(7)]
    not_consented = follower(99, consent=False)
    email_only = factories.customer()
    crm.consent_record(customer=email_only, channel="line", action="opt_in", source="api")
    send = line_send(
        line_template(["{{ shop.name }}の冬のセールが始まりました🎉", "本日23:59まで"])
    )

    dispatch_until_done(send)

    assert [r.endpoint for r in line.accepted_requests] == ["multicast"]
    for customer in followers:
        user = customer.identities.get(channel="line").external_id
        assert line.texts_for(user) == [
            "まどぐち雑貨店の冬のセールが始まりました🎉",
            "本日23:59まで",
        ]
    assert line.texts_for(line_user(99)) == []
    rows = {d.customer_id: (d.status, d.skip_reason) for d in Delivery.objects.filter(send=send)}
    assert rows[not_consented.pk] == ("skipped", "no_consent")
    assert rows[email_only.pk] == ("skipped", "no_address")
    sent = Delivery.objects.filter(send=send, status="sent")
    assert sent.count() == 7
    assert len(set(sent.values_list("retry_key", flat=True))) == 1  # one request, one key
    assert sent.first().provider_message_id == line.accepted_requests[0].request_id


def test_more_than_500_recipients_are_split_into_multicasts_of_at_most_500(line, settings):
    consented_customers(1203, email=False)
    send = line_send(line_template(["一斉配信のテスト"]))
    dispatch_until_done(send)
    sizes = sorted(len(r.recipients) for r in line.accepted_requests)
    assert sizes == [203, 500, 500]
    assert len({d.user_id for d in line.deliveries}) == 1203


def test_personal_content_goes_by_push(line):
    for i in range(3):
        customer = follower(i)
        crm.customer_update(customer=customer, family_name=f"佐藤{i}")
    send = line_send(
        line_template(["{{ customer.family_name }}様、いつもありがとうございます"], name="個別")
    )
    dispatch_until_done(send)
    assert [r.endpoint for r in line.accepted_requests] == ["push"] * 3
    assert line.texts_for(line_user(1)) == ["佐藤1様、いつもありがとうございます"]
    assert (
        Delivery.objects.filter(send=send, status="sent").values("retry_key").distinct().count()
        == 3
    )


def test_a_text_too_long_once_personalised_fails_that_recipient_before_any_request(line):
    # given a template that fits LINE's 5,000 units as written (4,980)
    template = line_template(["あ" * 4960 + "{{ customer.name }}様"], name="長文")
    short = follower(1)
    crm.customer_update(customer=short, family_name="山田", given_name="花")
    long = follower(2)
    crm.customer_update(customer=long, family_name="長" * 30, given_name="名" * 10)
    send = line_send(template)

    dispatch_until_done(send)

    # then the short name gets it, the long one (5,002 units) fails with why, unsent
    assert [r.recipients for r in line.accepted_requests] == [(line_user(1),)]
    assert len(line.requests) == 1
    row = Delivery.objects.get(send=send, customer=long)
    assert row.status == "failed" and row.attempts == 1
    assert row.last_error == (
        "1通目のメッセージが差し込み後に5,002文字になり、"
        "LINEの上限5,000文字を超えるため送信しませんでした。"
    )


def test_a_line_test_send_goes_to_the_tester_with_its_first_line_marked(line):
    tester = follower(3, consent=False)
    crm.customer_test_recipient_set(customer=tester, value=True, actor=None)
    crm.customer_update(customer=tester, family_name="検証")
    follower(4)  # a customer: never gets a test
    segment = Segment.objects.create(name="全員", kind=SegmentKind.CUSTOM, rule={})
    campaign = Campaign.objects.create(
        name="テスト",
        channel="line",
        template=line_template(["{{ customer.family_name }}様、セールです", "二通目"]),
        segment=segment,
    )

    send = services.campaign_test_send(campaign=campaign, customer=tester)
    dispatch_until_done(send)

    assert line.texts_for(line_user(3)) == ["【テスト】検証様、セールです", "二通目"]
    assert line.texts_for(line_user(4)) == []
    assert Delivery.objects.get(send=send).status == "sent" and send.kind == "test"


def test_429_and_500_then_every_message_arrives_once(line):
    for i in range(12):
        follower(i)
    send = line_send(line_template(["障害テスト"]))
    line.fail_next(2, status=429)
    line.fail_next(2, status=500)
    dispatch_until_done(send)
    assert sorted(d.user_id for d in line.deliveries) == sorted(line_user(i) for i in range(12))
    assert line.statuses("multicast")[429] >= 1
    assert set(Delivery.objects.filter(send=send).values_list("status", flat=True)) == {"sent"}


def test_a_lost_answer_is_retried_with_the_same_key_and_never_sent_twice(line):
    for i in range(5):
        follower(i)
    send = line_send(line_template(["応答が消えたとき"]))
    line.drop_next_responses(1)  # LINE accepts, the answer never arrives
    dispatch_until_done(send)
    assert len(line.deliveries) == 5  # each once
    assert line.statuses("multicast")[409] == 1
    row = Delivery.objects.filter(send=send).first()
    assert row.status == "sent" and row.attempts == 2
    assert row.provider_message_id == line.accepted_requests[0].request_id


def test_a_push_that_lost_its_answer_is_not_duplicated_either(line):
    for i in range(3):
        crm.customer_update(customer=follower(i), given_name=f"花子{i}")
    send = line_send(line_template(["{{ customer.given_name }}さんへ"], name="push-lost"))
    line.drop_next_responses(1, endpoint="push")
    dispatch_until_done(send)
    assert sorted(d.user_id for d in line.deliveries) == [line_user(i) for i in range(3)]


def test_an_in_doubt_group_is_resent_whole_even_if_a_member_opts_out_meanwhile(line):
    for i in range(4):
        follower(i)
    send = line_send(line_template(["グループ再送"]))
    line.drop_next_responses(1)
    send_dispatch(send_id=send.pk, time_budget=0.001)  # one batch at most
    # the request went out but the worker never heard; a member unfollows now
    crm.consent_withdraw(customer=Customer.objects.first(), channel="line", source="line")
    dispatch_until_done(send)
    assert len(line.deliveries) == 4
    assert set(Delivery.objects.filter(send=send).values_list("status", flat=True)) == {"sent"}


def test_other_4xx_fails_permanently_with_lines_message(line, settings):
    follower(1)
    send = line_send(line_template(["x"]))
    settings.LINE_CHANNEL_ACCESS_TOKEN = "wrong-token"
    dispatch_until_done(send)
    row = Delivery.objects.get(send=send)
    assert row.status == "failed"
    assert "LINE 401" in row.last_error and "access token" in row.last_error


def test_expired_lease_of_a_killed_worker_is_resent_with_its_key(line):
    from outreach.ledger import delivery_claim_batch

    for i in range(3):
        follower(i)
    send = line_send(line_template(["リース切れ"]))
    now = timezone.now()
    claimed = delivery_claim_batch(
        send=send, limit=500, now=now, retry_key_per="batch", lease_seconds=30
    )
    key = claimed[0].retry_key
    dispatch_until_done(send, now_fn=lambda: now + timedelta(seconds=31))
    assert [r.retry_key for r in line.accepted_requests] == [str(key)]
    assert len(line.deliveries) == 3


def line_campaign(messages: list[str], name: str = "LINEセール") -> Campaign:
    """A LINE campaign to the followers (prospects: no order yet), launched."""
    segment, _ = Segment.objects.get_or_create(
        name="見込み客", kind=SegmentKind.LIFECYCLE, lifecycle_segment="prospect"
    )
    campaign = Campaign.objects.create(
        name=name, channel="line", template=line_template(messages, name=name), segment=segment
    )
    return services.campaign_launch(campaign=campaign)


def test_a_cancel_settles_a_multicast_waiting_for_its_retry_as_unknown(line, settings):
    settings.DELIVERY_BACKOFF_SECONDS = 60
    for i in range(4):
        follower(i)
    campaign = line_campaign(["中止のテスト"])
    line.fail_next(1, status=500)  # may have been accepted, as far as the worker knows
    send_dispatch(send_id=campaign.send_id)
    request = MulticastRequest.objects.get()
    assert (request.settled_at, request.lease_expires_at) == (None, None)  # waits for its retry

    services.campaign_cancel(campaign=campaign)

    request.refresh_from_db()
    assert request.settled_at is not None
    rows = Delivery.objects.filter(send=campaign.send)
    assert set(rows.values_list("status", "retry_key", "attempts", "last_error")) == {
        ("unknown", request.retry_key, 1, services.CANCELLED_IN_DOUBT)
    }
    assert send_progress(campaign.send).pending == 0
    assert line.deliveries == [] and len(line.requests) == 1


def test_a_cancel_skips_a_multicast_that_line_refused_with_429(line, settings):
    settings.DELIVERY_BACKOFF_SECONDS = 60
    for i in range(2):
        follower(i)
    campaign = line_campaign(["混雑中の中止"])
    line.fail_next(1, status=429)  # LINE took nothing
    send_dispatch(send_id=campaign.send_id)
    services.campaign_cancel(campaign=campaign)
    assert set(Delivery.objects.values_list("status", "skip_reason")) == {("skipped", "cancelled")}
    assert MulticastRequest.objects.get().settled_at is not None


def test_a_cancel_settles_a_multicast_whose_worker_died_during_the_request(line):
    for i in range(3):
        follower(i)
    campaign = line_campaign(["送信中に停止"])
    past = timezone.now() - timedelta(minutes=10)
    ledger.delivery_claim_batch(
        send=campaign.send, limit=500, now=past, retry_key_per="batch", lease_seconds=60
    )  # the request went out (or not) and the worker was killed: the lease ran out
    services.campaign_cancel(campaign=campaign)
    assert set(Delivery.objects.values_list("status", "attempts")) == {("unknown", 1)}
    assert MulticastRequest.objects.get().settled_at is not None


def test_a_cancel_settles_pushes_by_what_line_may_have_taken(line, settings):
    settings.DELIVERY_BACKOFF_SECONDS = 60
    for i in range(3):
        crm.customer_update(customer=follower(i), given_name=f"花子{i}")
    campaign = line_campaign(["{{ customer.given_name }}さん、中止のテスト"], name="push")
    line.fail_next(1, status=500, endpoint="push")  # the first push: in doubt
    send_dispatch(send_id=campaign.send_id)
    services.campaign_cancel(campaign=campaign)
    rows = Delivery.objects.filter(send=campaign.send)
    assert sorted(rows.values_list("status", flat=True)) == ["sent", "sent", "unknown"]
    doubt = rows.get(status="unknown")
    assert doubt.retry_key is not None and doubt.last_error == services.CANCELLED_IN_DOUBT
    assert len(line.deliveries) == 2


def test_a_cancel_skips_pushes_deferred_behind_a_429(line, settings):
    settings.DELIVERY_BACKOFF_SECONDS = 60
    for i in range(3):
        crm.customer_update(customer=follower(i), given_name=f"太郎{i}")
    campaign = line_campaign(["{{ customer.given_name }}さん"], name="push-429")
    line.fail_next(1, status=429, endpoint="push")  # the rest of the batch is deferred
    send_dispatch(send_id=campaign.send_id)
    rows = Delivery.objects.filter(send=campaign.send)
    assert rows.filter(retry_key__isnull=False, status="queued").count() == 3
    services.campaign_cancel(campaign=campaign)
    assert set(rows.values_list("status", "skip_reason")) == {("skipped", "cancelled")}
    assert line.deliveries == []


def test_a_multicast_in_flight_at_the_cancel_keeps_the_outcome_its_worker_records(line):
    for i in range(3):
        follower(i)
    campaign = line_campaign(["送信中の中止"])
    now = timezone.now()
    rows = ledger.delivery_claim_batch(
        send=campaign.send, limit=500, now=now, retry_key_per="batch"
    )
    lease = ledger.Lease(rows)
    services.campaign_cancel(campaign=campaign)  # while the request is on its way
    assert set(Delivery.objects.values_list("status", flat=True)) == {"queued"}
    ledger.delivery_mark_failed(rows, error="LINE 400: bad request", now=now, lease=lease)
    lease.close(now)
    assert set(Delivery.objects.values_list("status", "last_error")) == {
        ("failed", "LINE 400: bad request")
    }
    assert MulticastRequest.objects.get().settled_at == now


def test_a_multicast_retry_in_flight_at_the_cancel_is_left_to_its_worker(line, settings):
    settings.DELIVERY_BACKOFF_SECONDS = 60
    for i in range(3):
        follower(i)
    campaign = line_campaign(["再送中の中止"])
    line.fail_next(1, status=500)
    send_dispatch(send_id=campaign.send_id)  # in doubt: its rows carry the key now
    later = timezone.now() + timedelta(minutes=5)
    rows = ledger.delivery_claim_batch(
        send=campaign.send, limit=500, now=later, retry_key_per="batch"
    )  # a worker re-sends it...
    lease = ledger.Lease(rows, now_fn=lambda: later)
    services.campaign_cancel(campaign=campaign)  # ...when the cancel comes
    assert set(Delivery.objects.values_list("status", flat=True)) == {"queued"}
    # LINE answers 500 again: the rows wait for a retry that no claim will make
    ledger.delivery_mark_retry(
        rows, error="LINE 500", now=later, in_doubt=True, lease=lease, delay=60
    )
    lease.close(later)
    assert MulticastRequest.objects.get().settled_at is None
    sends_tick()  # the next minute
    assert set(Delivery.objects.values_list("status", "attempts")) == {("unknown", 2)}
    assert MulticastRequest.objects.get().settled_at is not None


@pytest.mark.parametrize("per", ["row", "batch"])
def test_a_takeover_after_a_crash_is_in_doubt_even_if_the_next_attempt_gets_a_429(line, per):
    for i in range(2):
        follower(i)
    campaign = line_campaign(
        ["引き継ぎ"] if per == "batch" else ["{{ customer.name }}様"], name=per
    )
    past = timezone.now() - timedelta(minutes=10)
    # a worker claims and dies during its request: the lease runs out
    ledger.delivery_claim_batch(
        send=campaign.send, limit=500, now=past, retry_key_per=per, lease_seconds=60
    )
    now = timezone.now()
    rows = []  # a push in doubt is claimed on its own, a multicast whole
    while batch := ledger.delivery_claim_batch(
        send=campaign.send, limit=500, now=now, retry_key_per=per
    ):
        rows += batch
    assert len(rows) == 2 and {row.attempts for row in rows} == {2}  # taken over
    # LINE answers the second attempt 429: that one was not taken, the first may have been
    lease = ledger.Lease(rows)
    ledger.delivery_mark_retry(rows, error="LINE 429", now=now, lease=lease, delay=60)
    lease.close(now)
    assert set(Delivery.objects.values_list("status", "in_doubt")) == {("queued", True)}
    services.campaign_cancel(campaign=campaign)
    assert set(Delivery.objects.values_list("status", flat=True)) == {"unknown"}


def test_a_multicast_batch_takes_the_same_queries_for_3_or_300_recipients(
    line, django_assert_num_queries
):
    # given 310 LINE followers, all opted in but one (index 7)
    consented_customers(7, email=False)
    crm.customer_upsert(channel="line", external_id=line_user(7))
    consented_customers(302, email=False)
    template = line_template(["件数に依らないクエリ数"])
    ids = list(Customer.objects.order_by("id").values_list("id", flat=True))

    def sending(size: int) -> Send:
        send = services.send_create(
            kind="campaign", channel="line", purpose="marketing", template=template
        )
        audience = Customer.objects.filter(pk__in=ids[5 : 5 + size])  # index 7 among them
        services.deliveries_snapshot(send=send, audience=audience, now=timezone.now())
        Send.objects.filter(pk=send.pk).update(status="sending")
        return send

    send_dispatch(send_id=sending(1).pk)  # first use: the rate bucket is created

    # when a send of 3 and one of 300 are dispatched (one batch each)
    few_send, many = sending(3), sending(300)
    with CaptureQueriesContext(connection) as few:
        send_dispatch(send_id=few_send.pk)
    # then both take the same queries: none per recipient
    with django_assert_num_queries(len(few.captured_queries)):
        send_dispatch(send_id=many.pk)
    assert len(few.captured_queries) <= 25
    assert Delivery.objects.filter(send=many, status="sent").count() == 299
    assert Delivery.objects.get(send=many, customer_id=ids[7]).skip_reason == "no_consent"
    assert [len(r.recipients) for r in line.accepted_requests] == [1, 2, 299]


@pytest.mark.django_db(transaction=True)
def test_a_429_with_retry_after_holds_every_worker_of_the_channel_for_that_long(line):
    # given a personal LINE send (by push) and an identical one (by multicast)
    for i in range(6):
        crm.customer_update(customer=follower(i), given_name=f"花子{i}")
    pushes = line_send(line_template(["{{ customer.given_name }}さんへ"], name="push-429"))
    multicast = line_send(line_template(["皆さまへのお知らせ"], name="multicast-429"))
    # when LINE answers a push 429 with Retry-After: 2
    line.fail_next(1, status=429, endpoint="push", retry_after=2)
    send_dispatch(send_id=pushes.pk)
    [refused] = line.requests
    assert refused.status == 429
    # and two workers go on at once, one on each send, until all is sent
    sends = queue.SimpleQueue()
    sends.put(pushes.pk)
    sends.put(multicast.pk)

    def work() -> None:
        send_id, deadline = sends.get(), time.monotonic() + 20
        pending = Delivery.objects.filter(send_id=send_id, status__in=["queued", "sending"])
        while pending.exists():
            assert time.monotonic() < deadline, "not done"
            send_dispatch(send_id=send_id)
            time.sleep(0.05)

    assert at_once(work, 2) == []

    # then no request went out on the channel, from either worker, for 2 seconds
    assert Delivery.objects.filter(status="sent").count() == 12
    later = line.requests[1:]
    assert {r.endpoint for r in later} == {"push", "multicast"}
    assert min(r.received_at for r in later) >= refused.received_at + timedelta(seconds=2)


def test_a_429_waits_for_retry_after_when_line_gives_it():
    from outreach.channels.line import RATE_LIMITED_BACKOFF_SECONDS, _retry_after

    assert _retry_after("7") == 7.0
    assert _retry_after(None) == RATE_LIMITED_BACKOFF_SECONDS
    assert _retry_after("Wed, 21 Oct 2026 07:28:00 GMT") == RATE_LIMITED_BACKOFF_SECONDS
    assert _retry_after("-5") == 0.0
    assert _retry_after("nan") == _retry_after("inf") == RATE_LIMITED_BACKOFF_SECONDS


# --- Replies: the Reply API takes no retry key ---------------------------------------


def reply_send(line: LineFake, customer: Customer, *, token: str | None = None) -> Send:
    """An agent's answer to the customer's LINE message, with the event's
    reply token (the fake's, fresh, unless `token` is given)."""
    user = customer.identities.get(channel="line").external_id
    send = services.send_create(
        kind="reply",
        channel="line",
        purpose="transactional",
        content={
            "line_messages": ["お問い合わせありがとうございます。"],
            "reply_token": token or line.issue_reply_token(user),
        },
    )
    services.deliveries_snapshot(
        send=send, audience=Customer.objects.filter(pk=customer.pk), now=timezone.now()
    )
    return send


@pytest.mark.parametrize("fault", ["answer lost", "500"])
def test_a_reply_without_an_answer_is_unknown_and_never_pushed(line, fault):
    customer = follower(1)
    send = reply_send(line, customer)
    if fault == "answer lost":
        line.drop_next_responses(1, endpoint="reply")  # LINE took it, the answer never came
    else:
        line.fail_next(1, status=500, endpoint="reply")

    dispatch_until_done(send)

    assert [r.endpoint for r in line.requests] == ["reply"]
    assert len(line.deliveries) == (1 if fault == "answer lost" else 0)
    row = Delivery.objects.get(send=send)
    assert (row.status, row.in_doubt, row.attempts) == ("unknown", True, 1)
    assert "not sent again" in row.last_error


def test_a_reply_taken_over_from_a_worker_stopped_during_it_is_unknown_not_pushed(line):
    send = reply_send(line, follower(1))
    past = timezone.now() - timedelta(minutes=10)
    # a worker claims the reply and dies during the request: the lease runs out
    ledger.delivery_claim_batch(
        send=send, limit=50, now=past, retry_key_per="row", lease_seconds=60
    )

    dispatch_until_done(send)

    assert line.requests == []
    row = Delivery.objects.get(send=send)
    assert (row.status, row.in_doubt, row.attempts) == ("unknown", True, 2)


def test_a_refused_reply_token_sends_the_answer_once_by_push(line):
    customer = follower(1)
    send = reply_send(line, customer, token="0" * 32)  # used, expired or never issued

    dispatch_until_done(send)

    assert [(r.endpoint, r.status) for r in line.requests] == [("reply", 400), ("push", 200)]
    assert line.texts_for(line_user(1)) == ["お問い合わせありがとうございます。"]
    row = Delivery.objects.get(send=send)
    assert (row.status, row.in_doubt, row.attempts) == ("sent", False, 2)
    assert row.retry_key is not None and line.requests[1].retry_key == str(row.retry_key)


def test_a_reply_refused_with_429_goes_by_push_once_the_wait_is_over(line):
    send = reply_send(line, follower(1))
    line.fail_next(1, status=429, endpoint="reply", retry_after=1)  # LINE took nothing

    dispatch_until_done(send)

    assert [(r.endpoint, r.status) for r in line.requests] == [("reply", 429), ("push", 200)]
    assert line.texts_for(line_user(1)) == ["お問い合わせありがとうございます。"]
    assert Delivery.objects.get(send=send).status == "sent"


def test_a_push_after_a_refused_reply_token_that_loses_its_answer_is_resent_with_its_key(line):
    send = reply_send(line, follower(1), token="0" * 32)
    line.drop_next_responses(1, endpoint="push")

    dispatch_until_done(send)

    assert [(r.endpoint, r.status) for r in line.requests] == [
        ("reply", 400),
        ("push", 200),  # its answer was lost
        ("push", 409),  # the same key: LINE had it already
    ]
    assert len(line.deliveries) == 1
    assert Delivery.objects.get(send=send).status == "sent"
