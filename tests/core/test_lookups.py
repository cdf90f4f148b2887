"""field__any_of: one array parameter on PostgreSQL, IN elsewhere."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import ChannelIdentity, Customer
from tests.crm import factories

pytestmark = pytest.mark.django_db


def test_any_of_selects_what_in_selects_with_one_parameter_for_all_ids():
    # given
    customers = [factories.customer() for _ in range(5)]
    for customer in customers:
        ChannelIdentity.objects.create(
            customer=customer, channel="line", external_id=f"U{customer.pk:032x}"
        )
    chosen = [customers[0].pk, customers[3].pk, 10**9]
    # when
    with CaptureQueriesContext(connection) as queries:
        by_pk = set(Customer.objects.filter(pk__any_of=chosen).values_list("pk", flat=True))
        by_fk = set(
            ChannelIdentity.objects.filter(customer__any_of=chosen).values_list(
                "customer_id", flat=True
            )
        )
        by_fk_column = ChannelIdentity.objects.filter(
            customer_id__any_of=chosen, channel="line"
        ).count()
    # then
    expected = set(Customer.objects.filter(pk__in=chosen).values_list("pk", flat=True))
    assert by_pk == by_fk == expected == {customers[0].pk, customers[3].pk}
    assert by_fk_column == 2
    if connection.vendor == "postgresql":
        # one array literal, not a placeholder per id
        assert all("= ANY('{" in q["sql"] for q in queries.captured_queries)


def test_any_of_an_empty_list_selects_nothing():
    factories.customer()
    assert list(Customer.objects.filter(pk__any_of=[])) == []
