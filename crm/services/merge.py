"""Merging two customers into one."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from core.timeline import actor_or_none
from core.types import Actor
from crm.models import (
    ConsentState,
    Customer,
    CustomerChannelProfile,
    CustomerEventKind,
)
from crm.services.consent import consent_state_rebuild
from crm.services.customer_edits import CLAIMANT_FIELDS
from crm.services.customers import PROFILE_FIELDS, customer_event_add, profile_save
from crm.services.lifecycle import lifecycle_recompute

# Relations to Customer that customer_merge handles itself rather than by
# re-pointing the foreign key.
_MERGE_SPECIAL = {(ConsentState, "customer"), (CustomerChannelProfile, "customer")}


def customer_merge(*, winner: Customer, loser: Customer, actor: Actor) -> Customer:
    """Fold `loser` into `winner`: identities, orders, consent history,
    events, tags and everything else that points at a customer move over;
    blanks of the winner are filled from the loser; the loser stays as a
    stub pointing at the winner. Both get an event."""
    if winner.pk == loser.pk:
        raise ValidationError(_("A customer cannot be merged with itself."))
    actor = actor_or_none(actor)
    with transaction.atomic():
        locked = {
            c.pk: c
            for c in Customer.objects.select_for_update().filter(pk__in=[winner.pk, loser.pk])
        }
        winner, loser = locked[winner.pk], locked[loser.pk]
        if winner.merged_into_id or loser.merged_into_id:
            raise ValidationError(_("A customer that was already merged cannot be merged again."))
        moved: dict[str, int] = {}
        for relation in Customer._meta.related_objects:
            if not (relation.one_to_many or relation.one_to_one):
                continue
            model, field = relation.related_model, relation.field.name
            if (model, field) in _MERGE_SPECIAL:
                continue
            count = model._base_manager.filter(**{field: loser}).update(**{field: winner})  # type: ignore[union-attr]  # a reverse relation's model is a class
            if count:
                moved[model._meta.label_lower] = count  # type: ignore[union-attr]  # a reverse relation's model is a class
        winner.tags.add(*loser.tags.all())
        loser.tags.clear()

        changed = []
        for name in PROFILE_FIELDS:
            if not getattr(winner, name) and getattr(loser, name):
                setattr(winner, name, getattr(loser, name))
                changed.append(name)
        if loser.notes:
            winner.notes = f"{winner.notes}\n{loser.notes}".strip()
            changed.append("notes")
        if loser.is_claimant and not winner.is_claimant:
            for name in CLAIMANT_FIELDS:
                setattr(winner, name, getattr(loser, name))
            changed += CLAIMANT_FIELDS
        profile_save(winner, changed)

        ConsentState.objects.filter(customer=loser).delete()
        consent_state_rebuild(winner)
        _channel_profiles_merge(winner, loser)

        loser.merged_into = winner
        loser.save(update_fields=["merged_into", "updated_at"])
        customer_event_add(winner, CustomerEventKind.MERGED, actor, loser_id=loser.pk, moved=moved)
        customer_event_add(loser, CustomerEventKind.MERGED_INTO, actor, winner_id=winner.pk)
        lifecycle_recompute(customer_ids=[winner.pk, loser.pk])
    winner.refresh_from_db()
    return winner


def _channel_profiles_merge(winner: Customer, loser: Customer) -> None:
    """What each channel gave moves to the winner: a channel that gave both
    keeps the winner's values and fills its blanks from the loser's."""
    kept = {row.channel: row for row in CustomerChannelProfile.objects.filter(customer=winner)}
    for row in CustomerChannelProfile.objects.filter(customer=loser):
        target = kept.get(row.channel)
        if target is None:
            row.customer = winner
            row.save(update_fields=["customer", "updated_at"])
            continue
        filled = [
            name
            for name in (*PROFILE_FIELDS, "email_normalized", "phone_normalized")
            if not getattr(target, name) and getattr(row, name)
        ]
        for name in filled:
            setattr(target, name, getattr(row, name))
        if filled:
            target.save(update_fields=[*filled, "updated_at"])
        row.delete()
