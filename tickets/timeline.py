"""The inquiry timeline in words: how each InquiryEventKind reads, through
core.timeline's one mechanism (「SLA: 期限内 → 期限超過」, 「段階: 初期連絡」,
「担当者: 佐藤 美咲」). A new event kind adds its wording here; a test renders
every kind and fails on a stored value reaching the page."""

from __future__ import annotations

from typing import Any

from django.utils.functional import lazy
from django.utils.text import format_lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.choices import Channel
from core.timeline import EventWording, timeline_rows
from outreach.models import MessageChannel
from tickets.admin.display import RESOLVED_IN_TIME
from tickets.models import (
    Inquiry,
    InquiryEventKind,
    InquiryStatus,
    MessageKind,
    Priority,
    SlaState,
)
from tickets.services.csat import SCORES, csat_score_label

Kind = InquiryEventKind

# The response stages as an event records them (InquiryEventKind.STAGE).
STAGE_LABELS = {
    "triaged": _("Triage"),
    "first_contact": _("First contact"),
    "solution_proposed": _("Solution proposed"),
}


def auto_assigned(event, name: str) -> str:
    """An assignment the round robin made reads 「佐藤 美咲 (自動割り当て)」."""
    if event.data.get("auto"):
        return gettext("%(name)s (automatic assignment)") % {"name": name}
    return name


# A CSAT answer's stored score as 「5 とても満足」, in the page's language.
CSAT_ANSWER_LABELS = {
    str(score): format_lazy("{} {}", score, lazy(csat_score_label, str)(score)) for score in SCORES
}

INQUIRY_EVENT_WORDING: dict[str, EventWording] = {
    Kind.CREATED: EventWording(Kind.CREATED.label, Channel.choices),
    Kind.MESSAGE: EventWording(Kind.MESSAGE.label, MessageKind.choices),
    Kind.NOTE: EventWording(Kind.NOTE.label),
    Kind.STATUS: EventWording(_("status"), InquiryStatus.choices),
    Kind.ASSIGNED: EventWording(_("assignee"), staff=True, note=auto_assigned),
    Kind.CATEGORY: EventWording(_("category")),  # the category's name
    Kind.PRIORITY: EventWording(_("priority"), Priority.choices),
    Kind.STAGE: EventWording(_("stage"), STAGE_LABELS),
    Kind.SLA: EventWording(_("SLA"), SlaState.choices),
    Kind.REPLY_SUBMITTED: EventWording(Kind.REPLY_SUBMITTED.label),
    Kind.REPLY_APPROVED: EventWording(Kind.REPLY_APPROVED.label),
    Kind.REPLY_RETURNED: EventWording(Kind.REPLY_RETURNED.label),
    Kind.REOPENED: EventWording(Kind.REOPENED.label, InquiryStatus.choices),
    Kind.LINKED: EventWording(Kind.LINKED.label),  # a reference or an incident's title
    Kind.REPLY_FAILED: EventWording(Kind.REPLY_FAILED.label),
    Kind.REPLY_UNKNOWN: EventWording(Kind.REPLY_UNKNOWN.label),
    Kind.CLOCK_REOPENED: EventWording(Kind.CLOCK_REOPENED.label),
    Kind.ORDER_UNLINKED: EventWording(Kind.ORDER_UNLINKED.label, subject=True),  # its number
    Kind.TRIAGE_LATE: EventWording(Kind.TRIAGE_LATE.label),
    Kind.SLA_NEXT_REPLY: EventWording(_("next reply SLA"), SlaState.choices),
    Kind.SLA_RESOLUTION: EventWording(
        _("resolution SLA"), {**dict(SlaState.choices), SlaState.MET: RESOLVED_IN_TIME}
    ),
    Kind.CALL: EventWording(Kind.CALL.label),
    # Automatic assignment and the satisfaction survey.
    Kind.ASSIGN_WAITING: EventWording(Kind.ASSIGN_WAITING.label),
    Kind.CSAT_SENT: EventWording(Kind.CSAT_SENT.label, MessageChannel.choices),
    Kind.CSAT_ANSWERED: EventWording(Kind.CSAT_ANSWERED.label, CSAT_ANSWER_LABELS),
    Kind.CSAT_COMMENTED: EventWording(
        Kind.CSAT_COMMENTED.label
    ),  # its length and outcome, in words
    # Merge and split: the other inquiries' references.
    Kind.MERGED: EventWording(Kind.MERGED.label),
    Kind.MERGED_INTO: EventWording(Kind.MERGED_INTO.label),
    Kind.SPLIT_OUT: EventWording(Kind.SPLIT_OUT.label),
    Kind.SPLIT_FROM: EventWording(Kind.SPLIT_FROM.label),
}


def inquiry_timeline(inquiry: Inquiry, limit: int = 50) -> list[dict[str, Any]]:
    """The inquiry's latest events, oldest first, in words (two queries:
    the events with their actors, the colleagues named in assignments)."""
    events = inquiry.events.select_related("actor").order_by("-created_at", "-id")[:limit]
    return timeline_rows(reversed(list(events)), INQUIRY_EVENT_WORDING)
