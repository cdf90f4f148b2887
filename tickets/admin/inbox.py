"""The agent inbox: the inquiry changelist.

Open inquiries by default, the next first-reply deadline first; filters for
mine / unassigned, SLA state, triage (状況確認, with its target), channel,
category and status; one search box
for references, customers (name, kana, email, phone) and order numbers;
bulk actions that call the services. Every row's data comes from
`tickets.selectors.inbox()` in one query: the subject with the latest
message in one line, and whether the agent has read it (bold, a dot;
「未読 N件」 above the list). tickets/static/tickets/inbox.js polls
inbox_news_view and offers 「新着 N件 — 更新」. The filters are in
tickets/admin/inbox_filters.py; the changelist, its paginator and the counts
in words in tickets/admin/inbox_changelist.py.
"""

from __future__ import annotations

from contextlib import nullcontext
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import SEARCH_VAR
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Case, F, When
from django.http import HttpRequest, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from core.admin import ServiceFormAdminPart
from core.audit import audit_query_record
from core.db import custom_plans
from crisis.selectors.incidents import incidents_open
from crisis.services.incidents import incident_inquiries_link
from tickets.admin.display import (
    claimant_badge,
    clock_badges,
    reply_failed_badge,
    reply_held_badge,
    sla_badge,
    triage_badge,
)
from tickets.admin.inbox_changelist import (
    InboxChangeList,
    InboxCountChangeList,
    InboxPaginator,
    inbox_new_text,
    inbox_unread_text,
)
from tickets.admin.inbox_filters import (
    AssigneeFilter,
    IncidentSuggestFilter,
    SlaFilter,
    StatusFilter,
    TriageFilter,
    sla_filter_clock,
)
from tickets.admin.inquiry_forms import BulkAssignForm
from tickets.models import Inquiry, SlaState
from tickets.presence import staff_name
from tickets.search import SEARCH_COUNT_CAP, inquiry_search
from tickets.selectors import assignment_status, inbox, inbox_counts
from tickets.services import (
    inquiries_bulk_assign,
    inquiries_bulk_close,
)

# Django's own label for the row checkbox, translated by Django's catalogue
# (a name, not a literal, so that makemessages leaves it to Django's).
ACTION_CHECKBOX_LABEL = "Select this object for an action - {}"
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


# How often the inbox asks whether customers wrote (and when the agent comes
# back to the tab).
POLL_SECONDS = 30


UNREAD_LABEL = _("Unread")
REPLY_PREFIX = _("Reply: ")
# The inbox script's parameter: when the page was drawn (ISO 8601).
NEWS_SINCE = "since"


def search_count_cap(request: HttpRequest) -> int | None:
    """SEARCH_COUNT_CAP when the inbox is searched, else None (counted whole)."""
    return SEARCH_COUNT_CAP if request.GET.get(SEARCH_VAR, "").strip() else None


class InboxMixin(ServiceFormAdminPart):
    """The changelist half of InquiryAdmin (tickets/admin/inquiries.py)."""

    list_display = (
        "reference",
        "subject_column",
        "customer_column",
        "channel_column",
        "status_column",
        "time_left",
        "received_column",
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
    ordering = (INBOX_ORDER, "-last_inbound_at")  # type: ignore[assignment]  # Django takes expressions; the stubs only names
    list_per_page = 50
    paginator = InboxPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    # get_search_results does the searching; this only makes the box appear.
    search_fields = ("reference",)
    search_help_text = _(
        "Reference or its number (00042), customer name or kana (no space needed), email, "
        "phone, order number or its last digits, words of the subject or the customer's messages"
    )
    actions = ("assign_to_me", "assign_to", "close_inquiries", "link_to_incident")

    def get_changelist(self, request, **kwargs):
        if getattr(request, "inbox_counting", False):
            return InboxCountChangeList
        return InboxChangeList

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        """A search is counted up to SEARCH_COUNT_CAP (「1,000件以上」)."""
        paginator = super().get_paginator(
            request, queryset, per_page, orphans, allow_empty_first_page
        )
        paginator.cap = search_count_cap(request)
        return paginator

    def get_urls(self):
        return [
            path(
                "inbox-news/",
                self.admin_site.admin_view(self.inbox_news_view),
                name="tickets_inquiry_inbox_news",
            ),
            *super().get_urls(),
        ]

    def inbox_news_view(self, request: HttpRequest) -> JsonResponse:
        """What the inbox's script polls: how many inquiries of the list as
        filtered (the page's own query string) had a customer message since
        the page was drawn (`since`, its data-since), and how many are
        unread for the agent now. One query."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        params = request.GET.copy()
        since = parse_datetime(params.pop(NEWS_SINCE, [""])[0] or "")
        if since is None:
            return JsonResponse({"error": gettext("The page's time is missing.")}, status=400)
        request.GET = params  # type: ignore[assignment]  # a mutable copy; the stubs want the immutable QueryDict
        request.inbox_counting = True  # type: ignore[attr-defined]  # a flag on this request for get_changelist
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return JsonResponse({"error": gettext("Unknown filter.")}, status=400)
        cap = search_count_cap(request)
        with custom_plans() if cap is not None else nullcontext():
            counts = inbox_counts(changelist.queryset, since=since, cap=cap)
        return JsonResponse(
            {
                **counts,
                "new_text": inbox_new_text(counts["new"]),
                "unread_text": inbox_unread_text(counts["unread"], capped=counts["capped"]),
            }
        )

    def changelist_view(self, request: HttpRequest, extra_context=None):
        """The inbox lists customers' names and subjects: its query (not its
        rows) goes into the audit trail, as the customer list's does."""
        extra_context = {
            "inbox_since": timezone.now().isoformat(),
            "inbox_news_url": reverse("admin:tickets_inquiry_inbox_news"),
            "inbox_poll_seconds": POLL_SECONDS,
            # The inbox is the agent's work page: the list of tables (one
            # click away under ホーム) would leave its rows half a 1366 px screen.
            "is_nav_sidebar_enabled": False,
            **(extra_context or {}),
            "assignment": assignment_status(user=request.user),
        }
        # A search's queries each get a plan for the word typed
        # (core.db.custom_plans).
        searching = request.method == "GET" and search_count_cap(request) is not None
        with custom_plans() if searching else nullcontext():
            response = super().changelist_view(request, extra_context)
            if request.method == "GET" and response.status_code == 200:
                audit_query_record(request=request)
                self.closed_search_hint(request, response)
                changelist = (getattr(response, "context_data", None) or {}).get("cl")
                if changelist is not None:  # the rows, read now (the page renders later)
                    changelist.result_list = list(changelist.result_list)
        return response

    def get_ordering(self, request: HttpRequest):
        if request.GET.get(SlaFilter.parameter_name) in (SlaState.AT_RISK, SlaState.ON_TRACK):
            return UNREPLIED_ORDER
        clock, state = sla_filter_clock(request.GET.get(SlaFilter.parameter_name))
        if clock is not None and state in (SlaState.AT_RISK, SlaState.ON_TRACK):
            return (F(clock.due).asc(nulls_last=True), "pk")  # its clock's partial index
        return super().get_ordering(request)

    def get_queryset(self, request: HttpRequest):
        queryset = inbox(reader=request.user)
        ordering = self.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset

    # --- Columns ------------------------------------------------------------

    def action_checkbox(self, obj: Inquiry) -> SafeString:
        """The admin's row checkbox, same markup, without rendering the
        CheckboxInput widget's template for every row (a third of the rows'
        cost)."""
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            helpers.ACTION_CHECKBOX_NAME,
            obj.pk,
            format_html(gettext(ACTION_CHECKBOX_LABEL), str(obj)),
        )

    @admin.display(description=_("subject"))
    def subject_column(self, obj: Inquiry) -> str:
        """The subject, and under it the latest message in one line (ours
        begin 「返信:」); a dot and bold when the agent has not read the
        customer's latest message; a reply held for approval or returned
        says so."""
        ours = (
            obj.last_message_at is not None
            and obj.last_inbound_at is not None
            and obj.last_message_at > obj.last_inbound_at
        )
        return format_html(
            '<span class="inbox-subject">{}{}{}</span><span class="inbox-excerpt">{}{}</span>',
            format_html(
                '<span class="inbox-unread" role="img" title="{0}" aria-label="{0}"></span>',
                UNREAD_LABEL,
            )
            if getattr(obj, "is_unread", False)
            else "",
            reply_held_badge(obj),
            obj.subject,
            REPLY_PREFIX if ours else "",
            obj.last_message_excerpt,
        )

    @admin.display(description=_("customer"), ordering="customer__family_name_kana")
    def customer_column(self, obj: Inquiry) -> str:
        customer = obj.customer
        return format_html(
            '{}<span class="inbox-name">{}</span> <span class="inbox-kana">{}</span>',
            claimant_badge(customer),
            customer.label,
            customer.display_name_kana,
        )

    @admin.display(description=_("channel / category"), ordering="channel")
    def channel_column(self, obj: Inquiry) -> str:
        """Two short facts in one column, so that the subject has the room."""
        return format_html(
            '{}<span class="inbox-second">{}</span>',
            obj.get_channel_display(),
            obj.category or "—",
        )

    @admin.display(description=_("status / assignee"), ordering="status")
    def status_column(self, obj: Inquiry) -> str:
        return format_html(
            '{}<span class="inbox-second">{}</span>',
            obj.get_status_display(),
            self.assignee_column(obj),
        )

    @admin.display(description=_("assignee"), ordering="assignee__last_name")
    def assignee_column(self, obj: Inquiry) -> str:
        return staff_name(obj.assignee) or "—"

    @admin.display(description=_("first reply"), ordering=INBOX_ORDER)
    def time_left(self, obj: Inquiry) -> str:
        now = timezone.now()
        return format_html(
            "{}{}{}{}",
            triage_badge(obj, now),
            reply_failed_badge(obj),
            sla_badge(obj, now),
            clock_badges(obj, now),
        )

    @admin.display(description=_("received"), ordering="created_at")
    def received_column(self, obj: Inquiry) -> str:
        """12/5 14:03 (the year too when it is not this year's): short
        enough to leave the subject room at 1366 px."""
        received = timezone.localtime(obj.created_at)
        this_year = received.year == timezone.localtime().year
        return format_html(
            '<time datetime="{}">{}</time>',
            received.isoformat(),
            date_format(received, "n/j H:i" if this_year else "Y/n/j H:i"),
        )

    # --- Search -------------------------------------------------------------

    def get_search_results(self, request, queryset, search_term):
        return inquiry_search(queryset, search_term), False

    def closed_search_hint(self, request: HttpRequest, response) -> None:
        """A search that found nothing among the inquiries the status filter
        shows (the open ones by default) says how many it finds with the
        closed ones too, with a link to them: 「完了済みを含めて検索 (2件)」."""
        changelist = (getattr(response, "context_data", None) or {}).get("cl")
        term = request.GET.get(SEARCH_VAR, "").strip()
        if changelist is None or not term or changelist.result_count:
            return
        if request.GET.get(StatusFilter.parameter_name) == "all":
            return
        count = inquiry_search(Inquiry.objects.all(), term)[: SEARCH_COUNT_CAP + 1].count()
        if not count:
            return
        query = urlencode({SEARCH_VAR: term, StatusFilter.parameter_name: "all"})
        link = (
            gettext("Search including closed ones (%(count)s or more)")
            % {"count": f"{SEARCH_COUNT_CAP:,}"}
            if count > SEARCH_COUNT_CAP
            else ngettext(
                "Search including closed ones (%(count)d)",
                "Search including closed ones (%(count)d)",
                count,
            )
            % {"count": count}
        )
        self.message_user(
            request,
            format_html(
                '{} <a href="?{}" class="closed-search-hint">{}</a>',
                gettext("Nothing found among the inquiries the status filter shows."),
                query,
                link,
            ),
            messages.WARNING,
        )

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

    @admin.action(description=_("Close the inquiries"), permissions=["change"])
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
