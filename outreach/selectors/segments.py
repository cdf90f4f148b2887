"""A segment's customers, count and preview."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.utils import timezone

from crm.models import Customer
from outreach.models import Segment
from outreach.segments.compiler import segment_q
from outreach.segments.describe import segment_describe


def _customers_live() -> QuerySet[Customer]:
    return Customer.objects.filter(merged_into__isnull=True, anonymized_at__isnull=True)


def segment_customers(segment: Segment, *, now: datetime | None = None) -> QuerySet[Customer]:
    """The live (not merged, not anonymised) customers of a segment, as one query."""
    return _customers_live().filter(segment_q(segment, now=now or timezone.now()))


def segment_count(segment: Segment | dict, *, now: datetime | None = None) -> int:
    """How many live customers a segment (or a bare rule) holds: one COUNT."""
    return _customers_live().filter(segment_q(segment, now=now or timezone.now())).count()


def segment_counts(
    segments: Iterable[Segment], *, now: datetime | None = None
) -> dict[int, int | None]:
    """The sizes of several segments in ONE query (conditional aggregation
    over the customers). A segment whose rule is invalid counts as None."""
    now = now or timezone.now()
    counts: dict[int, int | None] = {}
    aggregates = {}
    for segment in segments:
        try:
            aggregates[f"segment_{segment.pk}"] = Count("pk", filter=segment_q(segment, now=now))
        except ValidationError:
            counts[segment.pk] = None
    if aggregates:
        for key, value in _customers_live().aggregate(**aggregates).items():
            counts[int(key.removeprefix("segment_"))] = value
    return counts


@dataclass(frozen=True)
class SegmentPreview:
    count: int
    description: str
    sample: list[Customer]


def segment_preview(
    segment: Segment, *, now: datetime | None = None, sample_size: int = 10
) -> SegmentPreview:
    """Size, description and a sample of the most recent buyers: two queries."""
    customers = segment_customers(segment, now=now)
    sample = list(
        customers.order_by("-last_order_at", "-id").only(
            "family_name",
            "given_name",
            "family_name_kana",
            "given_name_kana",
            "lifecycle_segment",
            "last_order_at",
            "is_claimant",
        )[:sample_size]
    )
    count = len(sample) if len(sample) < sample_size else customers.count()
    return SegmentPreview(count=count, description=segment_describe(segment), sample=sample)
