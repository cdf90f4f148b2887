"""Test data built through the services, the way production builds it."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from django.utils import timezone

from crm import services
from crm.models import Customer, Order, OrderStatus

_seq = itertools.count(1)


def customer(*, channel: str = "own_site", **profile) -> Customer:
    n = next(_seq)
    profile.setdefault("external_id", f"member-{n}")
    profile.setdefault("family_name", "山田")
    profile.setdefault("given_name", f"太郎{n}")
    profile.setdefault("family_name_kana", "ヤマダ")
    profile.setdefault("given_name_kana", "タロウ")
    profile.setdefault("email", f"taro{n}@example.jp")
    external_id = profile.pop("external_id")
    tags = profile.pop("tags", ())
    created, _ = services.customer_upsert(
        channel=channel, external_id=external_id, tags=tags, **profile
    )
    return created


def order(
    *,
    customer: Customer,
    channel: str = "own_site",
    total: int = 3000,
    ordered_at: datetime | None = None,
    status: str = OrderStatus.DELIVERED,
    order_number: str | None = None,
    lines: list[services.OrderLineData] | None = None,
) -> Order:
    created, _ = services.order_upsert(
        channel=channel,
        order_number=order_number or f"ORD-{next(_seq):06d}",
        customer=customer,
        ordered_at=ordered_at or timezone.now() - timedelta(days=3),
        total=total,
        status=status,
        lines=lines
        if lines is not None
        else [
            services.OrderLineData(
                sku="TEA-SENCHA-100", name="静岡煎茶 100g", quantity=1, unit_price=total
            )
        ],
    )
    return created
