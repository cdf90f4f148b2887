"""Customers: identity resolution and upsert (a staff member's edits and the
claimant flag: crm.services.customer_edits; the profile's cleaning:
crm.services.profile)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.choices import Channel
from core.db import insert_if_absent
from core.timeline import actor_or_none
from core.types import Actor
from crm.models import (
    ChannelIdentity,
    Customer,
    CustomerChannelProfile,
    CustomerEvent,
    CustomerEventKind,
    Tag,
)
from crm.normalize import email_normalize, phone_normalize
from crm.services.profile import (  # noqa: F401  (re-exported)
    DERIVED_FIELDS,
    PROFILE_FIELDS,
    _apply_profile,
    _clean_profile,
    customer_derived_values,
    customer_search_keys_refresh,
    profile_save,
)


def customer_event_add(
    customer: Customer, kind: str, actor: Actor = None, **data: Any
) -> CustomerEvent:
    return CustomerEvent.objects.create(
        customer=customer, kind=kind, actor=actor_or_none(actor), data=data
    )


def customer_follow_merges(customer: Customer) -> Customer:
    """The surviving customer a (possibly merged) customer now lives in."""
    seen = set()
    while customer.merged_into_id is not None and customer.pk not in seen:
        seen.add(customer.pk)
        assert customer.merged_into is not None  # merged_into_id is set
        customer = customer.merged_into
    return customer


def _identity_external_id(channel: str, external_id: str, email: str, phone: str) -> str:
    """For the email and phone channels the address itself is the identity."""
    if channel == Channel.EMAIL:
        return email_normalize(external_id or email)
    if channel == Channel.PHONE:
        return phone_normalize(external_id or phone)
    return (external_id or "").strip()


@dataclass(frozen=True)
class Resolution:
    customer: Customer | None
    matched_by: str  # "identity", "email", "phone" or "" (no match)


def customer_resolve(
    *, channel: str = "", external_id: str = "", email: str = "", phone: str = ""
) -> Resolution:
    """Find the customer a person is, by channel identity, then normalised
    email, then normalised Japanese phone number (SPEC: identity resolution).
    For email and phone, a live customer with that address comes before an
    identity on the email or phone channel, the oldest customer first.
    At most two queries: the identities, then the customers."""
    email_norm = email_normalize(email)
    phone_norm = phone_normalize(phone)
    keys = [
        (key_channel, key)
        for key_channel, key in (
            (channel, external_id),
            (Channel.EMAIL, email_norm),
            (Channel.PHONE, phone_norm),
        )
        if key_channel and key
    ]
    if not keys:
        return Resolution(None, "")
    by_identity = _customers_by_identity(keys)
    customer = by_identity.get((channel, external_id)) if channel and external_id else None
    if customer is not None:
        return Resolution(customer_follow_merges(customer), "identity")
    best = _customer_by_address(email_norm, phone_norm) if email_norm or phone_norm else None
    for name, key_channel, key, field in (
        ("email", Channel.EMAIL, email_norm, "email_normalized"),
        ("phone", Channel.PHONE, phone_norm, "phone_normalized"),
    ):
        if not key:
            continue
        if best is not None and getattr(best, field) == key:
            return Resolution(best, name)
        if (key_channel, key) in by_identity:
            return Resolution(customer_follow_merges(by_identity[(key_channel, key)]), name)
    return Resolution(None, "")


# The two lookups of customer_resolve are written in SQL: they run on every
# order a store site sends, and building them with the ORM (a join with
# every customer column, OR-ed conditions, an ordering expression) took
# longer than PostgreSQL took to answer them (bench/README.md, api_ingest).
_CUSTOMER = Customer._meta.db_table
_IDENTITY = ChannelIdentity._meta.db_table
_CHANNEL_PROFILE = CustomerChannelProfile._meta.db_table
# The identity's channel profile rides along, as channel_profile_<field>: whether an
# upsert would change it is then known without another query.
_CHANNEL_PROFILE_COLUMNS = ", ".join(
    f"p.{name} AS channel_profile_{name}" for name in ("id", *PROFILE_FIELDS)
)


def _customers_by_identity(keys: list[tuple[str, str]]) -> dict[tuple[str, str], Customer]:
    """The customer behind each (channel, external id) that exists, with
    what that channel gave of their profile (`channel_profile_id` None when
    nothing). One branch per key, not OR-ed conditions: PostgreSQL can then
    reuse one generic plan of the prepared statement instead of planning it
    anew."""
    branch = (
        "SELECT c.*, i.channel AS identity_channel, i.external_id AS identity_external_id,"
        f" {_CHANNEL_PROFILE_COLUMNS}"
        f" FROM {_IDENTITY} i JOIN {_CUSTOMER} c ON c.id = i.customer_id"
        f" LEFT JOIN {_CHANNEL_PROFILE} p ON p.customer_id = c.id AND p.channel = i.channel"
        " WHERE i.channel = %s AND i.external_id = %s"
    )
    customers = Customer.objects.raw(
        " UNION ALL ".join([branch] * len(keys)), [value for key in keys for value in key]
    )
    return {(c.identity_channel, c.identity_external_id): c for c in customers}  # type: ignore[attr-defined]  # columns the raw SQL selects


def _customer_by_address(email_norm: str, phone_norm: str) -> Customer | None:
    """The best live customer by address, in one row: an email match (the
    oldest) before a phone match (the oldest). The "<> ''" conditions are
    those of the partial indexes: they let a generic plan use them."""
    customers = Customer.objects.raw(
        f"SELECT * FROM {_CUSTOMER}"
        " WHERE ((email_normalized = %s AND email_normalized <> '')"
        " OR (phone_normalized = %s AND phone_normalized <> ''))"
        " AND merged_into_id IS NULL AND anonymized_at IS NULL"
        " ORDER BY CASE WHEN email_normalized = %s THEN 0 ELSE 1 END, id LIMIT 1",
        # A blank address matches nothing: blanks are never looked up.
        [email_norm or None, phone_norm or None, email_norm or None],
    )
    return next(iter(customers), None)


def customer_upsert(
    *,
    channel: str = "",
    external_id: str = "",
    identity_display_name: str = "",
    tags: Sequence[str] = (),
    actor: Actor = None,
    **profile: Any,
) -> tuple[Customer, bool]:
    """Create or update the customer this person is, attaching the channel
    identity. Returns (customer, created).

    Values given through the customer's own channel identity overwrite;
    values arriving by email or phone match only fill blanks, so a mall
    cannot overwrite what the shop's own site knows.
    """
    customer, outcome = customer_upsert_outcome(
        channel=channel,
        external_id=external_id,
        identity_display_name=identity_display_name,
        tags=tags,
        actor=actor,
        **profile,
    )
    return customer, outcome == UpsertOutcome.CREATED


class UpsertOutcome:
    """What an upsert did: the import counts these."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


def customer_upsert_outcome(
    *,
    channel: str = "",
    external_id: str = "",
    identity_display_name: str = "",
    tags: Sequence[str] = (),
    actor: Actor = None,
    **profile: Any,
) -> tuple[Customer, str]:
    """`customer_upsert`, telling what it did (an UpsertOutcome): created,
    updated (a profile value, an identity) or unchanged."""
    unknown = set(profile) - set(PROFILE_FIELDS)
    if unknown:
        raise TypeError(f"customer_upsert() got unknown fields: {sorted(unknown)}")
    if channel and channel not in Channel.values:
        raise ValidationError({"channel": [_("Unknown channel: %(value)s.") % {"value": channel}]})
    cleaned = _clean_profile(profile)
    external_id = _identity_external_id(
        channel, external_id, cleaned.get("email", ""), cleaned.get("phone", "")
    )
    if channel and not external_id and channel not in (Channel.EMAIL, Channel.PHONE):
        raise ValidationError({"external_id": [_("This field is required for the channel.")]})
    resolution = _resolve(channel, external_id, cleaned)
    if _nothing_to_write(resolution, cleaned, tags):
        # A repeat buyer known by this identity, with the profile we hold
        # (most orders of a store site's feed): a read, no transaction.
        assert resolution.customer is not None  # _nothing_to_write found them
        return resolution.customer, UpsertOutcome.UNCHANGED
    for attempt in range(2):
        try:
            with transaction.atomic():
                return _customer_upsert_once(
                    resolution=resolution
                    if attempt == 0
                    else _resolve(channel, external_id, cleaned),
                    channel=channel,
                    external_id=external_id,
                    identity_display_name=identity_display_name,
                    tags=tags,
                    profile=cleaned,
                    actor=actor_or_none(actor),
                )
        except IntegrityError:
            # Another request created the same identity at the same moment:
            # the second attempt finds it and updates instead.
            if attempt:
                raise
    raise AssertionError("unreachable")


def _profile_full_clean(customer: Customer) -> None:
    """Field validation for a profile write. The table's check constraints
    involve no profile field (tests/crm/test_customers.py checks that), so
    they are left to the database instead of one query each."""
    customer.full_clean(exclude=["tags"], validate_constraints=False)


def _resolve(channel: str, external_id: str, profile: dict[str, Any]) -> Resolution:
    return customer_resolve(
        channel=channel,
        external_id=external_id,
        email=profile.get("email", ""),
        phone=profile.get("phone", ""),
    )


def _nothing_to_write(resolution: Resolution, profile: dict[str, Any], tags: Sequence[str]) -> bool:
    """Whether the upsert would leave everything as it is: the person was
    found by this very identity (nothing to attach), no tags to add, and no
    profile value would change."""
    customer = resolution.customer
    if customer is None or resolution.matched_by != "identity" or tags:
        return False
    if profile and getattr(customer, "channel_profile_id", None) is None:
        return False  # the channel's own profile is still to be written
    # Values given through the customer's own identity overwrite (see
    # customer_upsert), in the merged profile and in the channel's: any
    # difference is a write.
    return all(
        getattr(customer, name) == value and getattr(customer, f"channel_profile_{name}") == value
        for name, value in profile.items()
    )


def _profile_news(
    resolution: Resolution, profile: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(values that overwrite, values that only fill blanks). Values given
    through the customer's own identity overwrite, except those the channel
    gave before exactly as now: a channel sending what it sent already is
    no news, and does not undo what another channel or a person set since
    (a file imported twice changes nothing). By email or phone match,
    everything only fills blanks."""
    if resolution.matched_by != "identity":
        return {}, profile
    customer = resolution.customer
    if getattr(customer, "channel_profile_id", None) is None:
        return profile, {}
    news = {
        name: value
        for name, value in profile.items()
        if getattr(customer, f"channel_profile_{name}") != value
    }
    return news, {name: value for name, value in profile.items() if name not in news}


def _customer_upsert_once(
    *,
    resolution: Resolution,
    channel: str,
    external_id: str,
    identity_display_name: str,
    tags: Sequence[str],
    profile: dict[str, Any],
    actor: Actor,
) -> tuple[Customer, str]:
    customer = resolution.customer
    created = customer is None
    changed: list[str] = []
    if customer is None:
        customer = Customer()
        _apply_profile(customer, profile, overwrite=True)
        _profile_full_clean(customer)
        profile_save(customer)
        customer_event_add(customer, CustomerEventKind.CREATED, actor, channel=channel)
    else:
        news, repeats = _profile_news(resolution, profile)

        def apply(target: Customer) -> list[str]:
            return _apply_profile(target, news, overwrite=True) + _apply_profile(
                target, repeats, overwrite=False
            )

        # Most repeat buyers send the profile we already hold: lock and
        # write only when something would change.
        changed = apply(customer)
        if changed:
            customer = Customer.objects.select_for_update().get(pk=customer.pk)
            changed = apply(customer)
        if changed:
            _profile_full_clean(customer)
            profile_save(customer, changed)
            customer_event_add(
                customer, CustomerEventKind.UPDATED, actor, fields=changed, channel=channel
            )
    identity_added = bool(channel and external_id and resolution.matched_by != "identity")
    if identity_added:
        ChannelIdentity.objects.create(
            customer=customer,
            channel=channel,
            external_id=external_id,
            display_name=identity_display_name[:255],
        )
        if not created:
            customer_event_add(
                customer,
                CustomerEventKind.IDENTITY_ADDED,
                actor,
                channel=channel,
                external_id=external_id,
                matched_by=resolution.matched_by,
            )
    if channel:
        _channel_profile_write(
            customer,
            channel,
            profile,
            seen=getattr(resolution.customer, "channel_profile_id", None) is not None,
        )
    if tags:
        customer_tags_add(customer=customer, names=tags)
    if created:
        return customer, UpsertOutcome.CREATED
    if changed or identity_added:
        return customer, UpsertOutcome.UPDATED
    return customer, UpsertOutcome.UNCHANGED


def _channel_profile_write(
    customer: Customer, channel: str, profile: dict[str, Any], *, seen: bool
) -> None:
    """Keep what `channel` gave of the customer's personal data: the values
    of `profile` (cleaned, only those given) overwrite that channel's; the
    other channels' profiles are left alone. `seen`: the identity lookup
    found the channel's profile."""
    if not profile:
        return
    row = CustomerChannelProfile(customer=customer, channel=channel, **profile)
    row.email_normalized = email_normalize(row.email)
    row.phone_normalized = phone_normalize(row.phone)
    row.full_clean(exclude=["customer"], validate_unique=False, validate_constraints=False)
    values = dict(profile, updated_at=timezone.now())
    if "email" in profile:
        values["email_normalized"] = row.email_normalized
    if "phone" in profile:
        values["phone_normalized"] = row.phone_normalized
    existing = CustomerChannelProfile.objects.filter(customer=customer, channel=channel)
    # A profile seen by the identity lookup is updated in one statement;
    # otherwise it is inserted, or updated when it was there after all.
    if seen and existing.update(**values):
        return
    if not insert_if_absent(row, unique_fields=["customer", "channel"]):
        existing.update(**values)


def customer_tags_add(*, customer: Customer, names: Iterable[str]) -> None:
    clean = sorted({name.strip() for name in names if name and name.strip()})
    if not clean:
        return
    existing = {tag.name: tag for tag in Tag.objects.filter(name__in=clean)}
    missing = [Tag(name=name) for name in clean if name not in existing]
    if missing:
        Tag.objects.bulk_create(missing, ignore_conflicts=True)
        existing = {tag.name: tag for tag in Tag.objects.filter(name__in=clean)}
    customer.tags.add(*existing.values())
