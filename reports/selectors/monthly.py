"""The monthly trouble analysis (月次トラブル分析; SPEC rule 6, seed 001).

Which inquiries belong to a month: those received (created) in it, Asia/Tokyo.
Their figures are as of now: an inquiry received on the 31st and answered on
the 2nd counts in the month it was received, with its answer; one still open
counts in the month's totals but not (yet) in the durations of the stages it
has not reached.

Durations come from the minutes stored per inquiry in the clock of its SLA
policy when each stage is reached (tickets.services.sla.policy_clock_minutes):
business hours where the policy counts them, wall time otherwise.

Every figure is aggregate SQL: counts with FILTER, PostgreSQL's
percentile_cont … WITHIN GROUP, date_trunc in Asia/Tokyo. SQLite (`make run`)
has no percentile_cont: there the medians and 90th percentiles are
interpolated in Python from the stage minutes (the demo's few thousand rows),
the same way percentile_cont does. The number of queries does not depend on
the number of inquiries.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Aggregate, Count, F, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from core.choices import Channel
from core.roles import staff_name
from core.types import StrOrPromise
from crisis.models import Incident, Suspension
from reports.selectors.countermeasures import (
    CountermeasureFigures,
    countermeasure_figures,
    countermeasure_table,
)
from reports.selectors.csat import csat_tables
from reports.selectors.figures import (
    Chart,
    Percentiles,
    Table,
    channel_name,
    duration,
    has_percentile,
    month_add,
    month_label,
    month_of,
    month_range,
    percentile_interpolate,
    rate,
)
from tickets.models import OPEN_STATUSES, Category
from tickets.selectors import inquiries_counted
from tickets.services.triage import triage_late_q

TREND_MONTHS = 12
# (lower bound, upper bound) in minutes: [lower, upper).
BUCKETS = ((0, 60), (60, 240), (240, 480), (480, 1440), (1440, None))
STAGE_FIELDS = ("triage_minutes", "first_reply_minutes", "resolution_minutes")


def bucket_label(lower: int, upper: int | None) -> str:
    if upper is None:
        return _("over %(hours)d h") % {"hours": lower // 60}
    return _("%(low)d–%(high)d h") % {"low": lower // 60, "high": upper // 60}


def stage_label(stage: str) -> str:
    return {
        "triage_minutes": _("Time to triage"),
        "first_reply_minutes": _("Time to first reply"),
        "resolution_minutes": _("Time to resolution"),
    }[stage]


@dataclass
class MonthlyReport:
    month: date
    channel: str
    category: Category | None
    now: datetime
    tables: list[Table]
    countermeasures: list[CountermeasureFigures]
    triage_open_overdue: int
    triage_open_overdue_link: str

    def table(self, key: str) -> Table:
        return next(table for table in self.tables if table.key == key)

    @property
    def countermeasure_note(self) -> str:
        return self.table("countermeasures").note


# --- the selector -------------------------------------------------------


def _filtered(queryset: QuerySet, channel: str, category_id: int | None) -> QuerySet:
    if channel:
        queryset = queryset.filter(channel=channel)
    if category_id:
        queryset = queryset.filter(category_id=category_id)
    return queryset


def monthly_report(
    *,
    month: date,
    channel: str = "",
    category: Category | None = None,
    now: datetime | None = None,
    inquiry_list_url: str = "",
) -> MonthlyReport:
    """The report of `month` (its first day), filtered by channel and category
    when given. `inquiry_list_url` (the admin's inquiry list) makes the links."""
    now = now or timezone.now()
    month = month.replace(day=1)
    category_id = category.pk if category else None
    start, end = month_range(month)
    links = _Links(inquiry_list_url, start, end, channel, category_id)
    base = _filtered(inquiries_counted(), channel, category_id)
    inquiries = base.filter(created_at__gte=start, created_at__lt=end)
    figures = _month_figures(inquiries, now)

    tables = [
        *_trend_tables(base, month, links),
        _durations_table(figures),
        _impact_table(figures, start, end, channel),
        _triage_table(figures),
        *_compliance_tables(inquiries, now, links),
        *csat_tables(inquiries),
    ]
    countermeasures = countermeasure_figures(month, channel, category_id, now)
    tables.append(countermeasure_table(countermeasures))
    return MonthlyReport(
        month=month,
        channel=channel,
        category=category,
        now=now,
        tables=tables,
        countermeasures=countermeasures,
        # the live rule of the inbox (tickets.services.triage): open, not
        # triaged, past the target in the inquiry's own clock
        triage_open_overdue=base.filter(triage_late_q(now)).count(),
        triage_open_overdue_link=links.url(whole_time=True, triage="late"),
    )


class _Links:
    """Links into the admin's inquiry list, filtered like the report."""

    def __init__(
        self, base_url: str, start: date, end: date, channel: str, category_id: int | None
    ) -> None:
        self.base_url, self.start, self.end = base_url, start, end
        self.channel, self.category_id = channel, category_id

    def url(self, *, whole_time: bool = False, **params: str) -> str:
        from urllib.parse import urlencode

        if not self.base_url:
            return ""
        query = {"status": "all"}
        if whole_time:
            query.pop("status")  # open ones only: the list's default
        else:
            query["created_at__gte"] = self.start.isoformat()
            query["created_at__lt"] = self.end.isoformat()
        if self.channel:
            query["channel__exact"] = self.channel
        if self.category_id:
            query["category__id__exact"] = str(self.category_id)
        query.update({key: value for key, value in params.items() if value is not None})
        return f"{self.base_url}?{urlencode(query)}"


def _trend_tables(base: QuerySet, month: date, links: _Links) -> list[Table]:
    """Counts by category and by channel over the 12 months ending at
    `month`: one query, grouped by month, category and channel."""
    first = month_add(month, 1 - TREND_MONTHS)
    months = [month_add(first, i) for i in range(TREND_MONTHS)]
    start, end = month_range(first, TREND_MONTHS)
    month_expression, to_month = month_of(first, TREND_MONTHS)
    rows = (
        base.filter(created_at__gte=start, created_at__lt=end)
        .annotate(month=month_expression)
        .values("month", "category_id", "channel")
        .annotate(n=Count("pk"))
        .order_by()
    )
    by_category: dict[int | None, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    by_channel: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        row_month = to_month(row["month"])
        by_category[row["category_id"]][row_month] += row["n"]
        by_channel[row["channel"]][row_month] += row["n"]
    labels = [month_label(m) for m in months]
    columns_tail = [*labels]

    categories = list(Category.objects.order_by("position", "name"))
    category_rows: list[tuple[StrOrPromise, Any, dict[str, Any]]] = [
        (category.name, by_category.get(category.pk, {}), {"category__id__exact": category.pk})
        for category in categories
        if category.pk in by_category
    ]
    if None in by_category:
        category_rows.append((_("Uncategorised"), by_category[None], {"category__isnull": "True"}))
    channel_rows = [
        (channel_name(code), by_channel[code], {"channel__exact": code})
        for code, _label in Channel.choices
        if code in by_channel
    ]
    tables = []
    for key, title, first_column, entries in (
        ("by_category", _("Inquiries by category"), _("Category"), category_rows),
        ("by_channel", _("Inquiries by channel"), _("Channel"), channel_rows),
    ):
        table_rows = [[name, *(counts.get(m, 0) for m in months)] for name, counts, _p in entries]
        tables.append(
            Table(
                key=key,
                title=title,
                columns=[first_column, *columns_tail],
                rows=table_rows,
                links=[links.url(**params) for _n, _c, params in entries],
                chart=Chart(
                    kind="bar",
                    labels=labels,
                    datasets=[{"label": row[0], "data": row[1:]} for row in table_rows],
                    stacked=True,
                ),
                note=_("The last column is the month of the report; the links open its inquiries."),
            )
        )
    return tables


def _month_figures(inquiries: QuerySet, now: datetime) -> dict:
    """The month's durations, triage target and impact: one aggregate query
    (PostgreSQL computes both percentiles of a stage from one sort)."""
    aggregates: dict[str, Aggregate] = {
        "inquiries": Count("pk"),
        "customers": Count("customer", distinct=True),
        "orders": Count("order", distinct=True),
    }
    for stage in STAGE_FIELDS:
        aggregates[f"{stage}_n"] = Count("pk", filter=Q(**{f"{stage}__isnull": False}))
        for index, (lower, upper) in enumerate(BUCKETS):
            within = Q(**{f"{stage}__gte": lower})
            if upper is not None:
                within &= Q(**{f"{stage}__lt": upper})
            aggregates[f"{stage}_b{index}"] = Count("pk", filter=within)
        if has_percentile():
            aggregates[f"{stage}_pct"] = Percentiles(stage, (0.5, 0.9))
    untriaged = Q(triage_minutes__isnull=True)
    waited = Q(created_at__lte=now - timedelta(minutes=settings.TRIAGE_TARGET_MINUTES))
    aggregates.update(
        triage_met=Count("pk", filter=Q(triage_minutes__lte=settings.TRIAGE_TARGET_MINUTES)),
        triage_late=Count("pk", filter=Q(triage_minutes__gt=settings.TRIAGE_TARGET_MINUTES)),
        triage_never=Count("pk", filter=untriaged & waited),
        triage_waiting=Count("pk", filter=untriaged & ~waited),
    )
    figures = inquiries.aggregate(**aggregates)
    for stage in STAGE_FIELDS:
        if has_percentile():
            median, p90 = figures.pop(f"{stage}_pct") or (None, None)
        else:
            values = list(
                inquiries.filter(**{f"{stage}__isnull": False})
                .order_by(stage)
                .values_list(stage, flat=True)
            )
            median, p90 = percentile_interpolate(values, 0.5), percentile_interpolate(values, 0.9)
        figures[f"{stage}_p50"], figures[f"{stage}_p90"] = median, p90
    return figures


def _impact_table(figures: dict, start: datetime, end: datetime, channel: str) -> Table:
    suspensions = Suspension.objects.filter(decided_at__gte=start, decided_at__lt=end)
    incidents = Incident.objects.filter(started_at__gte=start, started_at__lt=end)
    if channel:
        incidents = incidents.filter(channel=channel)
        if has_percentile():  # JSON containment: PostgreSQL; SQLite counts every channel
            suspensions = suspensions.filter(channels__contains=[channel])
    rows = [
        [_("Inquiries"), figures["inquiries"]],
        [_("Customers involved"), figures["customers"]],
        [_("Orders involved"), figures["orders"]],
        [_("Sales suspensions decided"), suspensions.count()],
        [_("Incidents started"), incidents.count()],
    ]
    return Table(
        key="impact",
        title=_("Impact"),
        columns=[_("Figure"), _("Value")],
        rows=rows,
        note=_(
            "Customers and orders: distinct ones among the month's inquiries. Sales suspensions "
            "decided and incidents started in the month (by channel when filtered; the category "
            "filter does not apply to them)."
        ),
    )


def _durations_table(figures: dict) -> Table:
    bucket_labels = [bucket_label(lower, upper) for lower, upper in BUCKETS]
    rows = [
        [
            stage_label(stage),
            figures[f"{stage}_n"],
            figures["inquiries"] - figures[f"{stage}_n"],
            duration(figures[f"{stage}_p50"]),
            duration(figures[f"{stage}_p90"]),
            *(figures[f"{stage}_b{i}"] for i in range(len(BUCKETS))),
        ]
        for stage in STAGE_FIELDS
    ]
    return Table(
        key="durations",
        title=_("Time to triage, first reply and resolution"),
        columns=[
            _("Stage"),
            _("Reached"),
            _("Not reached yet"),
            _("Median"),
            _("90th percentile"),
            *bucket_labels,
        ],
        rows=rows,
        chart=Chart(
            kind="bar",
            labels=bucket_labels,
            datasets=[{"label": row[0], "data": row[5:]} for row in rows],
        ),
        note=_(
            "Measured from receipt in the clock of each inquiry's SLA policy: business hours "
            "where the policy counts them, else calendar hours. Inquiries that have not reached "
            "a stage are left out of its median, percentile and buckets."
        ),
    )


COMPLIANCE_COUNTS = ("met", "missed", "pending")


def _compliance_tables(inquiries: QuerySet, now: datetime, links: _Links) -> list[Table]:
    """First-reply compliance per channel and per assignee, from one query
    grouped by both (the counts add up): answered within the due time
    (met); answered late, or still open past it (missed). Open and not yet
    due: shown apart, not in the rate. Closed without a reply, or without a
    deadline: not counted."""
    replied = Q(first_replied_at__isnull=False)
    unreplied_open = Q(first_replied_at__isnull=True, status__in=OPEN_STATUSES)
    grouped = list(
        inquiries.filter(first_reply_due_at__isnull=False)
        .values("channel", "assignee_id")
        .annotate(
            met=Count("pk", filter=replied & Q(first_replied_at__lte=F("first_reply_due_at"))),
            missed=Count(
                "pk",
                filter=(replied & Q(first_replied_at__gt=F("first_reply_due_at")))
                | (unreplied_open & Q(first_reply_due_at__lte=now)),
            ),
            pending=Count("pk", filter=unreplied_open & Q(first_reply_due_at__gt=now)),
        )
        .order_by()
    )
    by_channel: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    by_agent: dict[int | None, list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in grouped:
        for index, name in enumerate(COMPLIANCE_COUNTS):
            by_channel[row["channel"]][index] += row[name]
            by_agent[row["assignee_id"]][index] += row[name]
    channels = [code for code, _label in Channel.choices if code in by_channel]
    ids = [pk for pk in by_agent if pk is not None]
    names: dict[int | None, str] = {
        user.pk: staff_name(user) for user in get_user_model().objects.filter(pk__in=ids)
    }
    agents = sorted(by_agent, key=lambda pk: (pk is None, names.get(pk, "")))
    names[None] = _("Unassigned")
    note = _(
        "In time: first reply sent by its due time. Late or overdue: replied after it, or "
        "still open and unanswered past it. Open and not yet due: not in the rate. Inquiries "
        "closed without a reply are not counted. By agent: the inquiry's assignee."
    )
    columns = [_("In time"), _("Late or overdue"), _("Open, not yet due"), _("Rate (%)")]
    tables = []
    for key, title, first, entries in (
        (
            "compliance_channel",
            _("First-reply compliance by channel"),
            _("Channel"),
            [(channel_name(code), by_channel[code], {"channel__exact": code}) for code in channels],
        ),
        (
            "compliance_agent",
            _("First-reply compliance by agent"),
            _("Agent"),
            [
                (names.get(pk, ""), by_agent[pk], {"assignee": str(pk) if pk else "none"})
                for pk in agents
            ],
        ),
    ):
        rows: list[list[Any]] = [
            [name, met, missed, pending, rate(met, met + missed)]
            for name, (met, missed, pending), _params in entries
        ]
        tables.append(
            Table(
                key=key,
                title=title,
                columns=[first, *columns],
                rows=rows,
                links=[links.url(**params) for _n, _c, params in entries],  # type: ignore[arg-type]  # query filters, never whole_time
                chart=Chart(
                    kind="bar",
                    labels=[row[0] for row in rows],
                    datasets=[{"label": _("Rate (%)"), "data": [row[4] for row in rows]}],
                    horizontal=key == "compliance_agent",
                    percent=True,
                ),
                note=note,
            )
        )
    return tables


def _triage_table(figures: dict) -> Table:
    """The 30-minute triage target: met when triaged within 30 minutes of
    the policy's clock; missed when triaged later, or not triaged and
    received more than 30 minutes ago (wall time)."""
    met, late, never = figures["triage_met"], figures["triage_late"], figures["triage_never"]
    rows = [
        [_("Triaged within 30 minutes"), met],
        [_("Triaged after 30 minutes"), late],
        [_("Not triaged, received over 30 minutes ago"), never],
        [_("Not triaged, received under 30 minutes ago"), figures["triage_waiting"]],
        [_("Share met (%)"), rate(met, met + late + never)],
    ]
    return Table(
        key="triage",
        title=_("Triage target (30 minutes)"),
        columns=[_("Figure"), _("Value")],
        rows=rows,
        chart=Chart(
            kind="doughnut",
            labels=[rows[0][0], rows[1][0], rows[2][0]],
            datasets=[{"label": _("Inquiries"), "data": [met, late, never]}],
        ),
        note=_(
            "Triage (状況確認) is reached when both the category and the assignee are set. "
            "Within 30 minutes in the clock of the inquiry's SLA policy. Inquiries received under "
            "30 minutes ago are not in the share."
        ),
    )
