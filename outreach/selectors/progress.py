"""A send's progress: its deliveries counted by status and skip reason."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count

from outreach.ledger import PENDING
from outreach.models import Delivery, Send


@dataclass(frozen=True)
class SendProgress:
    total: int
    by_status: dict[str, int]
    by_reason: dict[str, int]

    @property
    def done(self) -> int:
        return self.total - sum(self.by_status.get(s, 0) for s in PENDING)

    @property
    def percent(self) -> int:
        return 100 if not self.total else int(100 * self.done / self.total)

    @property
    def pending(self) -> int:
        return self.total - self.done


def sends_progress(send_ids: Iterable[int]) -> dict[int, SendProgress]:
    """Each send's counts by status and skip reason, in one query (a
    changelist page of campaigns); a send without rows counts zero."""
    send_ids = list(send_ids)
    counts: dict[int, tuple[dict[str, int], dict[str, int]]] = {i: ({}, {}) for i in send_ids}
    rows = (
        Delivery.objects.filter(send_id__in=send_ids)
        .values("send_id", "status", "skip_reason")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        by_status, by_reason = counts[row["send_id"]]
        by_status[row["status"]] = by_status.get(row["status"], 0) + row["n"]
        if row["skip_reason"]:
            by_reason[row["skip_reason"]] = row["n"]
    return {
        send_id: SendProgress(sum(by_status.values()), by_status, by_reason)
        for send_id, (by_status, by_reason) in counts.items()
    }


def send_progress(send: Send) -> SendProgress:
    """Counts by status and skip reason, in one query."""
    return sends_progress([send.pk])[send.pk]
