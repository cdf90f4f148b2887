"""Reads of sales suspensions: the list with its notice counts, who was
told and how it went, the inquiries linked or worth linking, and the
affected orders for the mall back-office."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Q, QuerySet
from django.utils import timezone

from crisis.models import Suspension, SuspensionInquiry, SuspensionNotice, SuspensionNoticeKind
from crm.models import UNSHIPPED_ORDER_STATUSES, Customer, Order, OrderLine
from outreach.models import Delivery, DeliveryStatus
from outreach.selectors import SendProgress, sends_progress
from tickets.models import Inquiry

# Orders not yet shipped: their customers are waiting for the product.
OPEN_ORDER_STATUSES = UNSHIPPED_ORDER_STATUSES


def affected_customers(sku: str) -> QuerySet[Customer]:
    """The customers waiting for `sku`, on any channel: an open order holds it."""
    return Customer.objects.filter(
        pk__in=Order.objects.filter(status__in=OPEN_ORDER_STATUSES, lines__sku=sku).values(
            "customer_id"
        )
    )


def suspension_list() -> QuerySet[Suspension]:
    """Suspensions with who decided and lifted (the notice counts:
    suspension_notice_counts)."""
    return Suspension.objects.select_related("decided_by", "lifted_by")


@dataclass
class NoticeCounts:
    """What the notices of one kind came to, over their channels."""

    channels: list[str] = field(default_factory=list)
    total: int = 0
    sent: int = 0
    pending: int = 0
    failed: int = 0  # failed, or in doubt
    skipped: int = 0

    def add(self, channel: str, progress: SendProgress) -> None:
        by_status = progress.by_status
        self.channels.append(channel)
        self.total += progress.total
        self.sent += by_status.get(DeliveryStatus.SENT, 0)
        self.pending += progress.pending
        self.failed += by_status.get(DeliveryStatus.FAILED, 0)
        self.failed += by_status.get(DeliveryStatus.UNKNOWN, 0)
        self.skipped += by_status.get(DeliveryStatus.SKIPPED, 0)


def suspension_notice_counts(
    suspension_ids: Iterable[int], *, notices: Iterable[SuspensionNotice] | None = None
) -> dict[int, dict[str, NoticeCounts]]:
    """Per suspension, per notice kind (delay, resume): the ledger's counts,
    in two queries whatever the number of suspensions (one when the
    notices are given)."""
    if notices is None:
        notices = SuspensionNotice.objects.filter(suspension_id__in=list(suspension_ids)).only(
            "suspension_id", "kind", "channel", "send_id"
        )
    notices = sorted(notices, key=lambda n: (n.suspension_id, n.kind, n.channel))
    progress = sends_progress(n.send_id for n in notices) if notices else {}
    counts: dict[int, dict[str, NoticeCounts]] = defaultdict(dict)
    for notice in notices:
        by_kind = counts[notice.suspension_id]
        by_kind.setdefault(notice.kind, NoticeCounts()).add(
            notice.channel, progress[notice.send_id]
        )
    return counts


def suspension_notices(suspension: Suspension) -> QuerySet[SuspensionNotice]:
    return SuspensionNotice.objects.filter(suspension=suspension).select_related(
        "send__template", "created_by"
    )


def suspension_deliveries(suspension: Suspension) -> QuerySet[Delivery]:
    """Every ledger row of the suspension's notices: who was told, on which
    channel, and how it went (failures first, then by customer)."""
    sends = SuspensionNotice.objects.filter(suspension=suspension).values("send_id")
    return (
        Delivery.objects.filter(send_id__in=sends)
        .select_related("customer")
        .order_by("send_id", "customer__family_name_kana", "customer__given_name_kana", "pk")
    )


def suspension_linked_inquiries(suspension: Suspension) -> QuerySet[Inquiry]:
    return (
        Inquiry.objects.filter(
            pk__in=SuspensionInquiry.objects.filter(suspension=suspension).values("inquiry_id")
        )
        .select_related("customer", "order")
        .order_by("-created_at", "-pk")
    )


def suspension_suggested_inquiries(suspension: Suspension) -> QuerySet[Inquiry]:
    """Inquiries about the SKU not linked yet: their order holds it."""
    return (
        Inquiry.objects.filter(
            order_id__in=OrderLine.objects.filter(sku=suspension.sku).values("order_id")
        )
        .exclude(
            pk__in=SuspensionInquiry.objects.filter(suspension=suspension).values("inquiry_id")
        )
        .select_related("customer", "order")
        .order_by("-created_at", "-pk")
    )


def suspension_affected_lines(suspension: Suspension) -> QuerySet[OrderLine]:
    """The order lines of the SKU that the suspension holds up: orders not
    shipped when it was decided (still open, or shipped since), placed
    before it was lifted. One row per line, with order and customer."""
    until = suspension.lifted_at or timezone.now()
    return (
        OrderLine.objects.filter(sku=suspension.sku, order__ordered_at__lte=until)
        .filter(
            Q(order__status__in=OPEN_ORDER_STATUSES)
            | Q(order__shipped_at__gte=suspension.decided_at)
        )
        .select_related("order__customer")
        .order_by("order__ordered_at", "order__pk", "pk")
    )


def suspension_told(suspension: Suspension) -> dict[int, Delivery]:
    """Each customer's delay-notice ledger row, by customer id."""
    sends = SuspensionNotice.objects.filter(
        suspension=suspension, kind=SuspensionNoticeKind.SUSPENDED
    ).values("send_id")
    return {row.customer_id: row for row in Delivery.objects.filter(send_id__in=sends)}
