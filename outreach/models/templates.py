"""Message templates and customer segments: the channels and purposes a message has, what it says,
and who a campaign may target.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from crm.models import LifecycleSegment


class MessageChannel(models.TextChoices):
    EMAIL = "email", _("Email")
    LINE = "line", _("LINE")


class DeliveryChannel(models.TextChoices):
    """What a campaign, a send and a ledger row go by: a message channel,
    or postal direct mail (郵送DM), which the worker never sends: its
    export (the address list for the print shop) records the recipients
    sent (outreach.services.dm)."""

    EMAIL = "email", _("Email")
    LINE = "line", _("LINE")
    DM = "dm", _("Postal DM")


class Purpose(models.TextChoices):
    """Marketing needs consent and waits out quiet hours; transactional
    messages (inquiry replies, order and shipping notices) do not."""

    MARKETING = "marketing", _("Marketing")
    TRANSACTIONAL = "transactional", _("Transactional")


class MessageTemplate(models.Model):
    name = models.CharField(_("name"), max_length=100, unique=True)
    channel = models.CharField(_("channel"), max_length=5, choices=MessageChannel.choices)
    purpose = models.CharField(
        _("purpose"), max_length=13, choices=Purpose.choices, default=Purpose.MARKETING
    )
    description = models.CharField(_("description"), max_length=255, blank=True)
    # Email
    subject = models.CharField(_("subject"), max_length=255, blank=True)
    body_text = models.TextField(_("text body"), blank=True)
    body_html = models.TextField(_("HTML body"), blank=True)
    # LINE: 1–5 text messages
    line_messages = models.JSONField(_("LINE messages"), default=list, blank=True)
    # Set by validation: does the content differ per recipient? Identical
    # LINE content goes by multicast, personal content by push.
    is_personal = models.BooleanField(_("personalised"), default=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")

    def __str__(self) -> str:
        return self.name


class SegmentKind(models.TextChoices):
    LIFECYCLE = "lifecycle", _("Lifecycle segment")
    CUSTOM = "custom", _("Custom rule")


class Segment(models.Model):
    """A set of customers: a built-in lifecycle segment, or a rule tree of
    all/any conditions compiled to one query (outreach.segments)."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    kind = models.CharField(
        _("kind"), max_length=9, choices=SegmentKind.choices, default=SegmentKind.CUSTOM
    )
    lifecycle_segment = models.CharField(
        _("lifecycle segment"), max_length=10, choices=LifecycleSegment.choices, blank=True
    )
    rule = models.JSONField(_("rule"), default=dict, blank=True)
    description = models.CharField(_("description"), max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="custom") | ~Q(lifecycle_segment=""),
                name="outreach_segment_lifecycle_has_value",
            )
        ]

    def __str__(self) -> str:
        return self.name
