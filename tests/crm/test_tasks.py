"""The crm tasks django-q2 runs: the nightly lifecycle run."""

from __future__ import annotations

import pytest
from django.db import connection

from crm.models import Customer
from crm.services.lifecycle import REBUILD_AFTER_SHARE
from crm.tasks import lifecycle_recompute_task
from tests.crm import factories

pytestmark = pytest.mark.django_db(transaction=True)


def index_files() -> dict[str, int]:
    """Each index of crm_customer and the file that holds it (a rebuild
    writes a new one)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT i.relname, i.relfilenode FROM pg_index x
            JOIN pg_class i ON i.oid = x.indexrelid
            WHERE x.indrelid = 'crm_customer'::regclass
            """
        )
        return dict(cursor.fetchall())


def customers_with_an_order(count: int) -> None:
    for _ in range(count):
        factories.order(customer=factories.customer())
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE crm_customer")


def forget_figures(count: int) -> None:
    """Figures lost behind the services' back (an import, a restore)."""
    ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True)[:count])
    Customer.objects.filter(pk__in=ids).update(
        order_count=0, total_spent=0, first_order_at=None, last_order_at=None
    )


def test_a_run_that_rewrites_many_customers_rebuilds_their_indexes():
    customers_with_an_order(10)
    before = index_files()
    forget_figures(10)
    assert lifecycle_recompute_task() == 10
    after = index_files()
    assert after.keys() == before.keys()
    assert "crm_customer_lifecycle" in after
    assert all(after[name] != before[name] for name in before)  # every one rebuilt
    assert Customer.objects.filter(order_count=1).count() == 10


def test_a_nightly_run_that_changes_few_leaves_the_indexes_alone():
    customers_with_an_order(10)
    few = int(10 * REBUILD_AFTER_SHARE) - 1
    forget_figures(few)
    before = index_files()
    assert lifecycle_recompute_task() == few
    assert index_files() == before
