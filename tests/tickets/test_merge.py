"""Merging inquiries of one customer and splitting a message out
(tickets.services.merge), and the merge suggestion (tickets.selectors)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from crisis.models import IncidentInquiry, SuspensionInquiry
from crisis.services.incidents import incident_inquiries_link
from crisis.services.suspensions import suspension_inquiries_link, suspension_record
from outreach.models import Delivery
from tests.concurrency import at_once
from tests.crisis import incident_factories
from tests.crm import factories as crm_factories
from tests.tickets import factories
from tickets.models import (
    Inquiry,
    InquiryEvent,
    InquiryEventKind,
    InquiryMessage,
    InquiryStatus,
    MessageKind,
    NotificationKind,
    SlaPolicy,
    SlaState,
    StaffNotification,
)
from tickets.selectors import merge_suggestions
from tickets.services import (
    AttachmentData,
    InboundMessage,
    inquiries_merge,
    inquiry_inbound_add,
    inquiry_note_add,
    inquiry_reply,
    inquiry_split,
    inquiry_status_set,
    reply_outcomes_settle,
    sla_times,
    sla_watch,
)
from tickets.services.sla import resolution_times

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def _pair(*, hours_apart: float = 2, **kwargs):
    """Two inquiries of one customer about one order, the second
    `hours_apart` after the first (received two days ago)."""
    customer = crm_factories.customer()
    order = crm_factories.order(customer=customer)
    start = timezone.now() - timedelta(days=2)
    first = factories.inquiry(
        customer=customer, order=order, received_at=start, body="届いた商品が割れていました"
    )
    second = factories.inquiry(
        customer=customer,
        order=order,
        received_at=start + timedelta(hours=hours_apart),
        subject="再送のお願い",
        body="写真を送ります",
        **kwargs,
    )
    return first, second


# --- Merge ----------------------------------------------------------------------------


def test_merge_keeps_every_message_and_event_in_order_on_the_survivor(colleague):
    first, second = _pair(attachments=[AttachmentData("割れ.jpg", "image/jpeg", b"jpg", 3)])
    inquiry_note_add(inquiry=second, body="倉庫に確認中", actor=colleague)
    inquiry_inbound_add(
        inquiry=first,
        message=InboundMessage(
            body_text="まだですか", received_at=first.created_at + timedelta(hours=5)
        ),
    )
    messages = set(InquiryMessage.objects.values_list("pk", flat=True))
    events = set(InquiryEvent.objects.values_list("pk", flat=True))

    survivor = inquiries_merge(inquiries=[second, first], actor=colleague)

    assert survivor.pk == first.pk  # the earliest received
    thread = list(InquiryMessage.objects.filter(inquiry=survivor).order_by("created_at", "id"))
    assert {m.pk for m in thread} == messages
    assert [m.body_text for m in thread] == [
        "届いた商品が割れていました",
        "写真を送ります",
        "まだですか",
        "倉庫に確認中",
    ]
    assert [a.filename for a in thread[1].attachments.all()] == ["割れ.jpg"]
    assert events <= set(survivor.events.values_list("pk", flat=True))
    assert InquiryEvent.objects.count() > len(events)  # and the merge itself is recorded


def test_the_inbox_line_of_merged_and_split_inquiries_follows_their_messages(colleague):
    first, second = _pair()

    survivor = inquiries_merge(inquiries=[first, second], actor=colleague)

    # the survivor's inbox line is the group's latest message (the absorbed one's)
    assert survivor.pk == first.pk
    assert (survivor.last_message_excerpt, survivor.last_message_at) == (
        "写真を送ります",
        second.created_at,
    )
    moved = survivor.messages.get(body_text="写真を送ります")
    new = inquiry_split(message=moved, actor=colleague, subject="再送のお願い")
    survivor.refresh_from_db()
    assert new.last_message_excerpt == "写真を送ります"
    assert survivor.last_message_excerpt == "届いた商品が割れていました"


def test_the_absorbed_inquiry_is_closed_and_points_to_the_survivor(colleague):
    first, second = _pair()

    inquiries_merge(inquiries=[first, second], actor=colleague)

    second.refresh_from_db()
    assert second.merged_into_id == first.pk
    assert second.status == InquiryStatus.CLOSED
    assert list(second.events.values_list("kind", "new")) == [
        (InquiryEventKind.STATUS, InquiryStatus.CLOSED),
        (InquiryEventKind.MERGED_INTO, first.reference),
    ]
    assert first.events.filter(kind=InquiryEventKind.MERGED, new=second.reference).exists()


def test_the_agent_may_keep_the_later_inquiry_which_then_counts_from_the_first_message(
    colleague,
):
    first, second = _pair(hours_apart=30)
    assert first.first_reply_due_at < second.first_reply_due_at

    survivor = inquiries_merge(inquiries=[first, second], survivor=second, actor=colleague)

    assert survivor.pk == second.pk
    assert survivor.created_at == first.created_at
    due, at_risk = sla_times(first.sla_policy, first.created_at)
    assert (survivor.first_reply_due_at, survivor.at_risk_at) == (due, at_risk)
    assert survivor.first_reply_due_at == first.first_reply_due_at


def test_merge_recomputes_the_first_reply_clock_from_the_earliest_message(colleague):
    first, second = _pair(hours_apart=30)
    # the later inquiry was on track, the earlier one's 24 hours have passed
    assert second.first_reply_due_at > timezone.now() > first.first_reply_due_at

    survivor = inquiries_merge(inquiries=[first, second], survivor=second, actor=colleague)

    assert survivor.first_reply_due_at == first.first_reply_due_at
    assert survivor.sla_state == SlaState.ON_TRACK  # the watch moves it on, with its notices
    from tickets.services import sla_state_live

    assert sla_state_live(survivor, timezone.now()) == SlaState.BREACHED


def test_a_survivor_whose_deadline_stays_keeps_its_state_without_timeline_noise(colleague):
    first, second = _pair(hours_apart=30)
    sla_watch()
    first.refresh_from_db()
    assert first.sla_state == SlaState.BREACHED

    survivor = inquiries_merge(inquiries=[first, second], actor=colleague)

    assert survivor.sla_state == SlaState.BREACHED
    assert not survivor.events.filter(kind=InquiryEventKind.SLA, old=SlaState.BREACHED).exists()


def test_a_reply_already_sent_keeps_the_clock_met(colleague):
    first, second = _pair(hours_apart=30)
    inquiry_reply(inquiry=second, body="確認いたします。", actor=colleague)
    second.refresh_from_db()
    assert second.sla_state == SlaState.MET

    survivor = inquiries_merge(inquiries=[first, second], actor=colleague)

    assert survivor.pk == first.pk
    assert survivor.first_replied_at == second.first_replied_at
    assert survivor.sla_state == SlaState.MET


def test_incident_links_and_notices_carry_over_without_duplicates(owner, colleague):
    first, second = _pair()
    outage = incident_factories.incident(actor=owner)
    other = incident_factories.incident(actor=owner, title="配送遅延")
    incident_inquiries_link(incident=outage, inquiries=[first, second], actor=owner)
    incident_inquiries_link(incident=other, inquiries=[second], actor=owner)
    stop = suspension_record(
        sku="TEA-GYOKURO-50",
        product_name="玉露 50g",
        channels=["rakuten"],
        reason="stock_out",
        expected_resume_at=timezone.now() + timedelta(days=4),
        sales_stopped=True,
        email_template=None,
        actor=owner,
    )
    suspension_inquiries_link(suspension=stop, inquiries=[first, second], actor=owner)
    for inquiry in (first, second):
        StaffNotification.objects.create(
            user=colleague, inquiry=inquiry, kind=NotificationKind.AT_RISK, key="same deadline"
        )
    StaffNotification.objects.create(
        user=colleague, inquiry=second, kind=NotificationKind.ASSIGNED, key="1"
    )

    inquiries_merge(inquiries=[first, second], actor=colleague)

    links = IncidentInquiry.objects.filter(inquiry__in=[first, second])
    assert sorted(links.values_list("incident_id", "inquiry_id")) == sorted(
        [(outage.pk, first.pk), (other.pk, first.pk)]
    )
    suspended = SuspensionInquiry.objects.filter(inquiry__in=[first, second])
    assert list(suspended.values_list("suspension_id", "inquiry_id")) == [(stop.pk, first.pk)]
    notices = StaffNotification.objects.filter(inquiry=first)
    assert sorted(notices.values_list("kind", flat=True)) == ["assigned", "at_risk"]


def test_the_survivor_takes_the_order_and_assignee_it_lacks(colleague):
    customer = crm_factories.customer()
    order = crm_factories.order(customer=customer)
    first = factories.inquiry(customer=customer, received_at=timezone.now() - timedelta(hours=3))
    second = factories.inquiry(customer=customer, order=order)
    from tickets.services import inquiry_assign

    inquiry_assign(inquiry=second, assignee=colleague, actor=colleague)

    survivor = inquiries_merge(inquiries=[first, second], actor=colleague)

    assert (survivor.order_id, survivor.assignee_id) == (order.pk, colleague.pk)


def test_merge_refuses_inquiries_of_different_customers(colleague):
    first = factories.inquiry()
    second = factories.inquiry()

    with pytest.raises(ValidationError) as refused:
        inquiries_merge(inquiries=[first, second], actor=colleague)

    assert "別のお客様" in refused.value.messages[0]
    assert InquiryMessage.objects.filter(inquiry=first).count() == 1
    assert Inquiry.objects.filter(merged_into__isnull=False).count() == 0


def test_merge_refuses_an_inquiry_already_merged(colleague):
    first, second = _pair()
    third = factories.inquiry(customer=first.customer)
    inquiries_merge(inquiries=[first, second], actor=colleague)

    with pytest.raises(ValidationError) as refused:
        inquiries_merge(inquiries=[second, third], actor=colleague)

    assert second.reference in refused.value.messages[0]
    assert InquiryMessage.objects.filter(inquiry=third).count() == 1


def test_merge_refuses_to_keep_a_closed_inquiry_over_an_open_one(colleague):
    first, second = _pair()
    inquiry_status_set(inquiry=first, status=InquiryStatus.RESOLVED, actor=colleague)

    with pytest.raises(ValidationError):
        inquiries_merge(inquiries=[first, second], survivor=first, actor=colleague)

    # by default the open one is kept, and the resolved one folds into it
    survivor = inquiries_merge(inquiries=[first, second], actor=colleague)
    assert survivor.pk == second.pk and survivor.status != InquiryStatus.CLOSED


def test_a_message_to_the_absorbed_inquiry_goes_to_the_survivor(colleague):
    first, second = _pair()
    inquiries_merge(inquiries=[first, second], actor=colleague)

    message = inquiry_inbound_add(
        inquiry=second, message=InboundMessage(body_text="追加の質問です")
    )

    assert message.inquiry_id == first.pk
    second.refresh_from_db()
    assert second.status == InquiryStatus.CLOSED


def test_a_customer_message_on_the_absorbed_inquiry_puts_the_turn_back_to_us(colleague):
    first, second = _pair()
    inquiry_reply(inquiry=first, body="確認いたします。", actor=colleague)
    inquiry_inbound_add(inquiry=second, message=InboundMessage(body_text="まだですか"))
    first.refresh_from_db()
    assert first.status == InquiryStatus.WAITING_CUSTOMER

    survivor = inquiries_merge(inquiries=[first, second], actor=colleague)

    assert survivor.status == InquiryStatus.OPEN


@pytest.mark.django_db(transaction=True)
def test_two_agents_merging_at_once_lose_no_message(colleague):
    first, second = _pair()
    third = factories.inquiry(customer=first.customer)
    messages = set(InquiryMessage.objects.values_list("pk", flat=True))
    outcomes = []

    def merge_first_two():
        try:
            inquiries_merge(inquiries=[first, second], survivor=first, actor=colleague)
            outcomes.append("merged")
        except ValidationError:
            outcomes.append("refused")

    def merge_last_two():
        try:
            inquiries_merge(inquiries=[second, third], survivor=third, actor=colleague)
            outcomes.append("merged")
        except ValidationError:
            outcomes.append("refused")

    targets = iter([merge_first_two, merge_last_two])
    assert at_once(lambda: next(targets)(), 2) == []

    assert sorted(outcomes) == ["merged", "refused"]
    assert set(InquiryMessage.objects.values_list("pk", flat=True)) == messages
    # whichever came first, the other found the middle inquiry merged
    live = Inquiry.objects.filter(merged_into__isnull=True)
    assert sorted(live.values_list("pk", flat=True)) == [first.pk, third.pk]
    for message in InquiryMessage.objects.select_related("inquiry"):
        assert message.inquiry.merged_into_id is None  # none left on a merged inquiry


# --- Split ----------------------------------------------------------------------------


def test_split_creates_a_linked_inquiry_with_its_own_clock(colleague):
    original = factories.inquiry(received_at=timezone.now() - timedelta(hours=30))
    later = original.created_at + timedelta(hours=20)
    question = inquiry_inbound_add(
        inquiry=original,
        message=InboundMessage(body_text="別件ですが、領収書をください", received_at=later),
    )
    events_before = original.events.count()

    new = inquiry_split(message=question, actor=colleague, subject="領収書の発行")

    assert new.split_from_id == original.pk
    assert (new.customer_id, new.subject, new.created_at) == (
        original.customer_id,
        "領収書の発行",
        later,
    )
    assert new.first_reply_due_at == sla_times(new.sla_policy, later)[0]
    assert new.first_reply_due_at != original.first_reply_due_at
    assert list(new.messages.values_list("pk", flat=True)) == [question.pk]
    assert original.messages.count() == 1
    assert new.events.filter(kind=InquiryEventKind.SPLIT_FROM, new=original.reference).exists()
    assert original.events.count() == events_before + 1
    assert original.events.filter(kind=InquiryEventKind.SPLIT_OUT, new=new.reference).exists()


def test_split_with_the_later_messages_takes_the_reply_and_reopens_the_original_clock(
    colleague,
):
    original = factories.inquiry(received_at=timezone.now() - timedelta(hours=3))
    question = inquiry_inbound_add(
        inquiry=original,
        message=InboundMessage(
            body_text="別件です", received_at=timezone.now() - timedelta(hours=2)
        ),
    )
    reply = inquiry_reply(inquiry=original, body="承知しました。", actor=colleague)
    original.refresh_from_db()
    assert original.sla_state == SlaState.MET

    new = inquiry_split(message=question, with_later=True, actor=colleague)

    assert set(new.messages.values_list("pk", flat=True)) == {question.pk, reply.pk}
    assert new.sla_state == SlaState.MET and new.first_replied_at is not None
    original.refresh_from_db()
    assert original.first_replied_at is None and original.sla_state == SlaState.ON_TRACK
    assert original.events.filter(kind=InquiryEventKind.CLOCK_REOPENED).exists()


def test_split_refuses_a_reply_and_the_only_customer_message(colleague):
    original = factories.inquiry()
    reply = inquiry_reply(inquiry=original, body="確認いたします。", actor=colleague)
    first = original.messages.get(kind=MessageKind.INBOUND)

    with pytest.raises(ValidationError):
        inquiry_split(message=reply, actor=colleague)
    with pytest.raises(ValidationError):
        inquiry_split(message=first, with_later=True, actor=colleague)
    assert Inquiry.objects.count() == 1


def test_split_out_inquiry_is_not_suggested_back_for_merging(colleague):
    first, _second = _pair()
    question = inquiry_inbound_add(inquiry=first, message=InboundMessage(body_text="別件です"))

    new = inquiry_split(message=question, actor=colleague)
    Inquiry.objects.filter(pk=new.pk).update(order=first.order)

    assert new.pk not in set(merge_suggestions(first).values_list("pk", flat=True))


# --- Suggestion -----------------------------------------------------------------------


def test_a_second_inquiry_about_the_same_order_within_7_days_is_suggested():
    first, second = _pair(hours_apart=7 * 24 - 1)
    assert list(merge_suggestions(first)) == [second]
    assert list(merge_suggestions(second)) == [first]


def test_an_inquiry_8_days_later_is_not_suggested():
    first, second = _pair(hours_apart=8 * 24)
    assert list(merge_suggestions(first)) == []
    assert list(merge_suggestions(second)) == []


def test_another_order_or_a_merged_inquiry_is_not_suggested(colleague):
    first, second = _pair()
    other = factories.inquiry(
        customer=first.customer, order=crm_factories.order(customer=first.customer)
    )
    assert list(merge_suggestions(first)) == [second]
    assert other not in merge_suggestions(first)

    inquiries_merge(inquiries=[first, second], actor=colleague)
    first.refresh_from_db()
    assert list(merge_suggestions(first)) == []


def test_the_suggestion_is_read_through_an_index(django_assert_num_queries):
    first, _second = _pair()
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")  # as on a full table
        plan = merge_suggestions(first).explain()
        cursor.execute("SET enable_seqscan = on")
    assert "Index" in plan and "Seq Scan" not in plan
    with django_assert_num_queries(1):
        list(merge_suggestions(first))


def test_reply_outcome_after_merge_reopens_the_survivors_clock(colleague):
    """A reply that was moved by a merge and then failed re-opens the
    survivor's clock (the reply-outcome rule reads the moved messages)."""
    first, second = _pair()
    reply = inquiry_reply(inquiry=second, body="確認いたします。", actor=colleague)
    survivor = inquiries_merge(inquiries=[first, second], actor=colleague)
    assert survivor.first_replied_at is not None

    Delivery.objects.filter(pk=reply.delivery_id).update(status="failed")
    reply_outcomes_settle()

    survivor.refresh_from_db()
    assert survivor.first_replied_at is None


# --- Merge: the next-reply and resolution clocks -----------------------------------------


@pytest.fixture
def targets():
    """Every policy: next reply within 8 hours, resolved within 48, at risk
    2 hours before."""
    SlaPolicy.objects.update(
        next_reply_minutes=8 * 60, resolution_minutes=48 * 60, at_risk_minutes=120
    )


def test_merge_counts_the_resolution_clock_from_the_earliest_message(colleague, targets):
    first, second = _pair(hours_apart=30)
    assert second.resolution_due_at > first.resolution_due_at

    survivor = inquiries_merge(inquiries=[first, second], survivor=second, actor=colleague)

    due, at_risk = resolution_times(survivor.sla_policy, first.created_at)
    assert (survivor.resolution_due_at, survivor.resolution_at_risk_at) == (due, at_risk)
    assert survivor.resolution_due_at == first.resolution_due_at


def test_merge_owes_the_next_reply_from_the_customers_message_on_the_absorbed_inquiry(
    colleague, targets
):
    # given: the first inquiry was answered, then the customer wrote a new one
    customer = crm_factories.customer()
    start = timezone.now() - timedelta(hours=3)
    first = factories.inquiry(customer=customer, received_at=start)
    inquiry_reply(inquiry=first, body="確認いたします。", actor=colleague)
    second = factories.inquiry(customer=customer, body="まだですか")
    written = second.created_at

    survivor = inquiries_merge(inquiries=[first, second], actor=colleague)

    # then: as if the customer's message had arrived on the survivor
    assert survivor.pk == first.pk
    assert survivor.next_reply_since == written
    assert survivor.next_reply_due_at == written + timedelta(hours=8)
    assert survivor.next_reply_at_risk_at == written + timedelta(hours=6)
    assert survivor.next_replied_at is None
    assert survivor.next_reply_state == SlaState.ON_TRACK
    # and the next reply meets it
    inquiry_reply(inquiry=survivor, body="本日発送いたしました。", actor=colleague)
    survivor.refresh_from_db()
    assert survivor.next_reply_state == SlaState.MET


def test_a_reply_on_the_absorbed_inquiry_answers_the_survivors_owed_next_reply(colleague, targets):
    # given: the survivor owes a next reply from the customer's second message;
    # the absorbed inquiry, received later, was answered after that message
    customer = crm_factories.customer()
    start = timezone.now() - timedelta(hours=5)
    first = factories.inquiry(customer=customer, received_at=start)
    inquiry_reply(inquiry=first, body="確認いたします。", actor=colleague)
    first.refresh_from_db()
    inquiry_inbound_add(inquiry=first, message=InboundMessage(body_text="まだですか"))
    first.refresh_from_db()
    written = first.next_reply_since
    second = factories.inquiry(customer=customer)
    inquiry_reply(inquiry=second, body="本日発送いたしました。", actor=colleague)

    survivor = inquiries_merge(inquiries=[first, second], actor=colleague)

    assert survivor.next_reply_since == written
    assert survivor.next_replied_at is not None
    assert survivor.next_reply_state == SlaState.MET


def test_a_split_out_inquiry_has_its_own_resolution_clock(colleague, targets):
    first, second = _pair()
    survivor = inquiries_merge(inquiries=[first, second], actor=colleague)
    moved = survivor.messages.get(body_text="写真を送ります")

    new = inquiry_split(message=moved, actor=colleague)

    due, at_risk = resolution_times(new.sla_policy, moved.created_at)
    assert (new.resolution_due_at, new.resolution_at_risk_at) == (due, at_risk)
    assert new.resolution_state == SlaState.ON_TRACK
