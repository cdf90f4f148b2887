"""Consent: the append-only ledger and the current state (SPEC rule 8)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.timeline import actor_or_none
from core.types import Actor
from crm.models import (
    ConsentAction,
    ConsentChannel,
    ConsentEvent,
    ConsentSource,
    ConsentState,
    Customer,
)
from crm.services.customers import customer_follow_merges
from crm.trade_time import trade_time_error


def consent_record(
    *,
    customer: Customer,
    channel: str,
    action: str,
    source: str,
    occurred_at: datetime | None = None,
    wording_version: str = "",
    note: str = "",
    unless_current: bool = False,
    actor: Actor = None,
) -> ConsentEvent:
    """Append one opt-in or opt-out to the ledger and keep the current state
    equal to the latest event for that channel (by occurred_at, then id), so
    an event that arrives late never overrides a newer one.

    The one way consent changes, whatever the door (unsubscribe link and
    one-click, LINE unfollow, the API, staff in the admin): an opt-out that
    leaves the channel withdrawn also skips the customer's queued marketing
    on it at once, in the same transaction. An opt-out older than a newer
    opt-in (a LINE unfollow redelivered late) is kept in the ledger and
    skips nothing.

    `unless_current`: when the channel's consent already is `action`, write
    no second event and return the one that made it so (a second click on
    an unsubscribe link); an opt-out still skips whatever is queued."""
    errors = {}
    if channel not in ConsentChannel.values:
        errors["channel"] = [_("Unknown consent channel: %(value)s.") % {"value": channel}]
    if action not in ConsentAction.values:
        errors["action"] = [_("Use opt_in or opt_out.")]
    if source not in ConsentSource.values:
        errors["source"] = [_("Unknown source: %(value)s.") % {"value": source}]
    elif source == ConsentSource.STAFF and not note.strip():
        # Consent given to staff (by phone, at the counter) is only as good
        # as the record of how and when: whoever records it says so.
        errors["note"] = [_("Note how and when the customer told you.")]
    now = timezone.now()
    occurred_at = occurred_at or now
    if occurred_at > now + timedelta(minutes=5):
        errors["occurred_at"] = [_("A consent event cannot be in the future.")]
    elif message := trade_time_error(occurred_at, now=now):
        errors["occurred_at"] = [message]
    if errors:
        raise ValidationError(errors)
    granting = action == ConsentAction.OPT_IN
    with transaction.atomic():
        # The customer row is the lock that serialises consent changes.
        customer = Customer.objects.select_for_update().get(pk=customer_follow_merges(customer).pk)
        state = ConsentState.objects.filter(customer=customer, channel=channel).first()
        if unless_current and state is not None and state.granted == granting:
            event = state.event
        else:
            event = ConsentEvent.objects.create(
                customer=customer,
                channel=channel,
                action=action,
                source=source,
                occurred_at=occurred_at,
                wording_version=wording_version[:50],
                note=note[:255],
                actor=actor_or_none(actor),
            )
            if state is None:
                state = ConsentState.objects.create(
                    customer=customer,
                    channel=channel,
                    granted=granting,
                    changed_at=occurred_at,
                    event=event,
                )
            elif (occurred_at, event.pk) >= (state.changed_at, state.event_id):
                state.granted = granting
                state.changed_at = occurred_at
                state.event = event
                state.save(update_fields=["granted", "changed_at", "event"])
        if not granting and not state.granted:
            _queued_marketing_skip(customer_id=customer.pk, channel=channel)
    return event


def consent_withdraw(
    *,
    customer: Customer,
    channel: str,
    source: str,
    occurred_at: datetime | None = None,
    note: str = "",
    unless_current: bool = False,
    actor: Actor = None,
) -> ConsentEvent:
    """An opt-out: `consent_record` with action opt_out."""
    return consent_record(
        customer=customer,
        channel=channel,
        action=ConsentAction.OPT_OUT,
        source=source,
        occurred_at=occurred_at,
        note=note,
        unless_current=unless_current,
        actor=actor,
    )


def _queued_marketing_skip(*, customer_id: int, channel: str) -> None:
    """The send ledger is outreach's: outreach imports crm at module level,
    so crm reaches it only here, when an opt-out is recorded."""
    from outreach.services import deliveries_skip_for_opt_out

    deliveries_skip_for_opt_out(customer_id=customer_id, channel=channel)


def consent_state_rebuild(customer: Customer) -> None:
    """Recompute every consent state of one customer from its ledger."""
    latest: dict[str, ConsentEvent] = {}
    for event in ConsentEvent.objects.filter(customer=customer).order_by("occurred_at", "id"):
        latest[event.channel] = event
    ConsentState.objects.filter(customer=customer).delete()
    ConsentState.objects.bulk_create(
        ConsentState(
            customer=customer,
            channel=channel,
            granted=event.action == ConsentAction.OPT_IN,
            changed_at=event.occurred_at,
            event=event,
        )
        for channel, event in latest.items()
    )
