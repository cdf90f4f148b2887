"""Suppressed addresses in the admin (配信停止アドレス): the list, and
「配信停止を解除する」 with a note, which calls crm.services.suppression_lift
and writes the audit trail. Rows are written by bounces and complaints
(crm.services.bounce_record), never by hand here."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.admin import ServiceFormAdmin
from core.audit import audit_record
from core.models import AuditAction
from crm.models import Customer, Suppression
from crm.services import suppression_lift


class SuppressionLiftForm(forms.Form):
    note = forms.CharField(
        label=_("note"),
        max_length=255,
        widget=forms.TextInput(attrs={"class": "vTextField"}),
        help_text=_(
            "Why mail may go to this address again, e.g. “the customer confirmed it by phone”."
        ),
    )


class SuppressionOpenFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("open", _("Suppressed")), ("lifted", _("Lifted"))]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(lifted_at__isnull=True)
        if self.value() == "lifted":
            return queryset.filter(lifted_at__isnull=False)
        return queryset


@admin.register(Suppression)
class SuppressionAdmin(ServiceFormAdmin):
    list_display = ["address", "reason", "since", "detail", "lifted_at", "lifted_by_name", "note"]
    list_filter = [SuppressionOpenFilter, "reason"]
    search_fields = ["address"]
    ordering = ["-since", "-id"]
    list_select_related = ["lifted_by"]
    readonly_fields = [
        "address",
        "channel",
        "reason",
        "since",
        "detail",
        "by",
        "lifted_at",
        "lifted_by",
        "note",
    ]

    @admin.display(description=_("lifted by"))
    def lifted_by_name(self, obj: Suppression) -> str:
        return (
            obj.lifted_by.get_full_name() or obj.lifted_by.get_username() if obj.lifted_by else ""
        )

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [
            path(
                "<path:object_id>/lift/",
                self.admin_site.admin_view(self.lift_view),
                name="crm_suppression_lift",
            ),
            *super().get_urls(),
        ]

    def lift_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Lift a suppression with a note (staff who may change it)."""

        def lift(suppression: Suppression, data) -> HttpResponse:
            lifted = suppression_lift(
                suppression=suppression, note=data["note"], actor=request.user
            )
            for customer_id in Customer.objects.filter(email_normalized=lifted.address).values_list(
                "pk", flat=True
            ):
                audit_record(
                    action=AuditAction.CHANGE,
                    request=request,
                    customer_id=customer_id,
                    what=f"suppression lifted: {lifted.pk}",
                )
            self.message_user(
                request,
                gettext("Mail may go to %(address)s again.") % {"address": lifted.address},
                messages.SUCCESS,
            )
            return HttpResponseRedirect(reverse("admin:crm_suppression_change", args=[lifted.pk]))

        return self.object_form_view(
            request,
            object_id,
            form_class=SuppressionLiftForm,
            title=gettext("Lift the suppression"),
            template="admin/crm/suppression/lift_form.html",
            done=lift,
        )
