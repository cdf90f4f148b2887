"""Templates, segments, campaigns and the delivery ledger.

Every outbound message of the product is a Delivery row of a Send: a
campaign, a test send, an inquiry reply, an emergency broadcast or a
journey step. The ledger, not the queue, decides what has been sent.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.models import EventRecord
from crm.models import Customer, LifecycleSegment


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


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Skipped")
    UNKNOWN = "unknown", _("Unknown")


class SkipReason(models.TextChoices):
    NO_CONSENT = "no_consent", _("No consent on this channel")
    UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
    CLAIMANT = "claimant", _("Claimant")
    AMAZON_ONLY = "amazon_only", _("Known only through Amazon")
    NO_ADDRESS = "no_address", _("No address on this channel")
    CANCELLED = "cancelled", _("Send cancelled")
    MERGED = "merged", _("Customer merged into another")
    GONE = "gone", _("Customer deleted")
    HOLDOUT = "holdout", _("Not sent, to measure the results (comparison group)")
    SUPPRESSED = "suppressed", _("Undeliverable address (bounce)")
    ORDER_CANCELLED = "order_cancel", _("The order was cancelled")
    CONDITION = "condition", _("The step's condition no longer held")
    REVIEW_ONCE = "review_once", _("A review request already went for this order")
    JOURNEY_OFF = "journey_off", _("The journey was turned off")
    ADDRESS_PARTIAL = "addr_partial", _("Incomplete postal address or name")
    # A journey step's row on a channel the person cannot be reached on,
    # moved to the journey's next channel (not withdrawn: sent there).
    NEXT_CHANNEL = "next_channel", _("Sent on the journey's next channel")


class Delivery(models.Model):
    """One recipient of one send on one channel: the delivery ledger."""

    send = models.ForeignKey(
        Send,
        on_delete=models.CASCADE,
        related_name="deliveries",
        verbose_name=_("send"),
        # Served by outreach_delivery_once_per_recipient (send first).
        db_index=False,
        # No database constraint: PostgreSQL checks a foreign key row by row
        # (a trigger and a key-share lock of the send for each delivery),
        # which was a third of a 100,000-row launch, all for one send row.
        # Rows are only written by deliveries_snapshot, with the id of a send
        # it was given (created in the same transaction for a campaign), and
        # a send is deleted through the ORM, which deletes its rows first.
        db_constraint=False,
    )
    # Its index also finds a customer's queued rows on an opt-out (a
    # customer has a few rows per campaign, not thousands).
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="deliveries",
        verbose_name=_("customer"),
        # No database constraint either: Django's constraint is checked at
        # commit, row by row (a trigger and a key-share lock that rewrites
        # each customer's row), half a second of a 100,000-row launch's
        # commit. The snapshot reads the customers in the statement that
        # writes the rows, and deleting a customer deletes their rows
        # (on_delete, through the ORM). A row whose customer was deleted
        # in between is skipped as "gone" by the send-time check.
        db_constraint=False,
    )
    channel = models.CharField(_("channel"), max_length=5, choices=DeliveryChannel.choices)
    # Distinguishes several deliveries of one send to one customer where a
    # send allows it (e.g. one review request per order); "" otherwise.
    context_key = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(
        _("status"), max_length=7, choices=DeliveryStatus.choices, default=DeliveryStatus.QUEUED
    )
    skip_reason = models.CharField(
        _("skip reason"), max_length=12, choices=SkipReason.choices, blank=True
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    lease_expires_at = models.DateTimeField(_("lease expires"), null=True, blank=True)
    # LINE: stored before the request and reused on every retry of it;
    # shared by the recipients of one multicast request.
    retry_key = models.UUIDField(_("retry key"), null=True, blank=True)
    # An attempt ended without knowing whether the provider took the message
    # (a lost connection, a timeout, a 5xx): kept through later attempts, so
    # that giving up, or a cancel, records the row unknown, not failed or
    # skipped.
    in_doubt = models.BooleanField(_("may have gone out"), default=False, db_default=False)
    provider_message_id = models.CharField(_("provider message id"), max_length=255, blank=True)
    # The email address, the LINE userId, or a postal DM's label as exported
    # (outreach.dm: postal code, address and name, one per line).
    address = models.CharField(_("recipient address"), max_length=600, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    # Clicks through the message's tracked links (outreach.clicks).
    first_clicked_at = models.DateTimeField(_("first clicked at"), null=True, blank=True)
    click_count = models.PositiveIntegerField(_("clicks"), default=0, db_default=0)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        constraints = [
            models.UniqueConstraint(
                fields=["send", "customer", "channel", "context_key"],
                name="outreach_delivery_once_per_recipient",
            ),
            models.CheckConstraint(
                condition=Q(status="skipped", skip_reason__gt="")
                | (~Q(status="skipped") & Q(skip_reason="")),
                name="outreach_delivery_skip_has_reason",
            ),
            models.CheckConstraint(
                condition=~Q(status="sending") | Q(lease_expires_at__isnull=False),
                name="outreach_delivery_sending_has_lease",
            ),
        ]
        # Few indexes: a row is written three times (snapshot, claim, outcome;
        # a multicast's rows twice, their claim being a MulticastRequest),
        # none of them a HOT update (status is in the queue's condition), so
        # every index costs an entry per write. A send's rows are
        # found through the unique constraint (send first), a customer's
        # through the customer column's own index.
        indexes = [
            # The hot queue: what a worker may claim next.
            models.Index(
                fields=["send", "next_attempt_at", "id"],
                name="outreach_delivery_queue",
                condition=Q(status__in=["queued", "sending"]),
            ),
            # LINE pushes in flight or in doubt (a retry key, not settled):
            # the claim's probe for one to re-send reads these only. (An
            # open multicast is its MulticastRequest.)
            models.Index(
                fields=["send", "next_attempt_at", "id"],
                name="outreach_delivery_in_doubt",
                condition=Q(status__in=["queued", "sending"], retry_key__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.send} → {self.customer_id} ({self.get_status_display()})"


class MulticastRequest(models.Model):
    """One LINE multicast request of a send: its retry key and recipients,
    stored before the request is made, held by one worker under a lease,
    settled once its rows have their outcome.

    Claiming a multicast writes this one row, not the 500 Delivery rows
    (each would be a new row version with an entry in every index of the
    ledger: half a batch's database time). The rows stay queued while the
    request is open; they are written once, with the outcome (and then
    carry the request's key and attempts). An open request that is due —
    a retry, or its worker's lease expired — is in doubt: it is sent again
    with the same key and recipients (see outreach.ledger)."""

    send = models.ForeignKey(
        Send,
        on_delete=models.CASCADE,
        related_name="multicast_requests",
        verbose_name=_("send"),
        db_index=False,  # served by outreach_multicast_reach (send first)
    )
    retry_key = models.UUIDField(_("retry key"), unique=True)
    # The ids of its Delivery rows (an unsubscribe or a cancel leaves the
    # queued rows of an open request alone: they may already have gone
    # out), and the highest of them: a send's fresh rows are those past
    # the highest id of its requests.
    delivery_ids = models.JSONField(_("deliveries"))
    last_delivery_id = models.BigIntegerField()
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=1)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    lease_expires_at = models.DateTimeField(_("lease expires"), null=True, blank=True)
    settled_at = models.DateTimeField(_("settled at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("LINE multicast request")
        verbose_name_plural = _("LINE multicast requests")
        indexes = [
            # The high-water mark of a send's claims (its newest request).
            models.Index(fields=["send", "last_delivery_id"], name="outreach_multicast_reach"),
            # The open requests of a send, for the in-doubt probe.
            models.Index(
                fields=["send", "next_attempt_at", "id"],
                name="outreach_multicast_open",
                condition=Q(settled_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.send} {self.retry_key}"


class RateBucket(models.Model):
    """A token bucket per channel, shared by every worker through the
    database (SPEC rule 10: provider limits)."""

    name = models.CharField(max_length=30, primary_key=True)
    tokens = models.FloatField()
    updated_at = models.DateTimeField()
    # The provider asked every sender to wait (a LINE 429 with Retry-After):
    # no worker sends on this bucket before then.
    paused_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name


class LineWebhookEvent(models.Model):
    """A LINE webhook event as received, once (by webhookEventId). Message
    events wait here for the inquiry work to consume them."""

    webhook_event_id = models.CharField(max_length=64, unique=True)
    event_type = models.CharField(_("type"), max_length=30)
    user_id = models.CharField(_("LINE user id"), max_length=64, blank=True)
    customer = models.ForeignKey(
        Customer,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="line_events",
        verbose_name=_("customer"),
    )
    reply_token = models.CharField(max_length=255, blank=True)
    payload = models.JSONField(_("payload"))
    occurred_at = models.DateTimeField(_("occurred at"))
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("LINE webhook event")
        verbose_name_plural = _("LINE webhook events")
        indexes = [
            models.Index(
                fields=["received_at"],
                name="outreach_line_unprocessed",
                condition=Q(processed_at__isnull=True, event_type="message"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.user_id}"


def new_retry_key() -> uuid.UUID:
    return uuid.uuid4()


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
