"""Automatic assignment: the rules per category or channel, and each
agent's presence and limit of open inquiries."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.choices import Channel
from tickets.models.configuration import Category


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
