"""Sales suspensions (販売停止) in the admin.

The list says what is stopped where, until when, who decided, and how the
notices went. Adding one records it through `suspension_record` (the
48-hour rule and the template check are the service's; the form shows
their reasons). A recorded suspension is not edited: its page shows who
was told, on which channel, what became of each message, the inquiries
linked and those worth linking, the 「再開する」 form (`suspension_lift`)
and the CSV of affected orders for the mall back-office.
"""

from __future__ import annotations

import csv
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from core.admin import ServiceFormAdmin, copy_saved, form_errors_add, staff_column
from core.audit import audit_csv_record
from core.roles import staff_name
from crisis.admin.suspension_forms import LiftForm, LinkForm, SuspensionAddForm
from crisis.admin.suspension_words import (
    CSV_HEADERS,
    channel_names,
    delivery_outcome,
    event_text,
    local_time,
    notice_counts_text,
)
from crisis.models import (
    Suspension,
    SuspensionNoticeKind,
)
from crisis.selectors.suspensions import (
    suspension_affected_lines,
    suspension_deliveries,
    suspension_linked_inquiries,
    suspension_list,
    suspension_notice_counts,
    suspension_notices,
    suspension_suggested_inquiries,
    suspension_told,
)
from crisis.services.suspensions import (
    suspension_inquiries_link,
    suspension_lift,
    suspension_record,
)
from outreach.admin.deliveries import deliveries_url

SHORT = "SHORT_DATETIME_FORMAT"  # list columns
# The page lists this many recipients; the ledger's own page has them all.
RECIPIENTS_SHOWN = 200
SUGGESTIONS_SHOWN = 50


# --- The admin -------------------------------------------------------------------


class LiftedFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", _("Suspended")), ("lifted", _("Resumed"))]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(lifted_at__isnull=True)
        if self.value() == "lifted":
            return queryset.filter(lifted_at__isnull=False)
        return queryset


RECORD_FIELDS = (
    "sku",
    "product_name",
    "channel_list",
    "reason",
    "sales_stopped",
    "expected_resume_at",
    "note",
    "decided_by_name",
    "decided_at",
    "lifted_at",
    "lifted_by_name",
)


@admin.register(Suspension)
class SuspensionAdmin(ServiceFormAdmin):
    form = SuspensionAddForm
    change_form_template = "admin/crisis/suspension/change_form.html"
    list_display = (
        "sku",
        "product_name",
        "channel_list",
        "reason",
        "sales_stopped",
        "expected_resume_at",
        "decided",
        "lifted",
        "notices",
    )
    list_filter = (LiftedFilter, "reason", "sales_stopped")
    search_fields = ("sku", "product_name")
    ordering = ("-decided_at", "-id")
    show_full_result_count = False

    decided_by_name = staff_column(Suspension, "decided_by")
    lifted_by_name = staff_column(Suspension, "lifted_by")

    def get_queryset(self, request: HttpRequest):
        return suspension_list()

    def get_changelist_instance(self, request: HttpRequest):
        changelist = super().get_changelist_instance(request)
        rows = list(changelist.result_list)
        counts = suspension_notice_counts(row.pk for row in rows)
        for row in rows:
            row.notice_counts = counts.get(row.pk, {})
        return changelist

    @admin.display(description=_("channels"))
    def channel_list(self, obj: Suspension) -> str:
        return channel_names(obj.channels) or "—"

    @admin.display(description=_("decided (when, by whom)"), ordering="decided_at")
    def decided(self, obj: Suspension) -> str:
        return f"{local_time(obj.decided_at, SHORT)}（{staff_name(obj.decided_by)}）"

    @admin.display(description=_("lifted (when, by whom)"), ordering="lifted_at")
    def lifted(self, obj: Suspension) -> str:
        if obj.lifted_at is None:
            return gettext("Not yet")
        return f"{local_time(obj.lifted_at, SHORT)}（{staff_name(obj.lifted_by)}）"

    @admin.display(description=_("customers told"))
    def notices(self, obj: Suspension) -> str:
        counts = getattr(obj, "notice_counts", {})
        lines = []
        for kind, label in SuspensionNoticeKind.choices:
            if kind in counts:
                lines.append(f"{label}: {notice_counts_text(counts[kind])}")
        return format_html("{}", "／".join(lines)) if lines else "—"

    # --- Adding ----------------------------------------------------------------------

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is not None:
            kwargs["form"] = forms.ModelForm
            kwargs["fields"] = ()
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Suspension | None = None):
        if obj is None:
            return [
                "sku",
                "product_name",
                "reason",
                "expected_resume_at",
                "sales_stopped",
                "channels",
                "note",
                "email_template",
                "line_template",
            ]
        return list(RECORD_FIELDS)

    def get_readonly_fields(self, request: HttpRequest, obj: Suspension | None = None):
        return RECORD_FIELDS if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # lifted, never deleted: the notices sent stay on record

    def save_model(self, request: HttpRequest, obj: Suspension, form, change: bool) -> None:
        if change:
            return  # a recorded suspension is lifted, not edited
        data = form.cleaned_data
        suspension = suspension_record(
            sku=data["sku"],
            product_name=data["product_name"],
            channels=data.get("channels") or [],
            reason=data["reason"],
            expected_resume_at=data["expected_resume_at"],
            sales_stopped=data.get("sales_stopped", False),
            note=data.get("note", ""),
            email_template=data.get("email_template"),
            line_template=data.get("line_template"),
            actor=request.user,  # type: ignore[arg-type]  # admin_view: signed-in staff only
        )
        copy_saved(obj, suspension)

    def save_related(self, request, form, formsets, change):
        pass  # suspension_record wrote everything

    # --- The page -----------------------------------------------------------------------

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None):
        if from_field is not None:
            return super().get_object(request, object_id, from_field)
        try:
            return suspension_list().get(pk=object_id)
        except (Suspension.DoesNotExist, ValidationError, ValueError):
            return None

    def render_change_form(
        self, request, context, add=False, change=False, form_url="", obj=None
    ) -> HttpResponse:
        if obj is not None and obj.pk:
            context.update(self.page_context(request, obj))
            context.update(
                show_save=False, show_save_and_continue=False, show_save_and_add_another=False
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def page_context(
        self, request: HttpRequest, suspension: Suspension, *, lift_form=None
    ) -> dict[str, Any]:
        can_change = self.has_change_permission(request, suspension)
        notices = list(suspension_notices(suspension))
        counts = suspension_notice_counts([suspension.pk], notices=notices).get(suspension.pk, {})
        kinds = {notice.send_id: notice for notice in notices}
        rows = list(suspension_deliveries(suspension)[: RECIPIENTS_SHOWN + 1])
        recipients = [
            {
                "customer": row.customer,
                "notice": kinds[row.send_id].get_kind_display(),
                "channel": row.get_channel_display(),
                "status": row.status,
                "outcome": delivery_outcome(row),
                "sent_at": row.sent_at,
            }
            for row in rows[:RECIPIENTS_SHOWN]
        ]
        context: dict[str, Any] = {
            "suspension": suspension,
            "can_change": can_change,
            "notices": [
                {
                    "notice": notice,
                    "template": notice.send.template,
                    "deliveries_url": deliveries_url(notice.send_id),
                }
                for notice in notices
            ],
            "notice_summary": [
                (label, notice_counts_text(counts[kind]))
                for kind, label in SuspensionNoticeKind.choices
                if kind in counts
            ],
            "recipients": recipients,
            "recipients_more": len(rows) > RECIPIENTS_SHOWN,
            "linked_inquiries": list(suspension_linked_inquiries(suspension)),
            "lifted_by_name": staff_name(suspension.lifted_by),
            "events": [
                {
                    "event": event,
                    "actor_name": staff_name(event.actor),
                    "text": event_text(event, suspension),
                }
                for event in suspension.events.select_related("actor")
            ],
            "csv_url": reverse("admin:crisis_suspension_orders_csv", args=[suspension.pk]),
        }
        if can_change:
            context["suggested_inquiries"] = list(
                suspension_suggested_inquiries(suspension)[:SUGGESTIONS_SHOWN]
            )
            context["link_url"] = reverse("admin:crisis_suspension_link", args=[suspension.pk])
            if suspension.is_active:
                context["lift_form"] = lift_form or LiftForm()
                context["lift_url"] = reverse("admin:crisis_suspension_lift", args=[suspension.pk])
        return context

    # --- Lifting, linking, the CSV ---------------------------------------------------------

    def get_urls(self):
        return [
            path(
                "<path:object_id>/lift/",
                self.admin_site.admin_view(self.lift_view),
                name="crisis_suspension_lift",
            ),
            path(
                "<path:object_id>/link/",
                self.admin_site.admin_view(self.link_view),
                name="crisis_suspension_link",
            ),
            path(
                "<path:object_id>/orders.csv",
                self.admin_site.admin_view(self.orders_csv_view),
                name="crisis_suspension_orders_csv",
            ),
            *super().get_urls(),
        ]

    def _changeable(self, request: HttpRequest, object_id: str) -> Suspension:
        if request.method != "POST":
            raise _NotAllowed
        suspension = self.get_object(request, unquote(object_id))
        if suspension is None:
            raise Http404
        if not self.has_change_permission(request, suspension):
            raise PermissionDenied
        return suspension

    def _back(self, suspension: Suspension) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:crisis_suspension_change", args=[suspension.pk]))

    def lift_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        try:
            suspension = self._changeable(request, object_id)
        except _NotAllowed:
            return HttpResponseNotAllowed(["POST"])
        if not suspension.is_active:
            self.message_user(request, gettext("This suspension is lifted already."))
            return self._back(suspension)
        form = LiftForm(request.POST)
        if form.is_valid():
            try:
                lifted = suspension_lift(
                    suspension=suspension,
                    actor=request.user,  # type: ignore[arg-type]  # admin_view: signed-in staff only
                    email_template=form.cleaned_data.get("email_template"),
                    line_template=form.cleaned_data.get("line_template"),
                )
            except ValidationError as error:
                form_errors_add(form, error)
            else:
                self.log_change(request, lifted, gettext("Lifted."))
                self.message_user(request, self.lift_message(lifted), messages.SUCCESS)
                return self._back(lifted)
        self.message_user(
            request,
            gettext("Not lifted: %(errors)s")
            % {"errors": " ".join(m for errors in form.errors.values() for m in errors)},  # type: ignore[misc]  # an ErrorList yields its messages as str
            messages.ERROR,
        )
        return self._back(suspension)

    @staticmethod
    def lift_message(suspension: Suspension) -> str:
        counts = suspension_notice_counts([suspension.pk]).get(suspension.pk, {})
        resumed = counts.get(SuspensionNoticeKind.RESUMED)
        if resumed is None:
            return gettext("Sales resumed. No message was sent.")
        return gettext(
            "Sales resumed. %(count)s customer(s) are being told the product ships again."
        ) % {"count": resumed.total - resumed.skipped}

    def link_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        try:
            suspension = self._changeable(request, object_id)
        except _NotAllowed:
            return HttpResponseNotAllowed(["POST"])
        form = LinkForm(request.POST, suspension=suspension)
        if not form.is_valid():
            self.message_user(
                request, gettext("Choose the inquiries to link among those listed."), messages.ERROR
            )
            return self._back(suspension)
        linked = suspension_inquiries_link(
            suspension=suspension, inquiries=form.cleaned_data["inquiries"], actor=request.user
        )
        self.message_user(
            request,
            ngettext("%(count)d inquiry linked.", "%(count)d inquiries linked.", linked)
            % {"count": linked},
            messages.SUCCESS,
        )
        return self._back(suspension)

    def orders_csv_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The affected orders for the mall back-office: UTF-8 with a BOM
        (Excel reads Japanese right), Japanese headers."""
        suspension = self.get_object(request, unquote(object_id))
        if suspension is None:
            raise Http404
        if not self.has_view_permission(request, suspension):
            raise PermissionDenied
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="suspension-{suspension.pk}-orders.csv"'
        )
        response.write("\ufeff")
        writer = csv.writer(response)
        writer.writerow([str(header) for header in CSV_HEADERS])
        told = suspension_told(suspension)
        rows = 0
        for line in suspension_affected_lines(suspension):
            order = line.order
            row = told.get(order.customer_id)
            writer.writerow(
                [
                    order.get_channel_display(),
                    order.order_number,
                    timezone.localtime(order.ordered_at).strftime("%Y-%m-%d %H:%M"),
                    order.customer.display_name,
                    line.sku,
                    line.name,
                    line.quantity,
                    order.get_status_display(),
                    row.get_channel_display() if row else "",
                    delivery_outcome(row) if row else gettext("Not told"),
                ]
            )
            rows += 1
        held = gettext("Affected orders of sales suspension #%(id)s") % {"id": suspension.pk}
        audit_csv_record(request=request, rows=rows, held=held)
        return response


class _NotAllowed(Exception):
    """A GET where only a POST may change anything."""
