"""Reads for outreach that filter or join: who may receive a message
(eligibility, recipients), a send's progress, a segment's count and
preview, the test recipients."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import Case, Count, F, OuterRef, Q, QuerySet, Subquery, Value, When
from django.utils import timezone

from crm.models import Channel, ChannelIdentity, ConsentState, Customer
from outreach.ledger import PENDING
from outreach.models import Delivery, MessageChannel, Purpose, Segment, Send, SkipReason
from outreach.segments.compiler import segment_q
from outreach.segments.describe import segment_describe


def eligibility_reason(*, channel: str, purpose: str, customer_ids=None) -> Case:
    """Why a customer gets no message on `channel` (first reason wins), or
    "" — as one SQL expression over the customer row. The one definition of
    who may be sent what: the launch snapshot and the worker's send-time
    check both use it.

    Each test is `id IN (SELECT customer_id ...)`, which PostgreSQL runs
    once per query as a hashed subplan (a correlated EXISTS in a CASE is
    costed per row: a plan estimated in millions, which switches on JIT
    compilation, seconds at launch). `customer_ids` (a worker's batch)
    limits every subquery to those customers, so that checking 500 rows
    reads 500 rows of each table, not the whole table."""

    def among(queryset: QuerySet) -> Q:
        if customer_ids is not None:
            queryset = queryset.filter(customer_id__any_of=customer_ids)
        return Q(pk__in=queryset.values("customer_id"))

    consent_channel = channel  # outreach channels map 1:1 onto consent channels
    consent = ConsentState.objects.filter(channel=consent_channel)
    identities = ChannelIdentity.objects.all()
    if channel == MessageChannel.EMAIL:
        no_address = Q(email_normalized="")
    else:
        no_address = ~among(identities.filter(channel=Channel.LINE))
    whens = [When(merged_into__isnull=False, then=Value(SkipReason.MERGED.value))]
    if purpose == Purpose.MARKETING:
        amazon_only = among(identities.filter(channel=Channel.AMAZON)) & ~among(
            identities.exclude(channel=Channel.AMAZON)
        )
        whens += [
            When(is_claimant=True, then=Value(SkipReason.CLAIMANT.value)),
            When(amazon_only, then=Value(SkipReason.AMAZON_ONLY.value)),
            When(among(consent.filter(granted=False)), then=Value(SkipReason.UNSUBSCRIBED.value)),
            When(~among(consent.filter(granted=True)), then=Value(SkipReason.NO_CONSENT.value)),
        ]
    whens.append(When(no_address, then=Value(SkipReason.NO_ADDRESS.value)))
    return Case(*whens, default=Value(""))


def recipient_address(*, channel: str):
    """The customer's address on `channel`, as an SQL expression: the email
    address, or the LINE userId of their (latest) LINE identity."""
    if channel == MessageChannel.EMAIL:
        return F("email")
    return Subquery(
        ChannelIdentity.objects.filter(customer=OuterRef("pk"), channel=Channel.LINE)
        .order_by("-id")
        .values("external_id")[:1]
    )


def recipients_checked(*, customer_ids, channel: str, purpose: str) -> QuerySet[Customer]:
    """Customers annotated with `skip_reason` and `send_address`, one query:
    the worker's send-time check."""
    customer_ids = list(customer_ids)
    return Customer.objects.filter(pk__any_of=customer_ids).annotate(
        skip_reason=eligibility_reason(channel=channel, purpose=purpose, customer_ids=customer_ids),
        send_address=recipient_address(channel=channel),
    )


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


def test_recipients(*, channel: str) -> QuerySet[Customer]:
    """The customers a campaign's test send may go to on `channel`: marked
    as test recipients, whom a test send reaches (eligibility_reason for a
    test's purpose, see send_eligibility_purpose: not merged away, with an
    address there)."""
    reason = eligibility_reason(channel=channel, purpose=Purpose.TRANSACTIONAL)
    testers = Customer.objects.filter(is_test_recipient=True).annotate(skip=reason)
    return testers.filter(skip="").order_by("family_name_kana", "given_name_kana", "pk")
