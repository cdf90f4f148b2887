from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from outreach.models import Delivery, Send
from tests.crm import factories as crm_factories
from tests.tickets import factories
from tickets.models import (
    AutoAcknowledgement,
    BusinessCalendar,
    Category,
    Inquiry,
    InquiryEvent,
    InquiryStatus,
    SlaPolicy,
    SlaState,
    StaffNotification,
)
from tickets.services import (
    InboundMessage,
    inquiries_bulk_assign,
    inquiry_assign,
    inquiry_auto_acknowledge,
    inquiry_category_set,
    inquiry_inbound_add,
    inquiry_note_add,
    inquiry_priority_set,
    inquiry_reply,
    inquiry_status_set,
    sla_state_live,
    sla_state_live_q,
    sla_watch,
)

pytestmark = pytest.mark.django_db
JST = ZoneInfo("Asia/Tokyo")


def test_reference_is_readable_and_numbered_per_month():
    first = factories.inquiry(received_at=datetime(2026, 11, 3, 10, tzinfo=JST))
    second = factories.inquiry(received_at=datetime(2026, 11, 4, 10, tzinfo=JST))
    december = factories.inquiry(received_at=datetime(2026, 12, 1, 10, tzinfo=JST))
    assert (first.reference, second.reference, december.reference) == (
        "Q-2611-00001",
        "Q-2611-00002",
        "Q-2612-00001",
    )


@pytest.mark.parametrize(
    ("channel", "hours"), [("email", 24), ("amazon", 24), ("yahoo", 12), ("line", 24)]
)
def test_seeded_policies_give_the_first_reply_deadline_by_channel(channel, hours):
    received = datetime(2026, 11, 21, 23, 0, tzinfo=JST)  # a Saturday night
    inquiry = factories.inquiry(channel=channel, received_at=received)
    assert inquiry.first_reply_due_at == received + timedelta(hours=hours)
    assert inquiry.at_risk_at == received + timedelta(hours=hours - 4)
    assert inquiry.sla_state == SlaState.ON_TRACK


def test_a_business_hours_policy_starts_counting_at_the_next_opening():
    calendar = BusinessCalendar.objects.get()
    SlaPolicy.objects.create(
        name="電話: 営業時間で4時間",
        channel="phone",
        first_reply_minutes=240,
        at_risk_minutes=60,
        clock="business",
        calendar=calendar,
    )
    friday_evening = datetime(2026, 11, 20, 19, 0, tzinfo=JST)
    inquiry = factories.inquiry(channel="phone", received_at=friday_evening)
    assert inquiry.first_reply_due_at == datetime(
        2026, 11, 24, 13, 0, tzinfo=JST
    )  # 11/23 is 勤労感謝の日


def test_priority_specific_policy_wins_and_a_priority_change_recomputes_the_deadline():
    SlaPolicy.objects.create(
        name="至急: 2時間", priority="urgent", first_reply_minutes=120, at_risk_minutes=30
    )
    inquiry = factories.inquiry(channel="email")
    assert inquiry.first_reply_due_at - inquiry.created_at == timedelta(hours=24)
    urgent = inquiry_priority_set(inquiry=inquiry, priority="urgent", actor=None)
    assert urgent.first_reply_due_at - urgent.created_at == timedelta(hours=2)


def test_a_note_never_stops_the_first_reply_clock(colleague):
    inquiry = factories.inquiry()
    inquiry_note_add(inquiry=inquiry, body="倉庫に確認中", actor=colleague)
    inquiry.refresh_from_db()
    assert inquiry.first_replied_at is None and inquiry.sla_state == SlaState.ON_TRACK


def test_an_automatic_acknowledgement_never_stops_the_clock():
    AutoAcknowledgement.objects.create(
        channel="email",
        body="{{ customer.name }}様\nお問い合わせ（{{ inquiry.reference }}）を受け付けました。",
    )
    inquiry = factories.inquiry()
    ack = inquiry_auto_acknowledge(inquiry=inquiry)
    inquiry.refresh_from_db()
    assert ack.is_automatic and inquiry.reference in ack.body_text
    assert Delivery.objects.filter(send__kind="reply").count() == 1
    assert inquiry.first_replied_at is None and inquiry.status == InquiryStatus.NEW


def test_a_persons_public_reply_stops_the_clock_and_goes_through_the_ledger(colleague):
    inquiry = factories.inquiry()
    reply = inquiry_reply(inquiry=inquiry, body="ご不便をおかけしております。", actor=colleague)
    inquiry.refresh_from_db()
    assert inquiry.first_replied_at is not None
    assert inquiry.sla_state == SlaState.MET
    assert inquiry.status == InquiryStatus.WAITING_CUSTOMER
    send = Send.objects.get(kind="reply")
    assert (send.purpose, send.channel) == ("transactional", "email")
    assert reply.delivery.send == send and reply.delivery.status == "queued"
    assert reply.message_id.startswith(f"<madoguchi.{send.pk}.{reply.delivery.pk}.")
    assert send.content["subject"] == f"Re: {inquiry.subject} [{inquiry.reference}]"


def test_a_late_first_reply_keeps_the_breach():
    inquiry = factories.inquiry(received_at=timezone.now() - timedelta(hours=30))
    sla_watch()
    from django.contrib.auth.models import User

    agent = User.objects.create_user("late-agent")
    inquiry_reply(inquiry=inquiry, body="遅くなり申し訳ございません。", actor=agent)
    inquiry.refresh_from_db()
    assert inquiry.sla_state == SlaState.BREACHED and inquiry.first_replied_at is not None


def test_at_risk_and_breach_notices_go_out_once(colleague, owner, watch_path):
    inquiry = factories.inquiry(received_at=timezone.now() - timedelta(hours=21))
    inquiry_assign(inquiry=inquiry, assignee=colleague, actor=owner)
    # at risk: 4 hours or less left
    assert sla_watch() == {"at_risk": 1, "breached": 0}
    assert sla_watch() == {"at_risk": 0, "breached": 0}
    inquiry.refresh_from_db()
    assert inquiry.sla_state == SlaState.AT_RISK
    notes = StaffNotification.objects.filter(inquiry=inquiry, kind__in=["at_risk", "breached"])
    assert list(notes.values_list("user__username", "kind")) == [("colleague", "at_risk")]
    # breached: the assignee and the managers hear it, once
    later = timezone.now() + timedelta(hours=4)
    assert sla_watch(now=later) == {"at_risk": 0, "breached": 1}
    assert sla_watch(now=later + timedelta(minutes=1)) == {"at_risk": 0, "breached": 0}
    assert sorted(notes.filter(kind="breached").values_list("user__username", flat=True)) == [
        "colleague",
        "owner",
    ]
    sla_events = InquiryEvent.objects.filter(inquiry=inquiry, kind="sla")
    assert list(sla_events.values_list("old", "new")) == [
        ("on_track", "at_risk"),
        ("at_risk", "breached"),
    ]


def test_an_overdue_inquiry_goes_straight_to_breached_and_each_person_hears_once(
    owner, colleague, watch_path
):
    # given: two inquiries already past their deadline, one assigned to the
    # manager (who hears it once, not as assignee and again as manager)
    ours = factories.inquiry(received_at=timezone.now() - timedelta(hours=30))
    inquiry_assign(inquiry=ours, assignee=owner, actor=owner)
    nobodys = factories.inquiry(received_at=timezone.now() - timedelta(hours=30))
    # when
    assert sla_watch() == {"at_risk": 0, "breached": 2}
    # then: one event each, on_track straight to breached; the managers hear of both
    events = InquiryEvent.objects.filter(kind="sla").order_by("inquiry_id")
    assert list(events.values_list("inquiry_id", "old", "new", "actor")) == [
        (ours.pk, "on_track", "breached", None),
        (nobodys.pk, "on_track", "breached", None),
    ]
    notes = StaffNotification.objects.filter(kind__in=["at_risk", "breached"])
    assert sorted(notes.values_list("user__username", "inquiry_id", "kind")) == [
        ("owner", ours.pk, "breached"),
        ("owner", nobodys.pk, "breached"),
    ]
    ours.refresh_from_db()
    assert ours.sla_state == SlaState.BREACHED


def test_the_watch_takes_every_due_inquiry_batch_by_batch(
    monkeypatch, colleague, owner, watch_path
):
    monkeypatch.setattr("tickets.services.sla.WATCH_BATCH", 2)
    due = [factories.inquiry(received_at=timezone.now() - timedelta(hours=21)) for _ in range(5)]
    for inquiry in due:
        inquiry_assign(inquiry=inquiry, assignee=colleague, actor=owner)
    assert sla_watch() == {"at_risk": 5, "breached": 0}
    assert sla_watch() == {"at_risk": 0, "breached": 0}
    assert InquiryEvent.objects.filter(kind="sla", new="at_risk").count() == 5
    assert StaffNotification.objects.filter(user=colleague, kind="at_risk").count() == 5


def test_a_watch_run_is_one_statement_a_clock_however_many_inquiries_move(
    django_assert_num_queries,
):
    for _ in range(3):
        factories.inquiry(received_at=timezone.now() - timedelta(hours=21))
    factories.inquiry(received_at=timezone.now() - timedelta(hours=30))
    # first reply, next reply, resolution (the task is enqueued on commit)
    with django_assert_num_queries(3):
        assert sla_watch() == {"at_risk": 3, "breached": 1}
    with django_assert_num_queries(3):
        assert sla_watch() == {"at_risk": 0, "breached": 0}


def test_replied_and_closed_inquiries_are_left_alone_by_the_watch(colleague, watch_path):
    replied = factories.inquiry(received_at=timezone.now() - timedelta(hours=30))
    inquiry_reply(inquiry=replied, body="回答します", actor=colleague)
    closed = factories.inquiry(received_at=timezone.now() - timedelta(hours=30))
    inquiry_status_set(inquiry=closed, status="closed", actor=colleague)
    assert sla_watch() == {"at_risk": 0, "breached": 0}


def test_the_live_sla_state_and_the_filter_by_it_agree(colleague):
    # given: inquiries at every stage; the watch ran once, and is behind later on
    now = timezone.now()
    for hours in (1, 19, 21, 23, 30):
        factories.inquiry(received_at=now - timedelta(hours=hours))
    late = factories.inquiry(received_at=now - timedelta(hours=30))
    in_time = factories.inquiry(received_at=now - timedelta(hours=2))
    closed = factories.inquiry(received_at=now - timedelta(hours=10))
    inquiry_status_set(inquiry=closed, status=InquiryStatus.CLOSED, actor=colleague)
    sla_watch(now=now)
    for inquiry in (late, in_time):
        inquiry_reply(inquiry=inquiry, body="回答いたします。", actor=colleague)
    rows = list(Inquiry.objects.all())
    seen = set()
    # when / then: at each moment, each state's filter selects exactly its inquiries
    for moment in (
        now,
        now + timedelta(hours=2),
        now + timedelta(hours=5),
        now + timedelta(days=2),
    ):
        for state in SlaState.values:
            expected = {row.pk for row in rows if sla_state_live(row, moment) == state}
            found = Inquiry.objects.filter(sla_state_live_q(state, moment))
            assert set(found.values_list("pk", flat=True)) == expected, (state, moment)
            seen |= {state} if expected else set()
    assert seen == set(SlaState.values)
    closed.refresh_from_db()
    assert sla_state_live(closed, now) == ""


def test_only_staff_who_answer_inquiries_can_be_assigned_them(colleague, owner, django_user_model):
    from django.contrib.auth.models import Group

    from core.roles import MARKETER

    marketer = django_user_model.objects.create_user("marketer", is_staff=True)
    marketer.groups.add(Group.objects.get(name=MARKETER))
    gone = django_user_model.objects.create_user("gone", is_staff=True, is_active=False)
    gone.groups.add(Group.objects.get(name="agent"))
    inquiry = factories.inquiry()
    for nobody in (marketer, gone):
        with pytest.raises(ValidationError) as refused:
            inquiry_assign(inquiry=inquiry, assignee=nobody, actor=owner)
        assert "assignee" in refused.value.message_dict
        with pytest.raises(ValidationError):
            inquiries_bulk_assign(inquiries=[inquiry], assignee=nobody, actor=owner)
    assert not InquiryEvent.objects.filter(kind="assigned").exists()
    inquiry = inquiry_assign(inquiry=inquiry, assignee=colleague, actor=owner)
    assert inquiry.assignee == colleague
    inquiry = inquiry_assign(inquiry=inquiry, assignee=None, actor=owner)
    assert inquiry.assignee is None


def test_triage_is_reached_when_category_and_assignee_are_both_set(colleague):
    inquiry = factories.inquiry()
    inquiry_assign(inquiry=inquiry, assignee=colleague, actor=colleague)
    assert inquiry.triaged_at is None
    inquiry = inquiry_category_set(
        inquiry=inquiry, category=Category.objects.get(code="delivery_delay"), actor=colleague
    )
    assert inquiry.triaged_at is not None
    assert inquiry.status == InquiryStatus.OPEN


def test_a_customer_writing_to_a_closed_inquiry_reopens_it_or_opens_a_linked_one(
    colleague, settings
):
    settings.INQUIRY_REOPEN_DAYS = 14
    inquiry = factories.inquiry()
    inquiry_status_set(inquiry=inquiry, status="closed", actor=colleague)
    inquiry_inbound_add(inquiry=inquiry, message=InboundMessage(body_text="まだ届いていません"))
    inquiry.refresh_from_db()
    assert inquiry.status == InquiryStatus.OPEN and inquiry.closed_at is None

    inquiry_status_set(inquiry=inquiry, status="closed", actor=colleague)
    message = inquiry_inbound_add(
        inquiry=inquiry,
        message=InboundMessage(
            body_text="別件です", received_at=timezone.now() + timedelta(days=20)
        ),
    )
    assert message.inquiry != inquiry
    assert message.inquiry.reopened_from == inquiry
    inquiry.refresh_from_db()
    assert inquiry.status == InquiryStatus.CLOSED


def test_an_order_of_another_customer_is_refused():
    customer = crm_factories.customer()
    strangers_order = crm_factories.order(customer=crm_factories.customer())
    with pytest.raises(ValidationError) as refused:
        factories.inquiry(customer=customer, order=strangers_order)
    assert "order" in refused.value.message_dict
    assert not Inquiry.objects.exists()


def test_a_typed_order_number_links_only_the_customers_own_order_on_the_given_channels():
    customer = crm_factories.customer()
    own = crm_factories.order(customer=customer, channel="amazon", order_number="N-1")
    crm_factories.order(customer=crm_factories.customer(), order_number="N-1")  # own_site
    linked = factories.inquiry(customer=customer, order_number="N-1")
    assert linked.order == own and linked.order_number_given == "N-1"
    # asked on the own site only: the number is the stranger's there, not linked
    kept = factories.inquiry(customer=customer, order_number="N-1", order_channels=["own_site"])
    assert kept.order is None and kept.order_number_given == "N-1"
    assert kept.order_number_unmatched and not linked.order_number_unmatched


def test_a_follow_up_leaves_out_an_order_the_shop_gave_to_another_buyer(colleague, settings):
    settings.INQUIRY_REOPEN_DAYS = 14
    customer = crm_factories.customer()
    order = crm_factories.order(customer=customer, order_number="OS-9")
    inquiry = factories.inquiry(customer=customer, order=order)
    inquiry_status_set(inquiry=inquiry, status="closed", actor=colleague)
    # the store site corrects the buyer of the order
    crm_factories.order(customer=crm_factories.customer(), order_number="OS-9")
    message = inquiry_inbound_add(
        inquiry=inquiry,
        message=InboundMessage(
            body_text="別件です", received_at=timezone.now() + timedelta(days=20)
        ),
    )
    assert message.inquiry.reopened_from == inquiry and message.inquiry.order is None


def test_an_order_the_shop_gives_to_another_buyer_leaves_the_earlier_buyers_inquiry():
    # given: an open inquiry about the customer's own order
    customer = crm_factories.customer()
    order = crm_factories.order(customer=customer, order_number="OS-12")
    inquiry = factories.inquiry(customer=customer, order=order)
    untouched = factories.inquiry(customer=customer, order=crm_factories.order(customer=customer))
    # when: the store site corrects the buyer of that order
    crm_factories.order(customer=crm_factories.customer(), order_number="OS-12")
    # then: the inquiry no longer shows a stranger's order; the number stays, unmatched
    inquiry.refresh_from_db()
    assert inquiry.order is None and inquiry.order_number_given == "OS-12"
    assert inquiry.order_number_unmatched
    event = inquiry.events.get(kind="order_unlinked")
    assert event.old == "OS-12"
    untouched.refresh_from_db()
    assert untouched.order is not None and not untouched.events.filter(kind="order_unlinked")


def test_reply_without_an_address_is_refused_with_the_reason(colleague):
    from crm.services import customer_upsert

    customer, _ = customer_upsert(channel="phone", phone="090-5555-6666")
    inquiry = factories.inquiry(channel="phone", customer=customer)
    with pytest.raises(ValidationError) as excinfo:
        inquiry_reply(inquiry=inquiry, body="お電話ありがとうございました", actor=colleague)
    assert "channel" in excinfo.value.message_dict
