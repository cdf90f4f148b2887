"""The improvement cycle (改善サイクル, seed 001): a countermeasure per month
and category, or per incident, with its owner, due date and status. The
monthly report shows each beside the months before and after it."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.choices import Channel


class CountermeasureStatus(models.TextChoices):
    PLANNED = "planned", _("Planned")
    IN_PROGRESS = "in_progress", _("In progress")
    DONE = "done", _("Done")
    DROPPED = "dropped", _("Dropped")


# Still to be done: overdue once past their due date.
COUNTERMEASURE_OPEN = (CountermeasureStatus.PLANNED, CountermeasureStatus.IN_PROGRESS)


class Countermeasure(models.Model):
    # The month reviewed: always the first day of that month.
    month = models.DateField(_("month"))
    category = models.ForeignKey(
        "tickets.Category",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("category"),
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices, blank=True)
    incident = models.ForeignKey(
        "crisis.Incident",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="countermeasures",
        verbose_name=_("incident"),
    )
    cause = models.TextField(_("cause"))
    action = models.TextField(_("countermeasure"))
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("owner"),
    )
    due_date = models.DateField(_("due date"))
    status = models.CharField(
        _("status"),
        max_length=11,
        choices=CountermeasureStatus.choices,
        default=CountermeasureStatus.PLANNED,
    )
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
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
        ordering = ["-month", "due_date", "id"]
        verbose_name = _("countermeasure")
        verbose_name_plural = _("countermeasures")
        indexes = [
            # The manager's home: the overdue ones.
            models.Index(
                fields=["due_date"],
                name="reports_countermeasure_open",
                condition=Q(status__in=["planned", "in_progress"]),
            ),
            models.Index(fields=["month"], name="reports_countermeasure_month"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(month__day=1), name="reports_countermeasure_month_first_day"
            ),
        ]

    def __str__(self) -> str:
        return self.action[:50]
