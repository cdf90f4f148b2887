"""Orders (crm.services.orders): upsert by channel and number, validation,
the customers' metrics."""

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from crm import services
from crm.models import (
    LifecycleSegment,
    Order,
)
from tests.crm import factories

pytestmark = pytest.mark.django_db


def test_order_with_a_negative_total_is_refused_with_the_field():
    customer = factories.customer()
    with pytest.raises(ValidationError) as excinfo:
        services.order_upsert(
            channel="own_site",
            order_number="N-1",
            customer=customer,
            ordered_at=timezone.now(),
            total=-1,
        )
    assert set(excinfo.value.message_dict) == {"total"}
    assert not Order.objects.exists()


def test_order_upsert_updates_by_channel_and_number_and_keeps_metrics_right():
    customer = factories.customer()
    order = factories.order(customer=customer, total=3000, order_number="A-1")
    factories.order(customer=customer, total=2000, order_number="A-2")
    customer.refresh_from_db()
    assert (customer.order_count, customer.total_spent) == (2, 5000)

    same, created = services.order_upsert(
        channel="own_site",
        order_number="A-1",
        customer=customer,
        ordered_at=order.ordered_at,
        total=3000,
        status="cancelled",
    )
    assert not created and same.pk == order.pk
    assert same.lines.count() == 1  # lines kept when not given
    customer.refresh_from_db()
    assert (customer.order_count, customer.total_spent) == (1, 2000)


def test_order_moved_to_another_customer_recomputes_both():
    first = factories.customer()
    second = factories.customer()
    order = factories.order(customer=first, order_number="M-1")
    services.order_upsert(
        channel="own_site",
        order_number="M-1",
        customer=second,
        ordered_at=order.ordered_at,
        total=order.total,
    )
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.order_count, first.lifecycle_segment) == (0, LifecycleSegment.PROSPECT)
    assert (second.order_count, second.lifecycle_segment) == (1, LifecycleSegment.NEW)
