"""The customer's timeline and the retention job's runs: one event row each."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from core.choices import Channel
from core.models import EventRecord
from crm.models.customers import Customer


class CustomerEventKind(models.TextChoices):
    CREATED = "created", _("Created")
    UPDATED = "updated", _("Updated")
    IDENTITY_ADDED = "identity_added", _("Identity added")
    MERGED = "merged", _("Merged")
    MERGED_INTO = "merged_into", _("Merged into another customer")
    CLAIMANT_FLAGGED = "claimant_flagged", _("Flagged as claimant")
    CLAIMANT_CLEARED = "claimant_cleared", _("Claimant flag cleared")
    ANONYMIZED = "anonymized", _("Anonymised")
    EXPORTED = "exported", _("Personal data exported")
    ERASED = "erased", _("Personal data erased")
    SUPPRESSED = "suppressed", _("Address suppressed")
    SUPPRESSION_LIFTED = "suppress_lifted", _("Address suppression lifted")


class CustomerEvent(EventRecord):
    """The customer's timeline and audit log: who did what, when."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="events", verbose_name=_("customer")
    )
    kind = models.CharField(_("kind"), max_length=20, choices=CustomerEventKind.choices)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("customer event")
        verbose_name_plural = _("customer events")
        indexes = [models.Index(fields=["customer", "created_at"], name="crm_customer_event_time")]

    def __str__(self) -> str:
        return self.get_kind_display()


class RetentionEventKind(models.TextChoices):
    ANONYMIZED = "anonymized", _("Personal data anonymised")
    CONSENT_PRUNED = "consent_pruned", _("Consent ledger pruned")


class RetentionEvent(EventRecord):
    """One run of the retention job (crm.services.retention) on one channel
    or on the consent ledger, with what it did in `data` (counts)."""

    kind = models.CharField(_("kind"), max_length=20, choices=RetentionEventKind.choices)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("retention run")
        verbose_name_plural = _("retention runs")

    def __str__(self) -> str:
        return self.get_kind_display()
