"""django-q2 entry points for outreach: thin, safe to run twice."""

from __future__ import annotations

import logging

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django_q.tasks import async_task

from outreach.dispatch import send_dispatch
from outreach.ledger import PENDING
from outreach.models import Delivery, DeliveryStatus, Send, SendKind, SendStatus
from outreach.selectors import journey_sends_due
from outreach.services import (
    campaigns_launch_due,
    journeys_birthday_enter,
    send_settle_cancelled,
)

logger = logging.getLogger(__name__)


def send_dispatch_task(send_id: int) -> dict:
    report = send_dispatch(send_id=send_id)
    if report.out_of_time:
        # More to do: hand over to a fresh task rather than run past the
        # cluster's timeout.
        async_task("outreach.tasks.send_dispatch_task", send_id, group=f"send-{send_id}")
    logger.info("send %s: %s", send_id, report)
    return report.__dict__ | {"deferred_until": str(report.deferred_until or "")}


def line_profile_fetch_task(identity_id: int) -> bool:
    from outreach.line_profiles import line_profile_fetch

    return line_profile_fetch(identity_id=identity_id) is not None


def line_profiles_due_task() -> int:
    from outreach.line_profiles import line_profiles_fetch_due

    return line_profiles_fetch_due()


def sends_tick() -> int:
    """Every minute: launch scheduled campaigns that are due, restart
    dispatch for active sends that have due work (after a backoff, quiet
    hours, or a worker that died), and settle what cancelled sends left."""
    campaigns_launch_due()
    now = timezone.now()
    due = Delivery.objects.filter(send=OuterRef("pk"), status__in=PENDING).filter(
        Q(status=DeliveryStatus.QUEUED, next_attempt_at__isnull=True)
        | Q(status=DeliveryStatus.QUEUED, next_attempt_at__lte=now)
        | Q(status=DeliveryStatus.SENDING, lease_expires_at__lt=now)
    )
    # Journey steps' sends stay open for good: journeys_tick starts them.
    sends = list(
        Send.objects.filter(status=SendStatus.SENDING)
        .exclude(kind=SendKind.JOURNEY)
        .filter(Exists(due))
        .values_list("pk", flat=True)[:100]
    )
    for send_id in sends:
        async_task("outreach.tasks.send_dispatch_task", send_id, group=f"send-{send_id}")
    sends_settle_cancelled(now)
    return len(sends)


def sends_settle_cancelled(now) -> int:
    """Cancelled sends with rows still pending (queued, or sending past
    their lease): what no live worker holds gets its final state (see
    send_settle_cancelled). Returns the rows settled."""
    left = Delivery.objects.filter(send=OuterRef("pk")).filter(
        Q(status=DeliveryStatus.QUEUED) | Q(status=DeliveryStatus.SENDING, lease_expires_at__lt=now)
    )
    settled = 0
    for send in Send.objects.filter(status=SendStatus.CANCELLED).filter(Exists(left))[:100]:
        settled += send_settle_cancelled(send, now=now)
    if settled:
        logger.info("cancelled sends: %d rows settled", settled)
    return settled


def journeys_tick() -> int:
    """Every minute: start the worker for journey steps with rows due. Reads
    the due rows by the ledger's queue index (one probe per open step), never
    the orders: nothing due costs a few milliseconds."""
    sends = journey_sends_due(now=timezone.now())
    for send_id in sends:
        async_task("outreach.tasks.send_dispatch_task", send_id, group=f"send-{send_id}")
    return len(sends)


def journeys_birthday_task() -> int:
    """Daily: this month's birthdays enter the birthday journeys (once a year)."""
    return journeys_birthday_enter()
