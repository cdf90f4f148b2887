"""Reads for outreach (outreach.selectors)."""

from __future__ import annotations

import pytest

from crm import services as crm
from outreach import selectors
from tests.crm import factories
from tests.outreach.audience import line_user

pytestmark = pytest.mark.django_db


def marked(customer):
    return crm.customer_test_recipient_set(customer=customer, value=True, actor=None)


def test_test_recipients_are_the_marked_customers_with_an_address_in_one_query(
    django_assert_num_queries,
):
    by_email = [marked(factories.customer(email=f"t{i}@shop.example.jp")) for i in range(3)]
    factories.customer(email="customer@example.jp")  # not marked
    no_email = marked(factories.customer(email=""))
    by_line = []
    for i in range(3):
        customer, _ = crm.customer_upsert(channel="line", external_id=line_user(i))
        by_line.append(marked(customer))
    crm.customer_upsert(channel="line", external_id=line_user(9))  # not marked

    with django_assert_num_queries(1):
        email = {c.pk for c in selectors.test_recipients(channel="email")}
    with django_assert_num_queries(1):
        line = {c.pk for c in selectors.test_recipients(channel="line")}

    assert email == {c.pk for c in by_email} and no_email.pk not in email
    assert line == {c.pk for c in by_line}
