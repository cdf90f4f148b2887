"""Customer 360: the customer list and page, whose every write (profile
edit, claimant flag, merge, lifecycle recompute, consent given to staff)
calls `crm.services`."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.admin import ServiceFormAdmin, copy_saved, staff_column
from core.audit import audit_entries, audit_query_record, audit_record
from core.audit_admin import audit_place, audit_who
from core.models import AuditAction
from core.roles import is_manager, staff_name
from crm.admin.customer_forms import ConsentRecordForm, CustomerForm
from crm.admin.customer_overview import HISTORY_ROWS, HistoryRow, customer_page_overview
from crm.admin.display import MergedFilter, yen
from crm.event_details import customer_event_details
from crm.models import ConsentAction, ConsentChannel, ConsentSource, Customer
from crm.normalize import phone_display
from crm.privacy_admin import CustomerPrivacyAdminMixin
from crm.search import customer_search
from crm.services import (
    PROFILE_FIELDS,
    consent_record,
    customer_claimant_clear,
    customer_claimant_set,
    customer_merge,
    customer_test_recipient_set,
    customer_update,
    customer_upsert,
    lifecycle_recompute,
)

_PERSON = (
    ("family_name", "given_name"),
    ("family_name_kana", "given_name_kana"),
    "email",
    "phone",
    "birthday",
)
_CLAIMANT_SET = ("claimant_set_by_name", "claimant_set_at")
_LIFECYCLE = ("lifecycle_segment", "order_count", "spent", "first_order_at", "last_order_at")
_RECORD = ("merged_into", "anonymized_at", "created_at", "updated_at")


@admin.register(Customer)
class CustomerAdmin(CustomerPrivacyAdminMixin, ServiceFormAdmin):
    form = CustomerForm
    claimant_set_by_name = staff_column(Customer, "claimant_set_by")
    # Every column is a column of crm_customer: the list needs no join.
    list_display = (
        "name",
        "kana",
        "email",
        "phone_number",
        "prefecture",
        "lifecycle_segment",
        "order_count",
        "spent",
        "last_order_at",
        "claimant_badge",
    )
    list_filter = (
        MergedFilter,
        "lifecycle_segment",
        "prefecture",
        "is_claimant",
        "is_test_recipient",
        "identities__channel",
        "tags",
    )
    search_help_text = _(
        "Name or kana (any width, no space needed), email, phone (any format, or its last "
        "digits) or order number (or its last digits)"
    )
    # get_search_results does the searching; this only makes the box appear.
    search_fields = ("family_name",)
    ordering = ("-id",)
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    actions = ("merge_customers", "recompute_lifecycle")
    # The customer page reads its sections through crm.selectors.customer_overview
    # (render_change_form), the newest rows of each: no inlines.
    add_fieldsets = ((None, {"fields": PROFILE_FIELDS}),)
    # Below the customer's overview, read second: only the profile is open.
    fieldsets = (
        (_("Edit the profile"), {"fields": _PERSON}),
        (
            _("Address"),
            {"fields": ("postal_code", "prefecture", "address"), "classes": ["collapse"]},
        ),
        (
            _("Claimant"),
            {"fields": ("is_claimant", "claimant_reason", *_CLAIMANT_SET), "classes": ["collapse"]},
        ),
        (_("Lifecycle"), {"fields": _LIFECYCLE, "classes": ["collapse"]}),
        (
            _("Tags and notes"),
            {"fields": ("tag_list", "notes", "is_test_recipient"), "classes": ["collapse"]},
        ),
        (_("Record"), {"fields": _RECORD, "classes": ["collapse"]}),
    )
    readonly_fields = (*_CLAIMANT_SET, *_LIFECYCLE, "tag_list", *_RECORD)

    # --- Columns ------------------------------------------------------------

    @admin.display(description=_("name"), ordering="family_name")
    def name(self, obj: Customer) -> str:
        return obj.label

    @admin.display(description=_("kana"), ordering="family_name_kana")
    def kana(self, obj: Customer) -> str:
        return obj.display_name_kana

    @admin.display(description=_("phone"), ordering="phone")
    def phone_number(self, obj: Customer) -> str:
        return phone_display(obj.phone)

    @admin.display(description=_("total spent (JPY)"), ordering="total_spent")
    def spent(self, obj: Customer) -> str:
        return yen(obj.total_spent)

    @admin.display(description=_("claimant"), ordering="is_claimant")
    def claimant_badge(self, obj: Customer) -> str:
        if not obj.is_claimant:
            return ""
        return format_html(
            '<span class="claimant-badge" title="{}" style="background:#ba2121;color:#fff;'
            'padding:2px 6px;border-radius:4px;font-weight:bold;white-space:nowrap">{}</span>',
            obj.claimant_reason,
            gettext("⚠ Claimant"),
        )

    @admin.display(description=_("tags"))
    def tag_list(self, obj: Customer) -> str:
        return ", ".join(tag.name for tag in obj.tags.all())

    # --- Search: one box for people and order numbers -------------------------

    def get_search_results(self, request, queryset, search_term):
        return customer_search(queryset, search_term), False

    # --- Forms and permissions -----------------------------------------------

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def get_inlines(self, request, obj):
        return () if obj is None else self.inlines

    def has_change_permission(self, request, obj=None) -> bool:
        # A merged customer is a stub: its data lives in the survivor.
        if obj is not None and obj.merged_into_id is not None:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # personal data leaves through erasure (個人データを削除する), not deletion

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_handle_personal_data": is_manager(request.user),
        }
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and response.status_code == 200:
            audit_record(action=AuditAction.VIEW, request=request, customer_id=int(object_id))
        return response

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk:
            context["overview"] = customer_page_overview(obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def history_view(self, request, object_id, extra_context=None):
        """「履歴」: the customer's audit trail (who viewed, changed,
        exported or erased their data) and their timeline, newest first,
        instead of Django's change log, which services do not write."""
        customer = self.get_object(request, unquote(object_id))
        if customer is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_or_change_permission(request, customer):
            raise PermissionDenied
        rows = [
            HistoryRow(entry.at, audit_who(entry), entry.get_action_display(), audit_place(entry))
            for entry in audit_entries(customer_id=customer.pk)[:HISTORY_ROWS]
        ] + [
            HistoryRow(
                event.created_at,
                staff_name(event.actor) or "-",
                event.get_kind_display(),
                customer_event_details(event),
            )
            for event in customer.events.select_related("actor")[:HISTORY_ROWS]
        ]
        rows.sort(key=lambda row: row.at, reverse=True)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("History: %(customer)s") % {"customer": customer},
            "subtitle": None,
            "object": customer,
            "opts": self.opts,
            "module_name": str(self.opts.verbose_name_plural),
            "rows": rows,
            "audit_url": f"{reverse('admin:core_auditentry_changelist')}?customer={customer.pk}",
            "can_read_audit_log": request.user.has_perm("core.view_auditentry"),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/crm/customer/history.html", context)

    # --- Saving through services ----------------------------------------------

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            customer, created = customer_upsert(
                actor=request.user, **{name: data.get(name) for name in PROFILE_FIELDS}
            )
            copy_saved(obj, customer)
            obj.upsert_created = created
            return
        profile = {name: data[name] for name in PROFILE_FIELDS if name in form.changed_data}
        notes = data["notes"] if "notes" in form.changed_data else None
        if profile or notes is not None:
            customer_update(customer=obj, actor=request.user, notes=notes, **profile)
        claimant_changed = {"is_claimant", "claimant_reason"} & set(form.changed_data)
        if data["is_claimant"] and claimant_changed:
            customer_claimant_set(customer=obj, reason=data["claimant_reason"], actor=request.user)
        elif not data["is_claimant"] and "is_claimant" in form.changed_data:
            customer_claimant_clear(customer=obj, actor=request.user)
        if "is_test_recipient" in form.changed_data:
            customer_test_recipient_set(
                customer=obj, value=data["is_test_recipient"], actor=request.user
            )
        if form.changed_data:
            audit_record(
                action=AuditAction.CHANGE,
                request=request,
                customer_id=obj.pk,
                what=", ".join(str(form.fields[name].label) for name in form.changed_data),
            )

    def save_related(self, request, form, formsets, change):
        pass  # tags and inlines are read-only here: nothing else to save

    def construct_change_message(self, request, form, formsets, add=False):
        return super().construct_change_message(request, form, [], add)

    def response_add(self, request, obj, post_url_continue=None):
        if getattr(obj, "upsert_created", True):
            return super().response_add(request, obj, post_url_continue)
        self.message_user(
            request,
            gettext(
                "A customer with the same email or phone already exists: the new details "
                "filled its blanks instead of creating a second customer."
            ),
            messages.WARNING,
        )
        return HttpResponseRedirect(reverse("admin:crm_customer_change", args=[obj.pk]))

    # --- Consent given to staff ------------------------------------------------

    def get_urls(self):
        return [
            path(
                "claimant-suggestions/",
                self.admin_site.admin_view(self.claimant_suggestions_view),
                name="crm_customer_claimant_suggestions",
            ),
            path(
                "<path:object_id>/consent/",
                self.admin_site.admin_view(self.consent_view),
                name="crm_customer_consent",
            ),
            *self.privacy_urls(),
            *super().get_urls(),
        ]

    def consent_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Record an opt-in or opt-out given by phone or at the counter:
        agents and managers (who may change customers), source "staff", the
        user as actor. It takes effect as any other: an opt-out skips the
        customer's queued marketing on that channel at once."""

        def record(customer: Customer, data) -> HttpResponse:
            consent_record(
                customer=customer,
                channel=data["channel"],
                action=data["action"],
                source=ConsentSource.STAFF,
                note=data["note"],
                actor=request.user,
            )
            audit_record(
                action=AuditAction.CHANGE,
                request=request,
                customer_id=customer.pk,
                what="{} ({})".format(
                    ConsentAction(data["action"]).label, ConsentChannel(data["channel"]).label
                ),
            )
            self.message_user(
                request,
                gettext("Recorded: %(action)s for %(channel)s.")
                % {
                    "action": ConsentAction(data["action"]).label,
                    "channel": ConsentChannel(data["channel"]).label,
                },
                messages.SUCCESS,
            )
            return HttpResponseRedirect(reverse("admin:crm_customer_change", args=[customer.pk]))

        return self.object_form_view(
            request,
            object_id,
            form_class=ConsentRecordForm,
            title=gettext("Record consent"),
            template="admin/crm/customer/consent_form.html",
            done=record,
        )

    # --- Claimant suggestions (managers only) ------------------------------------

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_see_claimant_suggestions": is_manager(request.user),
        }
        response = super().changelist_view(request, extra_context)
        if request.method == "GET" and response.status_code == 200:
            audit_query_record(request=request)
        return response

    def claimant_suggestions_view(self, request: HttpRequest) -> HttpResponse:
        """Customers with many recent complaints, for a manager to look at:
        each row links to the customer's page, where a manager may flag the
        customer with a reason. Nothing here flags anyone."""
        if not is_manager(request.user):
            raise PermissionDenied
        from tickets.selectors import claimant_suggestions

        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Claimant candidates"),
            "opts": self.model._meta,
            "suggestions": claimant_suggestions(now=timezone.now()),
            "days": settings.CLAIMANT_SUGGEST_DAYS,
            "complaints": settings.CLAIMANT_SUGGEST_COMPLAINTS,
        }
        return TemplateResponse(request, "admin/crm/customer/claimant_suggestions.html", context)

    # --- Actions ------------------------------------------------------------

    @admin.action(description=_("Merge selected customers"), permissions=["change"])
    def merge_customers(self, request, queryset):
        customers = list(queryset.prefetch_related("identities").order_by("pk")[:3])
        if len(customers) != 2:
            self.message_user(
                request, gettext("Select exactly two customers to merge."), messages.ERROR
            )
            return None
        if request.POST.get("post") == "yes":
            winner_id = request.POST.get("winner")
            winners = [c for c in customers if str(c.pk) == winner_id]
            if winners:
                winner = winners[0]
                loser = next(c for c in customers if c.pk != winner.pk)
                try:
                    customer_merge(winner=winner, loser=loser, actor=request.user)
                except ValidationError as error:
                    self.message_user(request, " ".join(error.messages), messages.ERROR)
                    return None
                self.message_user(
                    request,
                    gettext("“%(loser)s” was merged into “%(winner)s”.")
                    % {"loser": loser, "winner": winner},
                    messages.SUCCESS,
                )
                return None
            self.message_user(request, gettext("Choose the customer that remains."), messages.ERROR)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Merge customers"),
            "opts": self.model._meta,
            "customers": customers,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/crm/customer/merge_confirmation.html", context)

    @admin.action(description=_("Recompute lifecycle segments"), permissions=["change"])
    def recompute_lifecycle(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        changed = lifecycle_recompute(customer_ids=ids)
        self.message_user(
            request,
            gettext("Lifecycle recomputed for %(selected)d customer(s); %(changed)d changed.")
            % {"selected": len(ids), "changed": changed},
            messages.SUCCESS,
        )
