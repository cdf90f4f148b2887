"""What the inbox keeps per row and per agent: the latest message in one
line (Inquiry.last_message_excerpt / last_message_at, written where messages
are added) and how far each agent has read (InquiryReadState)."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from tickets.models import Inquiry, InquiryReadState

EXCERPT_LENGTH = 120


def last_message_fields(text: str, at: datetime) -> dict:
    """Inquiry's latest-message columns for a message of `text` at `at`: the
    text folded into one line (no newlines, single spaces), cut at 120
    characters."""
    return {
        "last_message_excerpt": " ".join((text or "").split())[:EXCERPT_LENGTH],
        "last_message_at": at,
    }


def inquiry_read_mark(*, inquiry: Inquiry, actor) -> None:
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
