"""SLA policies and their business calendars and closures, with the
priority, clock and SLA-state choices."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.choices import Channel


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


class SlaState(models.TextChoices):
    ON_TRACK = "on_track", _("On track")
    AT_RISK = "at_risk", _("At risk")
    BREACHED = "breached", _("Breached")
    MET = "met", _("Met")
