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

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import (
    Aggregate,
    Count,
    DateTimeField,
    F,
    FloatField,
    Func,
    IntegerField,
    Q,
    QuerySet,
    Value,
)
from django.db.models.functions import TruncMonth
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from core.roles import staff_name
from crisis.models import Incident, Suspension
from crm.models import Channel
from reports.models import Countermeasure
from tickets.models import OPEN_STATUSES, Category, Inquiry

JST = ZoneInfo("Asia/Tokyo")
TREND_MONTHS = 12
TRIAGE_TARGET_MINUTES = 30  # SPEC rule 2: 状況確認 within 30 minutes
# A countermeasure is shown beside this many months before and after its month.
COUNTERMEASURE_SPAN = 3
# (lower bound, upper bound) in minutes: [lower, upper).
BUCKETS = ((0, 60), (60, 240), (240, 480), (480, 1440), (1440, None))
STAGE_FIELDS = ("triage_minutes", "first_reply_minutes", "resolution_minutes")


class Percentile(Aggregate):
    """PostgreSQL's percentile_cont(fraction) WITHIN GROUP (ORDER BY expr):
    the continuous percentile, NULLs left out."""

    function = "percentile_cont"
    name = "Percentile"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


class Percentiles(Aggregate):
    """percentile_cont(ARRAY[fractions]) WITHIN GROUP (ORDER BY expr): the
    continuous percentiles of one sort, as a list (PostgreSQL)."""

    function = "percentile_cont"
    name = "Percentiles"
    template = "%(function)s(ARRAY[%(fractions)s]) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression, fractions: Sequence[float], **extra):
        from django.contrib.postgres.fields import ArrayField

        super().__init__(
            expression,
            fractions=", ".join(repr(float(f)) for f in fractions),
            output_field=ArrayField(FloatField()),
            **extra,
        )


class MonthIndex(Func):
    """width_bucket(created_at, ARRAY[month starts]): 1 for the first month,
    2 for the next... (PostgreSQL). A comparison per row instead of a time
    zone conversion and date_trunc per row: the trend reads a year."""

    function = "width_bucket"
    output_field = IntegerField()


def _month_of(first: date, months: int):
    """(annotation, to_month): each row's month as an annotation over
    `months` months from `first`, and how to turn its value into the
    month's first day. SQLite: TruncMonth in Asia/Tokyo."""
    if not _has_percentile():
        return TruncMonth("created_at", tzinfo=JST), _as_date
    bounds = Func(
        *(Value(datetime.combine(month_add(first, i), time(), JST)) for i in range(months + 1)),
        template="ARRAY[%(expressions)s]::timestamptz[]",
        output_field=DateTimeField(),
    )
    return MonthIndex(F("created_at"), bounds), lambda index: month_add(first, index - 1)


def percentile_interpolate(values: Sequence[float], fraction: float) -> float | None:
    """percentile_cont over sorted `values` (SQLite's fallback)."""
    if not values:
        return None
    position = fraction * (len(values) - 1)
    low, high = math.floor(position), math.ceil(position)
    return values[low] + (values[high] - values[low]) * (position - low)


def _has_percentile() -> bool:
    return connection.vendor == "postgresql"


# --- months -------------------------------------------------------------


def month_add(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def month_range(first: date, months: int = 1) -> tuple[datetime, datetime]:
    """[start, end) of `months` months from `first`, as aware Asia/Tokyo times."""
    return (
        datetime.combine(first, time(), JST),
        datetime.combine(month_add(first, months), time(), JST),
    )


def month_label(month: date) -> str:
    return formats.date_format(month, "YEAR_MONTH_FORMAT")


def month_default(now: datetime | None = None) -> date:
    """The last complete month (Asia/Tokyo): the one a monthly review looks at."""
    today = timezone.localtime(now or timezone.now(), JST).date()
    return month_add(today.replace(day=1), -1)


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


def _channel_name(code: str) -> str:
    return str(dict(Channel.choices).get(code, code))


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(100 * part / whole, 1)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# --- what the page shows ------------------------------------------------


@dataclass
class Chart:
    kind: str  # Chart.js type: bar, line, doughnut
    labels: list[str]
    datasets: list[dict]
    stacked: bool = False
    horizontal: bool = False
    percent: bool = False


@dataclass
class Table:
    """One table of the report: shown under its chart, exported as CSV."""

    key: str
    title: str
    columns: list[str]
    rows: list[list]
    # Per row: the filtered inquiry list behind it, or "".
    links: list[str] = field(default_factory=list)
    chart: Chart | None = None
    note: str = ""

    @property
    def entries(self) -> list[tuple[list, str]]:
        """(row, its link or "") pairs, for the page."""
        return [
            (row, self.links[i] if i < len(self.links) else "") for i, row in enumerate(self.rows)
        ]


@dataclass
class CountermeasureFigures:
    countermeasure: Countermeasure
    scope: str
    months: list[date]  # COUNTERMEASURE_SPAN before, its month, COUNTERMEASURE_SPAN after
    counts: list[int | None]  # None: a month not over yet
    first_reply_medians: list[float | None]

    @property
    def owner_name(self) -> str:
        return staff_name(self.countermeasure.owner)


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
    base = _filtered(Inquiry.objects.all(), channel, category_id)
    inquiries = base.filter(created_at__gte=start, created_at__lt=end)
    figures = _month_figures(inquiries, now)

    tables = [
        *_trend_tables(base, month, links),
        _durations_table(figures),
        _impact_table(figures, start, end, channel),
        _triage_table(figures),
        *_compliance_tables(inquiries, now, links),
    ]
    overdue_q = Q(
        status__in=OPEN_STATUSES,
        triaged_at__isnull=True,
        created_at__lte=now - timedelta(minutes=TRIAGE_TARGET_MINUTES),
    )
    countermeasures = _countermeasure_figures(month, channel, category_id, now)
    tables.append(_countermeasure_table(countermeasures))
    return MonthlyReport(
        month=month,
        channel=channel,
        category=category,
        now=now,
        tables=tables,
        countermeasures=countermeasures,
        triage_open_overdue=base.filter(overdue_q).count(),
        triage_open_overdue_link=links.url(
            whole_time=True,
            triaged_at__isnull="True",
            created_at__lte=timezone.localtime(
                now - timedelta(minutes=TRIAGE_TARGET_MINUTES), JST
            ).isoformat(),
        ),
    )


class _Links:
    """Links into the admin's inquiry list, filtered like the report."""

    def __init__(self, base_url, start, end, channel, category_id):
        self.base_url, self.start, self.end = base_url, start, end
        self.channel, self.category_id = channel, category_id

    def url(self, *, whole_time: bool = False, **params) -> str:
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
    month_of, to_month = _month_of(first, TREND_MONTHS)
    rows = (
        base.filter(created_at__gte=start, created_at__lt=end)
        .annotate(month=month_of)
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
    category_rows = [
        (category.name, by_category.get(category.pk, {}), {"category__id__exact": category.pk})
        for category in categories
        if category.pk in by_category
    ]
    if None in by_category:
        category_rows.append((_("Uncategorised"), by_category[None], {"category__isnull": "True"}))
    channel_rows = [
        (_channel_name(code), by_channel[code], {"channel__exact": code})
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
    aggregates = {
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
        if _has_percentile():
            aggregates[f"{stage}_pct"] = Percentiles(stage, (0.5, 0.9))
    untriaged = Q(triage_minutes__isnull=True)
    waited = Q(created_at__lte=now - timedelta(minutes=TRIAGE_TARGET_MINUTES))
    aggregates.update(
        triage_met=Count("pk", filter=Q(triage_minutes__lte=TRIAGE_TARGET_MINUTES)),
        triage_late=Count("pk", filter=Q(triage_minutes__gt=TRIAGE_TARGET_MINUTES)),
        triage_never=Count("pk", filter=untriaged & waited),
        triage_waiting=Count("pk", filter=untriaged & ~waited),
    )
    figures = inquiries.aggregate(**aggregates)
    for stage in STAGE_FIELDS:
        if _has_percentile():
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
        if _has_percentile():  # JSON containment: PostgreSQL; SQLite counts every channel
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
            _rounded(figures[f"{stage}_p50"]),
            _rounded(figures[f"{stage}_p90"]),
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
            _("Median (min)"),
            _("90th percentile (min)"),
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
    names = {user.pk: staff_name(user) for user in get_user_model().objects.filter(pk__in=ids)}
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
            [
                (_channel_name(code), by_channel[code], {"channel__exact": code})
                for code in channels
            ],
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
        rows = [
            [name, met, missed, pending, _rate(met, met + missed)]
            for name, (met, missed, pending), _params in entries
        ]
        tables.append(
            Table(
                key=key,
                title=title,
                columns=[first, *columns],
                rows=rows,
                links=[links.url(**params) for _n, _c, params in entries],
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
        [_("Share met (%)"), _rate(met, met + late + never)],
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


# --- the improvement cycle ----------------------------------------------


def _countermeasure_scope(item: Countermeasure) -> tuple[int | None, str]:
    """(category id, channel) whose figures show whether it worked: its own,
    else its incident's channel."""
    channel = item.channel or (item.incident.channel if item.incident_id else "")
    return item.category_id, channel


def _scope_label(item: Countermeasure) -> str:
    parts = []
    if item.incident_id:
        parts.append(_("Incident: %(title)s") % {"title": item.incident.title})
    if item.category_id:
        parts.append(item.category.name)
    _category_id, channel = _countermeasure_scope(item)
    if channel:
        parts.append(_channel_name(channel))
    return " / ".join(parts) or _("All inquiries")


def _scope_q(scope: tuple[tuple[str, ...], tuple]) -> Q:
    keys, values = scope
    return Q(**dict(zip(keys, values, strict=True)))


def _scope_month_stats(
    scopes: Sequence[tuple[tuple[str, ...], tuple]], first: date, months: int
) -> dict[tuple, tuple[int, float | None]]:
    """{(scope, month): (count, first-reply median)} for each scope
    ((field names), (values)) over `months` months from `first`: one
    aggregate query per month, each scope's count and median with its own
    FILTER, so that a month's rows are read once (from the received-time
    index) and each median sorts only its scope's rows. SQLite: the medians
    in Python."""
    wanted = [_scope_q(scope) for scope in scopes]
    rows_q = Q()
    if all(wanted):  # no scope is "all inquiries"
        for scope_q in wanted:
            rows_q |= scope_q
    stats = {}
    for index in range(months):
        each = month_add(first, index)
        start, end = month_range(each)
        rows = Inquiry.objects.filter(created_at__gte=start, created_at__lt=end).filter(rows_q)
        aggregates = {f"n{n}": Count("pk", filter=q or None) for n, q in enumerate(wanted)}
        if _has_percentile():
            aggregates.update(
                {
                    f"m{n}": Percentile("first_reply_minutes", 0.5, filter=q or None)
                    for n, q in enumerate(wanted)
                }
            )
        figures = rows.aggregate(**aggregates)
        for n, scope in enumerate(scopes):
            median = figures.get(f"m{n}")
            if not _has_percentile():
                values = list(
                    rows.filter(wanted[n], first_reply_minutes__isnull=False)
                    .order_by("first_reply_minutes")
                    .values_list("first_reply_minutes", flat=True)
                )
                median = percentile_interpolate(values, 0.5)
            stats[(scope, each)] = (figures[f"n{n}"], median)
    return stats


def _as_date(value) -> date:
    if isinstance(value, datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value, JST)
        return value.date()
    return value


def _stats_scope(item: Countermeasure) -> tuple[tuple[str, ...], tuple]:
    """((field names), (values)) of the inquiries whose figures go beside
    the countermeasure."""
    category, channel = _countermeasure_scope(item)
    pairs = [
        (key, value) for key, value in (("category_id", category), ("channel", channel)) if value
    ]
    return tuple(key for key, _v in pairs), tuple(value for _k, value in pairs)


def _countermeasure_figures(
    month: date, channel: str, category_id: int | None, now: datetime
) -> list[CountermeasureFigures]:
    """The countermeasures of `month` and the COUNTERMEASURE_SPAN months
    before it (those whose months after include this one) that concern the
    report's filters, each beside its scope's count and first-reply median
    for COUNTERMEASURE_SPAN months before and after its month (up to the
    current one)."""
    first = month_add(month, -COUNTERMEASURE_SPAN)
    items = Countermeasure.objects.filter(month__gte=first, month__lte=month).select_related(
        "category", "owner", "incident"
    )
    if category_id:
        items = items.filter(Q(category_id=category_id) | Q(category__isnull=True))
    items = list(items.order_by("-month", "due_date", "pk"))
    if channel:
        items = [item for item in items if _countermeasure_scope(item)[1] in ("", channel)]
    if not items:
        return []
    current = timezone.localtime(now, JST).date().replace(day=1)
    span_first = month_add(min(item.month for item in items), -COUNTERMEASURE_SPAN)
    span_last = min(month_add(max(item.month for item in items), COUNTERMEASURE_SPAN), current)
    span_months = max(
        (span_last.year - span_first.year) * 12 + span_last.month - span_first.month + 1, 1
    )
    scopes = list(dict.fromkeys(_stats_scope(item) for item in items))
    stats = _scope_month_stats(scopes, span_first, span_months)
    result = []
    for item in items:
        scope = _stats_scope(item)
        months = [
            month_add(item.month, offset)
            for offset in range(-COUNTERMEASURE_SPAN, COUNTERMEASURE_SPAN + 1)
        ]
        counts, medians = [], []
        for each in months:
            if each > current:
                counts.append(None)
                medians.append(None)
                continue
            count, median = stats[(scope, each)]
            counts.append(count)
            medians.append(_rounded(median))
        result.append(
            CountermeasureFigures(
                countermeasure=item,
                scope=_scope_label(item),
                months=months,
                counts=counts,
                first_reply_medians=medians,
            )
        )
    return result


def countermeasure_offset_label(offset: int) -> str:
    if offset == 0:
        return _("its month")
    if offset < 0:
        return _("%(n)d months before") % {"n": -offset}
    return _("%(n)d months after") % {"n": offset}


def _countermeasure_table(figures: list[CountermeasureFigures]) -> Table:
    offsets = range(-COUNTERMEASURE_SPAN, COUNTERMEASURE_SPAN + 1)
    count_columns = [
        _("Count, %(when)s") % {"when": countermeasure_offset_label(o)} for o in offsets
    ]
    median_columns = [
        _("First-reply median (min), %(when)s") % {"when": countermeasure_offset_label(o)}
        for o in offsets
    ]
    rows = []
    for entry in figures:
        item = entry.countermeasure
        rows.append(
            [
                month_label(item.month),
                entry.scope,
                item.cause,
                item.action,
                staff_name(item.owner),
                formats.date_format(item.due_date, "SHORT_DATE_FORMAT"),
                item.get_status_display(),
                *entry.counts,
                *entry.first_reply_medians,
            ]
        )
    return Table(
        key="countermeasures",
        title=_("Countermeasures and their months before and after"),
        columns=[
            _("Month reviewed"),
            _("Concerns"),
            _("Cause"),
            _("Countermeasure"),
            _("Owner"),
            _("Due date"),
            _("Status"),
            *count_columns,
            *median_columns,
        ],
        rows=rows,
        note=_(
            "Countermeasures recorded for this month and the 3 before it. Figures are those of the "
            "countermeasure's category and channel (an incident's: its channel), over all "
            "channels and categories otherwise; months not over yet are blank."
        ),
    )
