"""Consent: the append-only ledger and the current state (SPEC rule 8)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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
    now = timezone.now()
    occurred_at = _consent_clean(
        channel=channel, action=action, source=source, occurred_at=occurred_at, note=note, now=now
    )
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


def _consent_clean(
    *,
    channel: str,
    action: str,
    source: str,
    occurred_at: datetime | None,
    note: str,
    now: datetime,
) -> datetime:
    """What consent_record refuses (ValidationError naming the field), and
    the event's time (now when not given)."""
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
    occurred_at = occurred_at or now
    if occurred_at > now + timedelta(minutes=5):
        errors["occurred_at"] = [_("A consent event cannot be in the future.")]
    elif message := trade_time_error(occurred_at, now=now):
        errors["occurred_at"] = [message]
    if errors:
        raise ValidationError(errors)
    return occurred_at


@dataclass(frozen=True)
class NewConsent:
    """One opt-in or opt-out for consents_record_bulk: consent_record's
    arguments."""

    customer: Customer
    channel: str
    action: str
    source: str
    occurred_at: datetime | None = None
    wording_version: str = ""
    note: str = ""


def consents_record_bulk(
    *, consents: Sequence[NewConsent], unless_current: bool = False, actor: Actor = None
) -> list[ConsentEvent | ValidationError]:
    """`consent_record` for many, in their order, with what each would
    write: the same validation, an event row per consent (none when
    `unless_current` finds it current), the state row following the latest
    event, and queued marketing skipped for every opt-out that leaves its
    channel withdrawn. One lock of all the customers (in id order), one read
    of their states, one INSERT of the events, one of the new states, one
    UPDATE of the changed ones, one skip per channel. Returns, per consent,
    its event (the current one when nothing was written) or why it was
    refused."""
    now = timezone.now()
    actor = actor_or_none(actor)
    results: list = []
    valid: list[tuple[int, NewConsent, datetime, int]] = []
    for index, consent in enumerate(consents):
        try:
            occurred_at = _consent_clean(
                channel=consent.channel,
                action=consent.action,
                source=consent.source,
                occurred_at=consent.occurred_at,
                note=consent.note,
                now=now,
            )
        except ValidationError as error:
            results.append(error)
            continue
        results.append(None)  # its event, below
        valid.append((index, consent, occurred_at, customer_follow_merges(consent.customer).pk))
    if not valid:
        return results
    with transaction.atomic():
        customer_ids = sorted({customer_id for *_rest, customer_id in valid})
        # The customer rows are the lock that serialises consent changes.
        list(
            Customer.objects.select_for_update()
            .filter(pk__in=customer_ids)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        states = {
            (state.customer_id, state.channel): state
            for state in ConsentState.objects.filter(
                customer_id__in=customer_ids,
                channel__in={consent.channel for _i, consent, *_rest in valid},
            ).select_related("event")
        }
        events: list[ConsentEvent] = []
        created_states: dict[tuple[int, str], ConsentState] = {}
        changed_states: dict[tuple[int, str], ConsentState] = {}
        withdrawn: dict[str, set[int]] = {}
        for index, consent, occurred_at, customer_id in valid:
            granting = consent.action == ConsentAction.OPT_IN
            key = (customer_id, consent.channel)
            state = states.get(key)
            if unless_current and state is not None and state.granted == granting:
                event = state.event
            else:
                event = ConsentEvent(
                    customer_id=customer_id,
                    channel=consent.channel,
                    action=consent.action,
                    source=consent.source,
                    occurred_at=occurred_at,
                    wording_version=consent.wording_version[:50],
                    note=consent.note[:255],
                    actor=actor,
                )
                events.append(event)
                if state is None:
                    state = ConsentState(
                        customer_id=customer_id,
                        channel=consent.channel,
                        granted=granting,
                        changed_at=occurred_at,
                        event=event,
                    )
                    states[key] = created_states[key] = state
                # The new event's id is above every id written before it,
                # so it is the latest unless it happened earlier.
                elif occurred_at >= state.changed_at:
                    state.granted = granting
                    state.changed_at = occurred_at
                    state.event = event
                    if key not in created_states:
                        changed_states[key] = state
            results[index] = event
            if not granting and not state.granted:
                withdrawn.setdefault(consent.channel, set()).add(customer_id)
        ConsentEvent.objects.bulk_create(events)
        for state in (*created_states.values(), *changed_states.values()):
            state.event_id = state.event.pk  # known now that it is written
        ConsentState.objects.bulk_create(created_states.values())
        ConsentState.objects.bulk_update(
            changed_states.values(), ["granted", "changed_at", "event"]
        )
        for channel, ids in withdrawn.items():
            _queued_marketing_skip_many(customer_ids=sorted(ids), channel=channel)
    return results


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


def _queued_marketing_skip_many(*, customer_ids: list[int], channel: str) -> None:
    from outreach.services import deliveries_skip_for_opt_outs

    deliveries_skip_for_opt_outs(customer_ids=customer_ids, channel=channel)


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
