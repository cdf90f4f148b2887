"""Reads that join or filter. Each returns a QuerySet that already holds
the select_related / prefetch_related its callers need (no N+1)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet

from crm.models import ChannelIdentity, ConsentEvent, ConsentState, Customer, Order
from crm.normalize import email_normalize, kana_normalize, phone_normalize


def _is_katakana(text: str) -> bool:
    return all("\u30a0" <= ch <= "\u30ff" for ch in text)


def customer_search_q(term: str) -> Q:
    """One search box for people: an email, a phone number in any format,
    a name in kanji, or a reading in hiragana / katakana / half-width kana."""
    term = (term or "").strip()
    if not term:
        return Q()
    email = email_normalize(term)
    if email:
        return Q(email_normalized=email) | Q(
            identities__channel="email", identities__external_id=email
        )
    by_identity = Q(
        Exists(ChannelIdentity.objects.filter(customer=OuterRef("pk"), external_id=term))
    )
    phone = phone_normalize(term)
    if phone:
        return Q(phone_normalized=phone) | by_identity
    if "@" in term:
        return Q(email_normalized__startswith=term.lower())
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
    return query


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
    channels = None if channels is None else list(channels)
    identities = ChannelIdentity.objects.order_by("channel", "id")
    if channels is not None:
        identities = identities.filter(channel__in=channels)
    queryset = customers_visible(channels=channels).prefetch_related(
        Prefetch("identities", queryset=identities),
        Prefetch("consent_states", queryset=ConsentState.objects.order_by("channel")),
        "tags",
    )
    if search:
        queryset = queryset.filter(customer_search_q(search)).distinct()
    return queryset


def order_list(*, channels: Iterable[str] | None) -> QuerySet[Order]:
    queryset = Order.objects.select_related("customer").prefetch_related("lines")
    if channels is not None:
        queryset = queryset.filter(channel__in=list(channels))
    return queryset


def consent_event_list(*, channels: Iterable[str] | None) -> QuerySet[ConsentEvent]:
    queryset = ConsentEvent.objects.all()
    if channels is not None:
        queryset = queryset.filter(customer__in=customers_visible(channels=channels).values("pk"))
    return queryset


def customer_consent_granted(*, customer: Customer, channel: str) -> bool:
    return ConsentState.objects.filter(customer=customer, channel=channel, granted=True).exists()
