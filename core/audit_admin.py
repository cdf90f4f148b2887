"""The audit trail in the admin: managers read it (view_auditentry,
granted to the manager group by migration 0007), with filters (person,
customer, action, date) and a CSV export (which is itself recorded).
Nobody adds, changes or deletes a row here."""

from __future__ import annotations

import csv
from urllib.parse import unquote, unquote_plus

from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, path, resolve, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyMixin
from core.audit import audit_csv_record
from core.models import AuditAction, AuditEntry
from core.roles import staff_name

CSV_HEADERS = (
    _("at"),
    _("staff member"),
    _("API key"),
    _("action"),
    _("customer"),
    _("where"),
    _("what"),
    _("from (IP address)"),
)


def audit_who(entry: AuditEntry) -> str:
    if entry.api_key_id is not None:
        return gettext("API key %(key)s") % {"key": entry.api_key}
    return staff_name(entry.user) or "-"


def audit_what(entry: AuditEntry) -> str:
    """A list's or a search's query as typed (decoded), or the text kept."""
    if entry.action in (AuditAction.LIST, AuditAction.SEARCH):
        return unquote_plus(entry.what).replace("&", " / ")
    return entry.what


# What an admin page is, by the last part of its URL name.
PAGE_KINDS = {
    "changelist": _("list"),
    "change": _("page"),
    "history": _("change history"),
    "delete": _("deletion"),
    "add": _("new"),
}


def audit_where(where: str) -> str:
    """The page a row was written on, as staff call it (「顧客 #12 の画面」,
    「問い合わせ の一覧」, 「API: /api/v1/customers/」) rather than its path."""
    if not where.startswith("/admin/"):
        return gettext("API: %(path)s") % {"path": where} if where.startswith("/api/") else where
    try:
        match = resolve(where)
    except Resolver404:
        return where
    app_label, _sep, rest = (match.url_name or "").partition("_")
    model = (
        next(
            (
                each
                for each in apps.get_app_config(app_label).get_models()
                if rest == each._meta.model_name or rest.startswith(f"{each._meta.model_name}_")
            ),
            None,
        )
        if app_label in apps.app_configs
        else None
    )
    if model is None:
        return where
    kind = PAGE_KINDS.get(rest.removeprefix(model._meta.model_name).strip("_"), "")  # type: ignore[arg-type]  # a model's model_name is always set; the stubs say str | None
    object_id = match.kwargs.get("object_id") or match.kwargs.get("pk")
    if object_id:
        text = gettext("%(model)s #%(id)s") % {
            "model": model._meta.verbose_name,
            "id": unquote(str(object_id)),
        }
    else:
        text = str(model._meta.verbose_name_plural)
    return f"{text} {kind}".strip()


def audit_place(entry: AuditEntry) -> str:
    """Where, and what for a list, a search or an export."""
    what = audit_what(entry)
    where = audit_where(entry.where)
    return f"{where} ({what})" if what else where


class StaffFilter(admin.SimpleListFilter):
    """The staff members who appear in the log, by their names (not their
    login names)."""

    title = _("staff member")
    parameter_name = "user"

    def lookups(self, request, model_admin):
        users = get_user_model().objects.filter(is_staff=True).order_by("last_name", "first_name")
        return [(str(user.pk), staff_name(user)) for user in users]

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(user_id=int(value))
        return queryset


class CustomerIdFilter(admin.SimpleListFilter):
    """One customer's rows (the customer page's 「履歴」 links here); no
    list of every customer."""

    title = _("customer")
    parameter_name = "customer"

    def lookups(self, request, model_admin):
        value = self.value()
        if value and value.isdigit():
            return ((value, gettext("Customer #%(id)s") % {"id": value}),)
        return ()

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(customer_id=int(value))
        return queryset


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("at", "who", "action", "customer_link", "place", "what_shown", "ip")
    list_filter = ("action", StaffFilter, CustomerIdFilter, "at")
    list_select_related = ("user", "api_key")
    show_full_result_count = False
    list_per_page = 100

    @admin.display(description=_("by"))
    def who(self, obj: AuditEntry) -> str:
        return audit_who(obj)

    @admin.display(description=_("customer"), ordering="customer_id")
    def customer_link(self, obj: AuditEntry) -> str:
        if obj.customer_id is None:
            return "-"
        url = reverse("admin:crm_customer_change", args=[obj.customer_id])
        return format_html('<a href="{}">#{}</a>', url, obj.customer_id)

    @admin.display(description=_("where"))
    def place(self, obj: AuditEntry) -> str:
        return audit_where(obj.where)

    @admin.display(description=_("what"))
    def what_shown(self, obj: AuditEntry) -> str:
        return audit_what(obj)

    def get_urls(self):
        return [
            path(
                "export/",
                self.admin_site.admin_view(self.csv_view),
                name="core_auditentry_csv",
            ),
            *super().get_urls(),
        ]

    def csv_view(self, request: HttpRequest) -> HttpResponse:
        """The rows the list shows (its filters), as CSV for Excel: UTF-8
        with a BOM, Japanese headers. The export is itself recorded."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        queryset = self.get_changelist_instance(request).get_queryset(request)
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="audit-log-{stamp}.csv"'
        response.write("\ufeff")
        writer = csv.writer(response)
        writer.writerow([str(header) for header in CSV_HEADERS])
        rows = 0
        for entry in queryset.iterator(chunk_size=2000):
            writer.writerow(
                [
                    timezone.localtime(entry.at).strftime("%Y-%m-%d %H:%M:%S"),
                    staff_name(entry.user),
                    str(entry.api_key) if entry.api_key_id else "",
                    entry.get_action_display(),
                    entry.customer_id or "",
                    audit_where(entry.where),
                    audit_what(entry),
                    entry.ip or "",
                ]
            )
            rows += 1
        held = gettext("audit log")
        query = request.GET.urlencode()
        audit_csv_record(request=request, rows=rows, held=f"{held} {query}".strip())
        return response
