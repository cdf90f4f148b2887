"""Orders and their lines, with the order statuses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.choices import Channel
from core.types import StrOrPromise
from crm.models.customers import Customer
from crm.trade_time import trade_time_error


class OrderStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    PAID = "paid", _("Paid")
    SHIPPED = "shipped", _("Shipped")
    DELIVERED = "delivered", _("Delivered")
    CANCELLED = "cancelled", _("Cancelled")
    RETURNED = "returned", _("Returned")


# Orders still to ship: what a sales stop or a system failure holds up.
UNSHIPPED_ORDER_STATUSES = (OrderStatus.PENDING, OrderStatus.PAID)

# Orders in these states do not count towards lifecycle metrics.
NON_COUNTING_ORDER_STATUSES = (OrderStatus.CANCELLED, OrderStatus.RETURNED)


class Order(models.Model):
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    order_number = models.CharField(_("order number"), max_length=64)
    customer = models.ForeignKey(
        Customer,
        on_delete=models.PROTECT,
        related_name="orders",
        verbose_name=_("customer"),
        # Served by crm_order_customer (customer first): a second index on
        # the column alone would only cost every insert.
        db_index=False,
    )
    status = models.CharField(
        _("status"), max_length=10, choices=OrderStatus.choices, default=OrderStatus.PAID
    )
    ordered_at = models.DateTimeField(_("ordered at"))
    shipped_at = models.DateTimeField(_("shipped at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    total = models.BigIntegerField(_("total (JPY)"), validators=[MinValueValidator(0)])
    # Set by the retention job (crm.services.retention) when the personal
    # data the order's channel gave of its buyer was anonymised; cleared when
    # the channel sends the order again.
    anonymized_at = models.DateTimeField(_("buyer's data anonymised at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "order_number"], name="crm_order_number_unique_per_channel"
            ),
            models.CheckConstraint(condition=Q(total__gte=0), name="crm_order_total_gte_0"),
        ]
        indexes = [
            # A customer's orders by time, and the lifecycle aggregate read
            # from the index alone, in customer order (see
            # crm.services.lifecycle_recompute).
            models.Index(
                fields=["customer", "ordered_at"],
                include=["total", "status"],
                name="crm_order_customer",
            ),
            models.Index(fields=["order_number"], name="crm_order_number"),
            # The retention job's queue: Amazon orders whose buyer's data is
            # still there, by the day its period starts. Orders already done
            # leave it, so a run with nothing due reads a few entries.
            models.Index(
                Coalesce("delivered_at", "ordered_at"),
                name="crm_order_retention_amazon",
                condition=Q(channel="amazon", anonymized_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} {self.order_number}"

    def clean(self) -> None:
        if errors := order_dates_errors(self, now=timezone.now()):
            raise ValidationError(errors)


def order_dates_errors(order: Any, *, now: datetime) -> dict[str, list[StrOrPromise]]:
    """Dates a sale can have (Order.clean, and the import's batches, with
    anything holding an order's dates): in trade's years (crm.trade_time),
    and no shipment or delivery before the order."""
    errors: dict[str, list[StrOrPromise]] = {}
    for name in ("ordered_at", "shipped_at", "delivered_at"):
        value = getattr(order, name)
        if value is not None and (message := trade_time_error(value, now=now)):
            errors[name] = [message]
    before_order = {
        "shipped_at": _("The shipment cannot be before the order."),
        "delivered_at": _("The delivery cannot be before the order."),
    }
    for name, wording in before_order.items():
        value = getattr(order, name)
        if name in errors or value is None or order.ordered_at is None:
            continue
        if value < order.ordered_at:
            errors[name] = [wording]
    return errors


class OrderLine(models.Model):
    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, related_name="lines", verbose_name=_("order")
    )
    sku = models.CharField(_("SKU"), max_length=64)
    name = models.CharField(_("product name"), max_length=255)
    quantity = models.PositiveIntegerField(_("quantity"))
    unit_price = models.BigIntegerField(_("unit price (JPY)"))

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        indexes = [models.Index(fields=["sku"], name="crm_orderline_sku")]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gte=1), name="crm_orderline_quantity_gte_1"
            ),
            models.CheckConstraint(
                condition=Q(unit_price__gte=0), name="crm_orderline_unit_price_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sku} × {self.quantity}"
