"""Customer email addresses as docomo and au issued them before 2009
(crm/fields.py): valid on the carriers' domains, nowhere else."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from crm.models import Customer
from crm.services import customer_upsert

CARRIER_ADDRESSES = [
    "taro..yamada.@docomo.ne.jp",
    ".hanako@ezweb.ne.jp",
    "yamada.@docomo.ne.jp",
    "a...b@hk.ezweb.ne.jp",
    "Taro..Y@AU.COM",
]


@pytest.mark.parametrize("address", CARRIER_ADDRESSES)
def test_a_carrier_address_with_misplaced_dots_is_a_valid_customer_email(address):
    field = Customer._meta.get_field("email")

    field.run_validators(address)
    assert field.formfield().clean(address) == address


@pytest.mark.parametrize(
    "address",
    [
        "taro..yamada@example.jp",  # the same dots elsewhere stay invalid
        ".hanako@notezweb.ne.jp",
        "yamada.@docomo.ne.jp.example.com",
        "..@docomo.ne.jp",  # dots alone are no name
        "taro yamada@docomo.ne.jp",
        "taro<yamada>@docomo.ne.jp",
        "@docomo.ne.jp",
        "not-an-address",
    ],
)
def test_other_malformed_addresses_stay_invalid(address):
    field = Customer._meta.get_field("email")

    with pytest.raises(ValidationError):
        field.run_validators(address)
    with pytest.raises(ValidationError):
        field.formfield().clean(address)


@pytest.mark.django_db
def test_a_customer_is_created_and_found_again_by_a_carrier_address():
    customer, created = customer_upsert(
        channel="email", email="Taro..Yamada.@docomo.ne.jp", family_name="山田"
    )
    again, created_again = customer_upsert(channel="email", email="taro..yamada.@docomo.ne.jp")

    assert (created, created_again) == (True, False)
    assert again == customer
    assert customer.email_normalized == "taro..yamada.@docomo.ne.jp"
