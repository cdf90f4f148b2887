"""Benchmark: a CSV import (crm.imports) against PostgreSQL's bare COPY.

Generates, in Madoguchi's own format, a customers file (--customers rows,
own-site members with email, phone and address; a fifth of them with an
email consent column) and an orders file (--orders rows, one line each,
bought by those members), then times, in the same run:

  COPY     each file loaded by COPY ... FROM STDIN (CSV, HEADER) into an
           unlogged table of text columns: the floor for reading the file
           into the database at all
  import   the same file through crm.imports.runner (import_job_run, the
           worker's path: batches of BATCH_ROWS rows, on PostgreSQL the
           bulk path of crm.imports.bulk — what the services would plainly
           create or find unchanged, by COPY — and the rest through the
           services row by row; the lifecycle of touched customers at the
           end)

and prints rows per second for both, and the load average (1 min) before
and after each import: the machine may be shared.
The issue's target: 100,000 customers and 300,000 orders in under 120 s
(the defaults). `--customers 2000 --orders 6000` gives a quick run.

    scripts/with-postgres.sh .venv/bin/python bench/import.py
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ServerCpu, django_setup, migrate, time_once

CUSTOMER_HEADER = [
    "channel",
    "external_id",
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "email",
    "phone",
    "postal_code",
    "prefecture",
    "address",
    "email_consent",
    "consent_wording_version",
]
ORDER_HEADER = [
    "channel",
    "order_number",
    "ordered_at",
    "status",
    "total",
    "external_id",
    "email",
    "sku",
    "product_name",
    "quantity",
    "unit_price",
]
FAMILY = ["佐藤", "鈴木", "髙橋", "田中", "伊藤", "渡辺", "山本", "中村"]
GIVEN = ["太郎", "花子", "一郎", "美咲", "健", "愛", "翔太", "結衣"]


def files(customers: int, orders: int, directory: Path) -> tuple[Path, Path]:
    rng = random.Random(20)
    customer_path = directory / "customers.csv"
    with customer_path.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(CUSTOMER_HEADER)
        for n in range(customers):
            consent = n % 5 == 0
            writer.writerow(
                [
                    "own_site",
                    f"M{n:08d}",
                    rng.choice(FAMILY),
                    rng.choice(GIVEN),
                    "サトウ",
                    "タロウ",
                    f"member{n}@example.jp",
                    f"090-{n // 10000 % 10000:04d}-{n % 10000:04d}",
                    "150-0001",
                    "東京都",
                    f"渋谷区神宮前{n % 9 + 1}-{n % 20 + 1}-{n % 30 + 1}",
                    "1" if consent else "",
                    "2024-04" if consent else "",
                ]
            )
    order_path = directory / "orders.csv"
    with order_path.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(ORDER_HEADER)
        for n in range(orders):
            member = rng.randrange(customers)
            price = rng.choice([1200, 3240, 5400])
            writer.writerow(
                [
                    "own_site",
                    f"W{n:09d}",
                    f"2025-{n % 12 + 1:02d}-{n % 28 + 1:02d} 12:{n % 60:02d}:00",
                    "delivered",
                    price,
                    f"M{member:08d}",
                    f"member{member}@example.jp",
                    "TEA-SENCHA-100",
                    "静岡煎茶 100g",
                    1,
                    price,
                ]
            )
    return customer_path, order_path


def copy_seconds(path: Path, columns: list[str]) -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_copy")
        cursor.execute(
            "CREATE UNLOGGED TABLE bench_copy ("
            + ", ".join(f"{name} text" for name in columns)
            + ")"
        )
        data = path.read_bytes()

        def load():
            with cursor.copy("COPY bench_copy FROM STDIN (FORMAT csv, HEADER true)") as copy:
                copy.write(data[3:])  # the BOM is not CSV

        seconds, _result = time_once(load)
        cursor.execute("DROP TABLE bench_copy")
    return seconds


def import_seconds(path: Path, preset: str):
    from crm.imports.runner import import_job_create, import_job_run

    job = import_job_create(
        content=path.read_bytes(),
        file_name=path.name,
        preset=preset,
        dry_run=False,
        actor=None,
        enqueue=False,
    )
    seconds, job = time_once(lambda: import_job_run(job_id=job.pk))
    return seconds, job


# The tables an import writes (its rows, then its lifecycle figures).
WRITTEN_TABLES = (
    "crm_customer",
    "crm_customerevent",
    "crm_channelidentity",
    "crm_customerchannelprofile",
    "crm_consentevent",
    "crm_consentstate",
    "crm_order",
    "crm_orderline",
)


def bare_insert_seconds() -> tuple[int, float]:
    """The floor of writing what the import wrote: every row it left in
    WRITTEN_TABLES inserted again, by one INSERT ... SELECT per table, into
    an empty copy of the table with the same indexes and constraints (no
    client, no parsing, no checks beyond the database's own). Returns
    (rows, seconds)."""
    from django.db import connection

    rows = 0
    total = 0.0
    with connection.cursor() as cursor:
        for table in WRITTEN_TABLES:
            cursor.execute(f"CREATE TABLE bench_{table} (LIKE {table} INCLUDING ALL)")
            seconds, _result = time_once(
                lambda table=table: cursor.execute(
                    f"INSERT INTO bench_{table} SELECT * FROM {table}"
                )
            )
            rows += cursor.rowcount
            total += seconds
            cursor.execute(f"DROP TABLE bench_{table}")
    return rows, total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=300_000)
    args = parser.parse_args()
    django_setup()
    migrate()
    from django.conf import settings

    with tempfile.TemporaryDirectory() as directory:
        settings.MEDIA_ROOT = Path(directory) / "media"
        customer_path, order_path = files(args.customers, args.orders, Path(directory))
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            server = ServerCpu(cursor.fetchone()[0])
        rows = []
        total = cpu = 0.0
        for label, path, columns, preset, count in (
            ("customers", customer_path, CUSTOMER_HEADER, "customers", args.customers),
            ("orders", order_path, ORDER_HEADER, "orders", args.orders),
        ):
            copy = copy_seconds(path, columns)
            load_before = os.getloadavg()[0]
            app_cpu, db_cpu = time.process_time(), server.total()
            seconds, job = import_seconds(path, preset)
            app_cpu, db_cpu = time.process_time() - app_cpu, server.total() - db_cpu
            total += seconds
            cpu += app_cpu + db_cpu
            rows.append(
                (
                    label,
                    count,
                    f"{count / copy:,.0f}",
                    f"{count / seconds:,.0f}",
                    f"{seconds:.1f}",
                    f"{app_cpu:.1f}",
                    f"{db_cpu:.1f}",
                    f"{load_before:.1f}",
                    f"{os.getloadavg()[0]:.1f}",
                    job.counts.get("rows_rejected"),
                )
            )
    header = (
        "file",
        "rows",
        "COPY rows/s",
        "import rows/s",
        "import s",
        "app CPU s",
        "db CPU s",
        "load before",
        "load after",
        "refused",
    )
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(str(value) for value in row))
    written, floor = bare_insert_seconds()
    print(
        f"floor: the {written:,} rows the import wrote, inserted again by INSERT ... SELECT"
        f" into copies of their tables with their indexes (not their foreign keys): {floor:.1f} s"
        f" (load {os.getloadavg()[0]:.1f})"
    )
    full = args.customers >= 100_000 and args.orders >= 300_000
    verdict = ("pass" if total < 120 else "FAIL") if full else "not the target's size"
    print(f"CPU of the whole import: {cpu:.1f} s (the app's process and PostgreSQL's)")
    print(f"whole import: {total:.1f} s (target < 120 s for 100,000 + 300,000 rows): {verdict}")


if __name__ == "__main__":
    main()
