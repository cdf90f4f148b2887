"""Consented customers in bulk, for tests that need hundreds or thousands.

Written set-based: thousands through customer_upsert and consent_record
would take minutes. The worker reads exactly these rows (consent state,
identity, address), as it would after the services, which have tests of
their own.
"""

from __future__ import annotations

from django.utils import timezone

from crm.models import ChannelIdentity, ConsentEvent, ConsentState, Customer


def line_user(index: int) -> str:
    return f"U{index:032x}"


def email_of(index: int) -> str:
    return f"kunde{index}@example.jp"


def consented_customers(count: int, *, email: bool = True, line: bool = True) -> list[Customer]:
    """`count` customers with an opt-in on email and/or LINE (and a LINE
    identity), numbered on from the customers already there."""
    now = timezone.now()
    start = Customer.objects.count()
    customers = Customer.objects.bulk_create(
        Customer(
            family_name="佐藤",
            given_name=f"花子{start + i}",
            family_name_kana="サトウ",
            given_name_kana="ハナコ",
            email=email_of(start + i) if email else "",
            email_normalized=email_of(start + i) if email else "",
        )
        for i in range(count)
    )
    channels = [name for name, wanted in (("email", email), ("line", line)) if wanted]
    if line:
        ChannelIdentity.objects.bulk_create(
            ChannelIdentity(customer=c, channel="line", external_id=line_user(start + i))
            for i, c in enumerate(customers)
        )
    for channel in channels:
        events = ConsentEvent.objects.bulk_create(
            ConsentEvent(
                customer=c, channel=channel, action="opt_in", source="import", occurred_at=now
            )
            for c in customers
        )
        ConsentState.objects.bulk_create(
            ConsentState(
                customer=e.customer, channel=channel, granted=True, changed_at=now, event=e
            )
            for e in events
        )
    return customers
