"""Email campaigns through the real worker code and a real SMTP server."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from crm import services as crm
from crm.models import Customer
from outreach import services
from outreach.dispatch import send_dispatch
from outreach.models import (
    Campaign,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    MessageTemplate,
    Segment,
    SegmentKind,
    Send,
    SendStatus,
    SkipReason,
)
from tests.crm import factories
from tests.smtp_server import _Handler

pytestmark = pytest.mark.django_db
JST = ZoneInfo("Asia/Tokyo")


@pytest.fixture(autouse=True)
def _fast_worker(settings):
    settings.QUIET_HOURS_START = settings.QUIET_HOURS_END = (
        0  # quiet hours off unless a test sets them
    )
    settings.DELIVERY_BACKOFF_SECONDS = 0
    settings.EMAIL_RATE = 10_000


def email_template(**fields) -> MessageTemplate:
    template = MessageTemplate(
        name=fields.pop("name", "冬のセール"),
        channel="email",
        purpose="marketing",
        subject="{{ customer.name }}様、冬のセールのお知らせ",
        body_text=(
            "{{ customer.family_name }}様\n\nいつもご利用ありがとうございます。\n"
            "冬のセールを開催します。"
        ),
        **fields,
    )
    return services.template_save(template=template)


def consented(**profile) -> Customer:
    customer = factories.customer(**profile)
    factories.order(customer=customer)
    crm.consent_record(customer=customer, channel="email", action="opt_in", source="web_form")
    return customer


def campaign_for(template: MessageTemplate, segment_value: str = "new") -> Campaign:
    segment, _ = Segment.objects.get_or_create(
        name=f"lifecycle {segment_value}",
        kind=SegmentKind.LIFECYCLE,
        lifecycle_segment=segment_value,
    )
    return Campaign.objects.create(
        name="冬のセール", channel=template.channel, template=template, segment=segment
    )


def dispatch_until_done(send: Send, *, rounds: int = 20, **kwargs) -> None:
    for _ in range(rounds):
        send_dispatch(send_id=send.pk, **kwargs)
        if not Delivery.objects.filter(send=send, status__in=["queued", "sending"]).exists():
            return
    raise AssertionError("the send did not finish")


def statuses(send: Send) -> dict[int, tuple[str, str]]:
    return {d.customer_id: (d.status, d.skip_reason) for d in Delivery.objects.filter(send=send)}


def test_each_consented_customer_gets_one_mail_and_the_ledger_says_why_others_got_none(smtp):
    # given customers of every kind in one audience
    ok = consented(email="ok@example.jp")
    no_consent = factories.customer(email="none@example.jp")
    factories.order(customer=no_consent)
    unsubscribed = consented(email="gone@example.jp")
    crm.consent_withdraw(customer=unsubscribed, channel="email", source="unsubscribe")
    claimant = consented(email="angry@example.jp")
    crm.customer_claimant_set(customer=claimant, reason="繰り返しの強い苦情", actor=None)
    amazon_only = consented(
        channel="amazon", external_id="amzn-1", email="x1@marketplace.amazon.co.jp"
    )
    amazon_and_site = consented(channel="amazon", external_id="amzn-2", email="both@example.jp")
    crm.customer_upsert(channel="own_site", external_id="site-2", email="both@example.jp")
    no_address = factories.customer(email="")
    crm.consent_record(customer=no_address, channel="email", action="opt_in", source="api")
    template = email_template()

    # when the send is snapshotted and worked
    send = services.send_create(
        kind="campaign", channel="email", purpose="marketing", template=template
    )
    written = services.deliveries_snapshot(
        send=send, audience=Customer.objects.all(), now=timezone.now()
    )
    assert written == 7
    dispatch_until_done(send)

    # then exactly the eligible ones received one message each
    recipients = sorted(rcpt for r in smtp.received for rcpt in r.rcpt_tos)
    assert recipients == ["both@example.jp", "ok@example.jp"]
    assert statuses(send) == {
        ok.pk: ("sent", ""),
        amazon_and_site.pk: ("sent", ""),
        no_consent.pk: ("skipped", "no_consent"),
        unsubscribed.pk: ("skipped", "unsubscribed"),
        claimant.pk: ("skipped", "claimant"),
        amazon_only.pk: ("skipped", "amazon_only"),
        no_address.pk: ("skipped", "no_address"),
    }
    assert Send.objects.get(pk=send.pk).status == SendStatus.COMPLETED


def test_marketing_mail_parses_and_carries_sender_block_and_one_click_headers(smtp, settings):
    customer = consented(email="hanako@example.jp", family_name="鈴木", given_name="花子")
    template = email_template(body_html="<p>{{ customer.family_name }}様</p><p>セール開催中</p>")
    campaign = services.campaign_launch(campaign=campaign_for(template))
    dispatch_until_done(campaign.send)

    [received] = smtp.received
    message = received.message
    assert message["Subject"] == "鈴木 花子様、冬のセールのお知らせ"
    delivery = Delivery.objects.get(send=campaign.send, customer=customer)
    assert message["Message-ID"] == delivery.provider_message_id
    assert message["Message-ID"].startswith(f"<madoguchi.{campaign.send_id}.{delivery.pk}.")
    unsubscribe = message["List-Unsubscribe"]
    assert unsubscribe.startswith(f"<{settings.SITE_URL}/u/") and unsubscribe.endswith("/>")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for body in (text, html):
        assert settings.SHOP_COMPANY in body
        assert settings.SHOP_POSTAL_ADDRESS in body
        assert settings.SHOP_CONTACT_EMAIL in body
        assert unsubscribe[1:-1] in body
    assert "鈴木様" in text
    assert message.get_content_charset() in (None, "utf-8")


def test_the_one_click_link_in_a_mail_unsubscribes_without_cookie_or_csrf(smtp, client):
    from django.test import Client

    customer = consented(email="oneclick@example.jp")
    campaign = services.campaign_launch(campaign=campaign_for(email_template()))
    dispatch_until_done(campaign.send)
    url = smtp.received[0].message["List-Unsubscribe"][1:-1].removeprefix("http://127.0.0.1:8000")
    response = Client(enforce_csrf_checks=True).post(
        url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    assert not customer.consent_states.get(channel="email").granted


def test_an_unsubscribe_during_the_send_stops_that_customers_queued_row(smtp, settings):
    settings.EMAIL_BATCH_SIZE = 2
    customers = [consented(email=f"c{i}@example.jp") for i in range(6)]
    late = customers[-1]
    campaign = services.campaign_launch(campaign=campaign_for(email_template()))
    calls = []

    def now():
        calls.append(1)
        if len(calls) == 2:  # after the first batch went out
            crm.consent_withdraw(customer=late, channel="email", source="unsubscribe")
        return timezone.now()

    send_dispatch(send_id=campaign.send_id, now_fn=now)
    recipients = {rcpt for r in smtp.received for rcpt in r.rcpt_tos}
    assert len(recipients) == 5 and late.email not in recipients
    assert statuses(campaign.send)[late.pk] == ("skipped", "unsubscribed")


def test_an_opt_out_recorded_elsewhere_is_caught_at_send_time(smtp):
    customer = consented(email="api-optout@example.jp")
    campaign = services.campaign_launch(campaign=campaign_for(email_template()))
    # the store site records the opt-out through the API (crm service only)
    crm.consent_record(customer=customer, channel="email", action="opt_out", source="api")
    dispatch_until_done(campaign.send)
    assert smtp.received == []
    assert statuses(campaign.send)[customer.pk] == ("skipped", "unsubscribed")


def test_a_deleted_customers_rows_go_with_them_and_a_row_left_behind_is_skipped(smtp):
    # given: a send to two customers (one without orders or consent events,
    # which protect a customer from deletion)
    kept, deleted = consented(email="kept@example.jp"), factories.customer(email="gone@example.jp")
    send = services.send_create(
        kind="campaign", channel="email", purpose="marketing", template=email_template()
    )
    services.deliveries_snapshot(send=send, audience=Customer.objects.all(), now=timezone.now())
    # when: one is deleted, and a row outlives its customer (a launch racing
    # a deletion: the ledger has no database constraint on the customer)
    deleted_id = deleted.pk
    deleted.delete()
    assert not Delivery.objects.filter(customer_id=deleted_id).exists()
    orphan = Delivery.objects.create(send=send, customer_id=deleted_id, channel="email")
    dispatch_until_done(send)
    # then
    assert [rcpt for r in smtp.received for rcpt in r.rcpt_tos] == ["kept@example.jp"]
    assert statuses(send) == {kept.pk: ("sent", ""), deleted_id: ("skipped", "gone")}
    assert Delivery.objects.get(pk=orphan.pk).skip_reason == SkipReason.GONE


def test_quiet_hours_defer_marketing_until_morning(smtp, settings):
    settings.QUIET_HOURS_START, settings.QUIET_HOURS_END = 21, 9
    consented(email="night@example.jp")
    campaign = services.campaign_launch(campaign=campaign_for(email_template()))
    night = datetime(2026, 11, 24, 22, 30, tzinfo=JST)

    report = send_dispatch(send_id=campaign.send_id, now_fn=lambda: night)

    morning = datetime(2026, 11, 25, 9, 0, tzinfo=JST)
    assert report.deferred_until == morning
    assert smtp.received == []
    row = Delivery.objects.get(send=campaign.send)
    assert (row.status, row.next_attempt_at) == ("queued", morning)
    # still quiet at 08:59, sent at 09:00
    send_dispatch(send_id=campaign.send_id, now_fn=lambda: morning - timedelta(minutes=1))
    assert smtp.received == []
    send_dispatch(send_id=campaign.send_id, now_fn=lambda: morning)
    assert len(smtp.received) == 1


def test_quiet_hours_leave_a_paused_sends_rows_as_they_are(smtp, settings):
    settings.QUIET_HOURS_START, settings.QUIET_HOURS_END = 21, 9
    consented(email="paused@example.jp")
    campaign = services.campaign_launch(campaign=campaign_for(email_template()))
    services.campaign_pause(campaign=campaign)
    night = datetime(2026, 11, 24, 22, 30, tzinfo=JST)

    send_dispatch(send_id=campaign.send_id, now_fn=lambda: night)

    row = Delivery.objects.get(send=campaign.send)
    assert (row.status, row.next_attempt_at) == ("queued", None)
    assert smtp.received == []


def test_transactional_mail_ignores_quiet_hours_and_needs_no_consent(smtp, settings):
    settings.QUIET_HOURS_START, settings.QUIET_HOURS_END = 21, 9
    customer = factories.customer(email="reply@example.jp")
    send = services.send_create(
        kind="reply",
        channel="email",
        purpose="transactional",
        content={"subject": "Re: 配送について", "body_text": "ご連絡ありがとうございます。"},
    )
    services.deliveries_snapshot(
        send=send, audience=Customer.objects.filter(pk=customer.pk), now=timezone.now()
    )
    send_dispatch(send_id=send.pk, now_fn=lambda: datetime(2026, 11, 24, 23, 0, tzinfo=JST))
    [received] = smtp.received
    assert received.message["Subject"] == "Re: 配送について"
    assert "List-Unsubscribe" not in received.message


def test_pause_holds_between_batches_and_resume_finishes(smtp, settings):
    settings.EMAIL_BATCH_SIZE = 2
    for i in range(6):
        consented(email=f"p{i}@example.jp")
    campaign = services.campaign_launch(campaign=campaign_for(email_template()))
    calls = []

    def now():
        calls.append(1)
        if len(calls) == 2:
            services.campaign_pause(campaign=campaign)
        return timezone.now()

    send_dispatch(send_id=campaign.send_id, now_fn=now)
    assert len(smtp.received) == 2
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.PAUSED
    send_dispatch(send_id=campaign.send_id)  # a paused send does nothing
    assert len(smtp.received) == 2

    services.campaign_resume(campaign=campaign)
    dispatch_until_done(campaign.send)
    assert len(smtp.received) == 6
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.COMPLETED


def test_cancel_holds_between_batches_and_skips_the_rest(smtp, settings):
    settings.EMAIL_BATCH_SIZE = 2
    for i in range(6):
        consented(email=f"x{i}@example.jp")
    campaign = services.campaign_launch(campaign=campaign_for(email_template()))
    calls = []

    def now():
        calls.append(1)
        if len(calls) == 2:
            services.campaign_cancel(campaign=campaign)
        return timezone.now()

    send_dispatch(send_id=campaign.send_id, now_fn=now)
    assert len(smtp.received) == 2
    counts = Delivery.objects.filter(send=campaign.send).values_list("status", "skip_reason")
    assert sorted(counts) == [("sent", "")] * 2 + [("skipped", "cancelled")] * 4


def test_smtp_4xx_then_refused_connections_then_recovery_delivers_every_mail_once(smtp, settings):
    settings.EMAIL_BATCH_SIZE = 3
    settings.DELIVERY_BACKOFF_SECONDS = 60
    for i in range(8):
        consented(email=f"r{i}@example.jp")
    campaign = services.campaign_launch(campaign=campaign_for(email_template()))
    send = campaign.send
    start = timezone.now()

    # the server answers 451 to five messages: they wait for a backoff
    smtp.fail_temporarily(5)
    send_dispatch(send_id=send.pk, now_fn=lambda: start)

    def waiting():
        return list(Delivery.objects.filter(send=send, status="queued"))

    assert len(smtp.received) == 3
    assert len(waiting()) == 5
    assert all("451" in row.last_error and row.next_attempt_at > start for row in waiting())

    # then refuses connections: nothing is lost, no attempt is used up
    smtp.stop()
    later = start + timedelta(minutes=5)
    send_dispatch(send_id=send.pk, now_fn=lambda: later)
    assert len(waiting()) == 5
    assert any("connection failed" in row.last_error for row in waiting())
    assert all(row.attempts == 1 for row in waiting())

    # and recovers: every mail arrives exactly once
    smtp.start()
    dispatch_until_done(send, now_fn=lambda: start + timedelta(minutes=30))
    recipients = sorted(rcpt for r in smtp.received for rcpt in r.rcpt_tos)
    assert recipients == sorted(f"r{i}@example.jp" for i in range(8))
    assert set(Delivery.objects.filter(send=send).values_list("status", flat=True)) == {"sent"}


def test_smtp_5xx_fails_that_recipient_with_the_reason_and_others_go_on(smtp):
    consented(email="good@example.jp")
    bad = consented(email="nobody@example.jp")
    smtp.refuse("nobody@example.jp")
    campaign = services.campaign_launch(campaign=campaign_for(email_template()))
    dispatch_until_done(campaign.send)
    assert [r.rcpt_tos for r in smtp.received] == [["good@example.jp"]]
    failed = Delivery.objects.get(send=campaign.send, customer=bad)
    assert failed.status == DeliveryStatus.FAILED
    assert "550" in failed.last_error and "User unknown" in failed.last_error
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.COMPLETED


def test_rows_of_a_crashed_worker_come_back_after_the_lease(smtp, settings):
    from outreach.ledger import delivery_claim_batch

    consented(email="lease@example.jp")
    campaign = services.campaign_launch(campaign=campaign_for(email_template()))
    now = timezone.now()
    # a worker claims the row, then dies without recording anything
    [claimed] = delivery_claim_batch(send=campaign.send, limit=10, now=now, lease_seconds=60)
    send_dispatch(send_id=campaign.send_id, now_fn=lambda: now + timedelta(seconds=30))
    assert smtp.received == []  # the lease still holds
    send_dispatch(send_id=campaign.send_id, now_fn=lambda: now + timedelta(seconds=61))
    assert len(smtp.received) == 1
    row = Delivery.objects.get(pk=claimed.pk)
    assert (row.status, row.attempts) == ("sent", 2)


class LedgerReadingHandler(_Handler):
    """The test SMTP server's handler, reading from the ledger, as each
    message's data arrives, how many rows are recorded as sent."""

    def __init__(self) -> None:
        super().__init__()
        self.sent_at_data: list[int] = []

    @staticmethod
    def _sent() -> int:
        from django.db import connection

        try:
            return Delivery.objects.filter(status=DeliveryStatus.SENT).count()
        finally:
            connection.close()  # this thread's own connection

    async def handle_DATA(self, server, session, envelope):
        self.sent_at_data.append(await asyncio.to_thread(self._sent))
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.django_db(transaction=True)
def test_each_mail_is_recorded_as_sent_before_the_next_one_goes_out(smtp, settings):
    # given five customers in one batch, and a server that reads the ledger
    # (what a worker's successor would find) as each message arrives
    settings.EMAIL_BATCH_SIZE = 10
    for i in range(5):
        consented(email=f"one-by-one{i}@example.jp")
    smtp.stop()
    smtp.handler = LedgerReadingHandler()
    smtp.start()
    campaign = services.campaign_launch(campaign=campaign_for(email_template()))

    # when the worker sends the batch on one connection
    report = send_dispatch(send_id=campaign.send_id)

    # then every message before the one in progress was already recorded:
    # a crash at any moment would repeat only the message in progress
    assert (report.batches, report.sent) == (1, 5)
    assert smtp.handler.sent_at_data == [0, 1, 2, 3, 4]
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


def test_a_cancel_leaves_a_live_workers_row_to_it_until_its_lease_ends(smtp):
    from outreach.ledger import delivery_claim_batch
    from outreach.tasks import sends_settle_cancelled

    consented(email="held@example.jp")
    consented(email="waiting@example.jp")
    campaign = services.campaign_launch(campaign=campaign_for(email_template()))
    now = timezone.now()
    # a worker holds one row (its SMTP transaction under way), then dies
    [held] = delivery_claim_batch(send=campaign.send, limit=1, now=now, lease_seconds=60)
    services.campaign_cancel(campaign=campaign)
    rows = Delivery.objects.filter(send=campaign.send)
    assert sorted(rows.values_list("status", "skip_reason")) == [
        ("sending", ""),
        ("skipped", "cancelled"),
    ]
    assert sends_settle_cancelled(now + timedelta(seconds=30)) == 0  # still its worker's
    assert sends_settle_cancelled(now + timedelta(seconds=61)) == 1
    row = Delivery.objects.get(pk=held.pk)
    assert (row.status, row.last_error) == ("unknown", services.CANCELLED_IN_DOUBT)
    assert row.lease_expires_at is None


def test_the_tick_settles_a_retry_recorded_after_the_cancel_by_whether_it_was_in_doubt(smtp):
    from outreach.ledger import Lease, delivery_claim_batch, delivery_mark_retry
    from outreach.tasks import sends_tick

    consented(email="lost@example.jp")
    consented(email="greylisted@example.jp")
    campaign = services.campaign_launch(campaign=campaign_for(email_template()))
    now = timezone.now()
    rows = delivery_claim_batch(send=campaign.send, limit=10, now=now)
    lease = Lease(rows)
    services.campaign_cancel(campaign=campaign)  # the worker is mid-batch
    lost, greylisted = sorted(rows, key=lambda row: row.pk)
    # the connection dropped after the data of one; the server said 451 to the other
    delivery_mark_retry([lost], error="SMTPServerDisconnected", now=now, in_doubt=True, lease=lease)
    delivery_mark_retry([greylisted], error="SMTP 451: try later", now=now, lease=lease)
    sends_tick()
    settled = dict(Delivery.objects.values_list("pk", "status"))
    assert settled == {lost.pk: "unknown", greylisted.pk: "skipped"}


def test_giving_up_after_an_attempt_in_doubt_records_unknown_not_failed(smtp, settings):
    from outreach.ledger import Lease, delivery_claim_batch, delivery_mark_retry

    settings.DELIVERY_MAX_ATTEMPTS = 2
    consented(email="doubt@example.jp")
    campaign = services.campaign_launch(campaign=campaign_for(email_template()))
    now = timezone.now()
    first = delivery_claim_batch(send=campaign.send, limit=10, now=now)
    delivery_mark_retry(first, error="timed out", now=now, in_doubt=True, lease=Lease(first))
    later = now + timedelta(hours=1)
    second = delivery_claim_batch(send=campaign.send, limit=10, now=later)
    delivery_mark_retry(second, error="SMTP 451", now=later, lease=Lease(second))
    row = Delivery.objects.get()
    assert (row.status, row.attempts, row.in_doubt) == ("unknown", 2, True)
    assert row.last_error.startswith("SMTP 451 (gave up after 2 attempts)")


def test_a_worker_that_lost_its_lease_leaves_the_rows_to_the_one_that_took_them(settings):
    from outreach.ledger import Lease, delivery_claim_batch, delivery_mark_retry

    consented(email="stale@example.jp")
    campaign = services.campaign_launch(campaign=campaign_for(email_template()))
    now = timezone.now()
    # given a worker that claimed the row and stalled past its lease...
    stale_rows = delivery_claim_batch(send=campaign.send, limit=10, now=now, lease_seconds=60)
    stale = Lease(stale_rows, seconds=60, now_fn=lambda: now)
    # ...and another worker that took the row meanwhile
    later = now + timedelta(seconds=61)
    [taken] = delivery_claim_batch(send=campaign.send, limit=10, now=later, lease_seconds=60)
    fresh = Lease([taken], seconds=60, now_fn=lambda: later)

    # when the stale worker asks before sending, and records an SMTP 451
    stale.renew()
    delivery_mark_retry(stale_rows, error="SMTP 451", now=later, lease=stale)

    # then it no longer holds the row, and the row stays with the other worker
    assert not stale.held(taken.pk)
    row = Delivery.objects.get(pk=taken.pk)
    assert (row.status, row.lease_expires_at, row.last_error) == ("sending", taken.lease, "")
    # while the worker that holds it renews it
    fresh.now_fn = lambda: later + timedelta(seconds=30)
    fresh.renew()
    assert fresh.held(taken.pk)
    row.refresh_from_db()
    assert row.lease_expires_at == later + timedelta(seconds=90)


def test_message_ids_are_stable_per_delivery_but_not_guessable():
    from outreach.channels.email import message_id_for

    first = message_id_for(send_id=7, delivery_id=42)
    assert first == message_id_for(send_id=7, delivery_id=42)
    assert first != message_id_for(send_id=7, delivery_id=43)
    tag = first.split("@")[0].rsplit(".", 1)[1]
    assert len(tag) == 16 and tag not in message_id_for(send_id=7, delivery_id=43)


def test_each_recipient_gets_their_own_unsubscribe_link_in_both_footers(smtp, settings):
    # given three customers in one batch (the footer is rendered once per worker)
    customers = [consented(email=f"f{i}@example.jp") for i in range(3)]
    template = email_template(body_html="<p>{{ customer.family_name }}様</p>")
    campaign = services.campaign_launch(campaign=campaign_for(template))

    dispatch_until_done(campaign.send)

    links = {}
    for received in smtp.received:
        message = received.message
        link = message["List-Unsubscribe"][1:-1]
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert text.count(link) == 1 and f'href="{link}"' in html
        assert "madoguchi-unsubscribe-url" not in text + html
        assert settings.SHOP_COMPANY in text and settings.SHOP_COMPANY in html
        links[received.rcpt_tos[0]] = link
    assert sorted(links) == sorted(c.email for c in customers)
    assert len(set(links.values())) == 3
    for customer in customers:
        token = links[customer.email].rstrip("/").rsplit("/", 1)[1]
        assert services.unsubscribe_token_read(token) == (customer.pk, "email")


def test_a_send_renders_its_snapshot_after_the_template_is_edited(smtp):
    # given a campaign launched, then its template edited before the worker ran
    first = consented(email="before@example.jp")
    template = email_template()
    launched = services.campaign_launch(campaign=campaign_for(template))
    template.body_text = "{{ customer.family_name }}様\n\n春のセールを開催します。"
    services.template_save(template=template)

    # when it is sent, and a new campaign of the edited template after it
    dispatch_until_done(launched.send)
    second = services.campaign_launch(campaign=campaign_for(template))
    dispatch_until_done(second.send)

    # then each mail has the words of its own send (same process, same cache)
    bodies = [r.message.get_body(("plain",)).get_content() for r in smtp.received]
    assert [r.rcpt_tos for r in smtp.received] == [[first.email], [first.email]]
    assert "冬のセール" in bodies[0] and "春のセール" not in bodies[0]
    assert "春のセール" in bodies[1] and "冬のセール" not in bodies[1]
