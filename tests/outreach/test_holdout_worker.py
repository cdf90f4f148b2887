"""The holdout through the REAL worker (qcluster in a subprocess, tests/
worker.py) and a real SMTP server: held-out customers never get the mail,
are not counted as sent, and are in the results' comparison."""

from __future__ import annotations

import pytest

from outreach import services
from outreach.models import Campaign, Delivery, DeliveryStatus, Segment, SegmentKind, SkipReason
from outreach.selectors import results_for_campaign, send_progress
from tests.outreach.audience import consented_customers
from tests.outreach.test_worker_faults import (
    cluster,  # noqa: F401 (fixture)
    email_template,
    line,  # noqa: F401 (fixture)
    smtp_recipients,
    smtp_server,  # noqa: F401 (fixture)
    wait_until_done,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_holdout_members_are_never_sent_and_stay_in_the_comparison(
    cluster,  # noqa: F811
    smtp_server,  # noqa: F811
):
    customers = consented_customers(40, line=False)
    tpl = email_template()
    segment = Segment.objects.create(
        name="メール同意",
        kind=SegmentKind.CUSTOM,
        rule={
            "match": "all",
            "conditions": [{"field": "consent", "op": "granted", "value": ["email"]}],
        },
    )
    campaign = Campaign.objects.create(
        name="冬のセール", channel="email", template=tpl, segment=segment, holdout_percent=25
    )
    cluster.start()
    campaign = services.campaign_launch(campaign=campaign)
    wait_until_done(campaign.send, timeout=120, worker=cluster)

    rows = Delivery.objects.filter(send=campaign.send)
    held = set(rows.filter(skip_reason=SkipReason.HOLDOUT).values_list("customer_id", flat=True))
    assert len(held) == 10
    everyone = {c.pk: c.email for c in customers}
    assert smtp_recipients(smtp_server) == {
        email for pk, email in everyone.items() if pk not in held
    }
    assert rows.filter(status=DeliveryStatus.SENT).count() == 30
    assert not rows.filter(customer_id__in=held, sent_at__isnull=False).exists()
    progress = send_progress(campaign.send)
    assert (progress.sent, progress.sendable, progress.held_out, progress.percent) == (
        30,
        30,
        10,
        100,
    )
    results = results_for_campaign(campaign)
    assert (results.recipients.members, results.holdout.members) == (30, 10)
