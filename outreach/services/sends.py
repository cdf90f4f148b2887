"""Sends: creating one, snapshotting its recipients into the ledger,
queueing it for the worker, and pausing, resuming, cancelling and
finishing it (a campaign, a broadcast, a notice)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from core.timeline import actor_or_none
from core.types import Actor
from crm.models import Customer
from outreach import ledger
from outreach.ledger import PENDING
from outreach.models import (
    Campaign,
    CampaignEvent,
    CampaignEventKind,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    MessageTemplate,
    MulticastRequest,
    Purpose,
    Send,
    SendKind,
    SendStatus,
    SkipReason,
)
from outreach.selectors import eligibility_reason

logger = logging.getLogger(__name__)


def send_create(
    *,
    kind: str,
    channel: str,
    purpose: str,
    template: MessageTemplate | None = None,
    content: dict[str, Any] | None = None,
    respect_quiet_hours: bool | None = None,
    actor: Actor = None,
) -> Send:
    if template is not None and template.channel != channel:
        raise ValidationError({"template": [_("The template is for another channel.")]})
    if template is None and not content:
        raise ValidationError({"content": [_("A send needs a template or content.")]})
    content = dict(content or {})
    if template is not None:
        # What goes out is the template as it is now: editing the template
        # later does not change a send that is already under way.
        content["template"] = template_snapshot(template)
    return Send.objects.create(
        kind=kind,
        channel=channel,
        purpose=purpose,
        template=template,
        content=content,
        respect_quiet_hours=purpose == Purpose.MARKETING
        if respect_quiet_hours is None
        else respect_quiet_hours,
        created_by=actor_or_none(actor),
    )


def template_snapshot(template: MessageTemplate) -> dict[str, Any]:
    return {
        "subject": template.subject,
        "body_text": template.body_text,
        "body_html": template.body_html,
        "line_messages": list(template.line_messages or []),
        "is_personal": template.is_personal,
    }


def send_enqueue(send: Send, *, parallel: int | None = None) -> None:
    """Start dispatch tasks for a send once the transaction commits."""
    from django_q.tasks import async_task

    count = parallel or settings.DISPATCH_PARALLELISM

    def enqueue() -> None:
        for _index in range(count):
            async_task("outreach.tasks.send_dispatch_task", send.pk, group=f"send-{send.pk}")

    transaction.on_commit(enqueue)


def deliveries_snapshot(
    *,
    send: Send,
    audience: QuerySet[Customer],
    now: datetime,
    context_key: str = "",
    new_send: bool = False,
) -> int:
    """Write one ledger row per customer of `audience` — queued, or skipped
    with the reason — as a single INSERT ... SELECT. Safe to repeat (rows
    that exist are left alone). Returns the number of rows written.

    `new_send`: the send was created in the current transaction, so no
    other transaction can have written its rows; a plain INSERT then skips
    ON CONFLICT's per-row speculative insertion (about a third of the
    snapshot's time for a 100,000-row campaign). A segment lists each
    customer once (its rules are column tests and subqueries, never joins);
    an audience that did not would fail the unique constraint, and the
    whole launch with it, rather than send twice."""
    reason = eligibility_reason(channel=send.channel, purpose=send_eligibility_purpose(send))
    select = audience.order_by().annotate(skip=reason).values_list("pk", "skip")
    select_sql, select_params = select.query.sql_with_params()
    stamp = connection.ops.adapt_datetimefield_value(now)
    # "WHERE 1 = 1" lets SQLite parse ON CONFLICT after a SELECT.
    conflict = "" if new_send else "WHERE 1 = 1 ON CONFLICT DO NOTHING"
    # PostgreSQL would pull the subquery up and evaluate the skip reason
    # (its five hashed subqueries) once for each of the two places the
    # outer SELECT names it; OFFSET 0 keeps it a subquery, computed once.
    fence = " OFFSET 0" if connection.vendor == "postgresql" else ""
    sql = f"""
        INSERT INTO outreach_delivery (
            send_id, customer_id, channel, context_key, status, skip_reason, attempts,
            next_attempt_at, provider_message_id, address, last_error, created_at, updated_at
        )
        SELECT %s, a.pk, %s, %s, CASE WHEN a.skip = '' THEN %s ELSE %s END,
               a.skip, 0, NULL, '', '', '', %s, %s
        FROM ({select_sql}{fence}) AS a
        {conflict}
    """
    params: list[Any] = [
        send.pk,
        send.channel,
        context_key,
        DeliveryStatus.QUEUED.value,
        DeliveryStatus.SKIPPED.value,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, stamp, stamp, *select_params])
        written: int = cursor.rowcount
    _ledger_statistics_refresh(written)
    return written


# A snapshot that grows the ledger by this share (or a never-analysed one)
# refreshes its planner statistics at once.
LEDGER_ANALYZE_SHARE = 0.1
LEDGER_ANALYZE_MIN_ROWS = 5000


def _ledger_statistics_refresh(written: int) -> None:
    """ANALYZE the ledger after a snapshot that grew it by a tenth or more
    (PostgreSQL). Autovacuum would, but up to a minute later: until then
    the planner believes the table as small as it was, and the worker's
    first batches update their 500 rows by a sequential scan of the whole
    ledger instead of 500 primary-key lookups (11 of 17 ms per batch at
    100,000 rows). Inside the launch's transaction the new rows are
    counted (ANALYZE samples the rows its own transaction wrote), and the
    statistics become visible with them at commit, before a worker starts."""
    if connection.vendor != "postgresql" or written < LEDGER_ANALYZE_MIN_ROWS:
        return
    table = connection.ops.quote_name(Delivery._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
        (known,) = cursor.fetchone()
        if known < 0 or written >= LEDGER_ANALYZE_SHARE * known:
            cursor.execute(f"ANALYZE {table}")


# --- Pausing, resuming and cancelling a send (a campaign, a broadcast) ----------------


def _send_status_change(send: Send, *, from_: tuple[str, ...], to: str) -> bool:
    """One conditional UPDATE: whether the send was in `from_` (and now is
    `to`). The worker claims rows only while its send is sending, so a
    pause or cancel holds at its next batch."""
    return bool(Send.objects.filter(pk=send.pk, status__in=from_).update(status=to))


def send_pause(*, send: Send, actor: Actor = None) -> bool:
    """Stop claiming the send's rows; what a worker holds still goes out.
    False if the send was not sending."""
    return _send_status_change(send, from_=(SendStatus.SENDING,), to=SendStatus.PAUSED)


def send_resume(*, send: Send, actor: Actor = None) -> bool:
    """Send a paused send again (its dispatch tasks start on commit). False
    if it was not paused."""
    resumed = _send_status_change(send, from_=(SendStatus.PAUSED,), to=SendStatus.SENDING)
    if resumed:
        send_enqueue(send)
    return resumed


def send_cancel(*, send: Send, actor: Actor = None) -> bool:
    """Cancel a sending or paused send and settle its rows at once (see
    send_settle_cancelled). False if it had already finished."""
    cancelled = _send_status_change(
        send, from_=(SendStatus.SENDING, SendStatus.PAUSED), to=SendStatus.CANCELLED
    )
    if cancelled:
        send_settle_cancelled(send)
    return cancelled


# What the ledger says of a row a cancelled send leaves in doubt.
CANCELLED_IN_DOUBT = "Send cancelled; the message may have gone out and is not sent again."


def send_settle_cancelled(send: Send, *, now: datetime | None = None) -> int:
    """Give the rows of a cancelled send that no live worker holds their
    final state; return how many changed. Nothing is sent for them again.

    - Rows that may have gone out become unknown, with why: an attempt
      ended in doubt (the row's `in_doubt`: a lost connection, a timeout, a
      5xx), its worker stopped in the middle of sending it (`sending`, the
      lease expired), or it is in a multicast request whose worker stopped
      (its lease expired). Such a request is settled.
    - The other pending rows never reached a provider (not attempted yet,
      deferred, or refused with a retry: an SMTP 4xx, a LINE 429): skipped,
      reason cancelled.

    A live worker keeps its rows — a push or an email it holds, the rows of
    a multicast request it holds — and records their outcome. The sends
    tick calls this again for what is left once its lease has ended."""
    now = now or timezone.now()
    pending = Delivery.objects.filter(send=send, status__in=PENDING)
    doubtful = {
        "status": DeliveryStatus.UNKNOWN,
        "last_error": CANCELLED_IN_DOUBT,
        "lease_expires_at": None,
        "updated_at": now,
    }
    cancelled = {
        "status": DeliveryStatus.SKIPPED,
        "skip_reason": SkipReason.CANCELLED,
        "updated_at": now,
    }
    with transaction.atomic():
        sends = Send.objects.filter(pk=send.pk, status=SendStatus.CANCELLED)
        if not ledger.sends_lock(sends):
            return 0  # not cancelled
        # Requests no worker holds; locking one waits for a worker writing
        # its outcome, and skips it if that worker renewed its lease.
        idle = (
            MulticastRequest.objects.filter(send=send, settled_at__isnull=True)
            .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
            .order_by("pk")
            .select_for_update(no_key=True)
        )
        changed = 0
        for request in idle.only("attempts", "retry_key", "delivery_ids", "lease_expires_at"):
            rows = pending.filter(pk__any_of=request.delivery_ids, status=DeliveryStatus.QUEUED)
            written = ledger.request_columns(request)
            if request.lease_expires_at is None:  # waiting for its retry
                changed += rows.filter(in_doubt=True).update(**doubtful, **written)
                changed += rows.update(**cancelled, **written)
            else:  # its worker stopped during the request
                changed += rows.update(**doubtful, **written)
            MulticastRequest.objects.filter(pk=request.pk).update(
                settled_at=now, lease_expires_at=None, next_attempt_at=None
            )
        # What is left of the requests is held by live workers.
        left = pending.exclude(pk__any_of=ledger.multicast_open_ids(sends))
        changed += left.filter(
            Q(status=DeliveryStatus.QUEUED, in_doubt=True)
            | Q(status=DeliveryStatus.SENDING, lease_expires_at__lt=now)
        ).update(**doubtful)
        changed += left.filter(status=DeliveryStatus.QUEUED).update(**cancelled)
    return changed


def send_finish_if_done(send: Send) -> bool:
    """Mark a send (and its campaign) completed once nothing is pending. A
    journey step's send stays open: people enter it as long as it exists."""
    if send.kind == SendKind.JOURNEY:
        return False
    pending = Delivery.objects.filter(send=send, status__in=PENDING).exists()
    if pending:
        return False
    now = timezone.now()
    with transaction.atomic():
        finished = Send.objects.filter(pk=send.pk, status=SendStatus.SENDING).update(
            status=SendStatus.COMPLETED, completed_at=now
        )
        # Locked, and updated only while still sending: a pause committed
        # meanwhile is not overwritten.
        campaigns = list(
            Campaign.objects.select_for_update().filter(send=send, status=CampaignStatus.SENDING)
        )
        Campaign.objects.filter(
            pk__in=[c.pk for c in campaigns], status=CampaignStatus.SENDING
        ).update(status=CampaignStatus.COMPLETED, completed_at=now)
        CampaignEvent.objects.bulk_create(
            CampaignEvent(campaign=campaign, kind=CampaignEventKind.COMPLETED)
            for campaign in campaigns
        )
    return bool(finished)


def send_eligibility_purpose(send: Send) -> str:
    """Which rules decide who may receive a send: a test send goes to the
    chosen person whatever their marketing consent."""
    return Purpose.TRANSACTIONAL if send.kind == SendKind.TEST else send.purpose
