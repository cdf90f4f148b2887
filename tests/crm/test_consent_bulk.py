"""consents_record_bulk writes what consent_record writes, one by one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from crm.models import ConsentEvent, ConsentState, Customer
from crm.services import NewConsent, consent_record, consents_record_bulk
from outreach import services as outreach
from outreach.models import Delivery, DeliveryStatus, MessageTemplate, Purpose, SendKind
from tests.crm import factories

pytestmark = pytest.mark.django_db

T0 = timezone.now().replace(microsecond=0) - timedelta(days=3)


def people(run: int) -> dict[str, Customer]:
    """Five customers: one new to consent, one opted in, one opted out, one
    opted in with marketing mail queued, one merged into the second."""
    customers = {
        name: factories.customer(external_id=f"{name}{run}", email=f"{name}{run}@example.jp")
        for name in ("new", "in", "out", "queued", "merged")
    }
    for name, action in (("in", "opt_in"), ("out", "opt_out"), ("queued", "opt_in")):
        consent_record(
            customer=customers[name],
            channel="email",
            action=action,
            source="web_form",
            occurred_at=T0,
        )
    Customer.objects.filter(pk=customers["merged"].pk).update(merged_into=customers["in"])
    customers["merged"].merged_into = customers["in"]
    template = outreach.template_save(
        template=MessageTemplate(
            name=f"冬のセール{run}",
            channel="email",
            purpose=Purpose.MARKETING,
            subject="冬のセール",
            body_text="冬のセールを開催します。",
        )
    )
    send = outreach.send_create(
        kind=SendKind.CAMPAIGN, channel="email", purpose=Purpose.MARKETING, template=template
    )
    outreach.deliveries_snapshot(
        send=send, audience=Customer.objects.filter(pk=customers["queued"].pk), now=timezone.now()
    )
    assert Delivery.objects.get(send=send).status == DeliveryStatus.QUEUED
    return customers


def consents(customers: dict[str, Customer]) -> list[NewConsent]:
    c = customers
    return [
        NewConsent(c["new"], "email", "opt_in", "import", None, "2024-04", "CSV"),
        NewConsent(c["new"], "email", "opt_in", "import", None, "2024-04", "again"),
        NewConsent(c["new"], "line", "opt_out", "import", T0, "", ""),
        NewConsent(c["in"], "email", "opt_in", "web_form", T0 + timedelta(hours=1)),
        # older than the state: kept in the ledger, changes nothing
        NewConsent(c["in"], "email", "opt_out", "import", T0 - timedelta(days=1)),
        NewConsent(c["out"], "email", "opt_out", "import", T0 + timedelta(hours=2)),
        NewConsent(c["out"], "email", "opt_in", "store", T0 + timedelta(hours=3), "2024-10"),
        NewConsent(c["queued"], "email", "opt_out", "import", T0 + timedelta(hours=4)),
        NewConsent(c["merged"], "email", "opt_out", "api", T0 + timedelta(hours=5)),
        NewConsent(c["merged"], "email", "opt_in", "api", T0 + timedelta(hours=6)),
        # refused: in the future, a staff consent without its note, no such channel
        NewConsent(c["new"], "email", "opt_out", "import", timezone.now() + timedelta(days=1)),
        NewConsent(c["new"], "email", "opt_out", "staff"),
        NewConsent(c["new"], "fax", "opt_out", "import"),
    ]


def ledger(customers: dict[str, Customer]) -> dict:
    """Every row the ledger holds, named by the customer's key, no ids."""
    name = {customer.pk: key for key, customer in customers.items()}

    def event(e: ConsentEvent) -> tuple:
        return (
            name[e.customer_id],
            e.channel,
            e.action,
            e.source,
            e.occurred_at if e.occurred_at < T0 + timedelta(days=1) else "now",
            e.wording_version,
            e.note,
            e.actor_id,
        )

    return {
        "events": sorted(event(e) for e in ConsentEvent.objects.filter(customer_id__in=name)),
        "states": sorted(
            (name[s.customer_id], s.channel, s.granted, event(s.event))
            for s in ConsentState.objects.filter(customer_id__in=name).select_related("event")
        ),
        "deliveries": sorted(
            (name[d.customer_id], d.status, d.skip_reason)
            for d in Delivery.objects.filter(customer_id__in=name)
        ),
    }


def outcome(result) -> object:
    if isinstance(result, ValidationError):
        return ("refused", result.message_dict)
    return ("event", result.action, result.source, result.note)


@pytest.mark.parametrize("unless_current", [False, True])
def test_the_bulk_consent_write_leaves_what_consent_record_leaves_row_by_row(unless_current, owner):
    customers = people(1)
    by_one: list = []
    for consent in consents(customers):
        try:
            by_one.append(
                consent_record(**consent.__dict__, unless_current=unless_current, actor=owner)
            )
        except ValidationError as error:
            by_one.append(error)
    one_by_one = ledger(customers)

    customers = people(2)
    in_bulk = consents_record_bulk(
        consents=consents(customers), unless_current=unless_current, actor=owner
    )

    assert ledger(customers) == one_by_one
    assert [outcome(r) for r in in_bulk] == [outcome(r) for r in by_one]
    # what was proven: the opt-out of the customer with queued mail skipped it,
    # the late opt-out changed nothing, the merged customer's went to the winner
    assert ("queued", "skipped", "unsubscribed") in one_by_one["deliveries"]
    latest = ("in", "email", "opt_in", "api", T0 + timedelta(hours=6), "", "", owner.pk)
    assert ("in", "email", True, latest) in one_by_one["states"]
    assert len([e for e in one_by_one["events"] if e[0] == "new"]) == (2 if unless_current else 3)
