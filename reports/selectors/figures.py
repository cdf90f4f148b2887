"""What the manager's reports are made of: months in Asia/Tokyo, PostgreSQL's
percentiles as aggregates (with SQLite's fallback), and the tables and
charts a page shows and exports."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Aggregate, DateTimeField, F, FloatField, Func, IntegerField, Value
from django.db.models.functions import TruncMonth
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from core.choices import Channel

JST = ZoneInfo("Asia/Tokyo")


class Percentile(Aggregate):
    """PostgreSQL's percentile_cont(fraction) WITHIN GROUP (ORDER BY expr):
    the continuous percentile, NULLs left out."""

    function = "percentile_cont"
    name = "Percentile"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


class Percentiles(Aggregate):
    """percentile_cont(ARRAY[fractions]) WITHIN GROUP (ORDER BY expr): the
    continuous percentiles of one sort, as a list (PostgreSQL)."""

    function = "percentile_cont"
    name = "Percentiles"
    template = "%(function)s(ARRAY[%(fractions)s]) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression: Any, fractions: Sequence[float], **extra: Any) -> None:
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


def month_of(first: date, months: int) -> tuple[Any, Callable[[Any], date]]:
    """(annotation, to_month): each row's month as an annotation over
    `months` months from `first`, and how to turn its value into the
    month's first day. SQLite: TruncMonth in Asia/Tokyo."""
    if not has_percentile():
        return TruncMonth("created_at", tzinfo=JST), as_date
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


def has_percentile() -> bool:
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


def channel_name(code: str) -> str:
    return str(dict(Channel.choices).get(code, code))


def rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(100 * part / whole, 1)


def rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


class Duration(float):
    """A length of time in minutes (a stage's median, a percentile) that
    reads as people say it on the page and in the CSV: 「45分」,
    「5時間12分」, 「3日12時間」 rather than 「5041.0」. Compares as the
    number of minutes."""

    def __str__(self) -> str:
        minutes = round(float(self))
        if minutes < 60:
            return _("%(minutes)d min") % {"minutes": minutes}
        hours, minutes = divmod(minutes, 60)
        if hours < 24:
            if not minutes:
                return _("%(hours)d h") % {"hours": hours}
            return _("%(hours)d h %(minutes)d min") % {"hours": hours, "minutes": minutes}
        days, hours = divmod(hours, 24)
        if not hours:
            return _("%(days)d d") % {"days": days}
        return _("%(days)d d %(hours)d h") % {"days": days, "hours": hours}


def duration(value: float | None) -> Duration | None:
    """`value` minutes as a Duration rounded to a tenth of a minute (None stays None)."""
    return None if value is None else Duration(round(value, 1))


def as_date(value: date | datetime) -> date:
    if isinstance(value, datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value, JST)
        return value.date()
    return value


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
