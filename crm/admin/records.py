"""Read-only views of orders (they come from the store sites through the
API), the append-only consent ledger and the retention runs; and tags."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyMixin, staff_column
from crm.admin.display import ReadOnlyInline, yen
from crm.event_details import retention_event_summary
from crm.models import ConsentEvent, Order, OrderLine, RetentionEvent, Tag


class OrderLineInline(ReadOnlyInline):
    model = OrderLine
    fields = readonly_fields = ("sku", "name", "quantity", "price")

    @admin.display(description=OrderLine._meta.get_field("unit_price").verbose_name)
    def price(self, obj: OrderLine) -> str:
        return yen(obj.unit_price)


@admin.register(Order)
class OrderAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Orders arrive from the store sites through the API: read-only here."""

    list_display = ("channel", "order_number", "customer", "status", "order_total", "ordered_at")
    list_filter = ("channel", "status")
    list_select_related = ("customer",)
    search_fields = ("=order_number",)
    search_help_text = _("Exact order number")
    ordering = ("-ordered_at", "-id")
    show_full_result_count = False
    inlines = (OrderLineInline,)
    # The change page: every field as stored, the total with its separators.
    fields = readonly_fields = (
        "channel",
        "order_number",
        "customer",
        "status",
        "ordered_at",
        "shipped_at",
        "delivered_at",
        "order_total",
        "anonymized_at",
        "created_at",
        "updated_at",
    )

    @admin.display(description=_("total (JPY)"), ordering="total")
    def order_total(self, obj: Order) -> str:
        return yen(obj.total)


@admin.register(ConsentEvent)
class ConsentEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """The consent ledger is append-only: consent_record writes it."""

    list_display = (
        "occurred_at",
        "customer",
        "channel",
        "action",
        "source",
        "wording_version",
        "actor_name",
        "recorded_at",
    )
    actor_name = staff_column(ConsentEvent, "actor")
    list_filter = ("channel", "action", "source")
    list_select_related = ("customer", "actor")
    ordering = ("-occurred_at", "-id")
    show_full_result_count = False

    class Media:
        css = {"all": ("crm/admin.css",)}


@admin.register(RetentionEvent)
class RetentionEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """What each run of the retention job did (crm.services.retention)."""

    list_display = ("created_at", "kind", "channel", "summary")
    list_filter = ("kind", "channel")
    ordering = ("-created_at", "-id")
    show_full_result_count = False

    @admin.display(description=_("details"))
    def summary(self, obj: RetentionEvent) -> str:
        return retention_event_summary(obj)


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ("name", "customer_count", "created_at")
    search_fields = ("name",)
    ordering = ("name",)
    show_full_result_count = False

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(customer_count=Count("customers"))

    @admin.display(description=_("customers"), ordering="customer_count")
    def customer_count(self, obj: Tag) -> int:
        return obj.customer_count  # type: ignore[attr-defined]  # annotated by get_queryset
