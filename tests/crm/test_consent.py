"""Consent (crm.services.consent): what is recorded and from whom."""

import pytest
from django.core.exceptions import ValidationError

from crm import services
from tests.crm import factories

pytestmark = pytest.mark.django_db


def test_consent_given_to_staff_is_recorded_only_with_how_the_customer_gave_it(owner):
    customer = factories.customer()
    with pytest.raises(ValidationError) as refused:
        services.consent_record(
            customer=customer,
            channel="email",
            action="opt_out",
            source="staff",
            note="  ",
            actor=owner,
        )
    assert "note" in refused.value.message_dict
    assert not customer.consent_events.filter(source="staff").exists()
    event = services.consent_record(
        customer=customer,
        channel="email",
        action="opt_out",
        source="staff",
        note="12月5日に電話で配信停止の依頼",
        actor=owner,
    )
    assert (event.source, event.actor) == ("staff", owner)
