"""The agent inbox: the inquiry changelist.

Open inquiries by default, the next first-reply deadline first; filters for
mine / unassigned, SLA state, triage (状況確認, with its target), channel,
category and status; one search box
for references, customers (name, kana, email, phone) and order numbers;
bulk actions that call the services. Every row's data comes from
`tickets.selectors.inbox()` in one query.
"""

from __future__ import annotations

import re

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.utils import quote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import ValidationError
from django.db.models import Case, Exists, F, OuterRef, Q, When
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from core.admin_filters import DefaultingFilter
from core.audit import audit_query_record
from crisis.models import Incident
from crisis.selectors.incidents import incident_suggested_inquiries, incidents_open
from crisis.services.incidents import incident_inquiries_link
from crm.models import Customer, Order
from crm.selectors import customer_search_q
from tickets.admin.display import claimant_badge, reply_failed_badge, sla_badge, triage_badge
from tickets.admin.inquiry_forms import BulkAssignForm
from tickets.models import OPEN_STATUSES, Inquiry, InquiryStatus, SlaState
from tickets.presence import staff_name
from tickets.selectors import assignable_staff, assignment_status, inbox
from tickets.services import (
    inquiries_bulk_assign,
    inquiries_bulk_close,
    sla_state_live_q,
    triage_late_q,
)

# Django's own label for the row checkbox, translated by Django's catalogue
# (a name, not a literal, so that makemessages leaves it to Django's).
ACTION_CHECKBOX_LABEL = "Select this object for an action - {}"
REFERENCE_RE = re.compile(r"^Q-\d{4}-\d{5}$", re.IGNORECASE)
# Unreplied inquiries by deadline first; the rest (no first-reply clock
# running) after them, the customer's latest message first.
INBOX_ORDER = Case(When(first_replied_at__isnull=True, then=F("first_reply_due_at"))).asc(
    nulls_last=True
)
# Under the "at risk" and "on track" filters every row is unreplied, so the
# same order is the plain deadline (then the id: deadlines are to the
# microsecond), which the partial index tickets_sla_watch_due reads in
# order: 50 rows instead of all of them due later than now, sorted.
UNREPLIED_ORDER = (F("first_reply_due_at").asc(nulls_last=True), "pk")


class StatusFilter(DefaultingFilter):
    """Open inquiries unless asked otherwise: the inbox is a work queue."""

    title = _("status")
    parameter_name = "status"
    default_title = _("Open (all open statuses)")

    def lookups(self, request, model_admin):
        return [*InquiryStatus.choices, ("all", _("All, including closed"))]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset.filter(status__in=OPEN_STATUSES)
        if value in InquiryStatus.values:
            return queryset.filter(status=value)
        return queryset


class AssigneeFilter(DefaultingFilter):
    title = _("assignee")
    parameter_name = "assignee"

    def lookups(self, request, model_admin):
        return [
            ("mine", _("Mine")),
            ("none", _("Unassigned")),
            *((str(user.pk), staff_name(user)) for user in assignable_staff()),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "mine":
            return queryset.filter(assignee=request.user)
        if value == "none":
            return queryset.filter(assignee__isnull=True)
        if value and value.isdigit():
            return queryset.filter(assignee_id=int(value))
        return queryset


class SlaFilter(DefaultingFilter):
    """By the state the time-left column shows (live, not only as the SLA
    watch last stored it)."""

    title = _("first reply")
    parameter_name = "sla"

    def lookups(self, request, model_admin):
        return [
            (SlaState.AT_RISK, _("At risk")),
            (SlaState.BREACHED, _("Breached")),
            (SlaState.ON_TRACK, _("On track")),
            (SlaState.MET, _("Replied in time")),
        ]

    def queryset(self, request, queryset):
        if self.value() in SlaState.values:
            return queryset.filter(sla_state_live_q(self.value(), timezone.now()))
        return queryset


class TriageFilter(DefaultingFilter):
    """By the triage stage (状況確認: category and assignee set), live: past
    its target now, not yet triaged, triaged."""

    title = _("triage")
    parameter_name = "triage"

    def lookups(self, request, model_admin):
        return [
            ("late", _("Over the target")),
            ("pending", _("Not yet triaged")),
            ("done", _("Triaged")),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "late":
            return queryset.filter(triage_late_q(timezone.now()))
        if value == "pending":
            return queryset.filter(triaged_at__isnull=True)
        if value == "done":
            return queryset.filter(triaged_at__isnull=False)
        return queryset


class IncidentSuggestFilter(admin.SimpleListFilter):
    """The inquiries suggested for linking to an ongoing incident (the
    banner links here): new, open, from its channel, not linked yet. Shown
    only when asked for, so the inbox spends no query on it otherwise."""

    title = _("incident")
    parameter_name = "incident_suggest"

    def lookups(self, request, model_admin):
        value = self.value()
        return [(value, _("To link to the incident"))] if value and value.isdigit() else []

    def queryset(self, request, queryset):
        value = self.value()
        if not (value and value.isdigit()):
            return queryset
        incident = Incident.objects.filter(pk=int(value)).first()
        if incident is None:
            return queryset.none()
        return queryset.filter(pk__in=incident_suggested_inquiries(incident).values("pk"))


class InboxChangeList(ChangeList):
    """The admin's changelist with each row's link built from one reverse()
    a page: Django reverses every row's URL and, with a filter on, parses the
    filters and resolve()s the URL again for every row."""

    PK = "__pk__"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The filters go into the link once, here; the row tag finds none left.
        self.row_filters, self.preserved_filters = self.preserved_filters, ""
        self._change_url = None

    def url_for_result(self, result) -> str:
        if self._change_url is None:
            url = reverse(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
                args=(self.PK,),
                current_app=self.model_admin.admin_site.name,
            )
            url = add_preserved_filters(
                {"preserved_filters": self.row_filters, "opts": self.opts}, url
            )
            self._change_url = url.partition(self.PK)
        before, _pk, after = self._change_url
        return f"{before}{quote(result.pk)}{after}"


class InboxMixin:
    """The changelist half of InquiryAdmin (tickets/admin/inquiries.py)."""

    list_display = (
        "reference",
        "customer_column",
        "channel",
        "category",
        "status",
        "assignee_column",
        "time_left",
        "created_at",
    )
    list_display_links = ("reference",)
    list_filter = (
        StatusFilter,
        AssigneeFilter,
        SlaFilter,
        TriageFilter,
        "channel",
        "category",
        "priority",
        IncidentSuggestFilter,
    )
    ordering = (INBOX_ORDER, "-last_inbound_at")
    list_per_page = 50
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    # get_search_results does the searching; this only makes the box appear.
    search_fields = ("reference",)
    search_help_text = _(
        "Reference (Q-2611-00042), customer name, kana, email, phone, order number or subject"
    )
    actions = ("assign_to_me", "assign_to", "close_inquiries", "link_to_incident")

    def get_changelist(self, request, **kwargs):
        return InboxChangeList

    def changelist_view(self, request: HttpRequest, extra_context=None):
        """The inbox lists customers' names and subjects: its query (not its
        rows) goes into the audit trail, as the customer list's does."""
        extra_context = {
            **(extra_context or {}),
            "assignment": assignment_status(user=request.user),
        }
        response = super().changelist_view(request, extra_context)
        if request.method == "GET" and response.status_code == 200:
            audit_query_record(request=request)
        return response

    def get_ordering(self, request: HttpRequest):
        if request.GET.get(SlaFilter.parameter_name) in (SlaState.AT_RISK, SlaState.ON_TRACK):
            return UNREPLIED_ORDER
        return super().get_ordering(request)

    def get_queryset(self, request: HttpRequest):
        queryset = inbox()
        ordering = self.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset

    # --- Columns ------------------------------------------------------------

    def action_checkbox(self, obj: Inquiry) -> str:
        """The admin's row checkbox, same markup, without rendering the
        CheckboxInput widget's template for every row (a third of the rows'
        cost)."""
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            helpers.ACTION_CHECKBOX_NAME,
            obj.pk,
            format_html(gettext(ACTION_CHECKBOX_LABEL), str(obj)),
        )

    @admin.display(description=_("customer"), ordering="customer__family_name_kana")
    def customer_column(self, obj: Inquiry) -> str:
        customer = obj.customer
        return format_html(
            '{}<span class="inbox-name">{}</span> <span class="inbox-kana">{}</span>',
            claimant_badge(customer),
            customer.display_name or f"#{customer.pk}",
            customer.display_name_kana,
        )

    @admin.display(description=_("assignee"), ordering="assignee__last_name")
    def assignee_column(self, obj: Inquiry) -> str:
        return staff_name(obj.assignee) or "—"

    @admin.display(description=_("first reply"), ordering=INBOX_ORDER)
    def time_left(self, obj: Inquiry) -> str:
        now = timezone.now()
        return format_html(
            "{}{}{}", triage_badge(obj, now), reply_failed_badge(obj), sla_badge(obj, now)
        )

    # --- Search -------------------------------------------------------------

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        if REFERENCE_RE.match(term):
            return queryset.filter(reference=term.upper()), False
        customers = Customer.objects.filter(customer_search_q(term)).values("pk")
        by_order = Exists(Order.objects.filter(customer=OuterRef("customer_id"), order_number=term))
        matches = (
            Q(customer__in=customers)
            | Q(order__order_number=term)
            | Q(order_number_given=term)  # as the customer typed it, linked or not
            | Q(by_order)
            | Q(subject__icontains=term)
        )
        return queryset.filter(matches), False

    # --- Bulk actions ----------------------------------------------------------

    @admin.action(description=_("Assign to me"), permissions=["change"])
    def assign_to_me(self, request, queryset):
        try:
            count = inquiries_bulk_assign(
                inquiries=list(queryset), assignee=request.user, actor=request.user
            )
        except ValidationError as error:
            self.message_user(request, " ".join(error.messages), messages.ERROR)
            return
        self.message_user(
            request,
            ngettext(
                "%(count)d inquiry assigned to you.", "%(count)d inquiries assigned to you.", count
            )
            % {"count": count},
            messages.SUCCESS,
        )

    @admin.action(description=_("Assign to…"), permissions=["change"])
    def assign_to(self, request, queryset):
        form = BulkAssignForm(request.POST if request.POST.get("post") == "yes" else None)
        if form.is_bound:
            if form.is_valid():
                assignee = form.cleaned_data["assignee"]
                count = inquiries_bulk_assign(
                    inquiries=list(queryset), assignee=assignee, actor=request.user
                )
                self.message_user(
                    request,
                    ngettext(
                        "%(count)d inquiry assigned to %(name)s.",
                        "%(count)d inquiries assigned to %(name)s.",
                        count,
                    )
                    % {"count": count, "name": staff_name(assignee)},
                    messages.SUCCESS,
                )
                return None
            self.message_user(request, gettext("Choose who takes them."), messages.ERROR)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Assign inquiries"),
            "opts": self.model._meta,
            "inquiries": queryset.select_related("customer"),
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/tickets/inquiry/assign_to.html", context)

    @admin.action(description=_("Close"), permissions=["change"])
    def close_inquiries(self, request, queryset):
        count = inquiries_bulk_close(inquiries=list(queryset), actor=request.user)
        self.message_user(
            request,
            ngettext("%(count)d inquiry closed.", "%(count)d inquiries closed.", count)
            % {"count": count},
            messages.SUCCESS,
        )

    @admin.action(description=_("Link to the ongoing incident"), permissions=["change"])
    def link_to_incident(self, request, queryset):
        """「まとめて関連付ける」: the chosen inquiries to the ongoing incident
        (the one whose suggestions are shown, or the only one), in one action."""
        from crisis.admin.incidents import link_message

        candidates = incidents_open()
        value = request.GET.get(IncidentSuggestFilter.parameter_name) or ""
        if value.isdigit():
            candidates = candidates.filter(pk=int(value))
        incidents = list(candidates[:2])
        if len(incidents) != 1:
            text = (
                gettext("No incident is ongoing.")
                if not incidents
                else gettext(
                    "Several incidents are ongoing: open the inquiries to link from the "
                    "incident's banner, then link them."
                )
            )
            self.message_user(request, text, messages.ERROR)
            return
        try:
            count = incident_inquiries_link(
                incident=incidents[0],
                inquiries=list(queryset.select_related(None).only("pk")),
                actor=request.user,
            )
        except ValidationError as error:
            self.message_user(request, " ".join(error.messages), messages.ERROR)
            return
        self.message_user(request, link_message(count, incidents[0]), messages.SUCCESS)
