"""The delivery ledger and its sends in the admin: read-only.

Only the worker and the services write these rows. The ledger is the
largest table of the product, so its changelist never counts all rows,
never computes facets and searches customers through an indexed subquery.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib import admin
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.text import Truncator
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyAdmin, staff_column
from crm.models import Customer
from crm.selectors import customer_search_q
from outreach.models import Delivery, DeliveryStatus, Send, SkipReason
from outreach.selectors import SendProgress, send_progress


def progress_data(
    progress: SendProgress,
    *,
    status: str = "",
    status_label: str = "",
    quiet_until: datetime | None = None,
) -> dict:
    """A send's progress as the page and the JSON endpoint show it:
    attempted over sendable (`total` and `done`), counts for every delivery
    status of the sendable rows (zeros included), and apart from them the
    ineligible by reason and the holdout group. `quiet_until`: when the
    quiet hours the send waits out end (a notice says so)."""
    reason_labels = dict(SkipReason.choices)
    # Skipped rows among the sendable: at send time, or by a cancel.
    by_status = dict(progress.by_status)
    by_status[DeliveryStatus.SKIPPED] = (
        by_status.get(DeliveryStatus.SKIPPED, 0) - progress.ineligible - progress.held_out
    )
    notice = ""
    if quiet_until is not None and progress.pending:
        notice = gettext("Quiet hours: sending resumes at %(time)s.") % {
            "time": timezone.localtime(quiet_until).strftime("%H:%M")
        }
    return {
        "status": status,
        "status_label": str(status_label),
        "total": progress.sendable,
        "done": progress.attempted,
        "pending": progress.pending,
        "percent": progress.percent,
        "ineligible": progress.ineligible,
        "held_out": progress.held_out,
        "notice": notice,
        "by_status": [
            {"status": value, "label": str(label), "count": by_status.get(value, 0)}
            for value, label in DeliveryStatus.choices
        ],
        "by_reason": [
            {"reason": reason, "label": str(reason_labels.get(reason, reason)), "count": count}
            for reason, count in sorted(
                {  # type: ignore[misc]  # mypy infers no key type for the empty dict below
                    **progress.ineligible_by_reason,
                    **({SkipReason.CANCELLED: progress.cancelled} if progress.cancelled else {}),
                }.items(),
                key=lambda item: -item[1],
            )
        ],
    }


def deliveries_url(send_id: int) -> str:
    return reverse("admin:outreach_delivery_changelist") + f"?send__id__exact={send_id}"


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = (
        "customer",
        "channel",
        "status",
        "skip_reason",
        "attempts",
        "error_excerpt",
        "sent_at",
        "send",
    )
    list_filter = ("status", "skip_reason", "channel", "send__kind")
    list_select_related = ("customer", "send")
    # get_search_results does the searching; this only makes the box appear.
    search_fields = ("customer__email",)
    search_help_text = _("Customer name, kana, email or phone")
    ordering = ("-id",)
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    @admin.display(description=_("last error"))
    def error_excerpt(self, obj: Delivery) -> str:
        return Truncator(obj.last_error).chars(80)

    def get_search_results(self, request: HttpRequest, queryset, search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        customers = Customer.objects.filter(customer_search_q(term)).values("pk")
        return queryset.filter(customer_id__in=customers), False


@admin.register(Send)
class SendAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "kind", "channel", "purpose", "template", "status", "created_at")
    list_filter = ("kind", "channel", "purpose", "status")
    list_select_related = ("template",)
    ordering = ("-id",)
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    fields = (
        "progress",
        "kind",
        "channel",
        "purpose",
        "template",
        "status",
        "respect_quiet_hours",
        "content",
        "created_by_name",
        "created_at",
        "completed_at",
    )
    readonly_fields = fields
    created_by_name = staff_column(Send, "created_by")

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("template", "created_by")

    @admin.display(description=_("progress"))
    def progress(self, obj: Send) -> str:
        # render_to_string returns safe HTML: the readonly field shows it as is.
        data = progress_data(
            send_progress(obj), status=obj.status, status_label=obj.get_status_display()
        )
        return render_to_string(
            "admin/outreach/includes/send_progress.html",
            {"progress": data, "deliveries_url": deliveries_url(obj.pk)},
        )
