"""Many customers at once (the CSV import's bulk path): what customer_upsert
would do with each, resolved in two queries, and the new ones created in
one write per table, by the same rules."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection
from django.utils.translation import gettext as _

from core.choices import Channel
from core.db import copy_insert
from core.timeline import actor_or_none
from core.types import Actor
from core.validation import FieldsCheck
from crm.models import (
    ChannelIdentity,
    Customer,
    CustomerChannelProfile,
    CustomerEvent,
    CustomerEventKind,
)
from crm.normalize import email_normalize, phone_normalize
from crm.services.customers import (
    _CHANNEL_PROFILE,
    _CHANNEL_PROFILE_COLUMNS,
    _CUSTOMER,
    _IDENTITY,
    Resolution,
    UpsertOutcome,
    _identity_external_id,
    _nothing_to_write,
)
from crm.services.profile import PROFILE_FIELDS, _clean_profile, profile_derived_values

_CHANNELS = frozenset(Channel.values)

# customer_upsert's full_clean of a new customer, for a batch: only the
# profile's fields hold values then (tags excluded, no constraint checked).
_PROFILE_CHECK = FieldsCheck(Customer, PROFILE_FIELDS)


@dataclass(frozen=True)
class NewCustomer:
    """A person no identity, email or phone of ours knows (the caller
    checked): what customer_upsert would get for them."""

    channel: str
    external_id: str
    identity_display_name: str
    profile: dict[str, Any]


def customers_create_bulk(
    *, people: Sequence[NewCustomer], actor: Actor = None
) -> list[Customer | ValidationError]:
    """Create customers the way customer_upsert creates one it did not find
    (the same cleaning, validation — full_clean's, checked as a batch —,
    normalised addresses and search keys, CREATED event, channel identity
    and channel profile), in one COPY per table for all of them. Returns,
    per person, the customer or why it was refused. The caller has
    resolved each person to nobody in the same transaction."""
    results: list = []
    created: list[tuple[int, NewCustomer, dict[str, Any]]] = []
    for person in people:
        try:
            if person.channel not in _CHANNELS:
                raise ValidationError(
                    {"channel": [_("Unknown channel: %(value)s.") % {"value": person.channel}]}
                )
            cleaned = _clean_profile(person.profile)
            if errors := _PROFILE_CHECK.errors(cleaned):
                raise ValidationError(errors)
        except ValidationError as error:
            results.append(error)
            continue
        created.append((len(results), person, cleaned))
        results.append(None)  # the customer, below
    if not created:
        return results
    rows = [{**cleaned, **profile_derived_values(cleaned)} for _i, _person, cleaned in created]
    ids = copy_insert(Customer, rows)
    for (index, _person, _cleaned), pk, row in zip(created, ids, rows, strict=True):
        customer = results[index] = Customer(pk=pk, **row)
        customer._state.adding = False
    actor_id = getattr(actor_or_none(actor), "pk", None)
    copy_insert(
        CustomerEvent,
        [
            {
                "customer_id": pk,
                "kind": CustomerEventKind.CREATED,
                "actor_id": actor_id,
                "data": {"channel": person.channel},
            }
            for pk, (_i, person, _cleaned) in zip(ids, created, strict=True)
        ],
    )
    copy_insert(
        ChannelIdentity,
        [
            {
                "customer_id": pk,
                "channel": person.channel,
                "external_id": _identity_external_id(
                    person.channel,
                    person.external_id,
                    cleaned.get("email", ""),
                    cleaned.get("phone", ""),
                ),
                "display_name": person.identity_display_name[:255],
            }
            for pk, (_i, person, cleaned) in zip(ids, created, strict=True)
        ],
    )
    copy_insert(
        CustomerChannelProfile,
        [
            {
                "customer_id": pk,
                "channel": person.channel,
                "email_normalized": email_normalize(cleaned.get("email", "")),
                "phone_normalized": phone_normalize(cleaned.get("phone", "")),
                **cleaned,
            }
            for pk, (_i, person, cleaned) in zip(ids, created, strict=True)
            if cleaned
        ],
    )
    return results


def customers_resolve_bulk(*, people: Sequence[NewCustomer]) -> list[tuple[Customer | None, str]]:
    """What customer_upsert would do with each person, for many at once (two
    queries, PostgreSQL): (customer, UNCHANGED) when their own identity
    finds them and nothing would be written; (None, CREATED) when no
    identity, email or phone of ours knows them (customers_create_bulk
    creates them alike); (None, "") otherwise: the caller goes through
    customer_upsert, which knows the rest of the rules."""
    prepared: list[tuple[NewCustomer, dict[str, Any], str, str, str] | None] = []
    for person in people:
        try:
            cleaned = _clean_profile(person.profile)
        except ValidationError:
            prepared.append(None)
            continue
        email_norm = email_normalize(cleaned.get("email", ""))
        phone_norm = phone_normalize(cleaned.get("phone", ""))
        external_id = _identity_external_id(
            person.channel, person.external_id, cleaned.get("email", ""), cleaned.get("phone", "")
        )
        prepared.append((person, cleaned, external_id, email_norm, phone_norm))
    keys = set()
    for item in prepared:
        if item is None:
            continue
        person, _cleaned, external_id, email_norm, phone_norm = item
        keys.add((person.channel, external_id))
        if email_norm:
            keys.add((Channel.EMAIL, email_norm))
        if phone_norm:
            keys.add((Channel.PHONE, phone_norm))
    by_identity = _customers_by_identities(sorted(keys)) if keys else {}
    # Addresses matter only for those their own identity does not find.
    unknown = [item for item in prepared if item and (item[0].channel, item[2]) not in by_identity]
    known_emails = _addresses_known("email_normalized", {item[3] for item in unknown})
    known_phones = _addresses_known("phone_normalized", {item[4] for item in unknown})
    results: list[tuple[Customer | None, str]] = []
    for item in prepared:
        if item is None:
            results.append((None, ""))
            continue
        person, cleaned, external_id, email_norm, phone_norm = item
        customer = by_identity.get((person.channel, external_id))
        if customer is not None:
            unchanged = customer.merged_into_id is None and _nothing_to_write(
                Resolution(customer, "identity"), cleaned, ()
            )
            results.append((customer, UpsertOutcome.UNCHANGED) if unchanged else (None, ""))
        elif (
            email_norm
            and (email_norm in known_emails or (Channel.EMAIL, email_norm) in by_identity)
        ) or (
            phone_norm
            and (phone_norm in known_phones or (Channel.PHONE, phone_norm) in by_identity)
        ):
            results.append((None, ""))
        else:
            results.append((None, UpsertOutcome.CREATED))
    return results


# What customers_resolve_bulk reads of a customer found by identity: what
# deciding "unchanged" needs, and what the caller uses (the id, the merge).
# In the table's order, as Model.from_db takes a part of the columns.
_RESOLVED_FIELDS = tuple(
    field.attname
    for field in Customer._meta.concrete_fields
    if field.attname in ("id", "merged_into_id", *PROFILE_FIELDS)
)


def _customers_by_identities(keys: list[tuple[str, str]]) -> dict[tuple[str, str], Customer]:
    """The customer behind each (channel, external id) that exists, with
    that channel's profile as channel_profile_<field> (channel_profile_id
    None when nothing), in one query. Only _RESOLVED_FIELDS are loaded (the
    others are deferred): a customer per row of the file, where building
    whole ones through a raw queryset cost more than the query."""
    channels, external_ids = (list(values) for values in zip(*keys, strict=True))
    customer_columns = ", ".join(f"c.{name}" for name in _RESOLVED_FIELDS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {customer_columns}, i.channel, i.external_id, {_CHANNEL_PROFILE_COLUMNS}"
            f" FROM {_IDENTITY} i JOIN {_CUSTOMER} c ON c.id = i.customer_id"
            f" LEFT JOIN {_CHANNEL_PROFILE} p ON p.customer_id = c.id AND p.channel = i.channel"
            " WHERE (i.channel, i.external_id) IN"
            " (SELECT * FROM unnest(%s::varchar[], %s::varchar[]))",
            [channels, external_ids],
        )
        rows = cursor.fetchall()
    width = len(_RESOLVED_FIELDS)
    profile_names = [f"channel_profile_{name}" for name in ("id", *PROFILE_FIELDS)]
    found = {}
    for row in rows:
        customer = Customer.from_db(connection.alias, _RESOLVED_FIELDS, row[:width])
        for name, value in zip(profile_names, row[width + 2 :], strict=True):
            setattr(customer, name, value)
        found[(row[width], row[width + 1])] = customer
    return found


def _addresses_known(column: str, addresses: set[str]) -> set[str]:
    """Which of these addresses (normalised, in `column`) a live customer
    has. One lookup in the column's partial index per address, whatever
    the table's statistics say (a correlated subquery with LIMIT 1 is not
    turned into a join: at a few thousand customers, PostgreSQL hashes the
    whole table for each batch otherwise)."""
    addresses.discard("")
    if not addresses:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.value FROM unnest(%s::varchar[]) AS a(value)"
            f" WHERE (SELECT true FROM {_CUSTOMER} c WHERE c.{column} = a.value"
            # The "<> ''" condition is the partial index's.
            f" AND c.{column} <> '' AND c.merged_into_id IS NULL"
            " AND c.anonymized_at IS NULL LIMIT 1)",
            [sorted(addresses)],
        )
        return {value for (value,) in cursor.fetchall()}
