"""Lifecycle segments (crm.services.lifecycle): the recompute and its tables' upkeep."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from crm import services
from crm.models import (
    LifecycleSegment,
)
from tests.crm import factories

pytestmark = pytest.mark.django_db


def test_lifecycle_recompute_turns_a_quiet_customer_sleeping():
    customer = factories.customer()
    factories.order(customer=customer, ordered_at=timezone.now() - timedelta(days=170))
    customer.refresh_from_db()
    assert customer.lifecycle_segment == LifecycleSegment.NEW
    changed = services.lifecycle_recompute(now=timezone.now() + timedelta(days=11))
    customer.refresh_from_db()
    assert changed == 1
    assert customer.lifecycle_segment == LifecycleSegment.SLEEPING
    assert services.lifecycle_recompute(now=timezone.now() + timedelta(days=11)) == 0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL storage parameters")
def test_the_lifecycle_tables_are_vacuumed_after_about_a_day_of_traffic():
    """The nightly recompute reads both tables by index-only scans, which
    need a current visibility map (crm migration 0007)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reloptions FROM pg_class"
            " WHERE relname IN ('crm_customer', 'crm_order') ORDER BY relname"
        )
        options = dict(cursor.fetchall())
    assert "autovacuum_vacuum_scale_factor=0.005" in options["crm_customer"]
    assert "autovacuum_vacuum_insert_scale_factor=0.005" in options["crm_order"]
