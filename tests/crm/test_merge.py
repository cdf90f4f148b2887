"""Customer merge (crm.services.merge): identities, orders, consent, tags and
channel profiles move to the survivor."""

import pytest
from django.core.exceptions import ValidationError

from crm import services
from crm.models import (
    ChannelIdentity,
    ConsentEvent,
    ConsentState,
    CustomerChannelProfile,
    CustomerEvent,
    CustomerEventKind,
    Order,
)
from tests.crm import factories
from tests.crm.test_customers import profiles

pytestmark = pytest.mark.django_db


def test_merge_moves_identities_orders_consent_tags_and_records_events(owner):
    winner = factories.customer(channel="own_site", external_id="w", phone="", tags=["ギフト"])
    loser = factories.customer(
        channel="rakuten", external_id="l", phone="080-1111-2222", tags=["リピーター"]
    )
    factories.order(customer=winner, total=5000)
    loser_order = factories.order(customer=loser, channel="rakuten", total=7000)
    services.consent_record(customer=loser, channel="email", action="opt_in", source="api")
    services.consent_record(customer=winner, channel="line", action="opt_in", source="line")

    merged = services.customer_merge(winner=winner, loser=loser, actor=owner)

    loser.refresh_from_db()
    assert loser.merged_into_id == winner.pk
    assert Order.objects.get(pk=loser_order.pk).customer_id == winner.pk
    assert set(merged.identities.values_list("channel", flat=True)) == {"own_site", "rakuten"}
    assert ChannelIdentity.objects.filter(customer=loser).count() == 0
    assert ConsentEvent.objects.filter(customer=loser).count() == 0
    assert dict(ConsentState.objects.filter(customer=winner).values_list("channel", "granted")) == {
        "email": True,
        "line": True,
    }
    assert not ConsentState.objects.filter(customer=loser).exists()
    assert set(merged.tags.values_list("name", flat=True)) == {"ギフト", "リピーター"}
    assert merged.phone == "080-1111-2222"  # a blank of the winner filled from the loser
    assert merged.order_count == 2 and merged.total_spent == 12000
    assert loser.order_count == 0 and loser.total_spent == 0
    winner_event = CustomerEvent.objects.get(customer=winner, kind=CustomerEventKind.MERGED)
    assert winner_event.actor == owner
    assert winner_event.data["loser_id"] == loser.pk
    assert winner_event.data["moved"]["crm.order"] == 1
    assert CustomerEvent.objects.filter(customer=loser, kind=CustomerEventKind.MERGED_INTO).exists()
    # the loser's own history moved with it
    assert (
        CustomerEvent.objects.filter(customer=winner, kind=CustomerEventKind.CREATED).count() == 2
    )


def test_merge_keeps_what_each_channel_gave_and_fills_the_blanks_of_a_shared_channel(owner):
    winner = factories.customer(channel="own_site", external_id="w", email="w@example.jp")
    loser = factories.customer(channel="own_site", external_id="l", email="l@example.jp")
    services.customer_upsert(channel="own_site", external_id="l", address="渋谷区1-2-3")
    services.customer_upsert(channel="amazon", external_id="amzn-l", email="l@example.jp")

    services.customer_merge(winner=winner, loser=loser, actor=owner)

    kept = profiles(winner)
    assert set(kept) == {"own_site", "amazon"}
    assert kept["own_site"]["email"] == "w@example.jp"  # the winner's value stays
    assert kept["own_site"]["address"] == "渋谷区1-2-3"  # a blank filled from the loser
    assert kept["amazon"] == {"email": "l@example.jp"}
    assert not CustomerChannelProfile.objects.filter(customer=loser).exists()


def test_merge_into_itself_or_twice_is_refused():
    one = factories.customer()
    two = factories.customer()
    with pytest.raises(ValidationError):
        services.customer_merge(winner=one, loser=one, actor=None)
    services.customer_merge(winner=one, loser=two, actor=None)
    with pytest.raises(ValidationError):
        services.customer_merge(winner=one, loser=two, actor=None)
