"""The order ingest benchmark's data: the returning customers seeded
set-based in PostgreSQL, the API key the clients use, and the order payloads
they POST (a share of them from customers not seen before).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

from bench.customers_sql import insert_select

RETURNING_CUSTOMERS = 100_000
NEW_SHARE = 0.3
FAMILY = [("佐藤", "サトウ"), ("鈴木", "スズキ"), ("高橋", "タカハシ"), ("田中", "タナカ")]
GIVEN = [("花子", "ハナコ"), ("太郎", "タロウ"), ("美咲", "ミサキ"), ("翔太", "ショウタ")]


# --- Data --------------------------------------------------------------------


def seed(returning: int) -> int:
    """Returning customers, each with an own-site identity M<n> and exactly
    the profile the load generator sends for them (so a repeat order changes
    no profile field); plus the customer the bare endpoint uses. Server-side
    INSERT ... SELECT, no ORM per row. Returns the bare customer's id."""
    from django.db import connection

    from crm.models import ChannelIdentity, Customer

    with connection.cursor() as cursor:
        cursor.execute(
            insert_select(
                Customer,
                {
                    "family_name": "(%(family)s::text[])[1 + g %% 4]",
                    "given_name": "(%(given)s::text[])[1 + g %% 4]",
                    "family_name_kana": "(%(family_kana)s::text[])[1 + g %% 4]",
                    "given_name_kana": "(%(given_kana)s::text[])[1 + g %% 4]",
                    "email": "'m' || g || '@example.jp'",
                    "email_normalized": "'m' || g || '@example.jp'",
                    "phone": "'080-' || lpad(g::text, 8, '0')",
                    "phone_normalized": "'080' || lpad(g::text, 8, '0')",
                    "lifecycle_segment": "'prospect'",
                },
                "FROM generate_series(1, %(n)s) AS g",
            ),
            {
                "n": returning,
                "family": [f for f, _k in FAMILY],
                "given": [g for g, _k in GIVEN],
                "family_kana": [k for _f, k in FAMILY],
                "given_kana": [k for _g, k in GIVEN],
            },
        )
        cursor.execute(
            insert_select(
                ChannelIdentity,
                {
                    "customer_id": "id",
                    "channel": "'own_site'",
                    "external_id": "'M' || substr(email, 2, strpos(email, '@') - 2)",
                },
                "FROM crm_customer WHERE email LIKE %s",
            ),
            ["m%@example.jp"],
        )
        cursor.execute(
            insert_select(
                Customer,
                {"family_name": "'ベンチ'", "lifecycle_segment": "'prospect'"},
                "RETURNING id",
            )
        )
        bare_customer = cursor.fetchone()[0]
        cursor.execute("VACUUM ANALYZE")
    return bare_customer


def api_key() -> str:
    from core.models import ApiScope
    from core.services import api_key_create

    _key, secret = api_key_create(label="bench", scope=ApiScope.WRITE, channels=["own_site"])
    return secret


def order_payload(tag: str, number: int, rng: random.Random, new_share: float = NEW_SHARE) -> dict:
    """One order as a store site sends it: 70% from a returning customer."""
    if rng.random() < new_share:
        k = f"{tag}-{number}"
        family, given = rng.choice(FAMILY), rng.choice(GIVEN)
        customer = {
            "external_id": f"N{k}",
            "email": f"n{k}@example.jp",
            "family_name": family[0],
            "given_name": given[0],
            "family_name_kana": family[1],
            "given_name_kana": given[1],
            "phone": f"090-{rng.randrange(10**8):08d}",
        }
    else:
        g = rng.randint(1, RETURNING_CUSTOMERS)
        customer = {
            "external_id": f"M{g}",
            "email": f"m{g}@example.jp",
            "family_name": FAMILY[g % 4][0],
            "given_name": GIVEN[g % 4][0],
            "family_name_kana": FAMILY[g % 4][1],
            "given_name_kana": GIVEN[g % 4][1],
            "phone": f"080-{g:08d}",
        }
    lines = [
        {
            "sku": f"SKU-{rng.randrange(5000):05d}",
            "name": "今治タオル フェイスタオル",
            "quantity": rng.randint(1, 3),
            "unit_price": rng.choice([980, 1480, 2980, 4980]),
        }
        for _ in range(rng.randint(2, 3))
    ]
    return {
        "channel": "own_site",
        "order_number": f"W-{tag}-{number}",
        "customer": customer,
        "ordered_at": datetime.now(UTC).isoformat(),
        "total": sum(line["quantity"] * line["unit_price"] for line in lines),
        "lines": lines,
    }
