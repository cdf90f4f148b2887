"""Sends and campaigns: one Send per outbound batch (campaign, test, reply, broadcast, journey
step), the Campaign that schedules it, and its event rows.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.models import EventRecord
from outreach.models.templates import DeliveryChannel, MessageTemplate, Purpose, Segment


class SendKind(models.TextChoices):
    CAMPAIGN = "campaign", _("Campaign")
    TEST = "test", _("Test send")
    REPLY = "reply", _("Inquiry reply")
    BROADCAST = "broadcast", _("Emergency broadcast")
    JOURNEY = "journey", _("Journey step")
    NOTICE = "notice", _("Notice")


class SendStatus(models.TextChoices):
    SENDING = "sending", _("Sending")
    PAUSED = "paused", _("Paused")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")


class Send(models.Model):
    """One act of sending: what goes out, on which channel, for what
    purpose. Its Delivery rows are the recipients."""

    kind = models.CharField(_("kind"), max_length=10, choices=SendKind.choices)
    channel = models.CharField(_("channel"), max_length=5, choices=DeliveryChannel.choices)
    purpose = models.CharField(_("purpose"), max_length=13, choices=Purpose.choices)
    template = models.ForeignKey(
        MessageTemplate,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="sends",
        verbose_name=_("template"),
    )
    # Literal content for sends without a template (replies); also extra
    # template context (e.g. {"order_id": 1}).
    content = models.JSONField(_("content"), default=dict, blank=True)
    status = models.CharField(
        _("status"), max_length=9, choices=SendStatus.choices, default=SendStatus.SENDING
    )
    respect_quiet_hours = models.BooleanField(_("respect quiet hours"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("send")
        verbose_name_plural = _("sends")
        indexes = [
            models.Index(
                fields=["status"], name="outreach_send_active", condition=Q(status="sending")
            ),
            # The sends tick settles what cancelled sends left in flight.
            models.Index(
                fields=["status"], name="outreach_send_cancelled", condition=Q(status="cancelled")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"

    @property
    def is_marketing(self) -> bool:
        return self.purpose == Purpose.MARKETING

    @property
    def title(self) -> str:
        """What the send is called on a screen: its campaign's name, else its
        template's, else its subject (an email reply), else its kind.
        select_related("campaign", "template") keeps it free of queries."""
        try:
            return self.campaign.name
        except Campaign.DoesNotExist:
            pass
        if self.template_id is not None:
            assert self.template is not None
            return self.template.name
        return (self.content or {}).get("subject") or str(self.get_kind_display())


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SCHEDULED = "scheduled", _("Scheduled")
    SENDING = "sending", _("Sending")
    PAUSED = "paused", _("Paused")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")


# Not launched yet: a campaign in these may be edited, scheduled, launched.
CAMPAIGN_EDITABLE = (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED)


class Campaign(models.Model):
    name = models.CharField(_("name"), max_length=150)
    channel = models.CharField(_("channel"), max_length=5, choices=DeliveryChannel.choices)
    # A postal DM campaign has none: what is printed is the print shop's.
    template = models.ForeignKey(
        MessageTemplate,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("template"),
    )
    segment = models.ForeignKey(
        Segment, on_delete=models.PROTECT, related_name="campaigns", verbose_name=_("segment")
    )
    status = models.CharField(
        _("status"), max_length=9, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT
    )
    scheduled_at = models.DateTimeField(_("send at"), null=True, blank=True)
    send = models.OneToOneField(
        Send,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="campaign",
        verbose_name=_("send"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    launched_at = models.DateTimeField(_("launched at"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    # A random share of the sendable audience kept back at launch (the
    # ledger records them held out, never sent), to measure the lift.
    holdout_percent = models.PositiveSmallIntegerField(
        _("holdout (%)"),
        default=0,
        validators=[MaxValueValidator(50)],
        help_text=_(
            "A random share of the customers who could receive it is not sent the campaign, "
            "to compare their orders with the recipients'. 0: everyone is sent it."
        ),
    )
    # Orders within this many days after the message (the holdout: after the
    # launch) count as its result.
    attribution_days = models.PositiveSmallIntegerField(
        _("attribution window (days)"),
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(90)],
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        indexes = [
            models.Index(
                fields=["scheduled_at"],
                name="outreach_campaign_due",
                condition=Q(status="scheduled"),
            )
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(channel="dm", template__isnull=True)
                | (~Q(channel="dm") & Q(template__isnull=False)),
                name="outreach_campaign_template_unless_dm",
            )
        ]

    def __str__(self) -> str:
        return self.name


class CampaignEventKind(models.TextChoices):
    CREATED = "created", _("Created")
    EDITED = "edited", _("Edited")
    SCHEDULED = "scheduled", _("Scheduled")
    UNSCHEDULED = "unscheduled", _("Unscheduled")
    LAUNCHED = "launched", _("Launched")
    PAUSED = "paused", _("Paused")
    RESUMED = "resumed", _("Resumed")
    CANCELLED = "cancelled", _("Cancelled")
    COMPLETED = "completed", _("Completed")
    TEST_SENT = "test_sent", _("Test sent")


class CampaignEvent(EventRecord):
    """The campaign's history: who changed its state, when."""

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="events", verbose_name=_("campaign")
    )
    kind = models.CharField(_("kind"), max_length=12, choices=CampaignEventKind.choices)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("campaign event")
        verbose_name_plural = _("campaign events")

    def __str__(self) -> str:
        return self.get_kind_display()
