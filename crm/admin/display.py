"""Pieces the CRM admin pages share: amounts in yen, read-only inlines and
the filter that hides merged customers."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyMixin
from core.admin_filters import DefaultingFilter


def yen(amount: int | None) -> str:
    return "" if amount is None else f"¥{amount:,}"


class ReadOnlyInline(ReadOnlyMixin, admin.TabularInline):
    extra = 0
    can_delete = False
    select_related: tuple[str, ...] = ()

    def get_queryset(self, request):
        return super().get_queryset(request).select_related(*self.select_related)


class MergedFilter(DefaultingFilter):
    """Merged customers are stubs pointing at the survivor: hidden unless asked for."""

    title = _("merged")
    parameter_name = "merged"
    default_title = _("Not merged")

    def lookups(self, request, model_admin):
        return [("yes", _("Merged only")), ("all", _("All, including merged"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(merged_into__isnull=False)
        if self.value() == "all":
            return queryset
        return queryset.filter(merged_into__isnull=True)
