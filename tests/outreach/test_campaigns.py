"""Campaigns (outreach.services.campaigns) through their services; the sending
itself is in test_dispatch_email.py and test_dispatch_line.py, the buttons in
test_campaign_admin.py."""

from __future__ import annotations

import pytest

from outreach import services
from outreach.models import (
    CampaignStatus,
    Delivery,
    Send,
)
from tests.outreach.test_campaign_admin import campaign_make, segment, template  # noqa: F401 (fixtures)
from tests.outreach.test_dispatch_email import campaign_for, consented, email_template

pytestmark = pytest.mark.django_db


def test_launch_twice_snapshots_once(smtp):
    for i in range(3):
        consented(email=f"d{i}@example.jp")
    campaign = campaign_for(email_template())
    services.campaign_launch(campaign=campaign)
    again = services.campaign_launch(campaign=campaign)
    assert again.status == CampaignStatus.SENDING
    assert Send.objects.count() == 1 and Delivery.objects.count() == 3


def test_the_service_refuses_a_test_to_anyone_but_a_tester(template, segment):  # noqa: F811
    from django.core.exceptions import ValidationError

    campaign = campaign_make(template, segment)
    with pytest.raises(ValidationError):
        services.campaign_test_send(campaign=campaign, customer=consented())
    assert not Send.objects.exists()
