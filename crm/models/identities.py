"""Who a customer is on each channel, and what each channel gave of their
personal data."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.choices import Channel
from crm.models.customers import Customer, PersonalData, address_indexes


class ChannelIdentity(models.Model):
    """Who the customer is on one channel: Rakuten member, masked Amazon
    address, LINE userId, email address, own-site member id..."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="identities", verbose_name=_("customer")
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    external_id = models.CharField(_("external id"), max_length=255)
    display_name = models.CharField(_("name on channel"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    # The LINE profile (outreach.line_profiles): picture, when it was read,
    # the last error, and when to read it (again); None: nothing to do.
    picture_url = models.URLField(_("profile picture"), max_length=1000, blank=True)
    profile_fetched_at = models.DateTimeField(_("profile read"), null=True, blank=True)
    profile_error = models.CharField(_("profile error"), max_length=255, blank=True)
    profile_due_at = models.DateTimeField(_("profile to read"), null=True, blank=True)

    class Meta:
        verbose_name = _("channel identity")
        verbose_name_plural = _("channel identities")
        indexes = [
            models.Index(
                fields=["profile_due_at"],
                name="crm_identity_profile_due",
                condition=Q(profile_due_at__isnull=False),
            )
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "external_id"], name="crm_identity_unique_per_channel"
            ),
            models.CheckConstraint(
                condition=~Q(external_id=""), name="crm_identity_external_id_not_empty"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()}: {self.external_id}"


class CustomerChannelProfile(PersonalData):
    """What one channel gave of a customer's personal data (the latest value
    of each field it sent). The customer's merged profile is for staff (the
    customer 360); an API key reads only the profiles of its own channels,
    so that, e.g., Amazon-sourced data never leaves through another key
    (SPEC rule 17). Written by customer_upsert, with the channel of the call."""

    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="channel_profiles",
        verbose_name=_("customer"),
        db_index=False,  # crm_channel_profile_unique (customer first) serves it
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("channel profile")
        verbose_name_plural = _("channel profiles")
        # An API key's search by email or phone looks in its channels' profiles.
        indexes = address_indexes(
            email="crm_channel_profile_email", phone="crm_channel_profile_phone"
        )
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "channel"], name="crm_channel_profile_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()}: {self.family_name} {self.given_name}".strip()
