"""The mall-health block as the manager's home shows it: each figure's
text, colour band (good / warning / bad) and formula on hover, and the
chart's data. The figures themselves come from
reports.selectors.mall_health."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.types import StrOrPromise
from reports.selectors.mall_health import (
    AMAZON_LATE_BAD,
    AMAZON_LATE_WARNING,
    AMAZON_REPLY_HOURS,
    BAD,
    CANCELLATION_BAD,
    CANCELLATION_WARNING,
    CANCELLATION_WINDOW_DAYS,
    COMPLIANCE_GOOD,
    COMPLIANCE_WARNING,
    GOOD,
    WARNING,
    YAHOO_BOTTOM,
    YAHOO_TOP,
    Average,
    MallHealth,
    Ratio,
)


@dataclass(frozen=True)
class Cell:
    text: str
    band: str | None = None  # GOOD / WARNING / BAD: the cell's colour
    title: str = ""  # the formula, on hover
    url: str | None = None


def _percent(ratio: Ratio) -> str:
    return "—" if ratio.percent is None else f"{ratio.percent:.1f}%"


def _threshold(rate: float) -> str:
    return f"{rate * 100:g}%"


def _ratio_cell(ratio: Ratio, formula: str, thresholds: str) -> Cell:
    title = f"{formula}\n{ratio.part:,} ÷ {ratio.whole:,}\n{thresholds}"
    return Cell(_percent(ratio), ratio.band, title)


def compliance_cell(ratio: Ratio) -> Cell:
    return _ratio_cell(
        ratio,
        gettext(
            "Answered by the first-reply deadline ÷ inquiries received in the period whose "
            "deadline has passed or that were answered"
        ),
        gettext("Good from %(good)s, warning from %(warning)s, needs action below.")
        % {"good": _threshold(COMPLIANCE_GOOD), "warning": _threshold(COMPLIANCE_WARNING)},
    )


def amazon_late_cell(ratio: Ratio) -> Cell:
    return _ratio_cell(
        ratio,
        gettext(
            "Not answered within %(hours)d calendar hours of arrival (weekends and holidays "
            "included) ÷ Amazon inquiries received in the period that were answered or are "
            "%(hours)d hours old"
        )
        % {"hours": AMAZON_REPLY_HOURS},
        gettext("Good below %(warning)s, warning from %(warning)s, needs action from %(bad)s.")
        % {"warning": _threshold(AMAZON_LATE_WARNING), "bad": _threshold(AMAZON_LATE_BAD)},
    )


def cancellation_cell(ratio: Ratio) -> Cell:
    return _ratio_cell(
        ratio,
        gettext("Orders placed in the last %(days)d days now cancelled ÷ orders placed in them")
        % {"days": CANCELLATION_WINDOW_DAYS},
        gettext("Good below %(warning)s, warning from %(warning)s, needs action from %(bad)s.")
        % {"warning": _threshold(CANCELLATION_WARNING), "bad": _threshold(CANCELLATION_BAD)},
    )


YAHOO_BAND_LABELS: dict[str | None, StrOrPromise] = {
    GOOD: _("top band"),
    WARNING: _("middle band"),
    BAD: _("bottom band"),
}


def yahoo_cell(average: Average) -> Cell:
    hours = {
        "top": YAHOO_TOP.total_seconds() // 3600,
        "bottom": YAHOO_BOTTOM.total_seconds() // 3600,
    }
    title = "\n".join(
        (
            gettext(
                "Mean time from arrival to the first reply of the Yahoo inquiries received in "
                "the period and answered (%(count)d)"
            )
            % {"count": average.count},
            gettext(
                "Top band: %(top)d h or less; bottom band: %(bottom)d h or more; middle band "
                "between."
            )
            % hours,
        )
    )
    if average.hours is None:
        return Cell("—", None, title)
    text = gettext("%(hours).1f h (%(band)s)") % {
        "hours": average.hours,
        "band": YAHOO_BAND_LABELS[average.band],
    }
    return Cell(text, average.band, title)


def _count_cell(count: int, band: str, title: str, url: str | None) -> Cell:
    return Cell(f"{count:,}", band if count else GOOD, title, url if count else None)


@dataclass(frozen=True)
class HealthRow:
    label: str
    compliance: list[Cell]
    cancellation: Cell | None
    breaches: Cell
    incidents: Cell
    suspensions: Cell


@dataclass(frozen=True)
class HealthView:
    windows: tuple[int, ...]
    windows_at: datetime
    rows: list[HealthRow]
    amazon: list[Cell] | None
    yahoo: list[Cell] | None
    incidents_without_channel: int


def mall_health_view(health: MallHealth, *, urls: dict[str, str | None]) -> HealthView:
    """The block's cells: text, colour band and formula. `urls` holds the
    lists the counts link to ("inbox", "incidents", "suspensions"), each a
    base to which the channel is added."""
    rows, amazon, yahoo = [], None, None
    for row in health.rows:
        channel_query = f"channel__exact={row.channel}"
        rows.append(
            HealthRow(
                label=row.label,
                compliance=[compliance_cell(row.compliance[d]) for d in health.windows],
                cancellation=cancellation_cell(row.cancellation) if row.cancellation else None,
                breaches=_count_cell(
                    row.open_breaches,
                    BAD,
                    gettext("Open inquiries not answered and past their first-reply deadline."),
                    urls["breached"] and f"{urls['breached']}&{channel_query}",
                ),
                incidents=_count_cell(
                    row.open_incidents,
                    BAD,
                    gettext("Ongoing incidents on this channel."),
                    urls["incidents"] and f"{urls['incidents']}&{channel_query}",
                ),
                suspensions=_count_cell(
                    row.active_suspensions,
                    WARNING,
                    gettext("Active sales suspensions that include this channel."),
                    urls["suspensions"],
                ),
            )
        )
        if row.amazon_late is not None:
            amazon = [amazon_late_cell(row.amazon_late[d]) for d in health.windows]
        if row.yahoo_average is not None:
            yahoo = [yahoo_cell(row.yahoo_average[d]) for d in health.windows]
    return HealthView(
        health.windows, health.windows_at, rows, amazon, yahoo, health.incidents_without_channel
    )


def mall_health_chart(health: MallHealth) -> dict:
    """First-reply compliance per channel and window, for Chart.js: one
    dataset per window, percentages (None where nothing was judged)."""
    return {
        "labels": [row.label for row in health.rows],
        "datasets": [
            {
                "label": gettext("Last %(days)d days") % {"days": days},
                "data": [row.compliance[days].percent for row in health.rows],
            }
            for days in health.windows
        ],
        "axis": gettext("Answered within target (%)"),
    }
