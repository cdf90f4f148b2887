"""The consent ledger: every opt-in and opt-out as an event, and each
customer's current state per channel."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from crm.models.customers import Customer


class ConsentChannel(models.TextChoices):
    EMAIL = "email", _("Email")
    LINE = "line", _("LINE")
    DM = "dm", _("Direct mail")


class ConsentAction(models.TextChoices):
    OPT_IN = "opt_in", _("Opt-in")
    OPT_OUT = "opt_out", _("Opt-out")


class ConsentSource(models.TextChoices):
    API = "api", _("Store site (API)")
    WEB_FORM = "web_form", _("Web form")
    STORE = "store", _("In the shop")
    LINE = "line", _("LINE follow state")
    UNSUBSCRIBE = "unsubscribe", _("Unsubscribe link")
    IMPORT = "import", _("Import")
    STAFF = "staff", _("Staff (phone or shop counter)")
    COMPLAINT = "complaint", _("Spam complaint (feedback report)")


# The sources a store site records consent from (the API accepts only
# these). The note of an event from any other source (staff, an unsubscribe,
# a complaint) is the shop's own and never leaves through the API.
STORE_SITE_CONSENT_SOURCES = (
    ConsentSource.API,
    ConsentSource.WEB_FORM,
    ConsentSource.STORE,
    ConsentSource.IMPORT,
)


class ConsentEvent(models.Model):
    """One opt-in or opt-out, as it happened. Append-only: never updated."""

    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="consent_events",
        verbose_name=_("customer"),
    )
    channel = models.CharField(_("channel"), max_length=10, choices=ConsentChannel.choices)
    action = models.CharField(_("action"), max_length=10, choices=ConsentAction.choices)
    source = models.CharField(_("source"), max_length=20, choices=ConsentSource.choices)
    wording_version = models.CharField(_("wording version"), max_length=50, blank=True)
    occurred_at = models.DateTimeField(_("occurred at"))
    recorded_at = models.DateTimeField(_("recorded at"), auto_now_add=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    note = models.CharField(_("note"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("consent event")
        verbose_name_plural = _("consent events")
        indexes = [
            models.Index(
                fields=["customer", "channel", "occurred_at"], name="crm_consent_event_latest"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} {self.get_action_display()}"


class ConsentState(models.Model):
    """Current consent per (customer, channel): always the ledger's latest
    event for that pair (by occurred_at, then id). Written only by
    `crm.services.consent_record`."""

    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="consent_states",
        verbose_name=_("customer"),
    )
    channel = models.CharField(_("channel"), max_length=10, choices=ConsentChannel.choices)
    granted = models.BooleanField(_("granted"))
    changed_at = models.DateTimeField(_("changed at"))
    event = models.ForeignKey(
        ConsentEvent, on_delete=models.PROTECT, related_name="+", verbose_name=_("event")
    )

    class Meta:
        verbose_name = _("consent state")
        verbose_name_plural = _("consent states")
        constraints = [
            models.UniqueConstraint(fields=["customer", "channel"], name="crm_consent_state_unique")
        ]
        indexes = [
            models.Index(
                fields=["channel", "customer"],
                name="crm_consent_granted",
                condition=Q(granted=True),
            ),
            # Opt-outs: few, and every batch of a send asks which of its
            # customers withdrew (a scan of all states without it).
            models.Index(
                fields=["channel", "customer"],
                name="crm_consent_withdrawn",
                condition=Q(granted=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()}: {'✓' if self.granted else '✗'}"
