"""Notices to staff members about an inquiry or an incident, and their mailing."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from tickets.models.inquiry import Inquiry


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
