"""Inquiries, their messages and timeline, SLA policies and calendars,
categories, reply templates, staff notifications and inbound mail."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Case, F, Q, When
from django.utils.translation import gettext_lazy as _

from core.choices import Channel
from core.models import EventRecord
from crm.models import Customer, Order
from outreach.models import DeliveryStatus, MessageChannel


class Category(models.Model):
    """Trouble categories (SPEC rule 3); managers may add more."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=100, unique=True)
    is_complaint = models.BooleanField(
        _("counts as a complaint"),
        default=False,
        help_text=_("Inquiries of this category count towards the claimant suggestion."),
    )
    position = models.PositiveSmallIntegerField(_("position"), default=100)

    class Meta:
        ordering = ["position", "name"]
        verbose_name = _("category")
        verbose_name_plural = _("categories")

    def __str__(self) -> str:
        return self.name


class BusinessCalendar(models.Model):
    """Opening hours for SLA policies that count business time."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    time_zone = models.CharField(_("time zone"), max_length=50, default="Asia/Tokyo")
    # {"mon": ["09:00-12:00", "13:00-18:00"], "tue": [...], ...}
    hours = models.JSONField(_("opening hours"), default=dict)
    japanese_holidays = models.BooleanField(_("closed on Japanese public holidays"), default=True)
    year_end_closure = models.BooleanField(_("closed for the year end (12/29–1/3)"), default=True)

    class Meta:
        verbose_name = _("business calendar")
        verbose_name_plural = _("business calendars")

    def __str__(self) -> str:
        return self.name


class CalendarClosure(models.Model):
    """The shop's own closed days (inclusive date range)."""

    calendar = models.ForeignKey(
        BusinessCalendar, on_delete=models.CASCADE, related_name="closures"
    )
    start_date = models.DateField(_("first closed day"))
    end_date = models.DateField(_("last closed day"))
    reason = models.CharField(_("reason"), max_length=100, blank=True)

    class Meta:
        ordering = ["start_date"]
        verbose_name = _("closure")
        verbose_name_plural = _("closures")
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__gte=models.F("start_date")),
                name="tickets_closure_end_after_start",
            )
        ]

    def __str__(self) -> str:
        return f"{self.start_date}–{self.end_date} {self.reason}".strip()


class Priority(models.TextChoices):
    LOW = "low", _("Low")
    NORMAL = "normal", _("Normal")
    HIGH = "high", _("High")
    URGENT = "urgent", _("Urgent")


class SlaClock(models.TextChoices):
    CALENDAR = "calendar", _("Calendar hours (24/7)")
    BUSINESS = "business", _("Business hours")


class SlaPolicy(models.Model):
    """First-reply target matched by channel, then priority (a blank
    channel or priority matches any)."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices, blank=True)
    priority = models.CharField(_("priority"), max_length=6, choices=Priority.choices, blank=True)
    first_reply_minutes = models.PositiveIntegerField(_("first reply within (minutes)"))
    at_risk_minutes = models.PositiveIntegerField(
        _("at risk when this many minutes are left"), default=240
    )
    clock = models.CharField(
        _("clock"), max_length=8, choices=SlaClock.choices, default=SlaClock.CALENDAR
    )
    calendar = models.ForeignKey(
        BusinessCalendar,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="policies",
        verbose_name=_("business calendar"),
    )
    is_active = models.BooleanField(_("active"), default=True)
    # Next-reply and resolution clocks (SPEC rule 13); at_risk_minutes warns for all three.
    next_reply_minutes = models.PositiveIntegerField(
        _("next reply within (minutes)"),
        default=24 * 60,
        help_text=_("After the customer writes again, the next reply is due within this time."),
    )
    resolution_minutes = models.PositiveIntegerField(
        _("resolved within (minutes)"),
        null=True,
        blank=True,
        help_text=_(
            "From receipt to resolved; time waiting on the customer or a third party does not "
            "count. Empty: no resolution target."
        ),
    )

    class Meta:
        verbose_name = _("SLA policy")
        verbose_name_plural = _("SLA policies")
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "priority"],
                condition=Q(is_active=True),
                name="tickets_sla_one_active_per_match",
            ),
            models.CheckConstraint(
                condition=Q(clock="calendar") | Q(calendar__isnull=False),
                name="tickets_sla_business_needs_calendar",
            ),
            models.CheckConstraint(
                condition=Q(first_reply_minutes__gt=0), name="tickets_sla_target_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class InquiryStatus(models.TextChoices):
    NEW = "new", _("New")
    OPEN = "open", _("Open")
    WAITING_CUSTOMER = "waiting_customer", _("Waiting on customer")
    WAITING_THIRD_PARTY = "waiting_third_party", _("Waiting on third party")
    RESOLVED = "resolved", _("Resolved")
    CLOSED = "closed", _("Closed")


OPEN_STATUSES = (
    InquiryStatus.NEW,
    InquiryStatus.OPEN,
    InquiryStatus.WAITING_CUSTOMER,
    InquiryStatus.WAITING_THIRD_PARTY,
)
OPEN_STATUS_VALUES = [status.value for status in OPEN_STATUSES]  # for index conditions


class SlaState(models.TextChoices):
    ON_TRACK = "on_track", _("On track")
    AT_RISK = "at_risk", _("At risk")
    BREACHED = "breached", _("Breached")
    MET = "met", _("Met")


class Inquiry(models.Model):
    reference = models.CharField(_("reference"), max_length=20, unique=True, editable=False)
    customer = models.ForeignKey(
        Customer,
        on_delete=models.PROTECT,
        related_name="inquiries",
        verbose_name=_("customer"),
        db_index=False,  # tickets_customer_inquiries (customer, created_at) serves it
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    order = models.ForeignKey(
        Order,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="inquiries",
        verbose_name=_("order"),
    )
    # The order number as the customer typed it (contact form): kept even
    # when it matches none of the customer's orders, and then not linked.
    order_number_given = models.CharField(
        _("order number given by the customer"), max_length=64, blank=True
    )
    subject = models.CharField(_("subject"), max_length=255)
    category = models.ForeignKey(
        Category,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="inquiries",
        verbose_name=_("category"),
    )
    priority = models.CharField(
        _("priority"), max_length=6, choices=Priority.choices, default=Priority.NORMAL
    )
    status = models.CharField(
        _("status"), max_length=20, choices=InquiryStatus.choices, default=InquiryStatus.NEW
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_inquiries",
        verbose_name=_("assignee"),
    )
    # First-reply SLA (SPEC rule 1)
    sla_policy = models.ForeignKey(
        SlaPolicy,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("SLA policy"),
    )
    first_reply_due_at = models.DateTimeField(_("first reply due"), null=True, blank=True)
    at_risk_at = models.DateTimeField(_("at risk from"), null=True, blank=True)
    first_replied_at = models.DateTimeField(_("first replied"), null=True, blank=True)
    sla_state = models.CharField(
        _("SLA"), max_length=8, choices=SlaState.choices, default=SlaState.ON_TRACK
    )
    # Response stages (SPEC rule 2)
    triaged_at = models.DateTimeField(_("triaged (状況確認)"), null=True, blank=True)
    # The triage target (TRIAGE_TARGET_MINUTES of the SLA policy's clock from
    # receipt), and when the SLA watch warned that it passed (once).
    triage_due_at = models.DateTimeField(_("triage due"), null=True, blank=True)
    triage_warned_at = models.DateTimeField(_("triage overdue warned"), null=True, blank=True)
    solution_proposed_at = models.DateTimeField(_("solution proposed"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    # Each stage's time from receipt, in whole minutes of the SLA policy's
    # clock (open business time where the policy counts business hours,
    # else wall time), written when the stage is reached: the monthly
    # report's medians and buckets are aggregate SQL over these.
    triage_minutes = models.PositiveIntegerField(
        _("minutes to triage"), null=True, blank=True, editable=False
    )
    first_reply_minutes = models.PositiveIntegerField(
        _("minutes to first reply"), null=True, blank=True, editable=False
    )
    resolution_minutes = models.PositiveIntegerField(
        _("minutes to resolution"), null=True, blank=True, editable=False
    )

    reopened_from = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="follow_ups",
        verbose_name=_("follows up on"),
    )
    last_inbound_at = models.DateTimeField(_("last message from customer"), null=True, blank=True)
    # Merge and split (tickets.services.merge): the inquiry this one was merged
    # into (closed, its messages moved there), and the one it was split out of.
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="absorbed",
        verbose_name=_("merged into"),
    )
    split_from = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="split_outs",
        verbose_name=_("split out of"),
    )
    # Next-reply and resolution clocks (SPEC rule 13, tickets.services.sla)
    next_reply_since = models.DateTimeField(_("next reply owed since"), null=True, blank=True)
    next_reply_due_at = models.DateTimeField(_("next reply due"), null=True, blank=True)
    next_reply_at_risk_at = models.DateTimeField(
        _("next reply at risk from"), null=True, blank=True
    )
    next_replied_at = models.DateTimeField(_("next replied"), null=True, blank=True)
    next_reply_state = models.CharField(
        _("next reply SLA"), max_length=8, choices=SlaState.choices, blank=True, default=""
    )
    resolution_due_at = models.DateTimeField(_("resolution due"), null=True, blank=True)
    resolution_at_risk_at = models.DateTimeField(
        _("resolution at risk from"), null=True, blank=True
    )
    resolution_paused_at = models.DateTimeField(
        _("resolution clock paused since"), null=True, blank=True
    )
    resolution_paused = models.DurationField(
        _("resolution clock paused for"), default=timedelta(0), editable=False
    )
    resolution_state = models.CharField(
        _("resolution SLA"), max_length=8, choices=SlaState.choices, blank=True, default=""
    )
    created_at = models.DateTimeField(_("received"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    # The inbox row: the latest message in one line (tickets.services.reading).
    last_message_excerpt = models.CharField(_("latest message"), max_length=120, blank=True)
    last_message_at = models.DateTimeField(_("latest message at"), null=True, blank=True)
    # Search (issue 18): the subject and the customer's messages, folded
    # (tickets.search.search_fold), so that a word's indexes are the inquiry's own.
    search_text = models.TextField(_("search text"), blank=True, default="", editable=False)

    class Meta:
        verbose_name = _("inquiry")
        verbose_name_plural = _("inquiries")
        indexes = [
            # The SLA watch: unreplied open inquiries by their next threshold.
            models.Index(
                fields=["at_risk_at"],
                name="tickets_sla_watch_at_risk",
                condition=Q(first_replied_at__isnull=True, sla_state="on_track"),
            ),
            # ... and the inbox's "at risk" / "on track" views, in their
            # order (deadline, then id): 50 rows read, not all of them sorted.
            models.Index(
                fields=["first_reply_due_at", "id"],
                name="tickets_sla_watch_due",
                condition=Q(first_replied_at__isnull=True, sla_state__in=["on_track", "at_risk"]),
            ),
            # The inbox: open inquiries, newest first, by assignee. The
            # channel is carried along so that the inbox's count under its
            # channel filter reads this index alone, not 50,000 rows.
            models.Index(
                fields=["-created_at"],
                include=["channel"],
                name="tickets_inbox_open_channel",
                condition=Q(status__in=OPEN_STATUS_VALUES),
            ),
            # The inbox's default order: unanswered by deadline, then by the
            # customer's latest message (matches tickets.admin's ordering,
            # ASC NULLS LAST there: PostgreSQL's ASC, so this index serves
            # it; written without NULLS LAST, which SQLite's CREATE INDEX
            # refuses).
            models.Index(
                Case(When(first_replied_at__isnull=True, then=F("first_reply_due_at"))).asc(),
                F("last_inbound_at").desc(),
                F("id").desc(),
                name="tickets_inbox_deadline",
                condition=Q(status__in=OPEN_STATUS_VALUES),
            ),
            # The same order within one agent's open inquiries ("mine"); the
            # assignee's foreign-key index serves every other assignee lookup.
            models.Index(
                F("assignee"),
                Case(When(first_replied_at__isnull=True, then=F("first_reply_due_at"))).asc(),
                F("last_inbound_at").desc(),
                F("id").desc(),
                name="tickets_inbox_assignee_due",
                condition=Q(status__in=OPEN_STATUS_VALUES),
            ),
            # The triage watch: open inquiries not triaged nor warned yet, by
            # their triage deadline (the queue empties itself as it warns).
            models.Index(
                fields=["triage_due_at"],
                name="tickets_triage_watch",
                condition=Q(
                    triaged_at__isnull=True,
                    triage_warned_at__isnull=True,
                    status__in=OPEN_STATUS_VALUES,
                ),
            ),
            # The inbox's order over every status (a search with 「すべて」): the
            # first page of a word found in many inquiries walks it.
            models.Index(
                Case(When(first_replied_at__isnull=True, then=F("first_reply_due_at"))).asc(),
                F("last_inbound_at").desc(),
                F("id").desc(),
                name="tickets_inbox_deadline_all",
            ),
            models.Index(fields=["sla_state", "status", "-id"], name="tickets_api_state"),
            models.Index(fields=["customer", "created_at"], name="tickets_customer_inquiries"),
            # The monthly report (reports.selectors.monthly): a month's
            # inquiries by received time; the 12-month trend (month,
            # category, channel) and the countermeasures' counts and
            # first-reply medians read this index alone.
            models.Index(
                fields=["created_at"],
                include=["category", "channel", "first_reply_minutes"],
                name="tickets_inquiry_received",
            ),
            # The SLA watch and the inbox's filters for the next-reply and
            # resolution clocks, as for the first reply.
            models.Index(
                fields=["next_reply_at_risk_at"],
                name="tickets_next_reply_at_risk",
                condition=Q(next_replied_at__isnull=True, next_reply_state="on_track"),
            ),
            models.Index(
                fields=["next_reply_due_at", "id"],
                name="tickets_next_reply_due",
                condition=Q(
                    next_replied_at__isnull=True, next_reply_state__in=["on_track", "at_risk"]
                ),
            ),
            models.Index(
                fields=["resolution_at_risk_at"],
                name="tickets_resolution_at_risk",
                condition=Q(resolution_paused_at__isnull=True, resolution_state="on_track"),
            ),
            models.Index(
                fields=["resolution_due_at", "id"],
                name="tickets_resolution_due",
                condition=Q(
                    resolution_paused_at__isnull=True,
                    resolution_state__in=["on_track", "at_risk"],
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.subject}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def triage_late(self, now) -> bool:
        """Open, not triaged, and past its triage target at `now`
        (tickets.services.triage.triage_late_q selects by the same rule)."""
        return (
            self.triaged_at is None
            and self.is_open
            and self.triage_due_at is not None
            and now >= self.triage_due_at
        )

    @property
    def order_number_unmatched(self) -> bool:
        """The customer gave an order number that is none of their orders."""
        return bool(self.order_number_given) and self.order_id is None


class ReferenceCounter(models.Model):
    """The last number used per month for readable references (Q-2611-00042)."""

    month = models.CharField(max_length=4, primary_key=True)  # YYMM
    last = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.month}: {self.last}"


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


class ReplyTemplate(models.Model):
    """A canned reply an agent picks in the reply box; its variables fill in
    from the inquiry (customer name, order number, expected date...)."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    category = models.ForeignKey(
        Category,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="reply_templates",
        verbose_name=_("category"),
    )
    body = models.TextField(_("text"))
    is_active = models.BooleanField(_("active"), default=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    # The short text for LINE replies (no mail signature, no 「本メール」).
    line_body = models.TextField(_("LINE text"), blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("reply template")
        verbose_name_plural = _("reply templates")

    def __str__(self) -> str:
        return self.name


class NotificationKind(models.TextChoices):
    AT_RISK = "at_risk", _("First reply at risk")
    BREACHED = "breached", _("First reply overdue")
    ASSIGNED = "assigned", _("Assigned to you")
    APPROVAL = "approval", _("Reply awaiting your approval")
    REPLY_FAILED = "reply_failed", _("Your reply did not reach the customer")
    TRIAGE_LATE = "triage_late", _("Not triaged within the target")
    REPLY_IN_DOUBT = (
        "reply_doubt",
        _(
            "It is unknown whether your reply reached the customer: check with them before "
            "sending it again"
        ),
    )
    # Of an incident (crisis app), not of an inquiry.
    STEP_OVERDUE = "step_overdue", _("Incident checklist step overdue")
    NEXT_AT_RISK = "next_at_risk", _("Next reply at risk")
    NEXT_BREACHED = "next_breach", _("Next reply overdue")
    RESOLUTION_AT_RISK = "res_at_risk", _("Resolution at risk")
    RESOLUTION_BREACHED = "res_breach", _("Resolution overdue")


class StaffNotification(models.Model):
    """A notice to one staff member about an inquiry, or about an incident
    (an overdue checklist step: `incident`, with the step's id as `key`)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="madoguchi_notifications",
        verbose_name=_("for"),
    )
    inquiry = models.ForeignKey(
        Inquiry,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notifications",
        verbose_name=_("inquiry"),
    )
    incident = models.ForeignKey(
        "crisis.Incident",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("incident"),
    )
    kind = models.CharField(_("kind"), max_length=12, choices=NotificationKind.choices)
    # Distinguishes repeats that are legitimate (a second assignment).
    key = models.CharField(max_length=40, blank=True, default="")
    created_at = models.DateTimeField(_("at"), auto_now_add=True)
    emailed_at = models.DateTimeField(_("emailed"), null=True, blank=True)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)
    # Mailing it, row by row (tickets.services.notices): while a worker
    # holds it, the end of its lease; after a temporary failure, the retry.
    email_next_attempt_at = models.DateTimeField(_("next mail attempt"), null=True, blank=True)
    email_attempts = models.PositiveSmallIntegerField(_("mail attempts"), default=0)
    # The mail server's answer to the last attempt that failed; given up
    # (a refused address, or too many temporary failures) when set.
    email_error = models.TextField(_("mail error"), blank=True)
    email_failed_at = models.DateTimeField(_("mail given up"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "inquiry", "kind", "key"], name="tickets_notify_once"
            ),
            models.UniqueConstraint(
                fields=["user", "incident", "kind", "key"],
                condition=Q(incident__isnull=False),
                name="tickets_notify_incident_once",
            ),
            models.CheckConstraint(
                condition=Q(inquiry__isnull=False) | Q(incident__isnull=False),
                name="tickets_notify_about_something",
            ),
        ]
        indexes = [
            models.Index(
                fields=["created_at"],
                name="tickets_notify_unsent",
                condition=Q(emailed_at=None, email_failed_at=None),
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.inquiry_id or self.incident_id}"


class InboundStatus(models.TextChoices):
    PROCESSED = "processed", _("Processed")
    IGNORED = "ignored", _("Ignored")
    FAILED = "failed", _("Failed")


class InboundMail(models.Model):
    """Every mail received, once (by Message-ID or content hash): what
    became of it, and the raw bytes of those that failed so nothing is lost."""

    source = models.CharField(_("source"), max_length=100)
    dedupe_key = models.CharField(max_length=255, unique=True)
    message_id = models.CharField(_("Message-ID"), max_length=255, blank=True)
    from_address = models.CharField(_("sender"), max_length=255, blank=True)
    subject = models.CharField(_("subject"), max_length=255, blank=True)
    status = models.CharField(_("status"), max_length=9, choices=InboundStatus.choices)
    reason = models.TextField(_("reason"), blank=True)
    raw = models.BinaryField(_("raw message"), blank=True)
    inquiry_message = models.ForeignKey(
        InquiryMessage,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("message"),
    )
    received_at = models.DateTimeField(_("received"), auto_now_add=True)

    class Meta:
        verbose_name = _("inbound mail")
        verbose_name_plural = _("inbound mail")
        indexes = [models.Index(fields=["status", "received_at"], name="tickets_inbound_status")]

    def __str__(self) -> str:
        return f"{self.get_status_display()}: {self.subject}"


class MailboxState(models.Model):
    """Where the IMAP poller is in a mailbox: survives restarts."""

    name = models.CharField(max_length=255, primary_key=True)  # user@host/mailbox
    uid_validity = models.BigIntegerField(null=True)
    last_uid = models.BigIntegerField(default=0)
    polled_at = models.DateTimeField(null=True)
    # The message being read, and how many polls began reading it: a poll
    # that died on it (killed, out of memory) leaves these behind.
    attempt_uid = models.BigIntegerField(null=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_uid}"


class ReplyApprovalRule(models.Model):
    """Replies written by members of this group wait for a manager's
    approval before they go out."""

    group = models.OneToOneField(
        "auth.Group",
        on_delete=models.CASCADE,
        related_name="reply_approval_rule",
        verbose_name=_("group"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("set by"),
    )
    created_at = models.DateTimeField(_("since"), auto_now_add=True)

    class Meta:
        verbose_name = _("reply approval rule")
        verbose_name_plural = _("reply approval rules")

    def __str__(self) -> str:
        return str(self.group)


class AutoAcknowledgement(models.Model):
    """An automatic first answer per channel ("we received your inquiry").
    It is not a person's reply: it never stops the first-reply clock."""

    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices, unique=True)
    body = models.TextField(
        _("text"),
        help_text=_("Variables: {{ customer.name }}, {{ inquiry.reference }}, {{ shop.name }}."),
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("automatic acknowledgement")
        verbose_name_plural = _("automatic acknowledgements")

    def __str__(self) -> str:
        return self.get_channel_display()


class InquiryReadState(models.Model):
    """Up to which customer message an agent has opened an inquiry: the
    inbox marks it unread for them while Inquiry.last_inbound_at is later
    than `seen_inbound_at` (tickets.selectors.inbox, one join on the unique
    (inquiry, user) index)."""

    inquiry = models.ForeignKey(
        Inquiry,
        on_delete=models.CASCADE,
        related_name="read_states",
        db_index=False,  # the unique (inquiry, user) index serves it
        verbose_name=_("inquiry"),
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,  # tickets_read_state_user serves it
        verbose_name=_("staff member"),
    )
    # The inquiry's last_inbound_at when the agent last opened it.
    seen_inbound_at = models.DateTimeField(_("customer message seen"), null=True, blank=True)
    opened_at = models.DateTimeField(_("last opened"))

    class Meta:
        verbose_name = _("read state")
        verbose_name_plural = _("read states")
        constraints = [
            models.UniqueConstraint(fields=["inquiry", "user"], name="tickets_read_state_once")
        ]
        indexes = [
            # The unread count of a whole list (tickets.selectors.inbox_counts):
            # one agent's read states, hashed from this index alone, however
            # many the other agents have.
            models.Index(
                fields=["user", "inquiry"],
                include=["seen_inbound_at"],
                name="tickets_read_state_user",
            )
        ]

    def __str__(self) -> str:
        return f"{self.inquiry_id} / {self.user_id}"


class AssignmentMode(models.TextChoices):
    MANUAL = "manual", _("Manual")
    ROUND_ROBIN = "round_robin", _("Automatic (round robin)")


class AssignmentRule(models.Model):
    """How new inquiries of a category, or else of a channel, or else any
    (neither set) get their assignee: by hand, or in turn among the present
    agents of the group who are below their limit of open inquiries
    (tickets.services.assignment). The row is also the rule's cursor: it is
    locked while an agent is picked, so that two inquiries created at once
    take turns."""

    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices, blank=True)
    category = models.ForeignKey(
        Category,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="assignment_rules",
        verbose_name=_("category"),
    )
    mode = models.CharField(
        _("assignment"),
        max_length=11,
        choices=AssignmentMode.choices,
        default=AssignmentMode.ROUND_ROBIN,
    )
    group = models.ForeignKey(
        "auth.Group",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("agents of the group"),
        help_text=_("Blank: every agent and manager."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    last_assigned_at = models.DateTimeField(_("last assigned"), null=True, blank=True)

    class Meta:
        verbose_name = _("assignment rule")
        verbose_name_plural = _("assignment rules")
        constraints = [
            models.CheckConstraint(
                condition=Q(channel="") | Q(category__isnull=True),
                name="tickets_assignment_channel_or_category",
            ),
            models.UniqueConstraint(
                fields=["category"],
                condition=Q(is_active=True, category__isnull=False),
                name="tickets_assignment_one_per_category",
            ),
            models.UniqueConstraint(
                fields=["channel"],
                condition=Q(is_active=True, category__isnull=True),
                name="tickets_assignment_one_per_channel",
            ),
        ]

    def __str__(self) -> str:
        if self.category_id:
            return str(self.category)
        return self.get_channel_display() if self.channel else str(_("All inquiries"))


class AgentAvailability(models.Model):
    """Whether an agent takes new inquiries now, and how many open ones they
    may hold: automatic assignment skips the absent and the full."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="availability",
        verbose_name=_("agent"),
    )
    is_present = models.BooleanField(_("present"), default=False)
    open_limit = models.PositiveSmallIntegerField(
        _("limit of open inquiries"),
        default=20,
        help_text=_("Automatic assignment gives no more open inquiries than this."),
    )
    # Fairness: the least recently assigned present agent goes first.
    last_assigned_at = models.DateTimeField(_("last assigned"), null=True, blank=True)
    changed_at = models.DateTimeField(_("changed"), auto_now=True)

    class Meta:
        verbose_name = _("agent availability")
        verbose_name_plural = _("agent availability")
        constraints = [
            models.CheckConstraint(
                condition=Q(open_limit__gt=0), name="tickets_availability_limit_positive"
            )
        ]

    def __str__(self) -> str:
        return str(self.user)


class CsatSetting(models.Model):
    """Whether resolved inquiries of a channel ask the customer one
    satisfaction question. Never for Amazon (buyer messaging rules): such a
    row cannot be switched on."""

    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices, unique=True)
    is_active = models.BooleanField(_("ask for satisfaction"), default=True)

    class Meta:
        verbose_name = _("satisfaction survey setting")
        verbose_name_plural = _("satisfaction survey settings")
        constraints = [
            models.CheckConstraint(
                condition=~Q(channel="amazon", is_active=True),
                name="tickets_csat_never_amazon",
            )
        ]

    def __str__(self) -> str:
        return self.get_channel_display()

    def clean(self) -> None:
        if self.channel == Channel.AMAZON and self.is_active:
            raise ValidationError(
                {"is_active": _("Amazon's rules for buyer messages allow no satisfaction survey.")}
            )


class CsatSurvey(models.Model):
    """The satisfaction question of one inquiry (one at most): when and how
    it was asked, the answer (1–5, once) and a comment (once)."""

    inquiry = models.OneToOneField(
        Inquiry,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="csat",
        verbose_name=_("inquiry"),
    )
    channel = models.CharField(_("asked by"), max_length=5, choices=MessageChannel.choices)
    send = models.ForeignKey(
        "outreach.Send",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("send"),
    )
    sent_at = models.DateTimeField(_("asked"), auto_now_add=True)
    score = models.PositiveSmallIntegerField(_("satisfaction"), null=True, blank=True)
    answered_at = models.DateTimeField(_("answered"), null=True, blank=True)
    comment = models.TextField(_("comment"), blank=True)
    commented_at = models.DateTimeField(_("commented"), null=True, blank=True)

    class Meta:
        verbose_name = _("satisfaction survey")
        verbose_name_plural = _("satisfaction surveys")
        constraints = [
            models.CheckConstraint(
                condition=Q(score__isnull=True) | Q(score__gte=1, score__lte=5),
                name="tickets_csat_score_range",
            ),
            models.CheckConstraint(
                condition=Q(score__isnull=True, answered_at__isnull=True)
                | Q(score__isnull=False, answered_at__isnull=False),
                name="tickets_csat_answer_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.inquiry_id}: {self.score or '-'}"
