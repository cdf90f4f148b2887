"""Incidents: opening (the checklist copied from the playbook), the
timeline, recovery and closing, linking inquiries, and the impact the
database counts."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from crisis.models import (
    IncidentEvent,
    IncidentEventKind,
    IncidentInquiry,
    IncidentKind,
    IncidentSend,
    IncidentSendKind,
    IncidentStatus,
    PlaybookStep,
)
from crisis.selectors.incidents import (
    incident_suggested_inquiries,
    incidents_for_inquiry,
    incidents_with_impact,
)
from crisis.services.incidents import (
    incident_close,
    incident_edit,
    incident_inquiries_link,
    incident_recover,
    incident_update,
)
from crm.models import Customer, OrderStatus
from outreach.models import Purpose, SendKind
from outreach.services import deliveries_snapshot, send_create
from tests.crisis.incident_factories import incident as make_incident
from tests.crm import factories as crm_factories
from tests.tickets import factories
from tickets.models import InquiryEvent, InquiryEventKind

pytestmark = pytest.mark.django_db


def test_opening_copies_the_kinds_playbook_into_the_checklist_due_after_the_start(owner):
    started = timezone.now() - timedelta(minutes=5)
    incident = make_incident(actor=owner, started_at=started)
    steps = list(PlaybookStep.objects.filter(playbook__kind=IncidentKind.MALL_OUTAGE))
    checklist = list(incident.checklist.order_by("position"))
    assert [item.title for item in checklist] == [step.title for step in steps]
    assert [item.role for item in checklist] == [step.role for step in steps]
    # the triage step: 30 minutes after the start (seed 001)
    assert checklist[0].due_at == started + timedelta(minutes=30)
    assert [item.due_at is None for item in checklist] == [
        step.target_minutes is None for step in steps
    ]
    opened = IncidentEvent.objects.get(incident=incident)
    assert opened.kind == IncidentEventKind.OPENED and opened.actor == owner


def test_a_playbook_edited_later_leaves_an_open_checklist_alone(owner):
    incident = make_incident(actor=owner)
    PlaybookStep.objects.filter(playbook__kind=IncidentKind.MALL_OUTAGE).update(title="変更後")
    assert not incident.checklist.filter(title="変更後").exists()


def test_a_malicious_breach_gets_60_days_for_the_final_report_and_a_plain_one_30(owner):
    started = timezone.now()
    plain = make_incident(actor=owner, kind=IncidentKind.DATA_BREACH, started_at=started)
    malicious = make_incident(
        actor=owner, kind=IncidentKind.DATA_BREACH, started_at=started, is_malicious=True
    )
    final = "個人情報保護委員会への確報"
    quick = "個人情報保護委員会への速報"
    assert plain.checklist.get(title=final).due_at == started + timedelta(days=30)
    assert malicious.checklist.get(title=final).due_at == started + timedelta(days=60)
    for incident in (plain, malicious):
        assert incident.checklist.get(title=quick).due_at == started + timedelta(days=3)


def test_only_a_manager_opens_an_incident(colleague):
    with pytest.raises(PermissionDenied):
        make_incident(actor=colleague)


def test_a_mall_outage_must_name_the_mall(owner):
    with pytest.raises(ValidationError) as error:
        make_incident(actor=owner, channel="")
    assert "channel" in error.value.message_dict


def test_an_agent_adds_an_update_but_only_a_manager_moves_the_expected_recovery(owner, colleague):
    incident = make_incident(actor=owner)
    later = incident.expected_recovery_at + timedelta(hours=2)
    event = incident_update(incident=incident, text="モール側で決済のみ復旧", actor=colleague)
    assert (event.kind, event.text, event.actor) == (
        IncidentEventKind.UPDATE,
        "モール側で決済のみ復旧",
        colleague,
    )
    with pytest.raises(PermissionDenied):
        incident_update(
            incident=incident, text="見込み延長", expected_recovery_at=later, actor=colleague
        )
    incident_update(incident=incident, text="見込み延長", expected_recovery_at=later, actor=owner)
    incident.refresh_from_db()
    assert incident.expected_recovery_at == later


def test_edit_recover_and_close_write_events_and_closing_needs_cause_and_countermeasure(owner):
    incident = make_incident(actor=owner)
    incident_edit(incident=incident, title="楽天市場 カート障害", actor=owner)
    incident_recover(incident=incident, actor=owner)
    with pytest.raises(ValidationError) as error:
        incident_close(incident=incident, root_cause="", countermeasure="", actor=owner)
    assert set(error.value.message_dict) == {"root_cause", "countermeasure"}
    incident_close(
        incident=incident,
        root_cause="モール側のサーバー障害",
        countermeasure="セール前に代替販路のクーポンを用意しておく",
        actor=owner,
    )
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.CLOSED and incident.closed_at is not None
    assert incident.title == "楽天市場 カート障害"
    kinds = list(incident.events.values_list("kind", flat=True))
    assert kinds == [
        IncidentEventKind.OPENED,
        IncidentEventKind.EDITED,
        IncidentEventKind.RECOVERED,
        IncidentEventKind.CLOSED,
    ]


def test_linking_many_inquiries_is_one_action_with_one_event_and_a_linked_event_on_each(
    owner, colleague, django_assert_max_num_queries
):
    incident = make_incident(actor=owner)
    inquiries = [factories.inquiry(channel="rakuten") for _ in range(4)]
    incident_inquiries_link(incident=incident, inquiries=inquiries[:1], actor=colleague)
    with django_assert_max_num_queries(8):
        linked = incident_inquiries_link(incident=incident, inquiries=inquiries, actor=colleague)
    # the first was linked already: three new links, one event for them
    assert linked == 3
    assert IncidentInquiry.objects.filter(incident=incident).count() == 4
    events = incident.events.filter(kind=IncidentEventKind.INQUIRIES_LINKED)
    assert [event.data["count"] for event in events] == [1, 3]
    assert (
        InquiryEvent.objects.filter(kind=InquiryEventKind.LINKED, new=incident.title).count() == 4
    )
    assert incident_inquiries_link(incident=incident, inquiries=inquiries, actor=colleague) == 0


def test_suggestions_are_the_unlinked_open_inquiries_of_the_channel_since_the_start(owner):
    before = factories.inquiry(channel="rakuten")
    incident = make_incident(actor=owner, started_at=timezone.now())
    new = factories.inquiry(channel="rakuten")
    linked = factories.inquiry(channel="rakuten")
    factories.inquiry(channel="amazon")
    incident_inquiries_link(incident=incident, inquiries=[linked], actor=owner)
    assert list(incident_suggested_inquiries(incident)) == [new]
    # the inquiry page: linked, suggested, or nothing for an older one
    assert incidents_for_inquiry(new) == [(incident, False)]
    assert incidents_for_inquiry(linked) == [(incident, True)]
    assert incidents_for_inquiry(before) == []


def test_impact_counts_linked_inquiries_customers_reached_by_sends_and_affected_orders(owner):
    incident = make_incident(actor=owner)
    # two inquiries of one customer, about one order; a third customer's inquiry
    customer = crm_factories.customer(channel="rakuten")
    order = crm_factories.order(customer=customer, channel="rakuten", status=OrderStatus.PAID)
    first = factories.inquiry(channel="rakuten", customer=customer, order=order)
    second = factories.inquiry(channel="rakuten", customer=customer)
    other = factories.inquiry(channel="rakuten")
    incident_inquiries_link(incident=incident, inquiries=[first, second, other], actor=owner)
    # a notice reached the first customer again and a new one, with an open
    # order on the channel and a delivered one; one without an address was skipped
    reached = crm_factories.customer(channel="rakuten")
    crm_factories.order(customer=reached, channel="rakuten", status=OrderStatus.PAID)
    crm_factories.order(customer=reached, channel="rakuten", status=OrderStatus.DELIVERED)
    crm_factories.order(customer=reached, channel="amazon", status=OrderStatus.PAID)
    skipped = crm_factories.customer(channel="rakuten", email="")
    crm_factories.order(customer=skipped, channel="rakuten", status=OrderStatus.PAID)
    send = send_create(
        kind=SendKind.NOTICE,
        channel="email",
        purpose=Purpose.TRANSACTIONAL,
        content={"subject": "ご注文への影響について", "body": "復旧見込み"},
    )
    audience = Customer.objects.filter(pk__in=[customer.pk, reached.pk, skipped.pk])
    deliveries_snapshot(send=send, audience=audience, now=timezone.now())
    IncidentSend.objects.create(
        incident=incident, kind=IncidentSendKind.NOTICE, channel="email", send=send
    )
    row = incidents_with_impact().get(pk=incident.pk)
    assert row.impact_inquiries == 3
    # customer, other's customer, reached (skipped is not counted)
    assert row.impact_customers == 3
    # the inquiry's order (also the customer's open order) + reached's open rakuten order
    assert row.impact_orders == 2


def test_a_closed_incident_takes_no_more_links(owner):
    incident = make_incident(actor=owner)
    incident_close(incident=incident, root_cause="原因", countermeasure="対策", actor=owner)
    with pytest.raises(ValidationError):
        incident_inquiries_link(
            incident=incident, inquiries=[factories.inquiry(channel="rakuten")], actor=owner
        )
