"""Mall health (モール評価, SPEC rule 15): how each sales channel stands on
the figures the malls score a shop on, over the last 7, 30 and 90 days.

- First-reply compliance: of the inquiries received in the window whose
  first-reply deadline (the channel's SLA policy, stored on the inquiry)
  has passed or that were answered, the share answered by the deadline.
  Inquiries still inside their deadline and unanswered are not counted
  yet: they can still make it.
- Amazon's late-response rate: of the Amazon inquiries received in the
  window that were answered or are 24 hours old, the share not answered
  within 24 calendar hours of arrival, weekends and holidays included,
  whatever the policy's clock (Amazon counts calendar hours).
- Yahoo's average first reply: the mean time from arrival to the first
  reply of the Yahoo inquiries received in the window and answered, in
  Yahoo's store-performance bands (12 hours or less: top; 48 hours or
  more: bottom; between: middle).
- The cancellation rate of orders over 30 days: orders placed in the
  window that are now cancelled, over the orders placed in it.
- Now: open inquiries past their first-reply deadline, ongoing incidents on
  the channel, active sales suspensions on it.

Five aggregate queries whatever the number of inquiries and orders: the
windowed ones (inquiries over 90 days, orders over 30 days: the two that
read many rows) and what is open now (inquiries, incidents, suspensions).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Aggregate, Avg, Count, DurationField, F, Q
from django.utils import timezone

from core.choices import Channel
from crisis.models import Incident, IncidentStatus, Suspension
from crm.models import Order, OrderStatus
from tickets.models import OPEN_STATUSES, Inquiry, SlaState
from tickets.services.sla import sla_state_live_q

WINDOWS = (7, 30, 90)
CANCELLATION_WINDOW_DAYS = 30
# Always shown, with or without data: the malls that score the shop.
MALLS = (Channel.RAKUTEN, Channel.AMAZON, Channel.YAHOO)
# The channels that take orders: their cancellation rate is shown.
ORDER_CHANNELS = (*MALLS, Channel.OWN_SITE, Channel.STORE)

GOOD, WARNING, BAD = "good", "warning", "bad"

# First-reply compliance: good from 95 %, warning from 80 %, bad below.
COMPLIANCE_GOOD = 0.95
COMPLIANCE_WARNING = 0.80
# Amazon: a buyer message must be answered within 24 calendar hours;
# Amazon expects fewer than 10 % late: good below 5 %, bad from 10 %.
AMAZON_REPLY_HOURS = 24
AMAZON_LATE_WARNING = 0.05
AMAZON_LATE_BAD = 0.10
# Yahoo's store-performance bands for the average first reply.
YAHOO_TOP = timedelta(hours=12)
YAHOO_BOTTOM = timedelta(hours=48)
# Cancellations: good below 1 %, bad from 2.5 % (Amazon's limit for
# cancellations before shipping; Rakuten scores shops on it too).
CANCELLATION_WARNING = 0.01
CANCELLATION_BAD = 0.025


@dataclass(frozen=True)
class Ratio:
    """part of whole, with its band; `rate` is None when whole is 0."""

    part: int
    whole: int
    band: str | None

    @property
    def rate(self) -> float | None:
        return self.part / self.whole if self.whole else None

    @property
    def percent(self) -> float | None:
        return None if self.rate is None else round(self.rate * 100, 1)


@dataclass(frozen=True)
class Average:
    """A mean duration over `count` inquiries (None when there are none)."""

    value: timedelta | None
    count: int
    band: str | None

    @property
    def hours(self) -> float | None:
        return None if self.value is None else round(self.value.total_seconds() / 3600, 1)


@dataclass(frozen=True)
class ChannelHealth:
    channel: str
    label: str
    compliance: dict[int, Ratio]
    # Only on the channel the figure belongs to (Amazon, Yahoo), else None.
    amazon_late: dict[int, Ratio] | None
    yahoo_average: dict[int, Average] | None
    # Only on channels that take orders.
    cancellation: Ratio | None
    open_breaches: int
    open_incidents: int
    active_suspensions: int


@dataclass(frozen=True)
class MallHealth:
    now: datetime
    windows_at: datetime  # when the 7/30/90-day figures were counted
    rows: list[ChannelHealth]
    # Open inquiries not answered, all channels: overdue, at_risk, due_today.
    open_totals: dict[str, int]
    # Ongoing incidents tied to no channel (a carrier, the payment system).
    incidents_without_channel: int = 0
    windows: tuple[int, ...] = field(default=WINDOWS)


def compliance_band(rate: float | None) -> str | None:
    if rate is None:
        return None
    if rate >= COMPLIANCE_GOOD:
        return GOOD
    return WARNING if rate >= COMPLIANCE_WARNING else BAD


def _band_lower_is_better(rate: float | None, *, warning: float, bad: float) -> str | None:
    if rate is None:
        return None
    if rate >= bad:
        return BAD
    return WARNING if rate >= warning else GOOD


def amazon_late_band(rate: float | None) -> str | None:
    return _band_lower_is_better(rate, warning=AMAZON_LATE_WARNING, bad=AMAZON_LATE_BAD)


def yahoo_band(average: timedelta | None) -> str | None:
    """Top (good) at 12 hours or less, bottom (bad) at 48 hours or more."""
    if average is None:
        return None
    if average <= YAHOO_TOP:
        return GOOD
    return BAD if average >= YAHOO_BOTTOM else WARNING


def cancellation_band(rate: float | None) -> str | None:
    return _band_lower_is_better(rate, warning=CANCELLATION_WARNING, bad=CANCELLATION_BAD)


def _inquiry_figures(now: datetime) -> dict[str, dict]:
    """One row per channel: the counts and averages of every window."""
    amazon_limit = timedelta(hours=AMAZON_REPLY_HOURS)
    answered = Q(first_replied_at__isnull=False)
    # The compliance population: the deadline has passed, or it was answered.
    judged = Q(first_reply_due_at__isnull=False) & (Q(first_reply_due_at__lte=now) | answered)
    met = Q(first_replied_at__lte=F("first_reply_due_at"))
    # Amazon's population: answered, or 24 hours old; late: past 24 hours.
    day_old = Q(created_at__lte=now - amazon_limit)
    late = Q(first_replied_at__gt=F("created_at") + amazon_limit) | (
        Q(first_replied_at__isnull=True) & day_old
    )
    aggregates: dict[str, Aggregate] = {}
    for days in WINDOWS:
        received = Q(created_at__gte=now - timedelta(days=days))
        aggregates |= {
            f"judged_{days}": Count("pk", filter=received & judged),
            f"met_{days}": Count("pk", filter=received & judged & met),
            f"amazon_judged_{days}": Count("pk", filter=received & (answered | day_old)),
            f"amazon_late_{days}": Count("pk", filter=received & late),
            f"answered_{days}": Count("pk", filter=received & answered),
            f"reply_average_{days}": Avg(
                F("first_replied_at") - F("created_at"),
                filter=received & answered,
                output_field=DurationField(),
            ),
        }
    rows = (
        Inquiry.objects.filter(created_at__gte=now - timedelta(days=max(WINDOWS)))
        .values("channel")
        .annotate(**aggregates)
        .order_by()
    )
    return {row["channel"]: row for row in rows}


def _open_now(now: datetime) -> dict[str, dict[str, int]]:
    """Per channel, the open inquiries not answered: past their deadline
    (overdue), at risk, and due today (Tokyo's calendar day of `now`)."""
    today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    unreplied = Q(first_replied_at__isnull=True)
    rows = (
        Inquiry.objects.filter(unreplied, status__in=OPEN_STATUSES)
        .values("channel")
        .annotate(
            overdue=Count("pk", filter=sla_state_live_q(SlaState.BREACHED, now)),
            at_risk=Count("pk", filter=sla_state_live_q(SlaState.AT_RISK, now)),
            due_today=Count(
                "pk",
                filter=Q(
                    first_reply_due_at__gte=today,
                    first_reply_due_at__lt=today + timedelta(days=1),
                ),
            ),
        )
        .order_by()
    )
    return {row.pop("channel"): row for row in rows}


def _cancellations(now: datetime) -> dict[str, tuple[int, int]]:
    rows = (
        Order.objects.filter(
            ordered_at__gte=now - timedelta(days=CANCELLATION_WINDOW_DAYS), ordered_at__lte=now
        )
        .values("channel")
        .annotate(placed=Count("pk"), cancelled=Count("pk", filter=Q(status=OrderStatus.CANCELLED)))
        .order_by()
    )
    return {row["channel"]: (row["cancelled"], row["placed"]) for row in rows}


def _open_incidents() -> dict[str, int]:
    rows = (
        Incident.objects.filter(status=IncidentStatus.OPEN)
        .values("channel")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {row["channel"]: row["n"] for row in rows}


def _active_suspensions() -> dict[str, int]:
    """Active suspensions per channel they stop sales on. PostgreSQL counts
    them in one aggregate (jsonb @>); SQLite, which has no JSON containment,
    reads the channel lists of the active ones (a handful of rows)."""
    active = Suspension.objects.filter(lifted_at__isnull=True)
    if connection.vendor == "postgresql":
        return active.aggregate(
            **{code: Count("pk", filter=Q(channels__contains=[code])) for code in Channel.values}
        )
    counts = dict.fromkeys(Channel.values, 0)
    for channels in active.values_list("channels", flat=True):
        for code in set(channels or ()) & counts.keys():
            counts[code] += 1
    return counts


@dataclass(frozen=True)
class WindowFigures:
    """The figures over past windows: the two queries that read many rows
    (90 days of inquiries, 30 days of orders). They move slowly, so a page
    may keep them a few minutes (reports.home); `at` says when they were
    counted."""

    at: datetime
    inquiries: dict[str, dict]
    cancellations: dict[str, tuple[int, int]]


def mall_health_windows(*, now: datetime) -> WindowFigures:
    return WindowFigures(now, _inquiry_figures(now), _cancellations(now))


def mall_health(*, now: datetime | None = None, windows: WindowFigures | None = None) -> MallHealth:
    """Every channel's figures (the malls always; other channels when they
    have something to show), in the channels' usual order. `windows` are
    the windowed figures counted earlier (mall_health_windows), else they
    are counted now; what is open now is always counted now."""
    now = now or timezone.now()
    windows = windows or mall_health_windows(now=now)
    inquiries, cancellations = windows.inquiries, windows.cancellations
    open_now = _open_now(now)
    incidents = _open_incidents()
    suspensions = _active_suspensions()
    rows = []
    for code, label in Channel.choices:
        figures = inquiries.get(code)
        has_data = (
            figures is not None
            or code in cancellations
            or code in open_now
            or incidents.get(code)
            or suspensions.get(code)
        )
        if code not in MALLS and not has_data:
            continue
        figures = figures or {}

        def ratio(
            part: str,
            whole: str,
            band: Callable[[float | None], str | None],
            days: int,
            figures: Any = figures,
        ) -> Ratio:
            part_n, whole_n = figures.get(f"{part}_{days}", 0), figures.get(f"{whole}_{days}", 0)
            return Ratio(part_n, whole_n, band(part_n / whole_n if whole_n else None))

        cancelled, placed = cancellations.get(code, (0, 0))
        rows.append(
            ChannelHealth(
                channel=code,
                label=str(label),
                compliance={d: ratio("met", "judged", compliance_band, d) for d in WINDOWS},
                amazon_late=(
                    {d: ratio("amazon_late", "amazon_judged", amazon_late_band, d) for d in WINDOWS}
                    if code == Channel.AMAZON
                    else None
                ),
                yahoo_average=(
                    {
                        d: Average(
                            figures.get(f"reply_average_{d}"),
                            figures.get(f"answered_{d}", 0),
                            yahoo_band(figures.get(f"reply_average_{d}")),
                        )
                        for d in WINDOWS
                    }
                    if code == Channel.YAHOO
                    else None
                ),
                cancellation=(
                    Ratio(
                        cancelled, placed, cancellation_band(cancelled / placed if placed else None)
                    )
                    if code in ORDER_CHANNELS
                    else None
                ),
                open_breaches=open_now.get(code, {}).get("overdue", 0),
                open_incidents=incidents.get(code, 0),
                active_suspensions=suspensions.get(code, 0),
            )
        )
    totals = {
        key: sum(row[key] for row in open_now.values())
        for key in ("overdue", "at_risk", "due_today")
    }
    return MallHealth(
        now=now,
        windows_at=windows.at,
        rows=rows,
        open_totals=totals,
        incidents_without_channel=incidents.get("", 0),
    )
