"""The delivery worker: claim a batch, check again, render, send, record.

`send_dispatch` works one send for at most DISPATCH_TIME_BUDGET_SECONDS,
batch by batch. Each claim takes rows only while the send is sending, so
pause and cancel hold at the next batch. Consent, claimant flag and address are
checked again for every row at send time; marketing waits out quiet hours.
The workers are in `dispatch_worker` (what they share), `dispatch_email` and
`dispatch_line`; `EmailWorker` and `LineWorker` are importable from here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from outreach import ledger
from outreach.dispatch_email import EmailWorker
from outreach.dispatch_line import LineWorker
from outreach.dispatch_worker import DispatchReport, _Worker
from outreach.models import (
    Delivery,
    DeliveryChannel,
    DeliveryStatus,
    MessageChannel,
    Send,
)
from outreach.services import (
    send_finish_if_done,
)

logger = logging.getLogger(__name__)


def quiet_hours_end(now: datetime) -> datetime | None:
    """If `now` is inside the marketing quiet hours (Asia/Tokyo), when they
    end; otherwise None. Default 21:00–09:00."""
    start, end = settings.QUIET_HOURS_START, settings.QUIET_HOURS_END
    if start == end:
        return None
    local = timezone.localtime(now)
    hour = local.hour
    quiet = (hour >= start or hour < end) if start > end else (start <= hour < end)
    if not quiet:
        return None
    ends = local.replace(hour=end, minute=0, second=0, microsecond=0)
    if ends <= local:
        ends += timedelta(days=1)
    return ends


def _defer_for_quiet_hours(send: Send, until: datetime) -> int:
    """Queued rows wait until `until`, while the send is sending: one
    UPDATE (the send's status tested in it, so a pause or cancel committed
    meanwhile is not overtaken)."""
    return (
        Delivery.objects.filter(ledger.while_sending(send), send=send, status=DeliveryStatus.QUEUED)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lt=until))
        .update(next_attempt_at=until, updated_at=timezone.now())
    )


def _worker_for(send: Send) -> _Worker:
    return EmailWorker(send) if send.channel == MessageChannel.EMAIL else LineWorker(send)


def send_dispatch(
    *,
    send_id: int,
    now_fn: Callable[[], datetime] = timezone.now,
    time_budget: float | None = None,
) -> DispatchReport:
    """Work one send until it is done, paused, cancelled, deferred, its
    channel is down, or the time budget is used up."""
    report = DispatchReport()
    send = Send.objects.select_related("template").get(pk=send_id)
    if send.channel == DeliveryChannel.DM:
        # The export of its address list is the send (outreach.services.dm).
        logger.warning("send %s is a postal DM: the worker sends nothing", send.pk)
        return report
    deadline = time.monotonic() + (time_budget or settings.DISPATCH_TIME_BUDGET_SECONDS)
    with _worker_for(send) as worker:
        while True:
            if time.monotonic() >= deadline:
                report.out_of_time = True
                break
            now = now_fn()
            until = quiet_hours_end(now) if send.respect_quiet_hours else None
            if until is not None:
                _defer_for_quiet_hours(send, until)
                report.deferred_until = until
                break
            # Claims only while the send is sending: a pause or cancel holds
            # at the next batch (no claim, so the loop ends).
            rows = ledger.delivery_claim_batch(
                send=send, limit=worker.batch_size, now=now, retry_key_per=worker.retry_key_per
            )
            if not rows:
                break
            report.batches += 1
            lease = ledger.Lease(rows, now_fn=now_fn)
            try:
                healthy = worker.process(rows, now=now, report=report, lease=lease)
                lease.close(timezone.now())
            except Exception as exc:
                # One bad batch never kills the worker: its rows keep their
                # lease and come back when it expires, with the error noted.
                logger.exception("send %s: batch failed", send.pk)
                with lease.writing():
                    lease.rows(row.pk for row in rows).update(
                        last_error=f"Worker error: {type(exc).__name__}: {exc}"[:2000]
                    )
                healthy = False
            if not healthy:
                break
    send_finish_if_done(send)
    return report
