"""Benchmark: the inbox's and the customer list's search box at scale,
each search next to its bare SQL (issue 18: search that finds).

Builds the data of bench/inbox.py (bench/inbox_data.py: 1,000,000
inquiries, 50,000 open, 200,000 customers with common Japanese names,
400,000 Amazon orders, subjects and messages in a shop's words), then
measures through gunicorn, as bench/inbox.py measures the pages
(bench/inbox_measure.py): a name typed without the space, its kana, two
characters, the last digits of an order number and of a phone, the number
part of a reference, words of the customer's messages (a product in 1 % of
them, two characters in 10 % and 13 %), an email in upper case; in the
inbox (open inquiries, the default, and all statuses) and in the customer
list. A search that finds more than 1,000 inquiries is counted up to
1,000 (「1,000件以上」); "rows" is the rows on the page.

It prints median and p95 in milliseconds, the target (p95 < 150 ms), the
1-minute load average after each figure, the SQL of each search with its
own times and EXPLAIN ANALYZE of its row query and slowest query. It
prints numbers; it is not a pass/fail test.

Run (the figures in bench/README.md come from exactly this command):

    scripts/with-postgres.sh .venv/bin/python bench/inbox_search.py

`--inquiries 100000 --open 5000 --customers 20000 --repeat 20` gives a quick
run. Only 127.0.0.1 is ever contacted; gunicorn is always stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Before Django reads its settings: the bench agent logs in with a password.
os.environ["ADMIN_REQUIRE_OTP"] = "false"

from bench.common import django_setup, migrate, sql
from bench.inbox_data import build
from bench.inbox_measure import bench_arguments, measure_pages, report


def search_cases() -> list[tuple[str, str, str, dict]]:
    """The searches measured, in the inbox (open inquiries, the default,
    and all) and the customer list, each term one that exists in the data."""
    from urllib.parse import quote

    order = sql("SELECT order_number FROM crm_order ORDER BY id LIMIT 1 OFFSET 4242", fetch=True)
    order_digits = order[0][0][-7:]
    phone = sql(
        "SELECT phone_normalized FROM crm_customer WHERE phone_normalized <> '' LIMIT 1 OFFSET 777",
        fetch=True,
    )[0][0]
    inbox, customers = "/admin/tickets/inquiry/", "/admin/crm/customer/"
    searches = [
        ("name without space 岡田彩", inbox, "岡田彩", ""),
        ("name without space 岡田彩, all statuses", inbox, "岡田彩", "&status=all"),
        ("kana おかだあや, all statuses", inbox, "おかだあや", "&status=all"),
        ("two characters 岡田, all statuses", inbox, "岡田", "&status=all"),
        (f"order number digits {order_digits}", inbox, order_digits, "&status=all"),
        ("reference digits 00032", inbox, "00032", "&status=all"),
        ("message words 益子焼の土鍋 (1 %)", inbox, "益子焼の土鍋", ""),
        ("message words 益子焼の土鍋 (1 %), all statuses", inbox, "益子焼の土鍋", "&status=all"),
        ("message words 土鍋 (2 characters, 10 %)", inbox, "土鍋", ""),
        ("message words 土鍋 (2 characters, 10 %), all statuses", inbox, "土鍋", "&status=all"),
        ("message words 返品 (2 characters, 13 %)", inbox, "返品", ""),
        ("message words 返品 (2 characters, 13 %), all statuses", inbox, "返品", "&status=all"),
        ("two characters 岡田 (5,000 customers)", inbox, "岡田", ""),
        ("email C4242@EXAMPLE.JP", inbox, "C4242@EXAMPLE.JP", "&status=all"),
        (f"phone last digits {phone[-8:]}", inbox, phone[-8:], "&status=all"),
        ("customers: name 岡田彩", customers, "岡田彩", ""),
        ("customers: kana ｵｶﾀﾞ", customers, "ｵｶﾀﾞ", ""),
        (f"customers: order number digits {order_digits}", customers, order_digits, ""),
        (f"customers: phone {phone}", customers, phone, ""),
    ]
    return [
        ("search", f"search: {name}", f"{path}?q={quote(term)}{extra}", {})
        for name, path, term, extra in searches
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    bench_arguments(parser)
    args = parser.parse_args()
    args.open = min(args.open, args.inquiries)

    django_setup()
    migrate()
    load_before = os.getloadavg()
    data = build(inquiries=args.inquiries, open_count=args.open, customers=args.customers)
    rows, details = measure_pages(search_cases(), agent=data["agent"], args=args)
    report(rows, details, args=args, load_before=load_before)


if __name__ == "__main__":
    main()
