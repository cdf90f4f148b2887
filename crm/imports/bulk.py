"""The import's bulk path (PostgreSQL): in each batch, what the services
would plainly create or find unchanged is written with one statement per
table — the same rules, proven by
tests/crm/test_imports.py::test_the_bulk_path_leaves_what_the_services_row_by_row_leave —
and the rest is left to the services, row by row (crm.imports.runner)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from crm.models import ConsentAction, ConsentChannel, Customer, ImportJob
from crm.normalize import email_normalize, phone_normalize
from crm.selectors import orders_held
from crm.services import (
    NewConsent,
    NewCustomer,
    NewOrder,
    UpsertOutcome,
    consents_record_bulk,
    customers_create_bulk,
    customers_resolve_bulk,
    orders_clean_bulk,
    orders_create_bulk,
)

from .rows import Row


def _person_keys(data) -> set[tuple[str, str]]:
    """A person's identity and addresses, as identity resolution matches them."""
    keys = {("identity", f"{data.channel}:{data.external_id}")}
    if email := email_normalize(data.profile.get("email", "")):
        keys.add(("email", email))
    if phone := phone_normalize(data.profile.get("phone", "")):
        keys.add(("phone", phone))
    return keys


def bulk_write(job, pending, tally) -> list:
    """Write in bulk the units the services would plainly create or find
    unchanged: a buyer no identity, email or phone of ours knows (created
    by crm.services.customers_create_bulk, the same rules as
    customer_upsert), or one their own identity finds with nothing to
    write (customers_resolve_bulk); with an order no (channel, number) of
    ours holds (orders_create_bulk, order_upsert's validation); a consent
    without a date of its own (which consent_record cannot refuse) through
    consents_record_bulk, the ledger's rules for the batch. A person's
    first appearance in the batch, without tags, and their later rows
    that say the same of them with another new order (customer_upsert
    would find them unchanged then): whatever else the batch says of a
    person or an order goes, after, through the services, in the file's
    order. Returns the units left for the services."""
    leaders, followers = _bulk_candidates(pending)
    if not leaders:
        return pending
    candidates = [*leaders, *(i for group in followers.values() for i in group)]
    people = [_new_customer(pending[i][1][0].customer) for i in leaders]
    resolutions = customers_resolve_bulk(people=people)
    orders_ok = _orders_new_and_valid({i: pending[i][1] for i in candidates})
    to_create: list[tuple[int, NewCustomer]] = []
    customers: dict[int, tuple[Customer, str]] = {}
    for i, person, (customer, outcome) in zip(leaders, people, resolutions, strict=True):
        if not outcome or not orders_ok[i]:
            continue
        if outcome == UpsertOutcome.CREATED:
            to_create.append((i, person))
        else:
            assert customer is not None  # found: an outcome other than CREATED
            customers[i] = (customer, outcome)
    created = customers_create_bulk(people=[p for _i, p in to_create], actor=job.created_by)
    for (i, _person), result in zip(to_create, created, strict=True):
        if isinstance(result, Customer):
            customers[i] = (result, UpsertOutcome.CREATED)
    for leader, group in followers.items():
        if leader in customers:
            for i in group:
                if orders_ok[i]:
                    customers[i] = (customers[leader][0], UpsertOutcome.UNCHANGED)
    with_orders = [i for i in sorted(customers) if pending[i][1][0].order is not None]
    orders_create_bulk(orders=[new_order(pending[i][1], customers[i][0]) for i in with_orders])
    consents = []
    for i in sorted(customers):
        customer, outcome = customers[i]
        tally.customer(customer, outcome)
        if pending[i][1][0].consent is not None:
            consents.append(new_consent(job, customer, pending[i][1][0].consent))
        if pending[i][1][0].order is not None:
            tally.orders[UpsertOutcome.CREATED] += 1
            tally.lifecycle_ids.add(customer.pk)
    for event in consents_record_bulk(consents=consents, unless_current=True, actor=job.created_by):
        if isinstance(event, ValidationError):
            raise event  # undated, from a preset's own values: never refused
        tally.consents += event.recorded_at >= job.started_at
    return [unit for index, unit in enumerate(pending) if index not in customers]


def _bulk_candidates(pending) -> tuple[list[int], dict[int, list[int]]]:
    """The units the bulk path may take: leaders (a person and an order
    no earlier unit of the batch names) and, per leader, its followers
    (later units with the very same person, no consent, and an order no
    earlier unit names). A key named by a unit the bulk path cannot take
    is the services' for the rest of the batch."""
    owner: dict = {}  # key -> the leader whose units alone named it, or None
    leaders: list[int] = []
    followers: dict[int, list[int]] = {}
    for index, (_unit, read) in enumerate(pending):
        first = read[0]
        data = first.customer
        person = _person_keys(data)
        order = {("order", first.order.channel, first.order.order_number)} if first.order else set()
        plain = bool(data.channel and data.external_id and not data.tags)
        dated_consent = first.consent is not None and first.consent.occurred_at is not None
        owners = {owner.get(key, "new") for key in person}
        new_order = not (order & owner.keys())
        if plain and not dated_consent and owners == {"new"} and new_order:
            leaders.append(index)
            followers[index] = []
            taker = index
        elif (
            plain
            and first.consent is None
            and new_order
            and len(owners) == 1
            and (leader := next(iter(owners))) not in ("new", None)
            and person == _person_keys(pending[leader][1][0].customer)
            and data == pending[leader][1][0].customer
        ):
            followers[leader].append(index)
            taker = leader
        else:
            taker = None
        for key in person:
            owner[key] = taker if owner.get(key, taker) == taker else None
        for order_key in order:
            owner[order_key] = None
    return leaders, {leader: group for leader, group in followers.items() if group}


def _new_customer(data) -> NewCustomer:
    return NewCustomer(
        channel=data.channel,
        external_id=data.external_id,
        identity_display_name=data.identity_display_name,
        profile=data.profile,
    )


def order_lines(rows: list[Row]):
    return [row.order_line for row in rows if row.order_line is not None]


def order_total(order, lines) -> int:
    if order.total is not None:
        return order.total
    return sum(line.quantity * line.unit_price for line in lines)


def new_order(rows: list[Row], customer: Customer | None) -> NewOrder:
    order = rows[0].order
    assert order is not None  # a unit with an order
    lines = order_lines(rows)
    return NewOrder(
        channel=order.channel,
        order_number=order.order_number,
        customer=customer,
        ordered_at=order.ordered_at,
        total=order_total(order, lines),
        status=order.status,
        shipped_at=order.shipped_at,
        delivered_at=order.delivered_at,
        lines=lines,
    )


def _orders_new_and_valid(units: dict[int, list[Row]]) -> dict[int, bool]:
    """Per unit: no order, or a new one that order_upsert's validation
    accepts (checked as a batch)."""
    with_order = {i: rows for i, rows in units.items() if rows[0].order is not None}
    orders = {i: rows[0].order for i, rows in with_order.items()}
    held = orders_held(
        numbers=[(order.channel, order.order_number) for order in orders.values() if order]
    )
    errors = orders_clean_bulk(orders=[new_order(rows, None) for rows in with_order.values()])
    result = dict.fromkeys(units, True)
    for (i, order), error in zip(orders.items(), errors, strict=True):
        assert order is not None  # with_order
        result[i] = error is None and (order.channel, order.order_number) not in held
    return result


def new_consent(job: ImportJob, customer: Customer, consent) -> NewConsent:
    """The row's email consent, as the ledger takes it."""
    return NewConsent(
        customer=customer,
        channel=ConsentChannel.EMAIL,
        action=ConsentAction.OPT_IN if consent.granted else ConsentAction.OPT_OUT,
        source=consent.source,
        occurred_at=consent.occurred_at,
        wording_version=consent.wording_version,
        note=_("CSV import: %(file)s") % {"file": job.file_name},
    )
