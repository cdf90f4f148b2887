"""Who may receive a message: the eligibility rule (one SQL expression), the
address on a channel, the send-time check, the test recipients."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Case, F, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Concat
from django.db.models.lookups import In

from core.choices import Channel
from crm.models import ChannelIdentity, ConsentState, Customer, Suppression
from outreach.models import DeliveryChannel, MessageChannel, Purpose, SkipReason

# A postal DM needs all of these: a postal code (123-4567), a prefecture,
# the rest of the address and a family name for the label.
POSTAL_CODE_PATTERN = r"^[0-9]{3}-[0-9]{4}$"


def dm_postal_key() -> Concat:
    """The postal address as one string (postal code, prefecture, address),
    as an SQL expression: what a postal DM suppression names (mail returned
    as undeliverable to that address)."""
    return Concat(F("postal_code"), F("prefecture"), F("address"))


def dm_address_reason() -> list[When]:
    """Why a postal DM cannot be addressed: nothing at all, or a part of the
    address or the name missing."""
    nothing = Q(postal_code="", prefecture="", address="")
    partial = (
        ~Q(postal_code__regex=POSTAL_CODE_PATTERN)
        | Q(prefecture="")
        | Q(address="")
        | Q(family_name="")
    )
    return [
        When(nothing, then=Value(SkipReason.NO_ADDRESS.value)),
        When(partial, then=Value(SkipReason.ADDRESS_PARTIAL.value)),
    ]


def eligibility_reason(
    *, channel: str, purpose: str, customer_ids: Iterable[int] | None = None
) -> Case:
    """Why a customer gets no message on `channel` (first reason wins), or
    "" — as one SQL expression over the customer row. The one definition of
    who may be sent what: the launch snapshot and the worker's send-time
    check both use it.

    Each test is `id IN (SELECT customer_id ...)`, which PostgreSQL runs
    once per query as a hashed subplan (a correlated EXISTS in a CASE is
    costed per row: a plan estimated in millions, which switches on JIT
    compilation, seconds at launch). `customer_ids` (a worker's batch)
    limits every subquery to those customers, so that checking 500 rows
    reads 500 rows of each table, not the whole table."""

    def among(queryset: QuerySet) -> Q:
        if customer_ids is not None:
            queryset = queryset.filter(customer_id__any_of=customer_ids)
        return Q(pk__in=queryset.values("customer_id"))

    consent_channel = channel  # outreach channels map 1:1 onto consent channels
    consent = ConsentState.objects.filter(channel=consent_channel)
    identities = ChannelIdentity.objects.all()
    if channel == MessageChannel.EMAIL:
        no_address = Q(email_normalized="")
    elif channel == DeliveryChannel.DM:
        no_address = None  # dm_address_reason
    else:
        no_address = ~among(identities.filter(channel=Channel.LINE))
    whens = [When(merged_into__isnull=False, then=Value(SkipReason.MERGED.value))]
    if purpose == Purpose.MARKETING:
        amazon_only = among(identities.filter(channel=Channel.AMAZON)) & ~among(
            identities.exclude(channel=Channel.AMAZON)
        )
        whens += [
            When(is_claimant=True, then=Value(SkipReason.CLAIMANT.value)),
            When(amazon_only, then=Value(SkipReason.AMAZON_ONLY.value)),
            When(among(consent.filter(granted=False)), then=Value(SkipReason.UNSUBSCRIBED.value)),
            When(~among(consent.filter(granted=True)), then=Value(SkipReason.NO_CONSENT.value)),
        ]
        if channel == MessageChannel.EMAIL:
            # By address, not customer: bounces and complaints name an address.
            suppressed = Suppression.objects.filter(channel=channel, lifted_at__isnull=True)
            whens.append(
                When(
                    email_normalized__in=suppressed.values("address"),
                    then=Value(SkipReason.SUPPRESSED.value),
                )
            )
        elif channel == DeliveryChannel.DM:
            returned = Suppression.objects.filter(channel=channel, lifted_at__isnull=True)
            whens.append(
                When(
                    In(dm_postal_key(), returned.values("address")),
                    then=Value(SkipReason.SUPPRESSED.value),
                )
            )
    if no_address is None:
        whens += dm_address_reason()
    else:
        whens.append(When(no_address, then=Value(SkipReason.NO_ADDRESS.value)))
    return Case(*whens, default=Value(""))


def recipient_address(*, channel: str) -> F | Subquery:
    """The customer's address on `channel`, as an SQL expression: the email
    address, or the LINE userId of their (latest) LINE identity."""
    if channel == MessageChannel.EMAIL:
        return F("email")
    return Subquery(
        ChannelIdentity.objects.filter(customer=OuterRef("pk"), channel=Channel.LINE)
        .order_by("-id")
        .values("external_id")[:1]
    )


def recipients_checked(
    *, customer_ids: Iterable[int], channel: str, purpose: str
) -> QuerySet[Customer]:
    """Customers annotated with `skip_reason` and `send_address`, one query:
    the worker's send-time check."""
    customer_ids = list(customer_ids)
    return Customer.objects.filter(pk__any_of=customer_ids).annotate(
        skip_reason=eligibility_reason(channel=channel, purpose=purpose, customer_ids=customer_ids),
        send_address=recipient_address(channel=channel),
    )


def test_recipients(*, channel: str) -> QuerySet[Customer]:
    """The customers a campaign's test send may go to on `channel`: marked
    as test recipients, whom a test send reaches (eligibility_reason for a
    test's purpose, see send_eligibility_purpose: not merged away, with an
    address there)."""
    reason = eligibility_reason(channel=channel, purpose=Purpose.TRANSACTIONAL)
    testers = Customer.objects.filter(is_test_recipient=True).annotate(skip=reason)
    return testers.filter(skip="").order_by("family_name_kana", "given_name_kana", "pk")
