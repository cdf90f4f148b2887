"""The admin's home page per role (SPEC rule 15): the work of the person
looking, with links into the filtered lists.

- agent: my open inquiries (breached, then at risk, then by deadline),
  unassigned ones to take, my replies that did not go out or wait;
- manager (and superusers): mall health, today's first-reply deadlines,
  replies waiting for approval, ongoing incidents and suspensions,
  overdue countermeasures;
- marketer: campaigns sending and scheduled, recent results from the
  delivery ledger, segment sizes.

Each block is a fixed number of queries, whatever the number of rows: lists
are cut at HOME_LIST_SIZE with their full count beside them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from django.core.cache import cache
from django.db.models import Case, Count, F, IntegerField, Q, QuerySet, Value, When, Window
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html

from core.choices import Channel
from core.roles import AGENT, MANAGER, MARKETER, staff_name
from crisis.models import Incident, IncidentStatus, Suspension
from outreach.models import Campaign, CampaignStatus, Segment
from outreach.selectors import SendProgress, segment_counts, sends_progress
from reports.home_health import mall_health_chart, mall_health_view
from reports.models import COUNTERMEASURE_OPEN, Countermeasure
from reports.selectors.mall_health import MallHealth, mall_health, mall_health_windows
from tickets.admin.display import reply_failed_badge, sla_badge
from tickets.models import (
    OPEN_STATUSES,
    Inquiry,
    InquiryMessage,
    MessageKind,
    OutboundState,
    SlaState,
)
from tickets.selectors import inbox
from tickets.services.sla import sla_state_live_q

HOME_LIST_SIZE = 10
RECENT_RESULTS = 5
SEGMENTS_SHOWN = 8
# What an agent must see again: replies that did not go out, wait for a
# manager, or came back for changes.
REPLIES_TO_WATCH = (
    OutboundState.FAILED,
    OutboundState.AWAITING_APPROVAL,
    OutboundState.RETURNED,
)
RUNNING_CAMPAIGNS = (CampaignStatus.SENDING, CampaignStatus.PAUSED)
# The mall-health figures over 7/30/90 days read every inquiry of 90 days:
# the manager's home counts them at most once per this many seconds (per
# web process) and says when; what is open now is counted on every request.
MALL_HEALTH_WINDOWS_SECONDS = 300
MALL_HEALTH_WINDOWS_KEY = "reports:mall-health-windows"


def home_role(user) -> str | None:
    """Whose page the user sees: a superuser or a manager the manager's,
    else an agent's, else a marketer's; None for staff with no role."""
    if user.is_superuser:
        return MANAGER
    names = set(user.groups.values_list("name", flat=True))
    return next((role for role in (MANAGER, AGENT, MARKETER) if role in names), None)


def _overdue(now: datetime) -> Q:
    """Open, not answered, and past the first-reply deadline (an inquiry
    answered late is no longer anyone's to hurry)."""
    return Q(first_replied_at__isnull=True) & sla_state_live_q(SlaState.BREACHED, now)


def _by_urgency(now: datetime) -> tuple:
    """Breached first, then at risk, then the rest; within each, the
    first-reply deadline of those not answered yet, then those answered
    (waiting for the customer), the customer's latest message first."""
    urgency = Case(
        When(_overdue(now), then=Value(0)),
        When(sla_state_live_q(SlaState.AT_RISK, now), then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    deadline = Case(When(first_replied_at__isnull=True, then=F("first_reply_due_at")))
    return (urgency.asc(), deadline.asc(nulls_last=True), F("last_inbound_at").desc(), "pk")


# --- Agent --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentHome:
    mine: list[Inquiry]
    mine_count: int
    mine_breached: int
    mine_at_risk: int
    unassigned: list[Inquiry]
    unassigned_count: int
    replies: Sequence[InquiryMessage]
    replies_count: int


def agent_home(*, user, now: datetime) -> AgentHome:
    """Four queries: the counts, my inquiries, unassigned ones, my replies."""
    counts = Inquiry.objects.filter(status__in=OPEN_STATUSES).aggregate(
        mine=Count("pk", filter=Q(assignee=user)),
        breached=Count("pk", filter=Q(assignee=user) & _overdue(now)),
        at_risk=Count("pk", filter=Q(assignee=user) & sla_state_live_q(SlaState.AT_RISK, now)),
        unassigned=Count("pk", filter=Q(assignee__isnull=True)),
    )
    mine = inbox(open_only=True).filter(assignee=user).order_by(*_by_urgency(now))
    unassigned = inbox(open_only=True).filter(assignee__isnull=True).order_by(*_by_urgency(now))
    watched = (
        InquiryMessage.objects.filter(
            kind=MessageKind.OUTBOUND,
            author=user,
            outbound_state__in=REPLIES_TO_WATCH,
            inquiry__status__in=OPEN_STATUSES,
        )
        .select_related("inquiry", "inquiry__customer")
        .annotate(total=_window_count())
        .order_by("-created_at", "-pk")
    )
    replies = list(watched[:HOME_LIST_SIZE])
    return AgentHome(
        mine=_with_badges(mine[:HOME_LIST_SIZE], now),
        mine_count=counts["mine"],
        mine_breached=counts["breached"],
        mine_at_risk=counts["at_risk"],
        unassigned=_with_badges(unassigned[:HOME_LIST_SIZE], now),
        unassigned_count=counts["unassigned"],
        replies=replies,
        replies_count=replies[0].total if replies else 0,
    )


def _with_badges(inquiries: QuerySet[Inquiry], now: datetime) -> list[Inquiry]:
    """The rows, each with `badges`: the inbox's first-reply and
    reply-not-delivered badges."""
    rows = list(inquiries)
    for inquiry in rows:
        inquiry.badges = format_html("{}{}", reply_failed_badge(inquiry), sla_badge(inquiry, now))  # type: ignore[attr-defined]  # set here for the template
    return rows


def _window_count() -> Window:
    """COUNT(*) OVER (): the whole list's size on each of its first rows,
    so that a list and its count are one query."""
    return Window(Count("pk"))


# --- Manager ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ManagerHome:
    health: MallHealth
    due_today: int
    at_risk: int
    breached: int
    approvals: Sequence[InquiryMessage]
    approvals_count: int
    incidents: Sequence[Incident]
    incidents_count: int
    suspensions: Sequence[Suspension]
    suspensions_count: int
    overdue: Sequence[Countermeasure]
    overdue_count: int
    today: date


def manager_home(*, now: datetime) -> ManagerHome:
    """Mall health (three queries, five when its windowed figures are
    counted again; today's first-reply counts among them) and four more:
    approvals, incidents, suspensions, overdue countermeasures."""
    local = timezone.localtime(now)
    windows = cache.get(MALL_HEALTH_WINDOWS_KEY)
    if windows is None:
        windows = mall_health_windows(now=now)
        cache.set(MALL_HEALTH_WINDOWS_KEY, windows, MALL_HEALTH_WINDOWS_SECONDS)
    health = mall_health(now=now, windows=windows)
    approvals = list(
        InquiryMessage.objects.filter(
            kind=MessageKind.OUTBOUND, outbound_state=OutboundState.AWAITING_APPROVAL
        )
        .select_related("inquiry", "author")
        .annotate(total=_window_count())
        .order_by("created_at", "pk")[:HOME_LIST_SIZE]
    )
    incidents = list(
        Incident.objects.filter(status=IncidentStatus.OPEN)
        .annotate(total=_window_count())
        .order_by("-started_at", "-pk")[:HOME_LIST_SIZE]
    )
    suspensions = list(
        Suspension.objects.filter(lifted_at__isnull=True)
        .annotate(total=_window_count())
        .order_by("expected_resume_at", "pk")[:HOME_LIST_SIZE]
    )
    overdue = list(
        Countermeasure.objects.filter(status__in=COUNTERMEASURE_OPEN, due_date__lt=local.date())
        .select_related("owner", "category", "incident")
        .annotate(total=_window_count())
        .order_by("due_date", "pk")[:HOME_LIST_SIZE]
    )
    for reply in approvals:
        reply.author_name = staff_name(reply.author)  # type: ignore[attr-defined]  # set here for the template
    for measure in overdue:
        measure.owner_name = staff_name(measure.owner)  # type: ignore[attr-defined]  # set here for the template
    labels = dict(Channel.choices)
    for suspension in suspensions:
        suspension.channel_labels = "、".join(  # type: ignore[attr-defined]  # set here for the template
            str(labels[code]) for code in suspension.channels or () if code in labels
        )
    return ManagerHome(
        health=health,
        due_today=health.open_totals["due_today"],
        at_risk=health.open_totals["at_risk"],
        breached=health.open_totals["overdue"],
        approvals=approvals,
        approvals_count=_total(approvals),
        incidents=incidents,
        incidents_count=_total(incidents),
        suspensions=suspensions,
        suspensions_count=_total(suspensions),
        overdue=overdue,
        overdue_count=_total(overdue),
        today=local.date(),
    )


def _total(rows: list) -> int:
    return rows[0].total if rows else 0


# --- Marketer -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignRow:
    campaign: Campaign
    progress: SendProgress | None


@dataclass(frozen=True)
class MarketerHome:
    running: list[CampaignRow]
    running_count: int
    scheduled: Sequence[Campaign]
    scheduled_count: int
    recent: list[CampaignRow]
    segments: list[tuple[Segment, str]]  # the size, written out ("—" if it cannot be counted)


def _thousands(count: int | None) -> str:
    return "—" if count is None else f"{count:,}"


def marketer_home(*, now: datetime) -> MarketerHome:
    """Five queries: campaigns running, scheduled and recently completed,
    their progress from the ledger (one), and segment sizes (one)."""
    campaigns = Campaign.objects.select_related("segment").annotate(total=_window_count())
    running = list(
        campaigns.filter(status__in=RUNNING_CAMPAIGNS).order_by("-launched_at", "-pk")[
            :HOME_LIST_SIZE
        ]
    )
    scheduled = list(
        campaigns.filter(status=CampaignStatus.SCHEDULED).order_by("scheduled_at", "pk")[
            :HOME_LIST_SIZE
        ]
    )
    recent = list(
        Campaign.objects.select_related("segment")
        .filter(status=CampaignStatus.COMPLETED)
        .order_by("-completed_at", "-pk")[:RECENT_RESULTS]
    )
    progress = sends_progress(c.send_id for c in (*running, *recent) if c.send_id)
    segments = list(Segment.objects.order_by("-updated_at", "-pk")[:SEGMENTS_SHOWN])
    counts = segment_counts(segments, now=now)
    return MarketerHome(
        running=[CampaignRow(c, progress.get(c.send_id)) for c in running],  # type: ignore[arg-type]  # a running campaign has its send
        running_count=_total(running),
        scheduled=scheduled,
        scheduled_count=_total(scheduled),
        recent=[CampaignRow(c, progress.get(c.send_id)) for c in recent],  # type: ignore[arg-type]  # a completed campaign has its send
        segments=[(segment, _thousands(counts.get(segment.pk))) for segment in segments],
    )


# --- The page -----------------------------------------------------------------------------

HOME_TEMPLATES = {
    AGENT: "admin/reports/home/agent.html",
    MANAGER: "admin/reports/home/manager.html",
    MARKETER: "admin/reports/home/marketer.html",
}


def _url(name: str, query: str = "") -> str | None:
    """An admin list's URL with its filter, or None when that admin is not
    installed (another app's screens may not have landed yet)."""
    try:
        url = reverse(f"admin:{name}")
    except NoReverseMatch:
        return None
    return f"{url}?{query}" if query else url


def home_context(request) -> dict:
    """What the admin index adds for the user's role (nothing for staff
    with no role: they get the list of tables alone)."""
    role = home_role(request.user)
    if role is None:
        return {}
    now = timezone.now()
    inbox_url = "tickets_inquiry_changelist"
    context = {"home_template": HOME_TEMPLATES[role], "now": now}
    if role == AGENT:
        context["home"] = agent_home(user=request.user, now=now)
        context["links"] = {
            "mine": _url(inbox_url, "assignee=mine"),
            "mine_breached": _url(inbox_url, "assignee=mine&sla=breached"),
            "mine_at_risk": _url(inbox_url, "assignee=mine&sla=at_risk"),
            "unassigned": _url(inbox_url, "assignee=none"),
            "notifications": _url("tickets_staffnotification_changelist"),
        }
    elif role == MANAGER:
        home = manager_home(now=now)
        links = {
            "inbox": _url(inbox_url),
            "breached": _url(inbox_url, "sla=breached"),
            "at_risk": _url(inbox_url, "sla=at_risk"),
            "approvals": _url(
                "tickets_staffnotification_changelist", "for=all&kind__exact=approval"
            ),
            "incidents": _url("crisis_incident_changelist", "status__exact=open"),
            "suspensions": _url("crisis_suspension_changelist", "lifted_at__isnull=True"),
            "overdue": _url(
                "reports_countermeasure_changelist",
                f"status__in={','.join(COUNTERMEASURE_OPEN)}&due_date__lt={home.today.isoformat()}",
            ),
        }
        context |= {
            "home": home,
            "links": links,
            "health": mall_health_view(home.health, urls=links),
            "chart": mall_health_chart(home.health),
        }
    else:
        context["home"] = marketer_home(now=now)
        context["links"] = {
            status: _url("outreach_campaign_changelist", f"status__exact={status}")
            for status in (
                CampaignStatus.SENDING,
                CampaignStatus.SCHEDULED,
                CampaignStatus.COMPLETED,
            )
        } | {"segments": _url("outreach_segment_changelist")}
    return context
