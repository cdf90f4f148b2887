"""Satisfaction surveys: which channels ask, and each inquiry's question and answer."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.choices import Channel
from outreach.models import MessageChannel
from tickets.models.inquiry import Inquiry


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
