"""Reads for outreach that filter or join."""

from __future__ import annotations

from django.db.models import QuerySet

from crm.models import Customer
from outreach.models import Purpose


def test_recipients(*, channel: str) -> QuerySet[Customer]:
    """The customers a campaign's test send may go to on `channel`: marked
    as test recipients, whom a test send reaches (eligibility_reason for a
    test's purpose, see send_eligibility_purpose: not merged away, with an
    address there)."""
    from outreach.services import eligibility_reason  # services imports this module

    reason = eligibility_reason(channel=channel, purpose=Purpose.TRANSACTIONAL)
    testers = Customer.objects.filter(is_test_recipient=True).annotate(skip=reason)
    return testers.filter(skip="").order_by("family_name_kana", "given_name_kana", "pk")
