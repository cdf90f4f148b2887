"""Sales suspensions (販売停止), incidents (障害・トラブル), their playbooks
(対応マニュアル) and checklists, and what was sent because of them.

SPEC rules 4, 5 and 14; the seeds 000 (mall outages) and 001 (trouble
response) are the source. Every message goes out through the outreach
ledger: a suspension or an incident only links the Send it made, once per
(what, channel), which the unique constraints keep.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.choices import Channel
from core.models import EventRecord
from outreach.models import MessageChannel, MessageTemplate, Send
from tickets.models import Inquiry

# --- Sales suspensions -----------------------------------------------------------------


class SuspensionReason(models.TextChoices):
    STOCK_OUT = "stock_out", _("Out of stock")
    DELIVERY_DELAY = "delivery_delay", _("Delivery delay")
    DEFECT = "defect", _("Defect")
    OTHER = "other", _("Other")


# The reasons the 48-hour rule (販売停止の判断基準) applies to.
SUSPENSION_RULE_REASONS = (SuspensionReason.STOCK_OUT, SuspensionReason.DELIVERY_DELAY)


class Suspension(models.Model):
    """A product that cannot ship on time: a stock-out, a delay, a defect.
    With `sales_stopped` it is a sales stop on `channels`; the 48-hour rule
    (crisis.services.suspensions) decides when it must be one."""

    sku = models.CharField(_("SKU"), max_length=64)
    product_name = models.CharField(_("product name"), max_length=255)
    # Channel codes (core.choices.Channel) the product is stopped on.
    channels = models.JSONField(_("channels"), default=list, blank=True)
    reason = models.CharField(_("reason"), max_length=14, choices=SuspensionReason.choices)
    sales_stopped = models.BooleanField(_("sales were stopped"), default=True)
    expected_resume_at = models.DateTimeField(_("expected to resume"))
    note = models.TextField(_("note"), blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided at"))
    lifted_at = models.DateTimeField(_("lifted at"), null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("lifted by"),
    )
    inquiries: models.ManyToManyField[Inquiry, SuspensionInquiry] = models.ManyToManyField(
        Inquiry,
        through="SuspensionInquiry",
        related_name="suspensions",
        blank=True,
        verbose_name=_("inquiries"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-decided_at", "-id"]
        verbose_name = _("sales suspension")
        verbose_name_plural = _("sales suspensions")
        indexes = [
            models.Index(fields=["sku"], name="crisis_suspension_sku"),
            models.Index(
                fields=["decided_at"],
                name="crisis_suspension_active",
                condition=Q(lifted_at__isnull=True),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(lifted_at__isnull=True) | Q(lifted_by__isnull=False),
                name="crisis_suspension_lifted_by_someone",
            ),
            # One suspension of a SKU at a time: a double submit never
            # records a second one (nor tells the customers twice).
            models.UniqueConstraint(
                fields=["sku"],
                condition=Q(lifted_at__isnull=True),
                name="crisis_suspension_one_active_per_sku",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.product_name}"

    @property
    def is_active(self) -> bool:
        return self.lifted_at is None


class SuspensionInquiry(models.Model):
    suspension = models.ForeignKey(Suspension, on_delete=models.CASCADE, related_name="+")
    inquiry = models.ForeignKey(Inquiry, on_delete=models.CASCADE, related_name="+")
    linked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    linked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["suspension", "inquiry"], name="crisis_suspension_inquiry_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.suspension_id} ↔ {self.inquiry_id}"


class SuspensionNoticeKind(models.TextChoices):
    SUSPENDED = "suspended", _("Delay notice")
    RESUMED = "resumed", _("Back in stock / shipping notice")


class SuspensionNotice(models.Model):
    """The send that told the customers with open orders of the SKU: one
    per (suspension, kind, channel), so a second click never sends twice."""

    suspension = models.ForeignKey(
        Suspension, on_delete=models.CASCADE, related_name="notices", verbose_name=_("suspension")
    )
    kind = models.CharField(_("kind"), max_length=9, choices=SuspensionNoticeKind.choices)
    channel = models.CharField(_("channel"), max_length=5, choices=MessageChannel.choices)
    send = models.OneToOneField(Send, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(_("sent at"), auto_now_add=True)

    class Meta:
        verbose_name = _("suspension notice")
        verbose_name_plural = _("suspension notices")
        constraints = [
            models.UniqueConstraint(
                fields=["suspension", "kind", "channel"], name="crisis_suspension_notice_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.get_channel_display()})"


class SuspensionEventKind(models.TextChoices):
    RECORDED = "recorded", _("Recorded")
    NOTICE_SENT = "notice_sent", _("Customers told")
    INQUIRY_LINKED = "inquiry_linked", _("Inquiry linked")
    LIFTED = "lifted", _("Lifted")


class SuspensionEvent(EventRecord):
    suspension = models.ForeignKey(
        Suspension, on_delete=models.CASCADE, related_name="events", verbose_name=_("suspension")
    )
    kind = models.CharField(_("kind"), max_length=14, choices=SuspensionEventKind.choices)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("suspension event")
        verbose_name_plural = _("suspension events")


# --- Incidents ---------------------------------------------------------------------------


class IncidentKind(models.TextChoices):
    MALL_OUTAGE = "mall_outage", _("Mall outage")
    OWN_SITE_OUTAGE = "own_site_outage", _("Own-site outage")
    SYSTEM_FAILURE = "system_failure", _("System failure")
    CARRIER_DELAY = "carrier_delay", _("Carrier delay")
    DATA_BREACH = "data_breach", _("Personal-data breach")


class IncidentStatus(models.TextChoices):
    OPEN = "open", _("Ongoing")
    RECOVERED = "recovered", _("Recovered")
    CLOSED = "closed", _("Closed")


class Incident(models.Model):
    """A mall or system outage, a carrier delay, a data breach: what the
    whole team must know while it lasts, and what the shop learns after."""

    kind = models.CharField(_("kind"), max_length=15, choices=IncidentKind.choices)
    title = models.CharField(_("title"), max_length=200)
    # The affected sales channel, if one is (a mall outage: that mall).
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices, blank=True)
    # Or the system or carrier affected, in words (決済代行, ヤマト運輸).
    system = models.CharField(_("system or carrier"), max_length=100, blank=True)
    status = models.CharField(
        _("status"), max_length=9, choices=IncidentStatus.choices, default=IncidentStatus.OPEN
    )
    started_at = models.DateTimeField(_("started at"))
    expected_recovery_at = models.DateTimeField(_("expected recovery"), null=True, blank=True)
    recovered_at = models.DateTimeField(_("recovered at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    # A data breach by attack: APPI's final report is due in 60 days, not 30.
    is_malicious = models.BooleanField(_("malicious (attack or theft)"), default=False)
    root_cause = models.TextField(_("root cause"), blank=True)
    countermeasure = models.TextField(_("countermeasure"), blank=True)
    # Owner, due date and status of the countermeasure: a
    # reports.Countermeasure linked to the incident (the improvement cycle).
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("opened by"),
    )
    inquiries: models.ManyToManyField[Inquiry, IncidentInquiry] = models.ManyToManyField(
        Inquiry,
        through="IncidentInquiry",
        related_name="incidents",
        blank=True,
        verbose_name=_("inquiries"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = _("incident")
        verbose_name_plural = _("incidents")
        indexes = [
            # The banner on every admin page reads the open ones.
            models.Index(
                fields=["started_at"], name="crisis_incident_open", condition=Q(status="open")
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="open") | Q(recovered_at__isnull=False),
                name="crisis_incident_recovered_has_time",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        return self.status == IncidentStatus.OPEN


class IncidentInquiry(models.Model):
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="+")
    inquiry = models.ForeignKey(Inquiry, on_delete=models.CASCADE, related_name="+")
    linked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    linked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "inquiry"], name="crisis_incident_inquiry_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.incident_id} ↔ {self.inquiry_id}"


class IncidentEventKind(models.TextChoices):
    OPENED = "opened", _("Opened")
    UPDATE = "update", _("Update")
    EDITED = "edited", _("Edited")
    INQUIRIES_LINKED = "inquiries_linked", _("Inquiries linked")
    STEP_DONE = "step_done", _("Checklist step done")
    STEP_UNDONE = "step_undone", _("Checklist step reopened")
    BROADCAST = "broadcast", _("Emergency broadcast")
    NOTICE = "notice", _("Notice to affected customers")
    RECOVERED = "recovered", _("Recovered")
    CLOSED = "closed", _("Closed")


class IncidentEvent(EventRecord):
    """The incident's timeline: updates (who knew what, when) and every
    state change."""

    incident = models.ForeignKey(
        Incident, on_delete=models.CASCADE, related_name="events", verbose_name=_("incident")
    )
    kind = models.CharField(_("kind"), max_length=16, choices=IncidentEventKind.choices)
    text = models.TextField(_("what is known"), blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("incident event")
        verbose_name_plural = _("incident events")
        indexes = [models.Index(fields=["incident", "created_at"], name="crisis_incident_timeline")]


# --- Playbooks and checklists ------------------------------------------------------------


class StepRole(models.TextChoices):
    MANAGER = "manager", _("Manager")
    AGENT = "agent", _("Support agent")
    MARKETER = "marketer", _("Marketer")


class Playbook(models.Model):
    """対応マニュアル: what to do for one kind of incident (seed 000: the
    signs, the internal contact flow, the customer templates, the switch to
    another channel), as ordered steps."""

    kind = models.CharField(_("kind"), max_length=15, choices=IncidentKind.choices, unique=True)
    name = models.CharField(_("name"), max_length=100)
    signs = models.TextField(_("signs to look for"), blank=True)
    contact_flow = models.TextField(_("internal contact flow"), blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["kind"]
        verbose_name = _("playbook")
        verbose_name_plural = _("playbooks")

    def __str__(self) -> str:
        return self.name


class PlaybookStep(models.Model):
    playbook = models.ForeignKey(
        Playbook, on_delete=models.CASCADE, related_name="steps", verbose_name=_("playbook")
    )
    position = models.PositiveSmallIntegerField(_("step no."), default=1)
    title = models.CharField(_("step"), max_length=200)
    description = models.TextField(_("how"), blank=True)
    role = models.CharField(_("who"), max_length=8, choices=StepRole.choices)
    # Due this long after the incident started (the triage target is 30
    # minutes); the malicious figure replaces it for a malicious breach.
    target_minutes = models.PositiveIntegerField(_("due within (minutes)"), null=True, blank=True)
    malicious_target_minutes = models.PositiveIntegerField(
        _("due within if malicious (minutes)"), null=True, blank=True
    )
    reply_template = models.ForeignKey(
        "tickets.ReplyTemplate",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("reply template"),
    )
    message_template = models.ForeignKey(
        MessageTemplate,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("message template"),
    )

    class Meta:
        ordering = ["playbook", "position", "id"]
        verbose_name = _("playbook step")
        verbose_name_plural = _("playbook steps")

    def __str__(self) -> str:
        return self.title


class ChecklistItem(models.Model):
    """A playbook step copied into an incident when it opened: later edits
    of the playbook do not change a checklist under way."""

    incident = models.ForeignKey(
        Incident, on_delete=models.CASCADE, related_name="checklist", verbose_name=_("incident")
    )
    position = models.PositiveSmallIntegerField(_("step no."))
    title = models.CharField(_("step"), max_length=200)
    description = models.TextField(_("how"), blank=True)
    role = models.CharField(_("who"), max_length=8, choices=StepRole.choices)
    due_at = models.DateTimeField(_("due"), null=True, blank=True)
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("done by"),
    )
    # When the managers were warned that it is overdue: once.
    overdue_warned_at = models.DateTimeField(_("overdue warning sent"), null=True, blank=True)

    class Meta:
        ordering = ["incident", "position", "id"]
        verbose_name = _("checklist step")
        verbose_name_plural = _("checklist steps")
        indexes = [
            models.Index(
                fields=["due_at"],
                name="crisis_checklist_overdue",
                condition=Q(done_at__isnull=True, overdue_warned_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return self.title


# --- What an incident sent ---------------------------------------------------------------


class IncidentSendKind(models.TextChoices):
    BROADCAST = "broadcast", _("Emergency broadcast")
    NOTICE = "notice", _("Notice to customers with affected orders")


class IncidentSend(models.Model):
    """One broadcast or notice of an incident on one message channel. The
    unique constraint is the "never twice" rule: a second click, a double
    submit or a retry finds the row; a deliberate update is the next round."""

    incident = models.ForeignKey(
        Incident, on_delete=models.CASCADE, related_name="sends", verbose_name=_("incident")
    )
    kind = models.CharField(_("kind"), max_length=9, choices=IncidentSendKind.choices)
    channel = models.CharField(_("channel"), max_length=5, choices=MessageChannel.choices)
    round = models.PositiveSmallIntegerField(_("round"), default=1)
    send = models.OneToOneField(Send, on_delete=models.PROTECT, related_name="+")
    # A manager sending inside quiet hours says why.
    quiet_hours_override_reason = models.CharField(
        _("reason for sending in quiet hours"), max_length=255, blank=True
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(_("sent at"), auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("incident send")
        verbose_name_plural = _("incident sends")
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "kind", "channel", "round"], name="crisis_incident_send_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.get_channel_display()})"
