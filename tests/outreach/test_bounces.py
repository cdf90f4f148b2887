"""Bounces: the per-delivery envelope sender (VERP) of ledger mail."""

from __future__ import annotations

import email.utils
import re
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from crm import services as crm
from crm.models import ConsentState, Customer, MailBounce, Suppression
from outreach import services
from outreach.channels.email import (
    EmailAdapter,
    EmailMessage,
    bounce_address_delivery,
    bounce_address_for,
    message_id_for,
)
from outreach.models import Delivery
from tests.outreach.test_dispatch_email import (
    campaign_for,
    consented,
    dispatch_until_done,
    email_template,
)
from tests.tickets import test_imap, test_inbound_mail
from tickets.imap import imap_poll
from tickets.models import InboundMail, Inquiry

pytestmark = pytest.mark.django_db

# The inbound doors' fixtures: `manage.py ingest_email` and a real dovecot.
pipe = test_inbound_mail.pipe
imap_server = test_imap.imap_server
mailbox = test_imap.mailbox


@pytest.fixture(autouse=True)
def _fast_worker(settings):
    settings.QUIET_HOURS_START = settings.QUIET_HOURS_END = 0  # quiet hours off
    settings.DELIVERY_BACKOFF_SECONDS = 0
    settings.EMAIL_RATE = 10_000


def test_campaign_mail_goes_out_with_its_delivery_s_bounce_address_as_envelope_sender(
    smtp, settings
):
    settings.DEFAULT_FROM_EMAIL = "ショップ <shop@shop.example.jp>"
    settings.BOUNCE_DOMAIN = ""
    consented(email="hanako@example.jp")
    campaign = services.campaign_launch(campaign=campaign_for(email_template()))
    dispatch_until_done(campaign.send)

    [received] = smtp.received
    delivery = Delivery.objects.get()
    assert received.mail_from == bounce_address_for(delivery_id=delivery.pk)
    local, _, domain = received.mail_from.partition("@")
    assert local.startswith(f"bounces+{delivery.pk}-") and domain == "shop.example.jp"
    assert bounce_address_delivery(received.mail_from) == delivery.pk
    # the From a reader sees is the shop's, not the bounce address
    assert email.utils.parseaddr(received.message["From"])[1] == "shop@shop.example.jp"


def test_the_bounce_domain_setting_names_the_bounce_address_domain(settings):
    settings.BOUNCE_DOMAIN = "bounce.shop.example.jp"
    address = bounce_address_for(delivery_id=4711)
    assert address.endswith("@bounce.shop.example.jp")
    assert bounce_address_delivery(address.upper().replace("BOUNCES", "bounces")) == 4711


def test_a_bounce_address_with_a_forged_tag_names_no_delivery():
    address = bounce_address_for(delivery_id=4711)
    local, _, domain = address.partition("@")
    forged = local.replace("4711", "4712") + "@" + domain
    assert bounce_address_delivery(forged) is None
    assert bounce_address_delivery("bounces@shop.example.jp") is None


def test_mail_built_by_django_s_own_message_also_carries_the_bounce_address(smtp, settings):
    # an HTML-only message goes through Django's EmailMessage, not the direct writer
    settings.DEFAULT_FROM_EMAIL = "shop@shop.example.jp"
    message = EmailMessage(
        key=1,
        to="taro@example.jp",
        subject="お知らせ",
        text="",
        html="<p>本文</p>",
        message_id="<x.1@shop.example.jp>",
        return_path="bounces+1-abc@shop.example.jp",
    )
    with EmailAdapter() as adapter:
        [(_key, outcome)] = list(adapter.send([message]))

    assert outcome.result.value == "sent"
    [received] = smtp.received
    assert received.mail_from == "bounces+1-abc@shop.example.jp"
    assert received.message["From"] == "shop@shop.example.jp"
    assert received.message.get_all("From") == ["shop@shop.example.jp"]


# --- Reports through the pipe command and the IMAP poller ---------------------------

FIXTURE_VERP = b"bounces+1-000000000000@shop.example.jp"
FIXTURE_MESSAGE_ID = b"<madoguchi.1.1.0000000000000000@shop.example.jp>"
MAIL = Path(__file__).resolve().parent.parent / "tickets" / "mail"


@pytest.fixture
def shop(settings):
    settings.DEFAULT_FROM_EMAIL = "shop@shop.example.jp"
    settings.BOUNCE_DOMAIN = "shop.example.jp"


def sent_to(*addresses: str) -> dict[str, Delivery]:
    """A campaign mailed to a consented customer at each address."""
    for address in addresses:
        consented(email=address)
    campaign = services.campaign_launch(campaign=campaign_for(email_template()))
    dispatch_until_done(campaign.send)
    deliveries = Delivery.objects.filter(send=campaign.send)
    assert {d.status for d in deliveries} == {"sent"}
    return {d.customer.email: d for d in deliveries.select_related("customer")}


def report_for(name: str, delivery: Delivery, *, serial: int = 0) -> bytes:
    """A fixture report, about `delivery`: its bounce address and Message-ID."""
    raw = (MAIL / name).read_bytes()
    raw = raw.replace(FIXTURE_VERP, bounce_address_for(delivery_id=delivery.pk).encode())
    raw = raw.replace(
        FIXTURE_MESSAGE_ID,
        message_id_for(send_id=delivery.send_id, delivery_id=delivery.pk).encode(),
    )
    if serial:  # another report of the same kind: its own Message-ID
        raw = re.sub(
            rb"(?im)^(Message-ID: <)", rb"\g<1>" + str(serial).encode() + b".", raw, count=1
        )
    return raw


@pytest.fixture(params=["pipe", "imap"])
def deliver(request):
    """Hand raw reports to the pipe command or to the IMAP poller."""
    if request.param == "pipe":
        pipe = request.getfixturevalue("pipe")
        return lambda *raws: [pipe(raw) for raw in raws]
    server = request.getfixturevalue("imap_server")
    name = request.getfixturevalue("mailbox")
    account = test_imap.account_for(server, name)

    def poll(*raws):
        for raw in raws:
            server.append(raw, mailbox=name)
        return imap_poll(account)

    return poll


def open_suppressions() -> dict[str, str]:
    return dict(Suppression.objects.filter(lifted_at=None).values_list("address", "reason"))


def test_real_world_bounces_and_a_complaint_suppress_and_opt_out_and_none_becomes_an_inquiry(
    smtp, shop, deliver
):
    deliveries = sent_to(
        "taro.gmail@gmail.com",
        "hanako_y@yahoo.co.jp",
        "keitai.taro@docomo.ne.jp",
        "complainer@example-isp.ne.jp",
    )

    deliver(
        report_for("bounce_gmail.eml", deliveries["taro.gmail@gmail.com"]),
        report_for("bounce_yahoo_jp.eml", deliveries["hanako_y@yahoo.co.jp"]),
        report_for("bounce_docomo.eml", deliveries["keitai.taro@docomo.ne.jp"]),
        report_for("complaint_arf.eml", deliveries["complainer@example-isp.ne.jp"]),
    )

    # hard bounces and the complaint suppress; one soft bounce (mailbox full) does not
    assert open_suppressions() == {
        "taro.gmail@gmail.com": "hard_bounce",
        "keitai.taro@docomo.ne.jp": "hard_bounce",
        "complainer@example-isp.ne.jp": "complaint",
    }
    bounces = {b.address: (b.kind, b.delivery_id) for b in MailBounce.objects.all()}
    assert bounces == {
        address: (kind, deliveries[address].pk)
        for address, kind in [
            ("taro.gmail@gmail.com", "hard"),
            ("hanako_y@yahoo.co.jp", "soft"),
            ("keitai.taro@docomo.ne.jp", "hard"),
            ("complainer@example-isp.ne.jp", "complaint"),
        ]
    }
    # the complaint is an opt-out in the consent ledger
    complainer = Customer.objects.get(email="complainer@example-isp.ne.jp")
    state = ConsentState.objects.get(customer=complainer, channel="email")
    assert (state.granted, state.event.source) == (False, "complaint")
    # nothing became an inquiry; each report is recorded as ignored
    assert not Inquiry.objects.exists()
    assert sorted(InboundMail.objects.values_list("status", "reason")) == [
        ("ignored", "bounce"),
        ("ignored", "bounce"),
        ("ignored", "bounce"),
        ("ignored", "complaint"),
    ]


def test_a_bounce_report_read_twice_counts_once(smtp, shop, pipe):
    delivery = sent_to("hanako_y@yahoo.co.jp")["hanako_y@yahoo.co.jp"]
    raw = report_for("bounce_yahoo_jp.eml", delivery)

    pipe(raw)
    pipe(raw)

    assert MailBounce.objects.count() == 1


def test_three_soft_bounces_in_thirty_days_suppress_and_two_do_not(smtp, shop, pipe):
    delivery = sent_to("hanako_y@yahoo.co.jp")["hanako_y@yahoo.co.jp"]

    pipe(report_for("bounce_yahoo_jp.eml", delivery, serial=1))
    pipe(report_for("bounce_yahoo_jp.eml", delivery, serial=2))
    assert open_suppressions() == {}

    pipe(report_for("bounce_yahoo_jp.eml", delivery, serial=3))
    assert open_suppressions() == {"hanako_y@yahoo.co.jp": "soft_bounces"}


def test_a_bounce_without_our_bounce_address_names_the_failed_recipient(shop, pipe):
    # the Postfix bounce went to a plain address and quotes a header we cannot check
    customer = consented(email="nobody@example.com")

    pipe((MAIL / "bounce_postfix.eml").read_bytes())

    bounce = MailBounce.objects.get()
    assert (bounce.address, bounce.kind, bounce.status, bounce.delivery_id) == (
        customer.email_normalized,
        "hard",
        "5.1.1",
        None,
    )
    assert open_suppressions() == {"nobody@example.com": "hard_bounce"}


def test_a_quoted_delivery_header_counts_only_when_that_delivery_went_to_the_failed_address(
    smtp, shop, pipe
):
    deliveries = sent_to("nobody@example.com", "someone.else@example.jp")
    raw = (MAIL / "bounce_postfix.eml").read_bytes()
    honest = raw.replace(
        b"X-Madoguchi-Delivery: 4711",
        f"X-Madoguchi-Delivery: {deliveries['nobody@example.com'].pk}".encode(),
    )
    forged = raw.replace(
        b"X-Madoguchi-Delivery: 4711",
        f"X-Madoguchi-Delivery: {deliveries['someone.else@example.jp'].pk}".encode(),
    ).replace(b"Message-Id: <2026", b"Message-Id: <forged.2026")

    pipe(honest)
    pipe(forged)

    assert list(MailBounce.objects.order_by("id").values_list("address", "delivery_id")) == [
        ("nobody@example.com", deliveries["nobody@example.com"].pk),
        ("nobody@example.com", None),
    ]
    assert open_suppressions() == {"nobody@example.com": "hard_bounce"}


# --- Suppressed addresses are left out, with the reason; staff lift them --------------


def test_a_suppressed_address_is_skipped_at_launch_with_its_reason(smtp, shop):
    kept = consented(email="ok@example.jp")
    bounced = consented(email="gone@example.jp")
    crm.bounce_record(address="Gone@Example.jp", kind="hard", status="5.1.1")

    campaign = services.campaign_launch(campaign=campaign_for(email_template()))

    rows = dict(Delivery.objects.values_list("customer_id", "skip_reason"))
    assert rows == {kept.pk: "", bounced.pk: "suppressed"}
    dispatch_until_done(campaign.send)
    assert [r.rcpt_tos for r in smtp.received] == [["ok@example.jp"]]


def test_an_address_suppressed_after_launch_is_skipped_at_send_time(smtp, shop):
    consented(email="ok@example.jp")
    bounced = consented(email="gone@example.jp")
    campaign = services.campaign_launch(campaign=campaign_for(email_template()))

    crm.bounce_record(address="gone@example.jp", kind="hard", status="5.1.1")
    dispatch_until_done(campaign.send)

    row = Delivery.objects.get(customer=bounced)
    assert (row.status, row.skip_reason) == ("skipped", "suppressed")
    assert [r.rcpt_tos for r in smtp.received] == [["ok@example.jp"]]


def test_staff_lift_a_suppression_with_a_note_and_the_address_gets_mail_again(smtp, shop):
    staff = User.objects.create_user("suzuki", password="x")
    customer = consented(email="gone@example.jp")
    crm.bounce_record(address="gone@example.jp", kind="hard", status="5.1.1")
    suppression = Suppression.objects.get()

    with pytest.raises(ValidationError):
        crm.suppression_lift(suppression=suppression, note="  ", actor=staff)
    lifted = crm.suppression_lift(
        suppression=suppression, note="お電話でアドレスを確認しました", actor=staff
    )

    assert (lifted.lifted_by, lifted.note) == (staff, "お電話でアドレスを確認しました")
    kinds = list(customer.events.order_by("id").values_list("kind", "actor"))
    assert kinds[-2:] == [("suppressed", None), ("suppress_lifted", staff.pk)]
    campaign = services.campaign_launch(campaign=campaign_for(email_template()))
    dispatch_until_done(campaign.send)
    assert [r.rcpt_tos for r in smtp.received] == [["gone@example.jp"]]
