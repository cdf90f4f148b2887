"""A customer's edits by staff: the profile (customer_update, clearing the channel
profiles' copies of what was cleared), the test-recipient flag and the claimant
flag (set and cleared with a reason, an event each).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.timeline import actor_or_none
from core.types import Actor
from crm.models import (
    Customer,
    CustomerChannelProfile,
    CustomerEventKind,
)
from crm.services.customers import _profile_full_clean, customer_event_add
from crm.services.lifecycle import lifecycle_recompute
from crm.services.profile import (
    PROFILE_FIELDS,
    _clean_profile,
    profile_save,
)


def customer_update(
    *, customer: Customer, actor: Actor = None, notes: str | None = None, **profile: Any
) -> Customer:
    """An edit by a person (admin): given values overwrite, blanks clear."""
    unknown = set(profile) - set(PROFILE_FIELDS)
    if unknown:
        raise TypeError(f"customer_update() got unknown fields: {sorted(unknown)}")
    cleaned = _clean_profile(profile)
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        changed = []
        for name in profile:
            value = cleaned.get(name, Customer.blank_value(name))
            if getattr(customer, name) != value:
                setattr(customer, name, value)
                changed.append(name)
        if notes is not None and notes != customer.notes:
            customer.notes = notes
            changed.append("notes")
        if changed:
            _profile_full_clean(customer)
            profile_save(customer, changed)
            customer_event_add(customer, CustomerEventKind.UPDATED, actor, fields=changed)
            _channel_profiles_clear(customer, [name for name in changed if name in profile])
    return customer


def _channel_profiles_clear(customer: Customer, names: list[str]) -> None:
    """A value a person removed from the customer is removed from what every
    channel gave too: no API key reads it back."""
    blank = {
        name: Customer.blank_value(name) for name in names if getattr(customer, name) in ("", None)
    }
    if "email" in blank:
        blank["email_normalized"] = ""
    if "phone" in blank:
        blank["phone_normalized"] = ""
    if blank:
        CustomerChannelProfile.objects.filter(customer=customer).update(**blank)


def customer_test_recipient_set(*, customer: Customer, value: bool, actor: Actor) -> Customer:
    """Mark (or unmark) the customer as a test recipient: a campaign's test
    send may go only to test recipients."""
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        if customer.is_test_recipient != value:
            customer.is_test_recipient = value
            customer.save(update_fields=["is_test_recipient", "updated_at"])
            customer_event_add(
                customer, CustomerEventKind.UPDATED, actor, fields=["is_test_recipient"]
            )
    return customer


# --- Claimant flag (SPEC rule 7) -------------------------------------------


def customer_claimant_set(*, customer: Customer, reason: str, actor: Actor) -> Customer:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"claimant_reason": [_("Say why this customer is a claimant.")]})
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        _claimant_write(customer, flag_reason=reason, actor=actor, reason=reason)
    customer.refresh_from_db()
    return customer


def customer_claimant_clear(*, customer: Customer, actor: Actor, reason: str = "") -> Customer:
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        if not customer.is_claimant:
            return customer
        _claimant_write(
            customer,
            flag_reason="",
            actor=actor,
            reason=reason,
            previous_reason=customer.claimant_reason,
        )
    customer.refresh_from_db()
    return customer


# The fields that make the claimant flag (customer_merge carries them over).
CLAIMANT_FIELDS = ["is_claimant", "claimant_reason", "claimant_set_by", "claimant_set_at"]


def _claimant_write(
    customer: Customer, *, flag_reason: str, actor: Actor, **event_data: Any
) -> None:
    """Flag (a reason) or clear (no reason) the locked customer, record the
    event and recompute the segment."""
    flagged = bool(flag_reason)
    customer.is_claimant = flagged
    customer.claimant_reason = flag_reason
    customer.claimant_set_by = actor_or_none(actor) if flagged else None
    customer.claimant_set_at = timezone.now() if flagged else None
    customer.save(update_fields=[*CLAIMANT_FIELDS, "updated_at"])
    kind = CustomerEventKind.CLAIMANT_FLAGGED if flagged else CustomerEventKind.CLAIMANT_CLEARED
    customer_event_add(customer, kind, actor, **event_data)
    lifecycle_recompute(customer_ids=[customer.pk])
