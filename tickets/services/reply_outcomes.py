"""What became of the replies handed to the delivery ledger (SPEC rule 13:
a reply counts only once it reached the customer).

The SLA tick takes in the final outcome of every reply still marked
sending: sent, or not delivered (the delivery failed, was skipped, or ended
unknown). It reads the ledger, so outreach knows nothing of inquiries, and
whatever a crash interrupts is taken in on the next tick. A reply that was
not delivered is marked failed, its inquiry's timeline says so, its author
is told, and if it was the reply that stopped the first-reply clock the
clock re-opens at its original deadline (the SLA watch moves it on from
there: at risk, or breached if the deadline has passed).
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Min

from outreach.models import DeliveryStatus
from tickets.models import (
    UNDELIVERED_STATUSES,
    Inquiry,
    InquiryEvent,
    InquiryEventKind,
    InquiryMessage,
    MessageKind,
    NotificationKind,
    OutboundState,
    SlaState,
    StaffNotification,
)
from tickets.services.inquiries import event_add
from tickets.services.sla import next_reply_recount, policy_clock_minutes

OUTCOME_BATCH = 500
# A delivery in one of these has reached the customer or still may.
LIVE_STATUSES = (DeliveryStatus.QUEUED, DeliveryStatus.SENDING, DeliveryStatus.SENT)


def reply_outcomes_settle() -> dict[str, int]:
    """Take in the outcome of replies in flight: how many were sent, not
    delivered, and how many first-reply clocks re-opened."""
    in_flight = InquiryMessage.objects.filter(
        outbound_state=OutboundState.SENDING, delivery__isnull=False
    )
    sent = in_flight.filter(delivery__status=DeliveryStatus.SENT)
    report = {"sent": sent.update(outbound_state=OutboundState.SENT), "failed": 0, "reopened": 0}
    while True:
        with transaction.atomic():
            rows = list(
                in_flight.filter(delivery__status__in=UNDELIVERED_STATUSES)
                .select_for_update(skip_locked=True, of=("self",))
                .order_by("pk")
                .values_list("pk", "inquiry_id", "author_id", "is_automatic", "delivery__status")[
                    :OUTCOME_BATCH
                ]
            )
            if not rows:
                return report
            _undelivered(rows)
            by_person = sorted(
                {inquiry for _pk, inquiry, author, auto, _s in rows if author and not auto}
            )
            report["reopened"] += sum(first_reply_recount(pk) for pk in by_person)
            for pk in by_person:
                _next_reply_recount(pk)
        report["failed"] += len(rows)
        if len(rows) < OUTCOME_BATCH:
            return report


def _undelivered(rows: list[tuple]) -> None:
    """Mark the replies failed, with an event each and a notice to their
    author. One that ended unknown may have reached the customer: its
    event and notice say so, never that it did not arrive (its author
    would send it twice)."""
    InquiryMessage.objects.filter(pk__in=[row[0] for row in rows]).update(
        outbound_state=OutboundState.FAILED
    )
    InquiryEvent.objects.bulk_create(
        InquiryEvent(
            inquiry_id=inquiry,
            kind=InquiryEventKind.REPLY_UNKNOWN
            if status == DeliveryStatus.UNKNOWN
            else InquiryEventKind.REPLY_FAILED,
            data={"message": pk, "delivery_status": status},
        )
        for pk, inquiry, _author, _auto, status in rows
    )
    StaffNotification.objects.bulk_create(
        (
            StaffNotification(
                user_id=author,
                inquiry_id=inquiry,
                kind=NotificationKind.REPLY_IN_DOUBT
                if status == DeliveryStatus.UNKNOWN
                else NotificationKind.REPLY_FAILED,
                key=str(pk),
            )
            for pk, inquiry, author, _auto, status in rows
            if author
        ),
        ignore_conflicts=True,
    )


def first_reply_recount(inquiry_id: int) -> bool:
    """If the reply that stopped the clock was not delivered, the clock now
    stops at the next person's reply still live, or re-opens. True when it
    re-opened."""
    inquiry = Inquiry.objects.select_for_update().get(pk=inquiry_id)
    stopped_at = inquiry.first_replied_at
    if stopped_at is None:
        return False
    # The reply that stopped the clock was handed to the ledger (its
    # delivery row written) in the transaction that stopped it.
    live = live_reply_at(inquiry_id)
    if live is not None and live <= stopped_at:
        return False  # the clock was stopped by a reply that is still good
    old_state = inquiry.sla_state
    inquiry.first_replied_at = live
    inquiry.first_reply_minutes = None if live is None else policy_clock_minutes(inquiry, live)
    if live is None:
        # Re-opened at its original deadline; the SLA watch moves it on.
        if inquiry.sla_state == SlaState.MET:
            inquiry.sla_state = SlaState.ON_TRACK
    elif inquiry.first_reply_due_at is not None and live > inquiry.first_reply_due_at:
        inquiry.sla_state = SlaState.BREACHED
    inquiry.save(
        update_fields=["first_replied_at", "first_reply_minutes", "sla_state", "updated_at"]
    )
    if live is None:
        event_add(inquiry, InquiryEventKind.CLOCK_REOPENED, due=str(inquiry.first_reply_due_at))
    if inquiry.sla_state != old_state:
        event_add(inquiry, InquiryEventKind.SLA, old=old_state, new=inquiry.sla_state)
    return live is None


def _next_reply_recount(inquiry_id: int) -> None:
    """The same for the next-reply clock: it stops at the first person's
    reply still live since the customer's message, or re-opens."""
    inquiry = Inquiry.objects.select_for_update().get(pk=inquiry_id)
    if inquiry.next_replied_at is None:
        return
    live = live_reply_at(inquiry_id, since=inquiry.next_reply_since)
    fields = next_reply_recount(inquiry, live)
    if fields:
        inquiry.save(update_fields=[*fields, "updated_at"])


def live_reply_at(inquiry_id: int, since: datetime | None = None) -> datetime | None:
    """When the earliest person's reply (since `since`) that reached the
    customer or still may was handed to the ledger; None when there is none."""
    replies = InquiryMessage.objects.filter(
        inquiry_id=inquiry_id,
        kind=MessageKind.OUTBOUND,
        is_automatic=False,
        author__isnull=False,
        delivery__status__in=LIVE_STATUSES,
    )
    # A call the agent answered on the spot (tickets.services.calls) is a
    # reply that cannot fail.
    calls = InquiryMessage.objects.filter(inquiry_id=inquiry_id, call_answered=True)
    if since is not None:
        replies = replies.filter(delivery__created_at__gte=since)
        calls = calls.filter(created_at__gte=since)
    reply = replies.aggregate(stopper=Min("delivery__created_at"))["stopper"]
    call = calls.aggregate(first=Min("created_at"))["first"]
    return min((t for t in (reply, call) if t is not None), default=None)
