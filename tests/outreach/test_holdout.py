"""Holdout groups: a random share of the sendable audience, held out in
the ledger at launch, never sent, apart from progress, kept for the lift."""

from __future__ import annotations

import pytest

from outreach import services
from outreach.holdout import holdout_pick, holdout_size
from outreach.models import Delivery, DeliveryStatus, SkipReason
from outreach.selectors import send_progress
from tests.crm import factories
from tests.outreach.test_dispatch_email import (
    _fast_worker,  # noqa: F401 (autouse fixture)
    campaign_for,
    consented,
    dispatch_until_done,
    email_template,
)

pytestmark = pytest.mark.django_db


def test_holdout_size_is_the_share_rounded_down():
    assert [holdout_size(n, 10) for n in (0, 9, 10, 19, 20, 1000)] == [0, 0, 1, 1, 2, 100]
    assert holdout_size(100, 0) == 0


def test_a_campaign_holds_out_its_share_of_the_sendable_and_sends_them_nothing(smtp):
    customers = [consented(email=f"c{i}@example.jp") for i in range(20)]
    ineligible = factories.customer(email="noconsent@example.jp")
    factories.order(customer=ineligible)
    campaign = campaign_for(email_template())
    campaign.holdout_percent = 25
    campaign.save()

    campaign = services.campaign_launch(campaign=campaign)
    dispatch_until_done(campaign.send)

    rows = Delivery.objects.filter(send=campaign.send)
    held = set(rows.filter(skip_reason=SkipReason.HOLDOUT).values_list("customer_id", flat=True))
    assert len(held) == 5  # 25 % of the 20 who could receive it, not of 21
    assert ineligible.pk not in held
    assert rows.get(customer=ineligible).skip_reason == SkipReason.NO_CONSENT
    sent_to = {rcpt for r in smtp.received for rcpt in r.rcpt_tos}
    assert sent_to == {c.email for c in customers if c.pk not in held}
    assert rows.filter(status=DeliveryStatus.SENT).count() == 15
    assert SkipReason(SkipReason.HOLDOUT).label  # worded for the marketer
    progress = send_progress(campaign.send)
    assert (progress.sendable, progress.attempted, progress.held_out) == (15, 15, 5)


def test_holdout_pick_draws_only_queued_rows_of_the_given_deliveries():
    customers = [consented(email=f"d{i}@example.jp") for i in range(10)]
    send = services.send_create(
        kind="campaign", channel="email", purpose="marketing", template=email_template()
    )
    from django.utils import timezone

    from crm.models import Customer

    services.deliveries_snapshot(
        send=send,
        audience=Customer.objects.filter(pk__in=[c.pk for c in customers]),
        now=timezone.now(),
    )
    Delivery.objects.filter(send=send, customer=customers[0]).update(status=DeliveryStatus.SENT)
    assert holdout_pick(deliveries=Delivery.objects.filter(send=send), percent=50) == 4
    assert not Delivery.objects.filter(
        send=send, customer=customers[0], skip_reason=SkipReason.HOLDOUT
    ).exists()
