"""Every write to customers, identities, orders and consent goes through here."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import (
    NON_COUNTING_ORDER_STATUSES,
    Channel,
    ChannelIdentity,
    ConsentAction,
    ConsentChannel,
    ConsentEvent,
    ConsentSource,
    ConsentState,
    Customer,
    CustomerEvent,
    CustomerEventKind,
    LifecycleSegment,
    Order,
    OrderLine,
    OrderStatus,
    Prefecture,
    Tag,
)
from crm.normalize import email_normalize, kana_normalize, phone_normalize, postal_code_normalize

logger = logging.getLogger(__name__)

# Fields a caller may set on a customer, and how each is cleaned.
PROFILE_FIELDS = (
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "email",
    "phone",
    "postal_code",
    "prefecture",
    "address",
    "birthday",
)
_KANA_FIELDS = {"family_name_kana", "given_name_kana"}


def _clean_profile(data: dict[str, Any]) -> dict[str, Any]:
    """Trim and normalise the profile fields that were given (None and ""
    mean "not given"). Raises ValidationError naming the field."""
    cleaned: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name in PROFILE_FIELDS:
        value = data.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if name == "birthday":
            if not isinstance(value, date):
                errors[name] = [_("Enter a date.")]
            else:
                cleaned[name] = value
            continue
        value = str(value).strip()
        if name in _KANA_FIELDS:
            value = kana_normalize(value)
        elif name == "email":
            if not email_normalize(value):
                errors[name] = [_("Enter a valid email address.")]
                continue
        elif name == "postal_code":
            normalized = postal_code_normalize(value)
            if not normalized:
                errors[name] = [_("A postal code has 7 digits, e.g. 150-0001.")]
                continue
            value = normalized
        elif name == "prefecture" and value not in Prefecture.values:
            errors[name] = [_("Unknown prefecture: %(value)s.") % {"value": value}]
            continue
        cleaned[name] = value
    if errors:
        raise ValidationError(errors)
    return cleaned


def _apply_profile(customer: Customer, profile: dict[str, Any], *, overwrite: bool) -> list[str]:
    """Set profile values on the instance; return the names that changed."""
    changed = []
    for name, value in profile.items():
        current = getattr(customer, name)
        if current == value or (current and not overwrite):
            continue
        setattr(customer, name, value)
        changed.append(name)
    customer.email_normalized = email_normalize(customer.email)
    customer.phone_normalized = phone_normalize(customer.phone)
    return changed


def _event(customer: Customer, kind: str, actor=None, **data: Any) -> CustomerEvent:
    return CustomerEvent.objects.create(customer=customer, kind=kind, actor=actor, data=data)


def _actor(actor):
    """Only a real user is stored as an actor (not an API client)."""
    return actor if getattr(actor, "pk", None) else None


def customer_follow_merges(customer: Customer) -> Customer:
    """The surviving customer a (possibly merged) customer now lives in."""
    seen = set()
    while customer.merged_into_id is not None and customer.pk not in seen:
        seen.add(customer.pk)
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
    condition = Q()
    for key_channel, key in keys:
        condition |= Q(channel=key_channel, external_id=key)
    identities = {
        (identity.channel, identity.external_id): identity
        for identity in ChannelIdentity.objects.select_related("customer").filter(condition)
    }
    identity = identities.get((channel, external_id)) if channel and external_id else None
    if identity is not None:
        return Resolution(customer_follow_merges(identity.customer), "identity")
    # The best live customer by address, in one row: an email match (the
    # oldest) before a phone match (the oldest).
    best = None
    if email_norm or phone_norm:
        by_address = Q()
        if email_norm:
            by_address |= Q(email_normalized=email_norm)
        if phone_norm:
            by_address |= Q(phone_normalized=phone_norm)
        best = (
            Customer.objects.filter(
                by_address, merged_into__isnull=True, anonymized_at__isnull=True
            )
            .annotate(
                by_email=Case(When(email_normalized=email_norm, then=Value(0)), default=Value(1))
            )
            .order_by("by_email", "id")
            .first()
        )
    for name, key_channel, key, field in (
        ("email", Channel.EMAIL, email_norm, "email_normalized"),
        ("phone", Channel.PHONE, phone_norm, "phone_normalized"),
    ):
        if not key:
            continue
        if best is not None and getattr(best, field) == key:
            return Resolution(best, name)
        if (key_channel, key) in identities:
            return Resolution(customer_follow_merges(identities[(key_channel, key)].customer), name)
    return Resolution(None, "")


def customer_upsert(
    *,
    channel: str = "",
    external_id: str = "",
    identity_display_name: str = "",
    tags: Sequence[str] = (),
    actor=None,
    **profile: Any,
) -> tuple[Customer, bool]:
    """Create or update the customer this person is, attaching the channel
    identity. Returns (customer, created).

    Values given through the customer's own channel identity overwrite;
    values arriving by email or phone match only fill blanks, so a mall
    cannot overwrite what the shop's own site knows.
    """
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
    for attempt in range(2):
        try:
            with transaction.atomic():
                return _customer_upsert_once(
                    channel=channel,
                    external_id=external_id,
                    identity_display_name=identity_display_name,
                    tags=tags,
                    profile=cleaned,
                    actor=_actor(actor),
                )
        except IntegrityError:
            # Another request created the same identity at the same moment:
            # the second attempt finds it and updates instead.
            if attempt:
                raise
    raise AssertionError("unreachable")


def _profile_full_clean(customer: Customer) -> None:
    """Field validation for a profile write. The table's check constraints
    involve no profile field (tests/crm/test_services.py checks that), so
    they are left to the database instead of one query each."""
    customer.full_clean(exclude=["tags"], validate_constraints=False)


def _customer_upsert_once(
    *,
    channel: str,
    external_id: str,
    identity_display_name: str,
    tags: Sequence[str],
    profile: dict[str, Any],
    actor,
) -> tuple[Customer, bool]:
    resolution = customer_resolve(
        channel=channel,
        external_id=external_id,
        email=profile.get("email", ""),
        phone=profile.get("phone", ""),
    )
    customer = resolution.customer
    created = customer is None
    if created:
        customer = Customer()
        _apply_profile(customer, profile, overwrite=True)
        _profile_full_clean(customer)
        customer.save()
        _event(customer, CustomerEventKind.CREATED, actor, channel=channel)
    else:
        overwrite = resolution.matched_by == "identity"
        # Most repeat buyers send the profile we already hold: lock and
        # write only when something would change.
        changed = _apply_profile(customer, profile, overwrite=overwrite)
        if changed:
            customer = Customer.objects.select_for_update().get(pk=customer.pk)
            changed = _apply_profile(customer, profile, overwrite=overwrite)
        if changed:
            _profile_full_clean(customer)
            customer.save(
                update_fields=[*changed, "email_normalized", "phone_normalized", "updated_at"]
            )
            _event(customer, CustomerEventKind.UPDATED, actor, fields=changed, channel=channel)
    if channel and external_id and resolution.matched_by != "identity":
        ChannelIdentity.objects.create(
            customer=customer,
            channel=channel,
            external_id=external_id,
            display_name=identity_display_name[:255],
        )
        if not created:
            _event(
                customer,
                CustomerEventKind.IDENTITY_ADDED,
                actor,
                channel=channel,
                external_id=external_id,
                matched_by=resolution.matched_by,
            )
    if tags:
        customer_tags_add(customer=customer, names=tags)
    return customer, created


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


def customer_update(
    *, customer: Customer, actor=None, notes: str | None = None, **profile
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
            value = cleaned.get(name, None if name == "birthday" else "")
            if getattr(customer, name) != value:
                setattr(customer, name, value)
                changed.append(name)
        if notes is not None and notes != customer.notes:
            customer.notes = notes
            changed.append("notes")
        customer.email_normalized = email_normalize(customer.email)
        customer.phone_normalized = phone_normalize(customer.phone)
        if changed:
            _profile_full_clean(customer)
            customer.save(
                update_fields=[*changed, "email_normalized", "phone_normalized", "updated_at"]
            )
            _event(customer, CustomerEventKind.UPDATED, _actor(actor), fields=changed)
    return customer


# --- Claimant flag (SPEC rule 7) -------------------------------------------


def customer_claimant_set(*, customer: Customer, reason: str, actor) -> Customer:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"claimant_reason": [_("Say why this customer is a claimant.")]})
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        customer.is_claimant = True
        customer.claimant_reason = reason
        customer.claimant_set_by = _actor(actor)
        customer.claimant_set_at = timezone.now()
        customer.save(
            update_fields=[
                "is_claimant",
                "claimant_reason",
                "claimant_set_by",
                "claimant_set_at",
                "updated_at",
            ]
        )
        _event(customer, CustomerEventKind.CLAIMANT_FLAGGED, _actor(actor), reason=reason)
        lifecycle_recompute(customer_ids=[customer.pk])
    customer.refresh_from_db()
    return customer


def customer_claimant_clear(*, customer: Customer, actor, reason: str = "") -> Customer:
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        if not customer.is_claimant:
            return customer
        previous = customer.claimant_reason
        customer.is_claimant = False
        customer.claimant_reason = ""
        customer.claimant_set_by = None
        customer.claimant_set_at = None
        customer.save(
            update_fields=[
                "is_claimant",
                "claimant_reason",
                "claimant_set_by",
                "claimant_set_at",
                "updated_at",
            ]
        )
        _event(
            customer,
            CustomerEventKind.CLAIMANT_CLEARED,
            _actor(actor),
            reason=reason,
            previous_reason=previous,
        )
        lifecycle_recompute(customer_ids=[customer.pk])
    customer.refresh_from_db()
    return customer


# --- Merge ------------------------------------------------------------------

# Relations to Customer that customer_merge handles itself rather than by
# re-pointing the foreign key.
_MERGE_SPECIAL = {(ConsentState, "customer")}


def customer_merge(*, winner: Customer, loser: Customer, actor) -> Customer:
    """Fold `loser` into `winner`: identities, orders, consent history,
    events, tags and everything else that points at a customer move over;
    blanks of the winner are filled from the loser; the loser stays as a
    stub pointing at the winner. Both get an event."""
    if winner.pk == loser.pk:
        raise ValidationError(_("A customer cannot be merged with itself."))
    actor = _actor(actor)
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
            count = model._base_manager.filter(**{field: loser}).update(**{field: winner})
            if count:
                moved[model._meta.label_lower] = count
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
            winner.is_claimant = True
            winner.claimant_reason = loser.claimant_reason
            winner.claimant_set_by = loser.claimant_set_by
            winner.claimant_set_at = loser.claimant_set_at
            changed += ["is_claimant", "claimant_reason", "claimant_set_by", "claimant_set_at"]
        winner.email_normalized = email_normalize(winner.email)
        winner.phone_normalized = phone_normalize(winner.phone)
        winner.save(update_fields=[*changed, "email_normalized", "phone_normalized", "updated_at"])

        ConsentState.objects.filter(customer=loser).delete()
        _consent_state_rebuild(winner)

        loser.merged_into = winner
        loser.save(update_fields=["merged_into", "updated_at"])
        _event(winner, CustomerEventKind.MERGED, actor, loser_id=loser.pk, moved=moved)
        _event(loser, CustomerEventKind.MERGED_INTO, actor, winner_id=winner.pk)
        lifecycle_recompute(customer_ids=[winner.pk, loser.pk])
    winner.refresh_from_db()
    return winner


# --- Orders -----------------------------------------------------------------


@dataclass(frozen=True)
class OrderLineData:
    sku: str
    name: str
    quantity: int
    unit_price: int


def order_upsert(
    *,
    channel: str,
    order_number: str,
    customer: Customer,
    ordered_at: datetime,
    total: int,
    status: str = OrderStatus.PAID,
    shipped_at: datetime | None = None,
    delivered_at: datetime | None = None,
    lines: Sequence[OrderLineData] | None = None,
) -> tuple[Order, bool]:
    """Create or update an order by (channel, order number), replace its
    lines when given, and keep the customer's lifecycle metrics right.
    Returns (order, created)."""
    if total < 0:
        raise ValidationError({"total": [_("Ensure this value is greater than or equal to 0.")]})
    customer = customer_follow_merges(customer)
    fields = {
        "customer": customer,
        "ordered_at": ordered_at,
        "total": total,
        "status": status,
        "shipped_at": shipped_at,
        "delivered_at": delivered_at,
    }
    for attempt in range(2):
        try:
            with transaction.atomic():
                order = (
                    Order.objects.select_for_update()
                    .filter(channel=channel, order_number=order_number)
                    .first()
                )
                created = order is None
                previous_customer_id = None if created else order.customer_id
                if created:
                    order = Order(channel=channel, order_number=order_number, **fields)
                else:
                    for name, value in fields.items():
                        setattr(order, name, value)
                # Fields only: the customer is a row we hold, the (channel,
                # order number) row is locked above or absent (a racing
                # insert fails on the unique index and is retried), and the
                # one check constraint is tested before the transaction.
                order.full_clean(
                    exclude=["customer"], validate_unique=False, validate_constraints=False
                )
                order.save()
                if lines is not None:
                    if not created:
                        order.lines.all().delete()
                    OrderLine.objects.bulk_create(
                        OrderLine(order=order, **line.__dict__) for line in lines
                    )
                lifecycle_recompute(customer_ids={customer.pk, previous_customer_id or customer.pk})
                return order, created
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


# --- Consent (SPEC rule 8) -------------------------------------------------


def consent_record(
    *,
    customer: Customer,
    channel: str,
    action: str,
    source: str,
    occurred_at: datetime | None = None,
    wording_version: str = "",
    note: str = "",
    actor=None,
) -> ConsentEvent:
    """Append one opt-in or opt-out to the ledger and keep the current state
    equal to the latest event for that channel (by occurred_at, then id), so
    an event that arrives late never overrides a newer one."""
    errors = {}
    if channel not in ConsentChannel.values:
        errors["channel"] = [_("Unknown consent channel: %(value)s.") % {"value": channel}]
    if action not in ConsentAction.values:
        errors["action"] = [_("Use opt_in or opt_out.")]
    if source not in ConsentSource.values:
        errors["source"] = [_("Unknown source: %(value)s.") % {"value": source}]
    now = timezone.now()
    occurred_at = occurred_at or now
    if occurred_at > now + timedelta(minutes=5):
        errors["occurred_at"] = [_("A consent event cannot be in the future.")]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        # The customer row is the lock that serialises consent changes.
        customer = Customer.objects.select_for_update().get(pk=customer_follow_merges(customer).pk)
        event = ConsentEvent.objects.create(
            customer=customer,
            channel=channel,
            action=action,
            source=source,
            occurred_at=occurred_at,
            wording_version=wording_version[:50],
            note=note[:255],
            actor=_actor(actor),
        )
        state = ConsentState.objects.filter(customer=customer, channel=channel).first()
        if state is None:
            ConsentState.objects.create(
                customer=customer,
                channel=channel,
                granted=action == ConsentAction.OPT_IN,
                changed_at=occurred_at,
                event=event,
            )
        elif (occurred_at, event.pk) >= (state.changed_at, state.event_id):
            state.granted = action == ConsentAction.OPT_IN
            state.changed_at = occurred_at
            state.event = event
            state.save(update_fields=["granted", "changed_at", "event"])
    return event


def _consent_state_rebuild(customer: Customer) -> None:
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


# --- Lifecycle metrics and segments (SPEC rule 7) --------------------------


def lifecycle_recompute(
    *, customer_ids: Iterable[int] | None = None, now: datetime | None = None
) -> int:
    """Recompute order metrics and the lifecycle segment, set-based: one
    UPDATE ... FROM over an aggregate of the orders, touching only the rows
    whose values change. All customers, or only `customer_ids`. Returns the
    number of customers changed. A customer whose metrics another
    transaction changes while this runs keeps that newer result.

    Segments, first match wins:
      claimant  flagged by a person
      prospect  no counted order
      sleeping  last order more than LIFECYCLE_SLEEPING_DAYS ago
      vip       at least LIFECYCLE_VIP_MIN_ORDERS orders and
                LIFECYCLE_VIP_MIN_SPENT yen spent
      regular   at least LIFECYCLE_REGULAR_MIN_ORDERS orders
      new       otherwise (one order)
    Cancelled and returned orders do not count.
    """
    now = now or timezone.now()
    ids = None if customer_ids is None else sorted({int(i) for i in customer_ids})
    if ids == []:
        return 0
    params: dict[str, Any] = {
        "sleeping_before": connection.ops.adapt_datetimefield_value(
            now - timedelta(days=settings.LIFECYCLE_SLEEPING_DAYS)
        ),
        "vip_orders": settings.LIFECYCLE_VIP_MIN_ORDERS,
        "vip_spent": settings.LIFECYCLE_VIP_MIN_SPENT,
        "regular_orders": settings.LIFECYCLE_REGULAR_MIN_ORDERS,
        "claimant": LifecycleSegment.CLAIMANT.value,
        "prospect": LifecycleSegment.PROSPECT.value,
        "sleeping": LifecycleSegment.SLEEPING.value,
        "vip": LifecycleSegment.VIP.value,
        "regular": LifecycleSegment.REGULAR.value,
        "new": LifecycleSegment.NEW.value,
    }
    excluded = []
    for index, status in enumerate(NON_COUNTING_ORDER_STATUSES):
        params[f"excluded_{index}"] = status.value
        excluded.append(f"%(excluded_{index})s")
    order_filter = customer_filter = ""
    if ids is not None:
        placeholders = []
        for index, customer_id in enumerate(ids):
            params[f"id_{index}"] = customer_id
            placeholders.append(f"%(id_{index})s")
        id_list = ", ".join(placeholders)
        order_filter = f"AND o.customer_id IN ({id_list})"
        customer_filter = f"WHERE c2.id IN ({id_list})"
    postgres = connection.vendor == "postgresql"
    distinct, same = ("IS DISTINCT FROM", "IS NOT DISTINCT FROM") if postgres else ("IS NOT", "IS")
    changed = f"""
        SELECT * FROM (
            SELECT
                c2.id AS id,
                c2.first_order_at AS old_first_at,
                c2.last_order_at AS old_last_at,
                c2.order_count AS old_n,
                c2.total_spent AS old_spent,
                c2.lifecycle_segment AS old_segment,
                agg.first_at AS first_at,
                agg.last_at AS last_at,
                COALESCE(agg.n, 0) AS n,
                COALESCE(agg.spent, 0) AS spent,
                CASE
                    WHEN c2.is_claimant THEN %(claimant)s
                    WHEN agg.n IS NULL THEN %(prospect)s
                    WHEN agg.last_at < %(sleeping_before)s THEN %(sleeping)s
                    WHEN agg.n >= %(vip_orders)s AND agg.spent >= %(vip_spent)s THEN %(vip)s
                    WHEN agg.n >= %(regular_orders)s THEN %(regular)s
                    ELSE %(new)s
                END AS segment
            FROM crm_customer AS c2
            LEFT JOIN (
                SELECT
                    o.customer_id AS customer_id,
                    MIN(o.ordered_at) AS first_at,
                    MAX(o.ordered_at) AS last_at,
                    COUNT(*) AS n,
                    CAST(SUM(o.total) AS BIGINT) AS spent
                FROM crm_order AS o
                WHERE o.status NOT IN ({", ".join(excluded)}) {order_filter}
                GROUP BY o.customer_id
            ) AS agg ON agg.customer_id = c2.id
            {customer_filter}
        ) AS fresh
        WHERE old_first_at {distinct} first_at
            OR old_last_at {distinct} last_at
            OR old_n <> n
            OR old_spent <> spent
            OR old_segment <> segment
    """
    if postgres and ids is None:
        # Joined plainly to `changed`, PostgreSQL would scan and hash the
        # whole customer table a second time (it cannot know that few rows
        # changed); given the changed ids as an array, it looks each one up
        # by primary key.
        prefix = f"WITH changed AS ({changed})"
        source, only_changed = "changed", "AND c.id = ANY(ARRAY(SELECT id FROM changed))"
    else:
        # A plain UPDATE statement: SQLite reports rowcount only for those.
        prefix, source, only_changed = "", f"({changed}) AS changed", ""
    # The old_* conditions skip a customer whose metrics another transaction
    # changed after `changed` was read (an order upsert during the nightly
    # run): its newer figures stay.
    sql = f"""
        {prefix}
        UPDATE crm_customer AS c SET
            first_order_at = changed.first_at,
            last_order_at = changed.last_at,
            order_count = changed.n,
            total_spent = changed.spent,
            lifecycle_segment = changed.segment
        FROM {source}
        WHERE c.id = changed.id {only_changed}
            AND c.first_order_at {same} changed.old_first_at
            AND c.last_order_at {same} changed.old_last_at
            AND c.order_count = changed.old_n
            AND c.total_spent = changed.old_spent
            AND c.lifecycle_segment = changed.old_segment
    """
    full_run = postgres and ids is None
    with transaction.atomic() if full_run else nullcontext(), connection.cursor() as cursor:
        if full_run:
            # Read the orders in customer order from the covering index
            # crm_order_customer and merge them with the customer table's
            # primary key: no hash table of a million groups. The planner
            # prices that plan above hashing both sides, but on a warm cache
            # it takes about half the time (bench/lifecycle.py prints both).
            cursor.execute("SET LOCAL enable_hashagg = off")
            cursor.execute("SET LOCAL enable_hashjoin = off")
        cursor.execute(sql, params)
        return cursor.rowcount
