"""What the inbox keeps per row and per agent: the latest message in one
line (Inquiry.last_message_excerpt / last_message_at, written where messages
are added), the text its search box reads (Inquiry.search_text: the subject
and the customer's messages, folded) and how far each agent has read
(InquiryReadState)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.contrib.auth.models import User
from django.db.models import OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, NullIf, Replace, Substr
from django.utils import timezone

from tickets.models import Inquiry, InquiryMessage, InquiryReadState, MessageKind, OutboundState
from tickets.search import search_fold

EXCERPT_LENGTH = 120


def last_message_fields(text: str, at: datetime) -> dict:
    """Inquiry's latest-message columns for a message of `text` at `at`: the
    text folded into one line (no newlines, single spaces), cut at 120
    characters."""
    return {
        "last_message_excerpt": " ".join((text or "").split())[:EXCERPT_LENGTH],
        "last_message_at": at,
    }


def search_text_with(search_text: str, *texts: str) -> str:
    """Inquiry.search_text with `texts` (the subject, a customer's message)
    added, folded as the search box folds what is typed."""
    return "\n".join(filter(None, [search_text, *(search_fold(text) for text in texts)]))


def search_text_refresh(*, inquiry_ids: Iterable[int]) -> None:
    """Recount Inquiry.search_text of these inquiries from their subject and
    their customers' messages (after messages moved between inquiries)."""
    ids = list(inquiry_ids)
    bodies: dict[int, list[str]] = defaultdict(list)
    inbound = InquiryMessage.objects.filter(inquiry_id__in=ids, kind=MessageKind.INBOUND)
    for inquiry_id, body in inbound.order_by("created_at", "id").values_list(
        "inquiry_id", "body_text"
    ):
        bodies[inquiry_id].append(body)
    inquiries = list(Inquiry.objects.filter(pk__in=ids).only("pk", "subject"))
    for inquiry in inquiries:
        inquiry.search_text = search_text_with("", inquiry.subject, *bodies[inquiry.pk])
    Inquiry.objects.bulk_update(inquiries, ["search_text"])


def last_message_refresh(*, inquiry_ids: Iterable[int]) -> None:
    """Recount the latest-message columns (and search_text) of these
    inquiries from their messages after messages moved between inquiries (merge,
    split): the latest message exchanged with the customer — no notes, no
    automatic acknowledgements, no reply still held for approval. The same
    rule as migration 0020's backfill (which keeps its own frozen copy)."""
    latest = (
        InquiryMessage.objects.filter(inquiry=OuterRef("pk"))
        .exclude(kind=MessageKind.NOTE)
        .exclude(is_automatic=True)
        .exclude(
            Q(kind=MessageKind.OUTBOUND)
            & ~Q(
                outbound_state__in=[
                    OutboundState.SENDING,
                    OutboundState.SENT,
                    OutboundState.FAILED,
                ]
            )
        )
        .order_by("-created_at", "-id")
    )
    text = Coalesce(NullIf("visible_text", Value("")), "body_text")
    one_line = Replace(Replace(text, Value("\r"), Value("")), Value("\n"), Value(" "))
    inquiry_ids = list(inquiry_ids)
    search_text_refresh(inquiry_ids=inquiry_ids)
    Inquiry.objects.filter(pk__in=inquiry_ids).update(
        last_message_at=Subquery(latest.values("created_at")[:1]),
        last_message_excerpt=Coalesce(
            Subquery(latest.annotate(line=Substr(one_line, 1, EXCERPT_LENGTH)).values("line")[:1]),
            Value(""),
        ),
    )


def inquiry_read_mark(*, inquiry: Inquiry, actor: User) -> None:
    """`actor` opened the inquiry: its customer messages so far (up to its
    last_inbound_at) are read for them. One upsert."""
    InquiryReadState.objects.bulk_create(
        [
            InquiryReadState(
                inquiry_id=inquiry.pk,
                user_id=actor.pk,
                seen_inbound_at=inquiry.last_inbound_at,
                opened_at=timezone.now(),
            )
        ],
        update_conflicts=True,
        unique_fields=["inquiry", "user"],
        update_fields=["seen_inbound_at", "opened_at"],
    )
