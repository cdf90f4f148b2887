"""Bounces: the per-delivery envelope sender (VERP) of ledger mail."""

from __future__ import annotations

import email.utils

import pytest

from outreach import services
from outreach.channels.email import (
    EmailAdapter,
    EmailMessage,
    bounce_address_delivery,
    bounce_address_for,
)
from outreach.models import Delivery
from tests.outreach.test_dispatch_email import (
    campaign_for,
    consented,
    dispatch_until_done,
    email_template,
)

pytestmark = pytest.mark.django_db


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
