"""Reads that join or filter. Each returns a QuerySet that already holds
the select_related / prefetch_related its callers need (no N+1)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import (
    Aggregate,
    BigIntegerField,
    Case,
    CharField,
    Count,
    DateTimeField,
    Exists,
    F,
    Field,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from crm.models import (
    NON_COUNTING_ORDER_STATUSES,
    STORE_SITE_CONSENT_SOURCES,
    ChannelIdentity,
    ConsentChannel,
    ConsentEvent,
    ConsentState,
    Customer,
    CustomerChannelProfile,
    CustomerEvent,
    LifecycleSegment,
    Order,
)
from crm.normalize import email_normalize, kana_normalize, phone_normalize


def _is_katakana(text: str) -> bool:
    return all("\u30a0" <= ch <= "\u30ff" for ch in text)


def customer_search_q(term: str, *, channels: Iterable[str] | None = None) -> Q:
    """One search box for people: an email, a phone number in any format,
    a name in kanji, or a reading in hiragana / katakana / half-width kana.
    With `channels` (an API key's), only what those channels gave is
    searched: their profiles and identities, not the merged profile."""
    term = (term or "").strip()
    if not term:
        return Q()
    identities = ChannelIdentity.objects.filter(customer=OuterRef("pk"))
    if channels is None:

        def profile(query: Q) -> Q:
            return query

    else:
        channels = list(channels)
        identities = identities.filter(channel__in=channels)

        def profile(query: Q) -> Q:
            return Q(Exists(outer_customer_channel_profiles(channels).filter(query)))

    email = email_normalize(term)
    if email:
        return profile(Q(email_normalized=email)) | Q(
            Exists(identities.filter(channel="email", external_id=email))
        )
    by_identity = Q(Exists(identities.filter(external_id=term)))
    phone = phone_normalize(term)
    if phone:
        return profile(Q(phone_normalized=phone)) | by_identity
    if "@" in term:
        return profile(Q(email_normalized__startswith=term.lower()))
    if " " not in term and any(ch.isdigit() for ch in term):
        return by_identity
    kana = kana_normalize(term)
    query = Q()
    for part in kana.split(" "):
        if not part:
            continue
        if _is_katakana(part):
            query &= Q(family_name_kana__startswith=part) | Q(given_name_kana__startswith=part)
        else:
            query &= Q(family_name__icontains=part) | Q(given_name__icontains=part)
    return profile(query)


def outer_customer_channel_profiles(channels: Iterable[str]) -> QuerySet[CustomerChannelProfile]:
    """The profiles `channels` gave of the outer query's customer."""
    return CustomerChannelProfile.objects.filter(
        customer=OuterRef("pk"), channel__in=list(channels)
    )


def customers_visible(*, channels: Iterable[str] | None) -> QuerySet[Customer]:
    """Live (not merged) customers; with `channels`, only those known on one
    of them (by identity or order) — what an API key scoped to those
    channels may see."""
    queryset = Customer.objects.filter(merged_into__isnull=True)
    if channels is not None:
        channels = list(channels)
        queryset = queryset.filter(
            Exists(ChannelIdentity.objects.filter(customer=OuterRef("pk"), channel__in=channels))
            | Exists(Order.objects.filter(customer=OuterRef("pk"), channel__in=channels))
        )
    return queryset


def customer_list(*, channels: Iterable[str] | None, search: str = "") -> QuerySet[Customer]:
    """Customers with their identities, consent and tags. With `channels`
    (an API key's), what a key may read of them (SPEC rule 17): the
    identities and the profiles of those channels only (`key_profiles`,
    newest first: see channel_profile_value), and the order figures and
    lifecycle segment of the counted orders on those channels only
    (`key_order_count`, `key_total_spent`, `key_first_order_at`,
    `key_last_order_at`, `key_segment`), in the same query."""
    channels = None if channels is None else list(channels)
    identities = ChannelIdentity.objects.order_by("channel", "id")
    if channels is not None:
        identities = identities.filter(channel__in=channels)
    queryset = customers_visible(channels=channels).prefetch_related(
        Prefetch("identities", queryset=identities),
        Prefetch("consent_states", queryset=ConsentState.objects.order_by("channel")),
        "tags",
    )
    if channels is not None:
        queryset = _key_figures(queryset, channels).prefetch_related(
            Prefetch(
                "channel_profiles",
                queryset=CustomerChannelProfile.objects.filter(channel__in=channels).order_by(
                    "-updated_at", "-id"
                ),
                to_attr="key_profiles",
            )
        )
    if search:
        queryset = queryset.filter(customer_search_q(search, channels=channels)).distinct()
    return queryset


def _key_figures(queryset: QuerySet[Customer], channels: list[str]) -> QuerySet[Customer]:
    """The order figures and the lifecycle segment of the customer's counted
    orders on `channels`, by the rules of crm.services.lifecycle_recompute."""
    orders = (
        Order.objects.filter(customer=OuterRef("pk"), channel__in=channels)
        .exclude(status__in=NON_COUNTING_ORDER_STATUSES)
        .order_by()
        .values("customer")
    )

    def figure(aggregate: Aggregate, field: Field) -> Subquery:
        return Subquery(orders.annotate(value=aggregate).values("value"), output_field=field)

    queryset = queryset.annotate(
        key_order_count=Coalesce(figure(Count("*"), IntegerField()), 0),
        key_total_spent=Coalesce(figure(Sum("total"), BigIntegerField()), 0),
        key_first_order_at=figure(Min("ordered_at"), DateTimeField()),
        key_last_order_at=figure(Max("ordered_at"), DateTimeField()),
    )
    sleeping_before = timezone.now() - timedelta(days=settings.LIFECYCLE_SLEEPING_DAYS)
    return queryset.annotate(
        key_segment=Case(
            When(is_claimant=True, then=Value(LifecycleSegment.CLAIMANT)),
            When(key_order_count=0, then=Value(LifecycleSegment.PROSPECT)),
            When(key_last_order_at__lt=sleeping_before, then=Value(LifecycleSegment.SLEEPING)),
            When(
                key_order_count__gte=settings.LIFECYCLE_VIP_MIN_ORDERS,
                key_total_spent__gte=settings.LIFECYCLE_VIP_MIN_SPENT,
                then=Value(LifecycleSegment.VIP),
            ),
            When(
                key_order_count__gte=settings.LIFECYCLE_REGULAR_MIN_ORDERS,
                then=Value(LifecycleSegment.REGULAR),
            ),
            default=Value(LifecycleSegment.NEW),
            output_field=CharField(),
        )
    )


def channel_profile_value(customer: Customer, name: str) -> Any:
    """A profile field as the key's channels gave it: the newest non-blank
    value among `customer.key_profiles` (customer_list), else blank."""
    for profile in customer.key_profiles:  # type: ignore[attr-defined]  # prefetched by customer_list (to_attr)
        value = getattr(profile, name)
        if value not in ("", None):
            return value
    return Customer.blank_value(name)


def customer_known_on(*, customer: Customer, channels: Iterable[str], before: datetime) -> bool:
    """Whether the customer was known on `channels` before `before` (by an
    identity, an order or a profile): a key that first meets a person known
    only elsewhere is told it created them, not that they existed."""
    channels = list(channels)
    return (
        ChannelIdentity.objects.filter(
            customer=customer, channel__in=channels, created_at__lt=before
        )
        .values("pk")
        .union(
            Order.objects.filter(
                customer=customer, channel__in=channels, created_at__lt=before
            ).values("pk"),
            CustomerChannelProfile.objects.filter(
                customer=customer, channel__in=channels, created_at__lt=before
            ).values("pk"),
        )
        .exists()
    )


def order_list(*, channels: Iterable[str] | None) -> QuerySet[Order]:
    queryset = Order.objects.select_related("customer").prefetch_related("lines")
    if channels is not None:
        queryset = queryset.filter(channel__in=list(channels))
    return queryset


def consent_event_list(*, channels: Iterable[str] | None) -> QuerySet[ConsentEvent]:
    """Consent events; with `channels` (an API key's), those of the
    customers the key sees, each with `key_note`: its note when a store
    site recorded it, else blank (staff's notes stay in the shop)."""
    queryset = ConsentEvent.objects.all()
    if channels is not None:
        queryset = queryset.filter(
            customer__in=customers_visible(channels=channels).values("pk")
        ).annotate(
            key_note=Case(
                When(source__in=STORE_SITE_CONSENT_SOURCES, then=F("note")),
                default=Value(""),
                output_field=CharField(),
            )
        )
    return queryset


def customer_consent_granted(*, customer: Customer, channel: str) -> bool:
    return ConsentState.objects.filter(customer=customer, channel=channel, granted=True).exists()


# --- The customer page (customer 360) ---------------------------------------------

# How many of the newest rows each section of the customer page shows.
CUSTOMER_PAGE_ROWS = 10


@dataclass(frozen=True)
class NewestRows:
    """The newest rows of one section, and whether older ones exist."""

    rows: list
    more: bool


@dataclass(frozen=True)
class ConsentNow:
    """One consent channel as it stands: its ledger's latest event, or none."""

    channel: str
    label: str
    state: ConsentState | None


@dataclass(frozen=True)
class CustomerOverview:
    identities: list[ChannelIdentity]
    consent: list[ConsentNow]
    orders: NewestRows
    inquiries: NewestRows
    deliveries: NewestRows
    events: NewestRows


def _newest(queryset: QuerySet, rows: int) -> NewestRows:
    found = list(queryset[: rows + 1])  # one more row says whether there are older ones
    return NewestRows(rows=found[:rows], more=len(found) > rows)


def customer_overview(*, customer: Customer, rows: int = CUSTOMER_PAGE_ROWS) -> CustomerOverview:
    """What the customer page shows before the edit form: their identities,
    consent per channel (the latest ledger event of each), and the newest
    `rows` orders, inquiries, messages sent (the delivery ledger, with each
    send's campaign, template and inquiry) and timeline events. One query
    per section, however long the customer's history."""
    states = {
        state.channel: state
        for state in ConsentState.objects.filter(customer=customer).select_related("event__actor")
    }
    return CustomerOverview(
        identities=list(customer.identities.order_by("channel", "id")),
        consent=[
            ConsentNow(channel=value, label=str(label), state=states.get(value))
            for value, label in ConsentChannel.choices
        ],
        orders=_newest(customer.orders.order_by("-ordered_at", "-id"), rows),
        inquiries=_newest(customer.inquiries.order_by("-created_at", "-id"), rows),
        deliveries=_newest(
            customer.deliveries.select_related(
                "send__campaign", "send__template", "inquiry_message__inquiry"
            ).order_by("-created_at", "-id"),
            rows,
        ),
        events=_newest(
            CustomerEvent.objects.filter(customer=customer)
            .select_related("actor")
            .order_by("-created_at", "-id"),
            rows,
        ),
    )


def orders_held(*, numbers: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of these (channel, order number) pairs an order of ours holds:
    one query, each pair looked up in the unique index (a list of pairs
    joined, not two IN lists, which PostgreSQL answers by scanning the
    table once it has grown past its statistics)."""
    numbers = sorted(set(numbers))
    if not numbers:
        return set()
    channels, order_numbers = (list(values) for values in zip(*numbers, strict=True))
    if connection.vendor != "postgresql":
        held = Order.objects.filter(channel__in=channels, order_number__in=order_numbers)
        return set(held.values_list("channel", "order_number")) & set(numbers)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT o.channel, o.order_number FROM {Order._meta.db_table} o"
            " JOIN unnest(%s::varchar[], %s::varchar[]) AS n(channel, order_number)"
            " ON o.channel = n.channel AND o.order_number = n.order_number",
            [channels, order_numbers],
        )
        return set(cursor.fetchall())
