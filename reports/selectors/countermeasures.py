"""The improvement cycle (改善サイクル) on the monthly report: each
countermeasure beside its scope's count and first-reply median for the
months before and after its month."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import Aggregate, Count, Q
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from core.roles import staff_name
from reports.models import Countermeasure
from reports.selectors.figures import (
    JST,
    Percentile,
    Table,
    channel_name,
    duration,
    has_percentile,
    month_add,
    month_label,
    month_range,
    percentile_interpolate,
)
from tickets.selectors import inquiries_counted

# A countermeasure is shown beside this many months before and after its month.
COUNTERMEASURE_SPAN = 3


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


def _countermeasure_scope(item: Countermeasure) -> tuple[int | None, str]:
    """(category id, channel) whose figures show whether it worked: its own,
    else its incident's channel."""
    channel = item.channel or (item.incident.channel if item.incident_id else "")  # type: ignore[union-attr]  # incident_id is set
    return item.category_id, channel


def _scope_label(item: Countermeasure) -> str:
    parts = []
    if item.incident_id:
        parts.append(_("Incident: %(title)s") % {"title": item.incident.title})  # type: ignore[union-attr]  # incident_id is set
    if item.category_id:
        parts.append(item.category.name)  # type: ignore[union-attr]  # category_id is set
    _category_id, channel = _countermeasure_scope(item)
    if channel:
        parts.append(channel_name(channel))
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
        rows = inquiries_counted().filter(created_at__gte=start, created_at__lt=end).filter(rows_q)
        aggregates: dict[str, Aggregate] = {
            f"n{n}": Count("pk", filter=q or None) for n, q in enumerate(wanted)
        }
        if has_percentile():
            aggregates.update(
                {
                    f"m{n}": Percentile("first_reply_minutes", 0.5, filter=q or None)
                    for n, q in enumerate(wanted)
                }
            )
        figures = rows.aggregate(**aggregates)
        for n, scope in enumerate(scopes):
            median = figures.get(f"m{n}")
            if not has_percentile():
                values = list(
                    rows.filter(wanted[n], first_reply_minutes__isnull=False)
                    .order_by("first_reply_minutes")
                    .values_list("first_reply_minutes", flat=True)
                )
                median = percentile_interpolate(values, 0.5)  # type: ignore[arg-type]  # first_reply_minutes__isnull=False: no None
            stats[(scope, each)] = (figures[f"n{n}"], median)
    return stats


def _stats_scope(item: Countermeasure) -> tuple[tuple[str, ...], tuple]:
    """((field names), (values)) of the inquiries whose figures go beside
    the countermeasure."""
    category, channel = _countermeasure_scope(item)
    pairs = [
        (key, value) for key, value in (("category_id", category), ("channel", channel)) if value
    ]
    return tuple(key for key, _v in pairs), tuple(value for _k, value in pairs)


def countermeasure_figures(
    month: date, channel: str, category_id: int | None, now: datetime
) -> list[CountermeasureFigures]:
    """The countermeasures of `month` and the COUNTERMEASURE_SPAN months
    before it (those whose months after include this one) that concern the
    report's filters, each beside its scope's count and first-reply median
    for COUNTERMEASURE_SPAN months before and after its month (up to the
    current one)."""
    first = month_add(month, -COUNTERMEASURE_SPAN)
    queryset = Countermeasure.objects.filter(month__gte=first, month__lte=month).select_related(
        "category", "owner", "incident"
    )
    if category_id:
        queryset = queryset.filter(Q(category_id=category_id) | Q(category__isnull=True))
    items = list(queryset.order_by("-month", "due_date", "pk"))
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
        counts: list[int | None]
        medians: list[float | None]
        counts, medians = [], []
        for each in months:
            if each > current:
                counts.append(None)
                medians.append(None)
                continue
            count, median = stats[(scope, each)]
            counts.append(count)
            medians.append(duration(median))
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


def countermeasure_table(figures: list[CountermeasureFigures]) -> Table:
    offsets = range(-COUNTERMEASURE_SPAN, COUNTERMEASURE_SPAN + 1)
    count_columns = [
        _("Count, %(when)s") % {"when": countermeasure_offset_label(o)} for o in offsets
    ]
    median_columns = [
        _("First-reply median, %(when)s") % {"when": countermeasure_offset_label(o)}
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
