"""Reads for inquiries. Each returns a QuerySet holding the joins its
callers need (no N+1)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Prefetch, QuerySet

from tickets.models import OPEN_STATUSES, Inquiry, InquiryMessage

# What the API's InquirySerializer shows, and no more: a list page loads
# 50 rows of these instead of every column of three tables.
API_FIELDS = (
    "reference",
    "customer_id",
    "channel",
    "subject",
    "category__code",
    "order__order_number",
    "status",
    "first_replied_at",
    "created_at",
    "updated_at",
)


def inquiry_list_for_channels(*, channels: Iterable[str]) -> QuerySet[Inquiry]:
    """Inquiries an API key may see: those that came in on its channels,
    with the columns the API shows."""
    return (
        Inquiry.objects.filter(channel__in=list(channels))
        .select_related("category", "order")
        .only(*API_FIELDS)
    )


def inbox(*, open_only: bool = False) -> QuerySet[Inquiry]:
    """The agent inbox: everything a row shows, joined."""
    queryset = Inquiry.objects.select_related("customer", "category", "assignee")
    if open_only:
        queryset = queryset.filter(status__in=OPEN_STATUSES)
    return queryset


def inquiry_conversation(inquiry: Inquiry) -> QuerySet[InquiryMessage]:
    """The messages of an inquiry in order, with authors, deliveries and
    attachments."""
    return (
        InquiryMessage.objects.filter(inquiry=inquiry)
        .select_related("author", "delivery", "approved_by")
        .prefetch_related(Prefetch("attachments"))
        .order_by("created_at", "id")
    )
