"""Suppression (crm.services.suppression): soft bounces count within their window;
the bounce reports that feed it are read in tests/outreach/test_bounces.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from crm import services as crm
from tests.outreach.test_bounces import open_suppressions, shop  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def test_soft_bounces_older_than_the_window_do_not_count(shop, settings):  # noqa: F811
    settings.BOUNCE_SOFT_LIMIT, settings.BOUNCE_SOFT_DAYS = 3, 30
    now = timezone.now()
    for days_ago in (45, 31):
        crm.bounce_record(
            address="hanako_y@yahoo.co.jp", kind="soft", received_at=now - timedelta(days=days_ago)
        )
    crm.bounce_record(address="hanako_y@yahoo.co.jp", kind="soft", received_at=now)
    crm.bounce_record(address="hanako_y@yahoo.co.jp", kind="soft", received_at=now)
    assert open_suppressions() == {}

    crm.bounce_record(address="hanako_y@yahoo.co.jp", kind="soft", received_at=now)
    assert open_suppressions() == {"hanako_y@yahoo.co.jp": "soft_bounces"}
