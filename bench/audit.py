"""Benchmark: what recording a view in the audit trail adds to the
customer page (target: p95 < 5 % more than without recording).

Builds one customer with a realistic page (6 orders, consent history,
timeline) among 10,000 customers, and an audit table of --rows rows
(default 500,000; INSERT ... SELECT FROM generate_series), so that the
recorded INSERT updates indexes of a filled table. Then, in process
(Django's test client, bench settings: DEBUG false, production settings),
a staff member opens the customer's admin page --repeat times with the
view recorded and as many times without (the hook replaced by a no-op for
those requests only), interleaved in blocks of 10 so that drifting load
on a shared machine hits both alike. Prints median and p95 of each, the
p95 added, and the bare INSERT of one audit row on its own.

    scripts/with-postgres.sh .venv/bin/python bench/audit.py [--rows N] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    Steal,
    django_setup,
    log,
    migrate,
    percentile,
    sql,
    table,
    time_once,
)
from bench.customers_sql import insert_select

BLOCK = 10


def build(rows: int):
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from core.roles import AGENT
    from crm.models import Customer
    from crm.services import consent_record, customer_update, customer_upsert, order_upsert

    log(f"building 10,000 customers and {rows:,} audit rows …")
    sql(
        insert_select(
            Customer,
            {
                "family_name": "'顧客'",
                "given_name": "'さん' || g",
                "email": "'c' || g || '@example.jp'",
                "email_normalized": "'c' || g || '@example.jp'",
                "lifecycle_segment": "'new'",
            },
            "FROM generate_series(1, 10000) AS g",
        )
    )
    agent = get_user_model().objects.create_user("bench-agent", is_staff=True, last_name="佐藤")
    agent.groups.add(Group.objects.get(name=AGENT))
    customer, _ = customer_upsert(
        channel="own_site",
        external_id="bench-1",
        family_name="山田",
        given_name="花子",
        email="hanako.bench@example.jp",
        phone="090-1234-5678",
    )
    for number in range(6):
        order_upsert(
            channel="own_site",
            order_number=f"B-{number}",
            customer=customer,
            ordered_at=timezone.now() - timedelta(days=30 - number),
            total=3000 + number,
        )
    for action in ("opt_in", "opt_out", "opt_in"):
        consent_record(
            customer=customer,
            channel="email",
            action=action,
            source="staff",
            note="電話でのお申し出",
        )
    customer_update(customer=customer, actor=agent, notes="電話が早い")
    sql(
        """
        INSERT INTO core_auditentry (at, user_id, action, customer_id, "where", what, ip)
        SELECT now() - g * interval '1 second', %s, 'view', 1 + g %% 10000,
            '/admin/crm/customer/' || (1 + g %% 10000) || '/change/', '', '192.0.2.1'
        FROM generate_series(1, %s) AS g
        """,
        [agent.pk, rows],
    )
    sql("VACUUM ANALYZE")
    return agent, Customer.objects.get(pk=customer.pk)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    if args.repeat < 2 * BLOCK:
        parser.error(f"--repeat must be at least {2 * BLOCK} (blocks of {BLOCK} per mode)")
    # The bench measures the page, not the login: force_login has no second factor.
    os.environ.setdefault("ADMIN_REQUIRE_OTP", "false")
    django_setup()
    migrate()

    from django.test import Client
    from django.urls import reverse

    import crm.admin.customers
    from core.audit import audit_record
    from core.models import AuditAction, AuditEntry

    agent, customer = build(args.rows)
    client = Client()
    client.force_login(agent)
    url = reverse("admin:crm_customer_change", args=[customer.pk])

    def page() -> None:
        response = client.get(url)
        assert response.status_code == 200, response.status_code

    def not_recorded(**_kwargs) -> None:
        return None

    for _ in range(20):  # warm caches (templates, permissions, content types)
        page()
    samples: dict[str, list[float]] = {"recorded": [], "not recorded": []}
    steal = Steal()
    before = AuditEntry.objects.count()
    for block in range(args.repeat // BLOCK):
        order = ("recorded", "not recorded") if block % 2 == 0 else ("not recorded", "recorded")
        for mode in order:
            crm.admin.customers.audit_record = audit_record if mode == "recorded" else not_recorded
            for _ in range(BLOCK):
                samples[mode].append(time_once(page)[0])
    crm.admin.customers.audit_record = audit_record
    recorded = AuditEntry.objects.count() - before
    assert recorded == len(samples["recorded"]), (recorded, len(samples["recorded"]))

    inserts = [
        time_once(
            lambda: audit_record(action=AuditAction.VIEW, actor=agent, customer_id=customer.pk)
        )[0]
        for _ in range(args.repeat)
    ]

    def ms(value: float) -> str:
        return f"{value * 1000:.1f}"

    base = percentile(samples["not recorded"], 95)
    rows = [
        (name, len(values), ms(statistics.median(values)), ms(percentile(values, 95)))
        for name, values in samples.items()
    ]
    rows.append(
        (
            "bare INSERT of one audit row",
            len(inserts),
            ms(statistics.median(inserts)),
            ms(percentile(inserts, 95)),
        )
    )
    added = percentile(samples["recorded"], 95) / base - 1
    median_added = statistics.median(samples["recorded"]) - statistics.median(
        samples["not recorded"]
    )
    print(
        f"customer admin page, in process; audit table {args.rows:,} rows; "
        f"{steal.text()}; times in ms"
    )
    print(table(("figure", "requests", "median", "p95"), rows))
    print(f"median added by recording the view: {median_added * 1000:+.1f} ms")
    print(
        f"p95 added by recording the view: {added:+.1%} (target < 5 %: "
        f"{'pass' if added < 0.05 else 'MISS'})"
    )


if __name__ == "__main__":
    main()
