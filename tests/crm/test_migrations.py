"""Data migrations of the crm app, run on the test database."""

from __future__ import annotations

import pytest
from django.utils import timezone

from core.models import ApiKey, IdempotencyRecord
from tests.migrating import migrate

BEFORE_PROFILES = ("crm", "0009_consent_source_staff")


@pytest.mark.django_db(transaction=True)
def test_profiles_are_attributed_to_the_first_channel_and_stored_upsert_answers_forgotten():
    old = migrate(BEFORE_PROFILES)
    try:
        Customer = old.get_model("crm", "Customer")
        Identity = old.get_model("crm", "ChannelIdentity")
        Order = old.get_model("crm", "Order")

        def customer(name, **fields):
            return Customer.objects.create(family_name=name, email=f"{name}@example.jp", **fields)

        own = customer("own")
        Identity.objects.create(customer=own, channel="own_site", external_id="m-1")
        # known on two channels: the first identity's channel only
        both = customer("both", phone="090-1111-2222", phone_normalized="09011112222")
        Identity.objects.create(customer=both, channel="amazon", external_id="amzn-1")
        Identity.objects.create(customer=both, channel="own_site", external_id="m-2")
        # no identity: the first order's channel
        buyer = customer("buyer")
        Order.objects.create(
            customer=buyer,
            channel="rakuten",
            order_number="R-1",
            ordered_at=timezone.now(),
            total=1,
        )
        loser = customer("loser", merged_into=own)
        Identity.objects.create(customer=loser, channel="yahoo", external_id="y-1")
        customer("nowhere")  # entered by staff, known on no channel

        key = ApiKey.objects.create(
            label="site", prefix="abcd1234", key_hash="x" * 64, channels=["own_site"]
        )
        for path in ("/api/v1/customers/", "/api/v1/orders/"):
            IdempotencyRecord.objects.create(
                api_key=key,
                key=path,
                method="POST",
                path=path,
                request_hash="h",
                status_code=201,
                response_body="{}",
            )
    finally:
        new = migrate()

    Profile = new.get_model("crm", "CustomerChannelProfile")
    rows = {
        row.customer_id: (row.channel, row.family_name, row.email_normalized, row.phone_normalized)
        for row in Profile.objects.all()
    }
    assert rows == {
        own.pk: ("own_site", "own", "", ""),
        both.pk: ("amazon", "both", "", "09011112222"),
        buyer.pk: ("rakuten", "buyer", "", ""),
    }
    paths = IdempotencyRecord.objects.values_list("path", flat=True)
    assert list(paths) == ["/api/v1/orders/"]
