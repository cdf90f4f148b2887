"""The delivery ledger: one Delivery row per recipient of a Send, the LINE multicast requests that
carry them, the rate buckets that pace them, and inbound LINE webhook events.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from crm.models import Customer
from outreach.models.campaigns import Send
from outreach.models.templates import DeliveryChannel


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
