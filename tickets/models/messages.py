"""An inquiry's messages (inbound, outbound, notes) and their attachments."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.choices import Channel
from outreach.models import DeliveryStatus
from tickets.models.inquiry import Inquiry


class MessageKind(models.TextChoices):
    INBOUND = "inbound", _("From the customer")
    OUTBOUND = "outbound", _("To the customer")
    NOTE = "note", _("Internal note")


class OutboundState(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", _("Awaiting approval")
    RETURNED = "returned", _("Returned for changes")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")  # failed, skipped, or unknown whether it reached them


# A reply's delivery ended in one of these: it did not (or may not have)
# reach the customer, so it does not count as answered.
UNDELIVERED_STATUSES = (DeliveryStatus.FAILED, DeliveryStatus.UNKNOWN, DeliveryStatus.SKIPPED)


class InquiryMessage(models.Model):
    inquiry = models.ForeignKey(
        Inquiry, on_delete=models.CASCADE, related_name="messages", verbose_name=_("inquiry")
    )
    kind = models.CharField(_("kind"), max_length=8, choices=MessageKind.choices)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("author"),
    )
    subject = models.CharField(_("subject"), max_length=255, blank=True)
    body_text = models.TextField(_("text"))
    # The display text of an inbound mail, without quoted history.
    visible_text = models.TextField(_("text shown"), blank=True)
    body_html = models.TextField(_("HTML (sanitised)"), blank=True)
    # Email threading
    message_id = models.CharField(_("Message-ID"), max_length=255, blank=True)
    in_reply_to = models.CharField(_("In-Reply-To"), max_length=255, blank=True)
    references = models.TextField(_("References"), blank=True)
    # LINE inbound: the event's reply token (free replies for a short while)
    line_reply_token = models.CharField(max_length=255, blank=True)
    # Outbound only
    is_automatic = models.BooleanField(_("automatic"), default=False)
    outbound_state = models.CharField(
        _("sending state"), max_length=17, choices=OutboundState.choices, blank=True
    )
    delivery = models.OneToOneField(
        "outreach.Delivery",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="inquiry_message",
        verbose_name=_("delivery"),
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("approved by"),
    )
    review_note = models.CharField(_("reviewer's note"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("at"), auto_now_add=True)
    # A phone call an agent logged (tickets.services.calls): its length, and
    # whether the agent answered it on the spot (the first reply).
    call_minutes = models.PositiveSmallIntegerField(
        _("call length (minutes)"), null=True, blank=True
    )
    call_answered = models.BooleanField(_("answered on the spot"), default=False)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        indexes = [
            models.Index(fields=["inquiry", "created_at"], name="tickets_message_thread"),
            models.Index(
                fields=["message_id"],
                name="tickets_message_mid",
                condition=~Q(message_id=""),
            ),
            # Replies handed to the ledger whose outcome the SLA tick has
            # not taken in yet (tickets.services.reply_outcomes): a few.
            models.Index(
                fields=["delivery"],
                name="tickets_message_in_flight",
                condition=Q(outbound_state="sending", delivery__isnull=False),
            ),
            # Replies held for a manager's approval: the manager's home and
            # the approvals list read these few among millions of messages.
            models.Index(
                fields=["created_at"],
                name="tickets_message_held",
                condition=Q(outbound_state="awaiting_approval"),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="outbound") | Q(outbound_state=""),
                name="tickets_message_state_only_outbound",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.created_at:%Y-%m-%d %H:%M}"


def attachment_path(instance: Attachment, filename: str) -> str:
    return f"attachments/{instance.message.inquiry.reference}/{instance.message_id}/{filename}"


class Attachment(models.Model):
    message = models.ForeignKey(
        InquiryMessage,
        on_delete=models.CASCADE,
        related_name="attachments",
        verbose_name=_("message"),
    )
    file = models.FileField(_("file"), upload_to=attachment_path, max_length=500, blank=True)
    filename = models.CharField(_("file name"), max_length=255)
    content_type = models.CharField(_("type"), max_length=100)
    size = models.PositiveIntegerField(_("size (bytes)"))
    # Over the size limit: the metadata is kept, the content is not.
    truncated = models.BooleanField(_("too large, not stored"), default=False)

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")

    def __str__(self) -> str:
        return self.filename
