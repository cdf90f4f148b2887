"""What a campaign earned: clicks, and the orders of its recipients within
the attribution window after their message, next to its holdout group's
orders within the same window after the launch (the lift)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import (
    Case,
    Count,
    DateTimeField,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from crm.models import Order, OrderStatus
from outreach.models import Campaign, Delivery, DeliveryStatus, SkipReason

RECIPIENTS = "recipients"
HOLDOUT = "holdout"


@dataclass(frozen=True)
class GroupResult:
    members: int = 0
    clicked: int = 0
    converted: int = 0  # members with at least one order in the window
    orders: int = 0
    revenue: int = 0

    @property
    def conversion_rate(self) -> float | None:
        """Share of members who ordered (0–1), None for an empty group."""
        return self.converted / self.members if self.members else None

    @property
    def revenue_per_member(self) -> float | None:
        return self.revenue / self.members if self.members else None


@dataclass(frozen=True)
class CampaignResults:
    recipients: GroupResult
    holdout: GroupResult
    attribution_days: int

    @property
    def lift(self) -> float | None:
        """How much more often recipients ordered than the holdout, as a
        share of the holdout's rate (0.25 = 25 % more); None without a
        holdout that ordered."""
        sent, held = self.recipients.conversion_rate, self.holdout.conversion_rate
        if sent is None or not held:
            return None
        return (sent - held) / held

    @property
    def incremental_revenue(self) -> int | None:
        """Revenue the message added: the recipients' revenue less what
        they would have spent at the holdout's rate per member."""
        per_member = self.holdout.revenue_per_member
        if per_member is None:
            return None
        return round(self.recipients.revenue - per_member * self.recipients.members)


def _attributed_orders(window: timedelta):
    """A member's orders (not cancelled) from `since` (their message, or
    the launch for the holdout) to `since` + window."""
    return (
        Order.objects.filter(
            customer_id=OuterRef("customer_id"),
            ordered_at__gte=OuterRef("since"),
            ordered_at__lt=OuterRef("until"),
        )
        .exclude(status=OrderStatus.CANCELLED)
        .order_by()
        .values("customer_id")
    )


def results_for_campaign(campaign: Campaign) -> CampaignResults:
    """Recipients (deliveries sent) and holdout (held out at launch), each
    counted, with clicks and attributed orders and revenue: one query."""
    days = campaign.attribution_days
    empty = CampaignResults(GroupResult(), GroupResult(), days)
    if not campaign.send_id or campaign.launched_at is None:
        return empty
    window = timedelta(days=days)
    held_out = Q(status=DeliveryStatus.SKIPPED, skip_reason=SkipReason.HOLDOUT)
    orders = _attributed_orders(window)
    members = (
        Delivery.objects.filter(send_id=campaign.send_id)
        .filter(Q(status=DeliveryStatus.SENT) | held_out)
        .annotate(
            group=Case(When(held_out, then=Value(HOLDOUT)), default=Value(RECIPIENTS)),
            since=Case(
                When(held_out, then=Value(campaign.launched_at)),
                default=F("sent_at"),
                output_field=DateTimeField(),
            ),
            until=F("since") + Value(window),
        )
        .annotate(
            n_orders=Coalesce(
                Subquery(orders.annotate(n=Count("pk")).values("n")),
                0,
                output_field=IntegerField(),
            ),
            revenue=Coalesce(Subquery(orders.annotate(s=Sum("total")).values("s")), 0),
        )
    )
    rows = (
        members.order_by()
        .values("group")
        .annotate(
            members_n=Count("pk"),
            clicked_n=Count("first_clicked_at"),
            converted_n=Count("pk", filter=Q(n_orders__gt=0)),
            orders_n=Sum("n_orders"),
            revenue_n=Sum("revenue"),
        )
    )
    groups = {
        row["group"]: GroupResult(
            members=row["members_n"],
            clicked=row["clicked_n"],
            converted=row["converted_n"],
            orders=row["orders_n"] or 0,
            revenue=row["revenue_n"] or 0,
        )
        for row in rows
    }
    return CampaignResults(
        recipients=groups.get(RECIPIENTS, GroupResult()),
        holdout=groups.get(HOLDOUT, GroupResult()),
        attribution_days=days,
    )
