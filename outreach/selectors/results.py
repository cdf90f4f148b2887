"""What a campaign or a journey step earned: clicks, and the orders of its
recipients within the attribution window after their message, next to its
holdout group's orders within the same window after the launch (a
journey step: after the moment each was held out) — the lift."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import (
    Case,
    Count,
    DateTimeField,
    Expression,
    F,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from crm.models import OrderStatus
from outreach.models import Campaign, Delivery, DeliveryStatus, JourneyStep, SkipReason

RECIPIENTS = "recipients"
HOLDOUT = "holdout"
# Orders that count as a result: all but cancelled ones.
ATTRIBUTED_STATUSES = [status for status in OrderStatus.values if status != OrderStatus.CANCELLED]


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


def results_for_campaign(campaign: Campaign) -> CampaignResults:
    """Recipients (deliveries sent) and holdout (held out at launch), each
    counted, with clicks and attributed orders and revenue: one query."""
    days = campaign.attribution_days
    if not campaign.send_id or campaign.launched_at is None:
        return CampaignResults(GroupResult(), GroupResult(), days)
    return _results(
        Delivery.objects.filter(send_id=campaign.send_id),
        parts={"": Q()},
        holdout_since=Value(campaign.launched_at, output_field=DateTimeField()),
        days=days,
    )[""]


def results_for_journey_steps(
    steps: Sequence[JourneyStep], *, days: int
) -> dict[int, CampaignResults]:
    """Each journey step's recipients (sent on any of its channels) next to
    its holdout (held out when due, outreach.holdout.holdout_mark), with
    their orders and revenue within `days` after their message (the
    holdout: after the moment they were held out), by step id: one query
    for all the steps."""
    sends = {step.pk: step.send_ids() for step in steps}
    empty = CampaignResults(GroupResult(), GroupResult(), days)
    all_sends = [send_id for ids in sends.values() for send_id in ids]
    if not all_sends:
        return {step.pk: empty for step in steps}
    found = _results(
        Delivery.objects.filter(send_id__in=all_sends),
        parts={str(pk): Q(send_id__in=ids) for pk, ids in sends.items() if ids},
        holdout_since=F("next_attempt_at"),
        days=days,
    )
    return {step.pk: found.get(str(step.pk), empty) for step in steps}


def _results(
    deliveries: QuerySet[Delivery],
    *,
    parts: dict[str, Q],
    holdout_since: Expression | F,
    days: int,
) -> dict[str, CampaignResults]:
    """Recipients (sent: from their message) and holdout (from
    `holdout_since`) of `deliveries`, for each part (a condition on the
    rows), with clicks and the orders and revenue within `days`: one
    aggregate query."""
    window = timedelta(days=days)
    held_out = Q(status=DeliveryStatus.SKIPPED, skip_reason=SkipReason.HOLDOUT)
    # A member's orders (not cancelled) from `since` (their message, or
    # `holdout_since` for the holdout) to `since` + window: one join by the
    # order table's (customer, ordered_at) index, grouped per member.
    attributed = Q(
        customer__orders__ordered_at__gte=F("since"),
        customer__orders__ordered_at__lt=F("until"),
        customer__orders__status__in=ATTRIBUTED_STATUSES,
    )
    members = (
        deliveries.filter(Q(status=DeliveryStatus.SENT) | held_out)
        .annotate(
            group=Case(When(held_out, then=Value(HOLDOUT)), default=Value(RECIPIENTS)),
            since=Case(
                When(held_out, then=holdout_since),
                default=F("sent_at"),
                output_field=DateTimeField(),
            ),
            until=F("since") + Value(window),
        )
        .annotate(
            n_orders=Count("customer__orders", filter=attributed),
            revenue=Coalesce(Sum("customer__orders__total", filter=attributed), 0),
        )
        .order_by()
    )
    totals = {}
    for part, rows in parts.items():
        for name in (RECIPIENTS, HOLDOUT):
            of = rows & Q(group=name)
            totals.update(
                {
                    f"{part}_{name}_members": Count("pk", filter=of),
                    f"{part}_{name}_clicked": Count("first_clicked_at", filter=of),
                    f"{part}_{name}_converted": Count("pk", filter=of & Q(n_orders__gt=0)),
                    f"{part}_{name}_orders": Sum("n_orders", filter=of),
                    f"{part}_{name}_revenue": Sum("revenue", filter=of),
                }
            )
    row = members.aggregate(**totals)

    def group(part: str, name: str) -> GroupResult:
        return GroupResult(
            members=row[f"{part}_{name}_members"] or 0,
            clicked=row[f"{part}_{name}_clicked"] or 0,
            converted=row[f"{part}_{name}_converted"] or 0,
            orders=row[f"{part}_{name}_orders"] or 0,
            revenue=row[f"{part}_{name}_revenue"] or 0,
        )

    return {
        part: CampaignResults(
            recipients=group(part, RECIPIENTS), holdout=group(part, HOLDOUT), attribution_days=days
        )
        for part in parts
    }
