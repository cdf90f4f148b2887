"""A campaign's results on its page (and the lift sentence of a journey
step's, outreach.admin.journeys): recipients next to the holdout group
(members, clicks, who ordered, orders, revenue within the attribution
window), the lift, a chart (Chart.js, drawn by reports/monthly.js) and a
CSV of the same table."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext

from outreach.models import Campaign
from outreach.selectors import CampaignResults, GroupResult, results_for_campaign


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _yen(value: float | None) -> str:
    return "—" if value is None else f"¥{round(value):,}"


def results_rows(results: CampaignResults) -> list[tuple[str, str, str]]:
    """(measure, recipients, holdout) as the table and the CSV show them."""
    sent, held = results.recipients, results.holdout

    def row(label: str, value) -> tuple[str, str, str]:
        return (label, value(sent), value(held))

    return [
        row(gettext("Customers"), lambda g: f"{g.members:,}"),
        row(gettext("Clicked"), lambda g: f"{g.clicked:,}"),
        row(gettext("Ordered"), lambda g: f"{g.converted:,}"),
        row(gettext("Conversion rate"), lambda g: _percent(g.conversion_rate)),
        row(gettext("Orders"), lambda g: f"{g.orders:,}"),
        row(gettext("Revenue"), lambda g: _yen(g.revenue)),
        row(gettext("Revenue per customer"), lambda g: _yen(g.revenue_per_member)),
    ]


def lift_text(results: CampaignResults, *, holdout_set: bool = False) -> str:
    """The lift in a sentence (a campaign's or a journey step's results);
    `holdout_set`: a holdout share is set, nobody was held out yet."""
    lift = results.lift
    if not results.holdout.members:
        if holdout_set:
            return gettext(
                "Nobody has been held out yet: the lift shows once the holdout group has members."
            )
        return gettext("No holdout group: the lift cannot be measured.")
    if lift is None:
        return gettext("Nobody in the holdout group ordered yet: the lift cannot be measured.")
    return gettext(
        "Recipients ordered %(lift)s more often than the holdout group "
        "(revenue added: %(revenue)s)."
    ) % {"lift": f"{lift * 100:+.1f}%", "revenue": _yen(results.incremental_revenue)}


def _group_chart(groups: list[tuple[str, GroupResult]]) -> dict[str, Any]:
    return {
        "counts": {
            "kind": "bar",
            "labels": [gettext("Customers"), gettext("Clicked"), gettext("Ordered")],
            "datasets": [
                {"label": label, "data": [g.members, g.clicked, g.converted]} for label, g in groups
            ],
        },
        "revenue": {
            "kind": "bar",
            "labels": [gettext("Revenue"), gettext("Revenue per customer")],
            "datasets": [
                {"label": label, "data": [g.revenue, round(g.revenue_per_member or 0)]}
                for label, g in groups
            ],
        },
    }


def results_context(campaign: Campaign) -> dict[str, Any]:
    """What the campaign page shows of its results (one query)."""
    results = results_for_campaign(campaign)
    groups = [(gettext("Recipients"), results.recipients)]
    if campaign.holdout_percent or results.holdout.members:
        groups.append((gettext("Holdout group"), results.holdout))
    return {
        "results": results,
        "results_rows": results_rows(results),
        "results_groups": [label for label, _group in groups],
        "results_lift": lift_text(results),
        "results_chart": _group_chart(groups),
    }
