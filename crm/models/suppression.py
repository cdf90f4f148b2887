"""Addresses that are never sent to (suppressions) and the mail bounces
that lead to them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from crm.models.consent import ConsentChannel


class SuppressionReason(models.TextChoices):
    HARD_BOUNCE = "hard_bounce", _("The address does not exist (hard bounce)")
    SOFT_BOUNCES = "soft_bounces", _("Repeated temporary delivery failures")
    COMPLAINT = "complaint", _("Marked as spam by the recipient")
    STAFF = "staff", _("Stopped by staff")


class Suppression(models.Model):
    """An address no marketing goes to (bounced, complained about, or
    stopped by staff) until staff lift it. Written only by
    crm.services.suppression; one open row per (address, channel)."""

    address = models.CharField(_("email address"), max_length=255)  # as email_normalize gives it
    channel = models.CharField(
        _("channel"), max_length=10, choices=ConsentChannel.choices, default=ConsentChannel.EMAIL
    )
    reason = models.CharField(_("reason"), max_length=20, choices=SuppressionReason.choices)
    since = models.DateTimeField(_("since"))
    detail = models.CharField(_("detail"), max_length=255, blank=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    lifted_at = models.DateTimeField(_("lifted at"), null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("lifted by"),
    )
    note = models.CharField(_("note"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("suppressed address")
        verbose_name_plural = _("suppressed addresses")
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "address"],
                condition=Q(lifted_at__isnull=True),
                name="crm_suppression_one_open",
            )
        ]

    def __str__(self) -> str:
        return f"{self.address} ({self.get_reason_display()})"


class BounceKind(models.TextChoices):
    HARD = "hard", _("Hard bounce")
    SOFT = "soft", _("Soft bounce")
    COMPLAINT = "complaint", _("Complaint")


class MailBounce(models.Model):
    """One bounce or complaint report about one address, as it arrived:
    soft bounces are counted from these (BOUNCE_SOFT_LIMIT in
    BOUNCE_SOFT_DAYS)."""

    address = models.CharField(_("email address"), max_length=255)
    kind = models.CharField(_("kind"), max_length=10, choices=BounceKind.choices)
    status = models.CharField(_("status code"), max_length=20, blank=True)
    diagnostic = models.CharField(_("diagnostic"), max_length=500, blank=True)
    # outreach.Delivery's id when the report names it (crm does not depend on outreach).
    delivery_id = models.BigIntegerField(_("delivery"), null=True, blank=True)
    received_at = models.DateTimeField(_("received at"))

    class Meta:
        verbose_name = _("bounce")
        verbose_name_plural = _("bounces")
        indexes = [
            models.Index(fields=["address", "kind", "received_at"], name="crm_bounce_address")
        ]

    def __str__(self) -> str:
        return f"{self.address} ({self.get_kind_display()})"
