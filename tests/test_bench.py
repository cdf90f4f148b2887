"""The benches' data builds on the current schema: a new NOT NULL column
breaks a test here, not the next benchmark run (bench/README.md)."""

import pytest
from django.db import connection
from django.utils import timezone

from bench.customers_sql import insert_select, required_columns
from bench.lifecycle_figures import Phase


def not_null_without_default(table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
            " AND is_nullable = 'NO' AND column_default IS NULL AND column_name <> 'id'",
            [table],
        )
        return {name for (name,) in cursor.fetchall()}


@pytest.mark.django_db
def test_bulk_insert_names_every_not_null_column_without_a_database_default():
    from crm.models import ChannelIdentity, Customer, Order
    from outreach.models import Delivery
    from tickets.models import Inquiry

    for model in (Customer, ChannelIdentity, Order, Delivery, Inquiry):
        table = model._meta.db_table
        assert not_null_without_default(table) <= set(required_columns(model)), table


@pytest.mark.django_db
def test_bulk_insert_of_customers_with_only_a_name_succeeds():
    from crm.models import Customer

    with connection.cursor() as cursor:
        cursor.execute(
            insert_select(
                Customer, {"family_name": "'顧客' || g"}, "FROM generate_series(1, %(n)s) AS g"
            ),
            {"n": 3},
        )
    assert sorted(Customer.objects.values_list("family_name", flat=True)) == [
        "顧客1",
        "顧客2",
        "顧客3",
    ]
    assert Customer.objects.filter(is_test_recipient=False, nickname="").count() == 3


def test_phase_rows_with_a_baseline_of_no_cpu_prints_no_cpu_ratio():
    phase = Phase("recompute")
    phase.figure = [(0.02, 0.01)]
    phase.baseline = [(0.01, 0.0)]
    phase.changed = [5]
    row = phase.rows()[0]
    assert row[-2:] == ["2.00x", "-"]


@pytest.mark.django_db(transaction=True)
def test_audit_build_runs_on_the_current_schema():
    from bench.audit import build

    _agent, customer = build(20)
    assert customer.orders.count() == 6


@pytest.mark.django_db(transaction=True)
def test_api_ingest_seed_runs_on_the_current_schema():
    from bench.api_ingest_data import seed
    from crm.models import ChannelIdentity

    seed(20)
    assert ChannelIdentity.objects.filter(channel="own_site").count() == 20


@pytest.mark.django_db(transaction=True)
def test_broadcast_build_runs_on_the_current_schema():
    from bench.broadcast import build
    from crm.models import ChannelIdentity

    build(40, 4)
    assert ChannelIdentity.objects.filter(channel="rakuten").count() == 4


@pytest.mark.django_db(transaction=True)
def test_campaign_build_runs_on_the_current_schema():
    from bench.campaign_data import build
    from crm.models import ChannelIdentity

    build(20)
    assert ChannelIdentity.objects.filter(channel="line").count() == 20


@pytest.mark.django_db(transaction=True)
def test_lifecycle_build_runs_on_the_current_schema():
    from bench.lifecycle_data import build
    from crm.models import Customer

    build(50, timezone.now())
    assert Customer.objects.count() == 50


@pytest.mark.django_db(transaction=True)
def test_retention_build_runs_on_the_current_schema(settings, tmp_path):
    from bench.retention import build
    from tickets.models import InquiryMessage

    settings.MEDIA_ROOT = str(tmp_path)
    build(100, timezone.now())
    assert InquiryMessage.objects.filter(kind="outbound").count() == 8
