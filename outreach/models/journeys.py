"""Journeys (ステップ配信): the trigger, the steps with their delays and conditions, and
the journey's event rows.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.models import EventRecord
from outreach.models.campaigns import Send
from outreach.models.templates import MessageChannel, MessageTemplate, Purpose, Segment

# --- Journeys (ステップ配信) ------------------------------------------------------------


class JourneyTrigger(models.TextChoices):
    ORDER_PLACED = "order_placed", _("Order placed")
    ORDER_SHIPPED = "order_shipped", _("Order shipped")
    ORDER_DELIVERED = "order_delivered", _("Order delivered")
    FIRST_ORDER = "first_order", _("First order")
    BECAME_SLEEPING = "became_sleeping", _("Customer became sleeping")
    BIRTHDAY_MONTH = "birthday_month", _("Birthday month")


# Triggers of one order: a step is sent once per (step, order).
ORDER_TRIGGERS = (
    JourneyTrigger.ORDER_PLACED,
    JourneyTrigger.ORDER_SHIPPED,
    JourneyTrigger.ORDER_DELIVERED,
    JourneyTrigger.FIRST_ORDER,
)


class StepCondition(models.TextChoices):
    NONE = "", _("None")
    NO_ORDER_SINCE_PREVIOUS = (
        "no_order_since_previous",
        _("Not ordered again since the previous step"),
    )


class Journey(models.Model):
    """A step sequence (ステップ配信): a trigger, who enters, and its steps.
    Each step sends through the delivery ledger (JourneyStep.send)."""

    name = models.CharField(_("name"), max_length=150, unique=True)
    description = models.CharField(_("description"), max_length=255, blank=True)
    trigger = models.CharField(_("trigger"), max_length=16, choices=JourneyTrigger.choices)
    channel = models.CharField(_("channel"), max_length=5, choices=MessageChannel.choices)
    # Conditions on entry (all must hold; empty means any).
    segment = models.ForeignKey(
        Segment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="journeys",
        verbose_name=_("segment"),
    )
    order_channels = models.JSONField(_("order channels"), default=list, blank=True)
    lifecycle_segments = models.JSONField(_("lifecycle segments"), default=list, blank=True)
    # Transactional journeys (order confirmation, shipping notice) need no
    # marketing consent, ignore quiet hours and are the only ones Amazon
    # orders enter (SPEC rule 9).
    is_transactional = models.BooleanField(_("transactional"), default=False)
    is_builtin = models.BooleanField(_("built in"), default=False, editable=False)
    active = models.BooleanField(_("active"), default=False, editable=False)
    conversion_window_days = models.PositiveSmallIntegerField(
        _("conversion window (days)"), default=7
    )
    # Channels in order of preference: each step goes on `channel`, or on
    # this one for a person who cannot be reached there (no address, no
    # consent for marketing, unsubscribed, a bounced address). Each step
    # then has a template for it (JourneyStep.next_template).
    next_channel = models.CharField(
        _("then, if not reachable there"),
        max_length=5,
        choices=MessageChannel.choices,
        blank=True,
        default="",
        help_text=_(
            "Someone the first channel cannot reach (no address, no consent, unsubscribed, "
            "a bounced address) gets each step on this channel instead. Each step then needs "
            "a template for it."
        ),
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
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("journey")
        verbose_name_plural = _("journeys")
        indexes = [
            models.Index(
                fields=["trigger"], name="outreach_journey_active", condition=Q(active=True)
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def purpose(self) -> str:
        return Purpose.TRANSACTIONAL if self.is_transactional else Purpose.MARKETING

    @property
    def channels(self) -> list[str]:
        """The channels its steps go on, in order of preference."""
        return [self.channel, *([self.next_channel] if self.next_channel else [])]


class JourneyStep(models.Model):
    """One message of a journey, `delay` after the previous step (the first
    after the trigger). Its Send (kind journey, kept open) holds one ledger
    row per (step, order or customer), due at `next_attempt_at`; a journey
    with a next channel gives it a second Send there (next_send)."""

    journey = models.ForeignKey(
        Journey, on_delete=models.CASCADE, related_name="steps", verbose_name=_("journey")
    )
    position = models.PositiveSmallIntegerField(_("step number"), default=1)
    name = models.CharField(_("name"), max_length=100)
    delay_days = models.PositiveSmallIntegerField(_("delay (days)"), default=0)
    delay_hours = models.PositiveSmallIntegerField(_("delay (hours)"), default=0)
    # Days counted as the business calendar's open days (closed on
    # holidays and the year-end closure); the default calendar if none.
    business_days = models.BooleanField(_("count business days"), default=False)
    calendar = models.ForeignKey(
        "tickets.BusinessCalendar",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("business calendar"),
    )
    template = models.ForeignKey(
        MessageTemplate, on_delete=models.PROTECT, related_name="+", verbose_name=_("template")
    )
    condition = models.CharField(
        _("condition"), max_length=30, choices=StepCondition.choices, blank=True, default=""
    )
    is_review_request = models.BooleanField(_("review request"), default=False)
    holdout_percent = models.PositiveSmallIntegerField(
        _("holdout share (%)"), default=0, validators=[MaxValueValidator(100)]
    )
    send = models.OneToOneField(
        Send,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="journey_step",
        verbose_name=_("send"),
    )
    # The step on the journey's next channel (Journey.next_channel): its
    # template, and its Send, whose rows are the people moved there when
    # the step was due (the first send's row skipped, reason next_channel).
    next_template = models.ForeignKey(
        MessageTemplate,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("template on the next channel"),
    )
    next_send = models.OneToOneField(
        Send,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="journey_next_step",
        verbose_name=_("send on the next channel"),
    )

    class Meta:
        ordering = ["journey", "position", "id"]
        verbose_name = _("journey step")
        verbose_name_plural = _("journey steps")
        constraints = [
            models.UniqueConstraint(
                fields=["journey", "position"], name="outreach_journeystep_position_unique"
            )
        ]

    def __str__(self) -> str:
        return self.name

    def send_ids(self) -> list[int]:
        """Its sends: the first channel's, and the next channel's if any."""
        return [pk for pk in (self.send_id, self.next_send_id) if pk]


class JourneyEventKind(models.TextChoices):
    CREATED = "created", _("Created")
    EDITED = "edited", _("Edited")
    ACTIVATED = "activated", _("Turned on")
    DEACTIVATED = "deactivated", _("Turned off")


class JourneyEvent(EventRecord):
    """The journey's history: who changed it or turned it on or off."""

    journey = models.ForeignKey(
        Journey, on_delete=models.CASCADE, related_name="events", verbose_name=_("journey")
    )
    kind = models.CharField(_("kind"), max_length=12, choices=JourneyEventKind.choices)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("journey event")
        verbose_name_plural = _("journey events")

    def __str__(self) -> str:
        return self.get_kind_display()
