"""The inquiry's timeline: one event row per change, and the kinds of change."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from core.models import EventRecord
from tickets.models.inquiry import Inquiry


class InquiryEventKind(models.TextChoices):
    CREATED = "created", _("Received")
    MESSAGE = "message", _("Message")
    NOTE = "note", _("Note")
    STATUS = "status", _("Status changed")
    ASSIGNED = "assigned", _("Assigned")
    CATEGORY = "category", _("Category set")
    PRIORITY = "priority", _("Priority changed")
    STAGE = "stage", _("Stage reached")
    SLA = "sla", _("SLA state changed")
    REPLY_SUBMITTED = "reply_submitted", _("Reply submitted for approval")
    REPLY_APPROVED = "reply_approved", _("Reply approved")
    REPLY_RETURNED = "reply_returned", _("Reply returned")
    REOPENED = "reopened", _("Reopened")
    LINKED = "linked", _("Linked")
    REPLY_FAILED = "reply_failed", _("Reply did not reach the customer")
    # The delivery ended unknown: the customer may have it (a LINE reply whose
    # answer was lost is never sent again).
    REPLY_UNKNOWN = "reply_unknown", _("Unknown whether the reply reached the customer")
    CLOCK_REOPENED = "clock_reopened", _("First-reply clock re-opened")
    ORDER_UNLINKED = "order_unlinked", _("Order unlinked: it is now another customer's")
    TRIAGE_LATE = "triage_late", _("Triage target passed")
    CALL = "call", _("Phone call logged")
    # Merge and split (tickets.services.merge); old/new hold inquiry references.
    MERGED = "merged", _("Inquiries merged into this one")
    MERGED_INTO = "merged_into", _("Merged into another inquiry")
    SPLIT_OUT = "split_out", _("Messages split out into a new inquiry")
    SPLIT_FROM = "split_from", _("Split out of another inquiry")
    SLA_NEXT_REPLY = "sla_next_reply", _("Next reply SLA changed")
    SLA_RESOLUTION = "sla_resolution", _("Resolution SLA changed")
    # Automatic assignment found nobody present below their limit.
    ASSIGN_WAITING = "assign_waiting", _("No agent available for automatic assignment")
    CSAT_SENT = "csat_sent", _("Satisfaction survey sent")
    CSAT_ANSWERED = "csat_answered", _("Satisfaction answer received")
    CSAT_COMMENTED = "csat_comment", _("Satisfaction comment received")


class InquiryEvent(EventRecord):
    """The inquiry's timeline: who changed what, from what, to what."""

    inquiry = models.ForeignKey(
        Inquiry, on_delete=models.CASCADE, related_name="events", verbose_name=_("inquiry")
    )
    kind = models.CharField(_("kind"), max_length=16, choices=InquiryEventKind.choices)
    old = models.CharField(_("old value"), max_length=100, blank=True)
    new = models.CharField(_("new value"), max_length=100, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("inquiry event")
        verbose_name_plural = _("inquiry events")
        indexes = [models.Index(fields=["inquiry", "created_at"], name="tickets_event_timeline")]

    def __str__(self) -> str:
        return self.get_kind_display()
