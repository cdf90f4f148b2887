"""Reads for outreach that filter or join."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet

from crm.models import Channel, ChannelIdentity, Customer
from outreach.models import MessageChannel


def test_recipients(*, channel: str) -> QuerySet[Customer]:
    """The customers a campaign's test send may go to on `channel`: marked
    as test recipients, not merged away, with an address there."""
    testers = Customer.objects.filter(is_test_recipient=True, merged_into__isnull=True)
    if channel == MessageChannel.EMAIL:
        testers = testers.exclude(email_normalized="")
    else:
        line = ChannelIdentity.objects.filter(customer=OuterRef("pk"), channel=Channel.LINE)
        testers = testers.filter(Exists(line))
    return testers.order_by("family_name_kana", "given_name_kana", "pk")
