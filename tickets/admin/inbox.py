"""The agent inbox: the inquiry changelist.

Open inquiries by default, the next first-reply deadline first; filters for
mine / unassigned, SLA state, triage (状況確認, with its target), channel,
category and status; one search box
for references, customers (name, kana, email, phone) and order numbers;
bulk actions that call the services. Every row's data comes from
`tickets.selectors.inbox()` in one query: the subject with the latest
message in one line, and whether the agent has read it (bold, a dot;
「未読 N件」 above the list). tickets/static/tickets/inbox.js polls
inbox_news_view and offers 「新着 N件 — 更新」.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.utils import quote
from django.contrib.admin.views.main import SEARCH_VAR, ChangeList
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Case, F, QuerySet, When
from django.http import HttpRequest, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.dateparse import parse_datetime
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from core.admin import ServiceFormAdminPart
from core.admin_filters import DefaultingFilter
from core.audit import audit_query_record
from crisis.models import Incident
from crisis.selectors.incidents import incident_suggested_inquiries, incidents_open
from crisis.services.incidents import incident_inquiries_link
from tickets.admin.display import (
    claimant_badge,
    clock_badges,
    reply_failed_badge,
    reply_held_badge,
    sla_badge,
    triage_badge,
)
from tickets.admin.inquiry_forms import BulkAssignForm
from tickets.models import OPEN_STATUSES, Inquiry, InquiryStatus, SlaState
from tickets.presence import staff_name
from tickets.search import SEARCH_COUNT_CAP, inquiry_search
from tickets.selectors import assignable_staff, assignment_status, inbox, inbox_counts
from tickets.services import (
    inquiries_bulk_assign,
    inquiries_bulk_close,
    sla_state_live_q,
    triage_late_q,
)
from tickets.services.sla import CLOCKS, FIRST_REPLY, NEXT_REPLY, PAUSED, RESOLUTION, WatchedClock

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
    watch last stored it), of the first reply (sla=at_risk), the next reply
    (sla=next_reply:at_risk) or the resolution (sla=resolution:paused)."""

    title = _("deadline")
    parameter_name = "sla"

    def lookups(self, request, model_admin):
        return [
            (SlaState.AT_RISK, _("First reply: at risk")),
            (SlaState.BREACHED, _("First reply: overdue")),
            (SlaState.ON_TRACK, _("First reply: on track")),
            (SlaState.MET, _("Replied in time")),
            (f"{NEXT_REPLY.name}:{SlaState.AT_RISK}", _("Next reply: at risk")),
            (f"{NEXT_REPLY.name}:{SlaState.BREACHED}", _("Next reply: overdue")),
            (f"{NEXT_REPLY.name}:{SlaState.ON_TRACK}", _("Next reply: on track")),
            (f"{RESOLUTION.name}:{SlaState.AT_RISK}", _("Resolution: at risk")),
            (f"{RESOLUTION.name}:{SlaState.BREACHED}", _("Resolution: overdue")),
            (f"{RESOLUTION.name}:{PAUSED}", _("Resolution: paused")),
        ]

    def queryset(self, request, queryset):
        clock, state = sla_filter_clock(self.value())
        if clock is not None:
            return queryset.filter(sla_state_live_q(state, timezone.now(), clock))
        return queryset


def sla_filter_clock(value: str | None) -> tuple[WatchedClock | None, str]:
    """The clock and state of an SLA filter value ("at_risk" is the first
    reply's, "next_reply:at_risk" the next reply's); (None, "") if unknown."""
    name, _sep, state = (value or "").rpartition(":")
    clock = CLOCKS.get(name or FIRST_REPLY.name)
    states = (*SlaState.values, PAUSED) if clock is RESOLUTION else SlaState.values
    if clock is None or state not in states:
        return None, ""
    return clock, state


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


# How often the inbox asks whether customers wrote (and when the agent comes
# back to the tab).
POLL_SECONDS = 30


class InboxChangeList(ChangeList):
    """The admin's changelist with each row's link built from one reverse()
    a page: Django reverses every row's URL and, with a filter on, parses the
    filters and resolve()s the URL again for every row."""

    PK = "__pk__"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The filters go into the link once, here; the row tag finds none left.
        self.row_filters, self.preserved_filters = self.preserved_filters, ""
        self._change_url: tuple[str, str, str] | None = None

    @property
    def unread_text(self) -> str:
        """「未読 3件」: the inquiries of the list as filtered with a customer
        message the agent has not opened (counted with the list, InboxPaginator)."""
        return inbox_unread_text(self.paginator.unread, capped=self.paginator.capped)

    @property
    def result_count_text(self) -> str:
        """「120件」, or 「1,000件以上」 when a search's count stopped at the cap."""
        return search_count_text(self.result_count, capped=self.paginator.capped)

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


class InboxPaginator(Paginator):
    """Counts the inbox as filtered and its unread rows in the same query
    (inbox_counts): the unread count costs no second pass over the rows.
    With a search, up to `cap` (InboxMixin.get_paginator): `capped` says
    there are more."""

    object_list: QuerySet[Inquiry]
    unread = 0
    cap: int | None = None
    capped = False

    @cached_property
    def count(self) -> int:
        counts = inbox_counts(self.object_list, cap=self.cap)
        self.unread, self.capped = counts["unread"], counts["capped"]
        return counts["total"]


class InboxCountChangeList(InboxChangeList):
    """The inbox's filters and search without its page (no row query, no
    count): what inbox_news_view counts in."""

    def get_results(self, request) -> None:
        self.result_count = self.full_result_count = None  # type: ignore[assignment]  # no count on this changelist; the stubs want an int
        self.result_list = []
        self.can_show_all = self.multi_page = False


UNREAD_LABEL = _("Unread")
REPLY_PREFIX = _("Reply: ")
# The inbox script's parameter: when the page was drawn (ISO 8601).
NEWS_SINCE = "since"


def inbox_unread_text(count: int, *, capped: bool = False) -> str:
    """「未読 3件」; 「未読 3件以上」 when the count stopped at a search's cap
    (the unread among its first rows)."""
    if capped:
        return gettext("%(count)s or more unread") % {"count": f"{count:,}"}
    return ngettext("%(count)s unread", "%(count)s unread", count) % {"count": f"{count:,}"}


def search_count_text(count: int, *, capped: bool = False) -> str:
    """「120件」; 「1,000件以上」 when a search's count stopped at the cap."""
    if capped:
        return gettext("%(count)s or more inquiries") % {"count": f"{count:,}"}
    return ngettext("%(count)s inquiry", "%(count)s inquiries", count) % {"count": f"{count:,}"}


def inbox_new_text(count: int) -> str:
    return ngettext("%(count)s new — refresh", "%(count)s new — refresh", count) % {
        "count": f"{count:,}"
    }


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
        counts = inbox_counts(changelist.queryset, since=since, cap=search_count_cap(request))
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
        response = super().changelist_view(request, extra_context)
        if request.method == "GET" and response.status_code == 200:
            audit_query_record(request=request)
            self.closed_search_hint(request, response)
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
