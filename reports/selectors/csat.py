"""Customer satisfaction (CSAT) in the monthly report: by channel and by
agent (the inquiry's assignee), over the month's inquiries that were asked
the question (tickets.services.csat). One grouped query, and one for the
agents' names."""

from __future__ import annotations

from collections import defaultdict

from django.contrib.auth import get_user_model
from django.db.models import Count, Q, QuerySet, Sum
from django.utils.translation import gettext as _

from core.roles import staff_name
from reports.selectors.figures import Table, channel_name, rate, rounded

SATISFIED_FROM = 4  # 4 and 5 count as satisfied (the usual CSAT share)


def _columns(first: str) -> list[str]:
    return [
        first,
        _("Asked"),
        _("Answered"),
        _("Answer rate (%)"),
        _("Average (1–5)"),
        _("Satisfied, 4–5 (%)"),
    ]


def _row(label: str, figures: dict[str, int]) -> list:
    asked, answered = figures["asked"], figures["answered"]
    average = figures["total"] / answered if answered else None
    return [
        label,
        asked,
        answered,
        rate(answered, asked),
        rounded(average),
        rate(figures["satisfied"], answered),
    ]


def csat_tables(inquiries: QuerySet) -> list[Table]:
    """Two tables: satisfaction by channel and by agent, for `inquiries`
    (the month's, filtered as the report is)."""
    rows = (
        inquiries.filter(csat__isnull=False)
        .values("channel", "assignee_id")
        .annotate(
            asked=Count("pk"),
            answered=Count("csat__score"),
            total=Sum("csat__score", default=0),
            satisfied=Count("pk", filter=Q(csat__score__gte=SATISFIED_FROM)),
        )
        .order_by()
    )
    empty = {"asked": 0, "answered": 0, "total": 0, "satisfied": 0}
    by_channel: dict[str, dict[str, int]] = defaultdict(lambda: dict(empty))
    by_agent: dict[int | None, dict[str, int]] = defaultdict(lambda: dict(empty))
    for row in rows:
        for figures in (by_channel[row["channel"]], by_agent[row["assignee_id"]]):
            for key in empty:
                figures[key] += row[key]
    agent_ids = [pk for pk in by_agent if pk is not None]
    users = get_user_model().objects.in_bulk(agent_ids) if agent_ids else {}
    agents = sorted(
        by_agent.items(),
        key=lambda item: (item[0] is None, staff_name(users.get(item[0])) if item[0] else ""),
    )
    note = _(
        "Inquiries received in the month that were asked 「今回の対応はいかがでしたか」 when "
        "resolved (never on Amazon). Satisfied: an answer of 4 or 5."
    )
    return [
        Table(
            key="csat_by_channel",
            title=_("Customer satisfaction by channel"),
            columns=_columns(_("Channel")),
            rows=[
                _row(channel_name(code), figures) for code, figures in sorted(by_channel.items())
            ],
            note=note,
        ),
        Table(
            key="csat_by_agent",
            title=_("Customer satisfaction by agent"),
            columns=_columns(_("Agent")),
            rows=[
                _row(staff_name(users.get(pk)) if pk else _("(unassigned)"), figures)
                for pk, figures in agents
            ],
            note=note,
        ),
    ]
