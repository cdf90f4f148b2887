"""A send's progress: its deliveries counted by status and skip reason.

What the marketer reads is attempted over sendable: the ineligible (skipped
when the audience was snapshotted: no consent, claimant, no address …) and
the holdout group are shown apart, never as progress."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Count, Q

from outreach.ledger import PENDING
from outreach.models import Delivery, DeliveryStatus, Send, SkipReason

# Skipped without being ineligible: the holdout (kept back on purpose) and
# rows a cancel left unsent.
NOT_INELIGIBLE = (SkipReason.HOLDOUT, SkipReason.CANCELLED)


@dataclass(frozen=True)
class SendProgress:
    total: int
    by_status: dict[str, int]
    by_reason: dict[str, int]
    # Skipped at the snapshot (never attempted), by reason; the holdout and
    # cancelled rows are not among them.
    ineligible_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def pending(self) -> int:
        return sum(self.by_status.get(s, 0) for s in PENDING)

    @property
    def done(self) -> int:
        """Rows with their outcome, whatever it is (the ledger's view)."""
        return self.total - self.pending

    @property
    def held_out(self) -> int:
        return self.by_reason.get(SkipReason.HOLDOUT, 0)

    @property
    def ineligible(self) -> int:
        return sum(self.ineligible_by_reason.values())

    @property
    def sendable(self) -> int:
        """Rows the send set out to send: not ineligible, not held out."""
        return self.total - self.ineligible - self.held_out

    @property
    def cancelled(self) -> int:
        return self.by_reason.get(SkipReason.CANCELLED, 0)

    @property
    def attempted(self) -> int:
        """Sendable rows with their outcome: dealt with by the worker
        (sent, failed, unknown, skipped at send time) or left unsent by a
        cancel (shown apart, by reason)."""
        return max(self.sendable - self.pending, 0)

    @property
    def percent(self) -> int:
        """Attempted over sendable; 100 when nothing could be sent."""
        return 100 if not self.sendable else int(100 * self.attempted / self.sendable)

    @property
    def sent(self) -> int:
        return self.by_status.get(DeliveryStatus.SENT, 0)


def sends_progress(send_ids: Iterable[int]) -> dict[int, SendProgress]:
    """Each send's counts by status and skip reason, in one query (a
    changelist page of campaigns); a send without rows counts zero."""
    send_ids = list(send_ids)
    counts: dict[int, tuple[dict[str, int], dict[str, int], dict[str, int]]] = {
        i: ({}, {}, {}) for i in send_ids
    }
    rows = (
        Delivery.objects.filter(send_id__in=send_ids)
        .values("send_id", "status", "skip_reason")
        .annotate(n=Count("id"), never_attempted=Count("id", filter=Q(attempts=0)))
        .order_by()
    )
    for row in rows:
        by_status, by_reason, ineligible = counts[row["send_id"]]
        by_status[row["status"]] = by_status.get(row["status"], 0) + row["n"]
        reason = row["skip_reason"]
        if reason:
            by_reason[reason] = row["n"]
            if reason not in NOT_INELIGIBLE and row["never_attempted"]:
                ineligible[reason] = row["never_attempted"]
    return {
        send_id: SendProgress(sum(by_status.values()), by_status, by_reason, ineligible)
        for send_id, (by_status, by_reason, ineligible) in counts.items()
    }


def send_progress(send: Send) -> SendProgress:
    """Counts by status and skip reason, in one query."""
    return sends_progress([send.pk])[send.pk]
