"""The inquiry itself, its statuses, its readable reference counter and
each agent's read state of it."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Case, F, Q, When
from django.utils.translation import gettext_lazy as _

from core.choices import Channel
from crm.models import Customer, Order
from tickets.models.configuration import Category
from tickets.models.sla import Priority, SlaPolicy, SlaState


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
