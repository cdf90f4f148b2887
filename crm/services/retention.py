"""Personal-data retention (SPEC rules 8, 9, 17): the scheduled job that
anonymises what a sales channel gave of its buyers once their period is
over (Amazon: 30 days after delivery), and prunes the consent ledger.

Only the data that channel gave goes: its channel profile and identity, the
customer's own fields where no other channel gave them (the customer is
recomposed from the remaining channel profiles), the messages and
attachments of the customer's inquiries on that channel, and the personal
fields of their ledger rows. Ids, orders (stubs, totals, dates, statuses),
inquiries' dates, states and categories, lifecycle figures and every
aggregate stay: reports and segments come out the same.

tickets and outreach import crm at module level: their models are imported
inside the functions that reach them, as crm.services.consent does.

Everything is set-based (UPDATE ... WHERE ... IN), in batches of customers,
one transaction each; only attachment files are deleted one by one. An
order whose buyer's data is done carries `anonymized_at`, and leaves the
partial index the job reads its work from: a run with nothing due reads a
few index entries. Every run writes a RetentionEvent with its counts; each
anonymised customer gets an `anonymized` event on their timeline.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    CharField,
    Exists,
    Func,
    JSONField,
    OuterRef,
    Q,
    Subquery,
    Value,
)
from django.db.models.functions import Cast, Coalesce, Concat, Lower
from django.utils import timezone, translation

from core.choices import Channel
from core.timeline import actor_or_none
from core.types import Actor
from crm.models import (
    ChannelIdentity,
    ConsentEvent,
    ConsentState,
    Customer,
    CustomerChannelProfile,
    CustomerEvent,
    CustomerEventKind,
    Order,
    RetentionEvent,
    RetentionEventKind,
)
from crm.services.customers import PROFILE_FIELDS, customer_search_keys_refresh

# What a text that must hold something holds once anonymised (an inquiry's
# subject, a message's text, an attachment's name): staff see that it was.
ANONYMIZED_TEXT = "（匿名化済み）"
# An anonymised channel identity's external id: unique (the identity's
# unique constraint), never an address, never the id of a real person.
ANONYMIZED_IDENTITY_PREFIX = "anonymized-"
# Customers per transaction: long enough for set-based statements to pay,
# short enough that a buyer's next order never waits long for the lock.
BATCH_SIZE = 5000

# The personal columns of a channel profile and a customer, with the
# normalised columns that follow email and phone.
_NORMALIZED = {"email": "email_normalized", "phone": "phone_normalized"}
PERSONAL_COLUMNS = (*PROFILE_FIELDS, *_NORMALIZED.values())


def _blank(name: str) -> Any:
    return CustomerChannelProfile.blank_value(name)


def retention_period_start() -> Coalesce:
    """The day an order's retention period counts from: its delivery, or
    its order date where no delivery is known."""
    return Coalesce("delivered_at", "ordered_at")


def retention_run(*, now: datetime | None = None, actor: Actor = None) -> list[RetentionEvent]:
    """The scheduled job: every channel with a retention period
    (settings.RETENTION_DAYS), then the consent ledger."""
    now = now or timezone.now()
    events = [
        retention_anonymize(channel=channel, days=days, now=now, actor=actor)
        for channel, days in settings.RETENTION_DAYS.items()
        if days
    ]
    events.append(consent_ledger_prune(now=now, actor=actor))
    # The run's counts in the audit trail too (監査ログ), beside each
    # customer's own timeline event: what the job erased, not whose data.
    from core.audit import audit_record
    from core.models import AuditAction

    audit_record(
        action=AuditAction.ERASE,
        actor=actor,
        what=retention_run_text(events)[:1000],
    )
    return events


def retention_run_text(events: list[RetentionEvent]) -> str:
    """A run in the shop's language, as the retention page words it: each
    step (anonymised on a channel, consent ledger pruned) with its counts."""
    from crm.event_details import retention_event_summary

    with translation.override(settings.LANGUAGE_CODE):
        return " / ".join(
            f"{event.get_kind_display()}"
            f"{f'（{event.get_channel_display()}）' if event.channel else ''}: "
            f"{retention_event_summary(event)}"
            for event in events
        )


def retention_due_customers(*, channel: str, cutoff: datetime) -> list[int]:
    """Customers whose data `channel` gave is past its period: an order on
    the channel not yet done whose period started before `cutoff`, and no
    order on the channel whose period started since (that buyer is still
    inside it)."""
    recent = (
        Order.objects.filter(customer=OuterRef("customer_id"), channel=channel)
        .alias(period_start=retention_period_start())
        .filter(period_start__gte=cutoff)
    )
    return list(
        Order.objects.filter(channel=channel, anonymized_at__isnull=True)
        .alias(period_start=retention_period_start())
        .filter(period_start__lt=cutoff)
        .filter(~Exists(recent))
        .order_by("customer_id")
        .values_list("customer_id", flat=True)
        .distinct()
    )


def retention_anonymize(
    *,
    channel: str,
    days: int,
    now: datetime | None = None,
    actor: Actor = None,
    batch_size: int = BATCH_SIZE,
) -> RetentionEvent:
    """Anonymise the personal data `channel` gave of every buyer whose
    period (`days` after their last order on it was delivered, or placed)
    is over. Safe to run twice: a second run finds nothing due and touches
    nothing. Returns the run's event (its counts in `data`)."""
    if channel not in Channel.values or days <= 0:
        raise ValueError(f"retention_anonymize: no retention for {channel!r} ({days} days)")
    now = now or timezone.now()
    cutoff = now - timedelta(days=days)
    counts: Counter[str] = Counter()
    due = retention_due_customers(channel=channel, cutoff=cutoff)
    for ids in _batches(due, batch_size):
        with transaction.atomic():
            _jit_off()
            counts.update(_anonymize_batch(channel=channel, days=days, ids=ids, cutoff=cutoff))
    return RetentionEvent.objects.create(
        kind=RetentionEventKind.ANONYMIZED,
        channel=channel,
        actor=actor_or_none(actor),
        data={"retention_days": days, "cutoff": cutoff.isoformat(), **_all_counts(counts)},
    )


_COUNT_NAMES = (
    "customers",
    "customers_fully_anonymized",
    "channel_profiles",
    "identities",
    "customer_events",
    "inquiries",
    "messages",
    "attachments",
    "files_deleted",
    "inbound_mails",
    "deliveries",
    "sends",
    "orders",
)


def _all_counts(counts: Counter[str]) -> dict[str, int]:
    return {name: counts[name] for name in _COUNT_NAMES}


def _jit_off() -> None:
    """PostgreSQL compiles a statement it estimates costly (JIT): the
    batch's statements, estimated over whole tables, read a few thousand
    rows by index, and compiling them took longer than running them."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")


def _batches(ids: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def _anonymize_batch(*, channel: str, days: int, ids: list[int], cutoff: datetime) -> Counter:
    # Lock the customers, then look again (a new statement sees what
    # committed meanwhile): a buyer whose new order came in since is
    # inside their period again and keeps everything.
    list(Customer.objects.select_for_update().filter(pk__any_of=ids).values_list("pk", flat=True))
    recent = (
        Order.objects.filter(customer=OuterRef("pk"), channel=channel)
        .alias(period_start=retention_period_start())
        .filter(period_start__gte=cutoff)
    )
    ids = list(
        Customer.objects.filter(pk__any_of=ids).filter(~Exists(recent)).values_list("pk", flat=True)
    )
    counts: Counter[str] = Counter(customers=len(ids))
    if not ids:
        return counts
    counts.update(_inquiries_anonymize(channel=channel, customer_ids=ids))
    # The ledger's rows before the profile and identity: their addresses are
    # recognised by what the channel gave.
    counts["deliveries"] += _deliveries_by_address_anonymize(channel=channel, customer_ids=ids)
    counts["customer_events"] = _customer_events_anonymize(channel=channel, customer_ids=ids)
    counts["identities"] = _identities_anonymize(channel=channel, customer_ids=ids)
    counts["channel_profiles"] = (
        CustomerChannelProfile.objects.filter(customer_id__any_of=ids, channel=channel)
        .exclude(**{name: _blank(name) for name in PERSONAL_COLUMNS})
        .update(**{name: _blank(name) for name in PERSONAL_COLUMNS}, updated_at=timezone.now())
    )
    counts["customers_fully_anonymized"] = _customers_recompose(channel=channel, customer_ids=ids)
    CustomerEvent.objects.bulk_create(
        CustomerEvent(
            customer_id=customer_id,
            kind=CustomerEventKind.ANONYMIZED,
            data={"channel": channel, "retention_days": days},
        )
        for customer_id in ids
    )
    counts["orders"] = Order.objects.filter(
        customer_id__any_of=ids, channel=channel, anonymized_at__isnull=True
    ).update(anonymized_at=timezone.now())
    return counts


def _inquiries_anonymize(*, channel: str, customer_ids: list[int]) -> Counter:
    """The customer's inquiries on the channel: their subject, the text of
    every message (the customer's, our replies, notes), attachments (files
    deleted from disk), the mail they came in as, and the ledger rows and
    send contents of the replies. Dates, states, categories and SLA figures
    stay: the reports read those."""
    from outreach.models import Delivery, Send, SendKind
    from tickets.models import Attachment, InboundMail, Inquiry, InquiryMessage

    counts: Counter[str] = Counter()
    counts["inquiries"] = (
        Inquiry.objects.filter(customer_id__any_of=customer_ids, channel=channel)
        .exclude(subject=ANONYMIZED_TEXT, last_message_excerpt="", search_text="")
        .update(subject=ANONYMIZED_TEXT, last_message_excerpt="", search_text="")
    )
    messages = InquiryMessage.objects.filter(inquiry__customer_id__any_of=customer_ids).filter(
        Q(inquiry__channel=channel) | Q(channel=channel)
    )
    attachments = Attachment.objects.filter(message__in=messages).exclude(
        file="", filename=ANONYMIZED_TEXT
    )
    files = list(attachments.exclude(file="").values_list("file", flat=True))
    storage = Attachment._meta.get_field("file").storage
    for name in files:
        # Before the rows: if the transaction fails, the next run finds
        # the rows again (their files already gone), never the reverse.
        storage.delete(name)
    counts["files_deleted"] = len(files)
    counts["attachments"] = attachments.update(file="", filename=ANONYMIZED_TEXT)

    blank_message = {
        "subject": "",
        "body_text": ANONYMIZED_TEXT,
        "visible_text": "",
        "body_html": "",
        "review_note": "",
    }
    changed = messages.filter(
        ~Q(body_text=ANONYMIZED_TEXT)
        | ~Q(subject="")
        | ~Q(visible_text="")
        | ~Q(body_html="")
        | ~Q(review_note="")
    )
    message_rows = list(changed.values_list("pk", "delivery_id"))
    message_ids = [pk for pk, _ in message_rows]
    delivery_ids = [delivery_id for _, delivery_id in message_rows if delivery_id]
    counts["messages"] = InquiryMessage.objects.filter(pk__any_of=message_ids).update(
        **blank_message
    )
    counts["inbound_mails"] = (
        InboundMail.objects.filter(inquiry_message_id__any_of=message_ids)
        .exclude(raw=b"", from_address="", subject="")
        .update(raw=b"", from_address="", subject="")
    )
    counts["deliveries"] = (
        Delivery.objects.filter(pk__any_of=delivery_ids)
        .exclude(address="", last_error="")
        .update(address="", last_error="")
    )
    counts["sends"] = (
        Send.objects.filter(
            kind=SendKind.REPLY,
            pk__in=Delivery.objects.filter(pk__any_of=delivery_ids).values("send_id"),
        )
        .exclude(content={})
        .update(content={})
    )
    return counts


def _deliveries_by_address_anonymize(*, channel: str, customer_ids: list[int]) -> int:
    """The customer's other ledger rows sent to an address the channel gave
    (its profile's email, or its identity: a masked Amazon address) and no
    other channel gave too."""
    from outreach.models import Delivery

    def addresses(*, of_channel: bool) -> set[str]:
        where = Q(channel=channel) if of_channel else ~Q(channel=channel)
        profiles = CustomerChannelProfile.objects.filter(where, customer_id__any_of=customer_ids)
        identities = ChannelIdentity.objects.filter(where, customer_id__any_of=customer_ids)
        return {
            address.lower()
            for address in (
                *profiles.exclude(email_normalized="").values_list("email_normalized", flat=True),
                *identities.values_list("external_id", flat=True),
            )
        }

    given = addresses(of_channel=True) - addresses(of_channel=False)
    if not given:
        return 0
    return (
        Delivery.objects.filter(customer_id__any_of=customer_ids)
        .alias(address_lower=Lower("address"))
        .filter(address_lower__in=given)
        .exclude(address="", last_error="")
        .update(address="", last_error="")
    )


def _customer_events_anonymize(*, channel: str, customer_ids: list[int]) -> int:
    """The timeline keeps that an identity on the channel was added, not
    which (its external id is an address)."""
    return CustomerEvent.objects.filter(
        customer_id__any_of=customer_ids, data__channel=channel, data__has_key="external_id"
    ).update(data=JsonWithout("data", key="external_id"))


class JsonWithout(Func):
    """A JSON object without one of its keys."""

    output_field = JSONField()

    def __init__(self, expression: Any, *, key: str) -> None:
        if not key.isidentifier():
            raise ValueError(f"JsonWithout: not a plain key: {key!r}")
        self.key = key
        super().__init__(expression)

    def as_sql(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:  # type: ignore[override]  # given no function, template nor joiner
        return super().as_sql(
            compiler, connection, template=f"json_remove(%(expressions)s, '$.{self.key}')"
        )

    def as_postgresql(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        return super().as_sql(compiler, connection, template=f"(%(expressions)s - '{self.key}')")


def _identities_anonymize(*, channel: str, customer_ids: list[int]) -> int:
    """The channel identity stays (the customer is still known to have
    bought there: Amazon buyers stay out of marketing), without its name
    or address. A later order from the same buyer makes a new customer."""
    return (
        ChannelIdentity.objects.filter(customer_id__any_of=customer_ids, channel=channel)
        .exclude(external_id__startswith=ANONYMIZED_IDENTITY_PREFIX)
        .update(
            external_id=Concat(
                Value(ANONYMIZED_IDENTITY_PREFIX),
                Cast("pk", output_field=CharField()),
            ),
            display_name="",
        )
    )


def _customers_recompose(*, channel: str, customer_ids: list[int]) -> int:
    """The customer's own fields from the other channels' profiles: a value
    one of them gave stays; otherwise the latest value another channel gave
    takes its place, or nothing. A customer with nothing left (no value
    from another channel, no identity on one) is anonymous as a whole:
    `anonymized_at` is set. Returns how many became so."""
    others = CustomerChannelProfile.objects.filter(customer=OuterRef("pk")).exclude(channel=channel)
    # Who is known elsewhere, by id: the updates below then read the
    # customers by primary key, never the whole profile table (a semi-join
    # PostgreSQL would hash).
    known_elsewhere = set(
        CustomerChannelProfile.objects.filter(customer_id__any_of=customer_ids)
        .exclude(channel=channel)
        .exclude(**{name: _blank(name) for name in PROFILE_FIELDS})
        .values_list("customer_id", flat=True)
    )
    identified_elsewhere = set(
        ChannelIdentity.objects.filter(customer_id__any_of=customer_ids)
        .exclude(channel=channel)
        .values_list("customer_id", flat=True)
    )
    now = timezone.now()
    # The customer's search keys (crm.search) go with the names.
    blanks = {name: _blank(name) for name in PERSONAL_COLUMNS} | {
        "search_name": "",
        "search_kana": "",
    }
    # Nothing from another channel (most of a mall's buyers): blanks.
    lone = [pk for pk in customer_ids if pk not in known_elsewhere]
    anonymous = [pk for pk in lone if pk not in identified_elsewhere]
    fully = Customer.objects.filter(pk__any_of=anonymous, anonymized_at__isnull=True).update(
        **blanks, anonymized_at=now, updated_at=now
    )
    Customer.objects.filter(pk__any_of=lone).exclude(**blanks).update(**blanks, updated_at=now)
    # Known on other channels too: their values, field by field — the
    # customer's own if another channel gave it, else the latest given.
    values = {}
    for name in PROFILE_FIELDS:
        given = others.exclude(**{name: _blank(name)})
        kept = given.filter(**{name: OuterRef(name)})
        latest = given.order_by("-updated_at", "-pk")
        for column in (name, *([_NORMALIZED[name]] if name in _NORMALIZED else [])):
            chosen: list[Subquery | Value] = [
                Subquery(kept.values(column)[:1]),
                Subquery(latest.values(column)[:1]),
            ]
            if _blank(column) is not None:
                chosen.append(Value(_blank(column)))
            values[column] = Coalesce(*chosen)
    if known_elsewhere:
        Customer.objects.filter(pk__any_of=sorted(known_elsewhere)).update(**values, updated_at=now)
        customer_search_keys_refresh(customer_ids=sorted(known_elsewhere))
    return fully


def consent_ledger_prune(*, now: datetime | None = None, actor: Actor = None) -> RetentionEvent:
    """Forget consent events older than CONSENT_LEDGER_RETENTION_DAYS whose
    customer was sent nothing in that time either (特定商取引法: the record of
    consent is kept for that long after the last send). The event a
    customer's current consent rests on is always kept: it is the proof
    for the next send."""
    from outreach.models import Delivery

    now = now or timezone.now()
    days = settings.CONSENT_LEDGER_RETENTION_DAYS
    cutoff = now - timedelta(days=days)
    prunable = (
        ConsentEvent.objects.filter(occurred_at__lt=cutoff)
        .filter(~Exists(ConsentState.objects.filter(event=OuterRef("pk"))))
        .filter(
            ~Exists(Delivery.objects.filter(customer=OuterRef("customer_id"), sent_at__gte=cutoff))
        )
    )
    with transaction.atomic():
        # A raw delete: nothing cascades from an event no state rests on,
        # and Django's delete() would fetch every row first.
        pruned = prunable._raw_delete(connection.alias)
        return RetentionEvent.objects.create(
            kind=RetentionEventKind.CONSENT_PRUNED,
            actor=actor_or_none(actor),
            data={"retention_days": days, "cutoff": cutoff.isoformat(), "consent_events": pruned},
        )
