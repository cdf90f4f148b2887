"""Orders: upsert by channel and order number."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.db import copy_insert, insert_if_absent
from core.validation import FieldsCheck
from crm.models import (
    Customer,
    Order,
    OrderLine,
    OrderStatus,
    order_dates_errors,
)
from crm.services.customers import UpsertOutcome, customer_follow_merges
from crm.services.lifecycle import lifecycle_recompute


@dataclass(frozen=True)
class OrderLineData:
    sku: str
    name: str
    quantity: int
    unit_price: int


def _lines_known(order: Order, lines: list[OrderLine]) -> None:
    """Remember the lines just written as `order.lines.all()`, the way
    prefetch_related stores what it read: whoever shows the order next (the
    API's response) does not read them back."""
    cached = order.lines.all()
    cached._result_cache = lines
    cached._prefetch_done = True  # type: ignore[attr-defined]  # Django's prefetch cache, as prefetch_related fills it
    order._prefetched_objects_cache = {  # type: ignore[attr-defined]  # Django's prefetch cache, as prefetch_related fills it
        **getattr(order, "_prefetched_objects_cache", {}),
        "lines": cached,
    }


def order_upsert(
    *,
    channel: str,
    order_number: str,
    customer: Customer,
    ordered_at: datetime,
    total: int,
    status: str = OrderStatus.PAID,
    shipped_at: datetime | None = None,
    delivered_at: datetime | None = None,
    lines: Sequence[OrderLineData] | None = None,
) -> tuple[Order, bool]:
    """Create or update an order by (channel, order number), replace its
    lines when given, and keep the customer's lifecycle metrics right.
    Returns (order, created)."""
    order, outcome = order_upsert_outcome(
        channel=channel,
        order_number=order_number,
        customer=customer,
        ordered_at=ordered_at,
        total=total,
        status=status,
        shipped_at=shipped_at,
        delivered_at=delivered_at,
        lines=lines,
    )
    return order, outcome == UpsertOutcome.CREATED


def order_upsert_outcome(
    *,
    channel: str,
    order_number: str,
    customer: Customer,
    ordered_at: datetime,
    total: int,
    status: str = OrderStatus.PAID,
    shipped_at: datetime | None = None,
    delivered_at: datetime | None = None,
    lines: Sequence[OrderLineData] | None = None,
    lifecycle: bool = True,
    journeys: bool = True,
) -> tuple[Order, str]:
    """`order_upsert`, telling what it did (an UpsertOutcome). An order
    sent again as it is (an import run twice) is left alone: no write, its
    lines kept. `lifecycle=False`: the caller recomputes the customers'
    lifecycle itself, once for many orders (an import). `journeys=False`:
    the order is history being brought in (an import), not news: it starts
    no journey (no order confirmation for an order placed last year, nor
    for yesterday's)."""
    customer = customer_follow_merges(customer)
    fields = {
        "customer": customer,
        "ordered_at": ordered_at,
        "total": total,
        "status": status,
        "shipped_at": shipped_at,
        "delivered_at": delivered_at,
        # The channel sent the order again: its buyer's data is live again
        # and its retention period (crm.services.retention) counts anew.
        "anonymized_at": None,
    }
    order = Order(channel=channel, order_number=order_number, **fields)
    order_clean(order)
    # No savepoint inside a caller's transaction: nothing below is expected
    # to fail, and whatever does fails the whole request.
    with transaction.atomic(savepoint=False):
        # A new order (most of a store site's feed) is one INSERT; an order
        # already there (or committed by a racing request meanwhile) is
        # locked and updated.
        created = insert_if_absent(order, unique_fields=["channel", "order_number"])
        previous_customer_id = None
        before = None
        if not created:
            order = Order.objects.select_for_update().get(
                channel=channel, order_number=order_number
            )
            if _order_unchanged(order, fields, lines):
                return order, UpsertOutcome.UNCHANGED
            previous_customer_id = order.customer_id
            before = (order.status, order.shipped_at, order.delivered_at)
            for name, value in fields.items():
                setattr(order, name, value)
            order.save()
        if lines is not None:
            if not created:
                order.lines.all().delete()
            written = OrderLine.objects.bulk_create(
                OrderLine(order=order, **line.__dict__) for line in lines
            )
            _lines_known(order, written)
        if previous_customer_id not in (None, customer.pk):
            _inquiries_order_moved(order)
        if lifecycle:
            lifecycle_recompute(customer_ids={customer.pk, previous_customer_id or customer.pk})
        else:
            order.lifecycle_customer_ids = {customer.pk, previous_customer_id or customer.pk}  # type: ignore[attr-defined]  # read by the caller, set here
        if journeys:
            _journeys_order_changed(order, created=created, before=before)
    return order, UpsertOutcome.CREATED if created else UpsertOutcome.UPDATED


def order_clean(order: Order) -> None:
    """Validate an order about to be written (ValidationError): fields only
    (their validators include the total's check constraint): the customer
    is a row we hold, and the (channel, order number) pair is settled by
    the unique index."""
    order.full_clean(exclude=["customer"], validate_unique=False, validate_constraints=False)


def _order_unchanged(order: Order, fields: dict, lines: Sequence[OrderLineData] | None) -> bool:
    """Whether the locked `order` already holds `fields` and `lines` (None:
    lines not given)."""
    for name, value in fields.items():
        current = order.customer_id if name == "customer" else getattr(order, name)
        if name == "customer":
            value = value.pk
        if current != value:
            return False
    if lines is None:
        return True
    held = [
        OrderLineData(
            sku=line.sku, name=line.name, quantity=line.quantity, unit_price=line.unit_price
        )
        for line in order.lines.order_by("id")
    ]
    return held == list(lines)


def _journeys_order_changed(order: Order, *, created: bool, before: Any) -> None:
    """Journeys are outreach's, which imports crm: the order's change is
    handed over here (triggers as the data changes, never a scan)."""
    from outreach.services.journey_entry import journeys_order_changed

    journeys_order_changed(order=order, created=created, before=before)


def _inquiries_order_moved(order: Order) -> None:
    """Inquiries are tickets': tickets imports crm at module level, so crm
    reaches it only here, when an order changes buyer (an inquiry's order
    is always its customer's)."""
    from tickets.services.inquiries import inquiries_order_moved

    inquiries_order_moved(order=order)


@dataclass(frozen=True)
class NewOrder:
    """An order no (channel, order number) of ours holds (the caller
    checked): what order_upsert would get for it."""

    channel: str
    order_number: str
    customer: Customer | None  # None: only checked (orders_clean_bulk), not created
    ordered_at: datetime
    total: int
    status: str
    shipped_at: datetime | None
    delivered_at: datetime | None
    lines: Sequence[OrderLineData]


# order_clean's full_clean, for a batch: the fields a NewOrder gives.
_ORDER_CHECK = FieldsCheck(
    Order,
    [
        "channel",
        "order_number",
        "status",
        "ordered_at",
        "shipped_at",
        "delivered_at",
        "total",
    ],
)


def orders_clean_bulk(*, orders: Sequence[NewOrder]) -> list[ValidationError | None]:
    """order_clean for many orders, checked as a batch: per order, what
    order_clean would raise (the same messages, the same fields in the same
    order), or None."""
    now = timezone.now()
    results: list[ValidationError | None] = []
    for data in orders:
        values = {
            "channel": data.channel,
            "order_number": data.order_number,
            "status": data.status,
            "ordered_at": data.ordered_at,
            "shipped_at": data.shipped_at,
            "delivered_at": data.delivered_at,
            "total": data.total,
        }
        errors: dict[str, list] = dict(_ORDER_CHECK.errors(values))
        for name, messages in order_dates_errors(data, now=now).items():
            errors.setdefault(name, []).extend(ValidationError(messages).error_list)
        results.append(ValidationError(errors) if errors else None)
    return results


def orders_create_bulk(*, orders: Sequence[NewOrder]) -> list[int | ValidationError]:
    """Create orders the way order_upsert creates one it did not find (the
    same validation, checked as a batch, and the lines), in one COPY for
    the orders and one for their lines. The caller recomputes the
    customers' lifecycle (as order_upsert_outcome with lifecycle=False).
    Returns, per order, its id or why it was refused."""
    results: list[int | ValidationError] = []
    valid: list[tuple[int, NewOrder]] = []
    for data, error in zip(orders, orders_clean_bulk(orders=orders), strict=True):
        if error is not None:
            results.append(error)
            continue
        valid.append((len(results), data))
        results.append(0)  # its id, below
    ids = copy_insert(
        Order,
        [
            {
                "channel": data.channel,
                "order_number": data.order_number,
                "customer_id": data.customer.pk,  # type: ignore[union-attr]  # created orders have their customer
                "ordered_at": data.ordered_at,
                "total": data.total,
                "status": data.status,
                "shipped_at": data.shipped_at,
                "delivered_at": data.delivered_at,
            }
            for _index, data in valid
        ],
    )
    for (index, _data), pk in zip(valid, ids, strict=True):
        results[index] = pk
    copy_insert(
        OrderLine,
        [
            {"order_id": pk, **line.__dict__}
            for pk, (_index, data) in zip(ids, valid, strict=True)
            for line in data.lines
        ],
    )
    return results
