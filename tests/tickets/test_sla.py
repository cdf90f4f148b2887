"""The SLA clocks through the services (tickets.services.sla, SPEC rule 13):
the watch's notices and their keys, the next-reply and resolution clocks (who
starts and stops them, the pausing statuses, the watch's notices once per
clock and deadline), and how the inbox, API and inquiry page show them."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from tests.api_client import api_client
from tests.conftest import make_api_key
from tests.tickets import factories
from tickets.models import (
    Inquiry,
    InquiryEvent,
    SlaPolicy,
    SlaState,
    StaffNotification,
)
from tickets.services import (
    InboundMessage,
    inquiry_assign,
    inquiry_inbound_add,
    inquiry_note_add,
    inquiry_priority_set,
    inquiry_reply,
    inquiry_status_set,
    sla_watch,
)
from tickets.services.sla import (
    NEXT_REPLY,
    PAUSED,
    RESOLUTION,
    clock_notice_key,
    sla_notice_key,
    sla_state_live,
)

pytestmark = pytest.mark.django_db
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
NOTHING = {"at_risk": 0, "breached": 0}
INBOX = reverse("admin:tickets_inquiry_changelist")


@pytest.fixture
def targets():
    """Every policy: next reply within 8 hours, resolved within 48, at risk
    2 hours before."""
    SlaPolicy.objects.update(
        next_reply_minutes=8 * 60, resolution_minutes=48 * 60, at_risk_minutes=120
    )


def write(inquiry, at=None, text="まだ届いていません。"):
    inquiry_inbound_add(inquiry=inquiry, message=InboundMessage(body_text=text, received_at=at))
    inquiry.refresh_from_db()
    return inquiry


def reply(inquiry, actor, text="確認いたします。"):
    inquiry_reply(inquiry=inquiry, body=text, actor=actor)
    inquiry.refresh_from_db()
    return inquiry


def clock_notices(inquiry, *kinds):
    notes = StaffNotification.objects.filter(inquiry=inquiry, kind__in=kinds)
    return sorted(notes.values_list("user__username", "kind", "key"))


# --- Next reply -------------------------------------------------------------------


def test_the_next_reply_clock_starts_only_when_the_customer_writes_after_a_reply(
    colleague, targets
):
    inquiry = factories.inquiry(received_at=timezone.now() - HOUR)
    # a message before the first reply is the first reply's business
    inquiry = write(inquiry)
    inquiry_note_add(inquiry=inquiry, body="倉庫に確認中", actor=colleague)
    inquiry.refresh_from_db()
    assert inquiry.next_reply_since is None and inquiry.next_reply_state == ""
    # a reply alone starts nothing
    inquiry = reply(inquiry, colleague)
    assert inquiry.next_reply_since is None
    assert sla_state_live(inquiry, timezone.now(), NEXT_REPLY) == ""
    # the customer writes: the next reply is due 8 hours from that message
    written_at = timezone.now()
    inquiry = write(inquiry, at=written_at)
    assert inquiry.next_reply_since == written_at
    assert inquiry.next_reply_due_at == written_at + 8 * HOUR
    assert inquiry.next_reply_at_risk_at == written_at + 6 * HOUR
    assert inquiry.next_reply_state == SlaState.ON_TRACK
    # a second message keeps the clock of the first one
    inquiry = write(inquiry, at=written_at + HOUR)
    assert inquiry.next_reply_due_at == written_at + 8 * HOUR
    # a note does not answer it; a reply does
    inquiry_note_add(inquiry=inquiry, body="返品で対応", actor=colleague)
    inquiry.refresh_from_db()
    assert inquiry.next_replied_at is None
    inquiry = reply(inquiry, colleague)
    assert inquiry.next_replied_at is not None
    assert inquiry.next_reply_state == SlaState.MET
    assert sla_state_live(inquiry, timezone.now() + 9 * HOUR, NEXT_REPLY) == SlaState.MET
    events = InquiryEvent.objects.filter(inquiry=inquiry, kind="sla_next_reply")
    assert list(events.values_list("old", "new")) == [("on_track", "met")]


def test_next_reply_at_risk_and_breach_notices_go_out_once_per_deadline(
    colleague, owner, targets, watch_path
):
    # given: an assigned inquiry, answered once, and the customer wrote again
    inquiry = factories.inquiry(received_at=timezone.now() - HOUR)
    inquiry_assign(inquiry=inquiry, assignee=colleague, actor=owner)
    inquiry = write(reply(inquiry, colleague))
    first_due = inquiry.next_reply_due_at
    # when: the watch runs twice past each threshold
    assert sla_watch(now=first_due - HOUR) == {"at_risk": 1, "breached": 0}
    assert sla_watch(now=first_due - HOUR) == NOTHING
    assert sla_watch(now=first_due + MINUTE) == {"at_risk": 0, "breached": 1}
    assert sla_watch(now=first_due + 2 * MINUTE) == NOTHING
    # then: the assignee is warned once, the assignee and managers told of the breach once
    key = clock_notice_key(NEXT_REPLY, first_due)
    assert key.startswith("next_reply:")
    assert clock_notices(inquiry, "next_at_risk", "next_breach") == [
        ("colleague", "next_at_risk", key),
        ("colleague", "next_breach", key),
        ("owner", "next_breach", key),
    ]
    # a late reply stays breached; the customer's next message is a new deadline
    inquiry = reply(inquiry, colleague)
    assert inquiry.next_reply_state == SlaState.BREACHED
    inquiry = write(inquiry, at=first_due + HOUR)
    second_due = inquiry.next_reply_due_at
    assert second_due == first_due + 9 * HOUR
    assert inquiry.next_reply_state == SlaState.ON_TRACK
    assert sla_watch(now=second_due - HOUR) == {"at_risk": 1, "breached": 0}
    assert sla_watch(now=second_due - HOUR) == NOTHING
    assert ("colleague", "next_at_risk", clock_notice_key(NEXT_REPLY, second_due)) in (
        clock_notices(inquiry, "next_at_risk")
    )
    assert len(clock_notices(inquiry, "next_at_risk")) == 2
    # the first-reply notices are not touched by the other clocks
    assert clock_notices(inquiry, "at_risk", "breached") == []


# --- Resolution -------------------------------------------------------------------


def test_waiting_statuses_pause_the_resolution_clock_and_open_resumes_it(colleague, targets):
    inquiry = factories.inquiry(received_at=timezone.now() - 10 * HOUR)
    assert inquiry.resolution_due_at == inquiry.created_at + 48 * HOUR
    assert inquiry.resolution_at_risk_at == inquiry.created_at + 46 * HOUR
    # waiting on a third party: paused, no deadline to watch
    inquiry = inquiry_status_set(inquiry=inquiry, status="waiting_third_party", actor=colleague)
    paused_at = inquiry.resolution_paused_at
    assert paused_at is not None and inquiry.resolution_due_at is None
    assert sla_state_live(inquiry, timezone.now() + 60 * HOUR, RESOLUTION) == PAUSED
    sla_watch(now=timezone.now() + 60 * HOUR)  # (the first reply breaches)
    assert Inquiry.objects.get(pk=inquiry.pk).resolution_state == SlaState.ON_TRACK
    # open again: it continues with the 38 hours it had left
    inquiry = inquiry_status_set(inquiry=inquiry, status="open", actor=colleague)
    pause = inquiry.resolution_paused
    assert pause > timedelta(0) and inquiry.resolution_paused_at is None
    assert inquiry.resolution_due_at == inquiry.created_at + 48 * HOUR + pause
    # a reply waits on the customer: paused; their answer resumes it
    inquiry = reply(inquiry, colleague)
    assert inquiry.status == "waiting_customer" and inquiry.resolution_due_at is None
    inquiry = write(inquiry)
    assert inquiry.status == "open" and inquiry.resolution_paused > pause
    assert inquiry.resolution_due_at == inquiry.created_at + 48 * HOUR + inquiry.resolution_paused
    assert inquiry.resolution_state == SlaState.ON_TRACK


def test_resolved_stops_every_clock_and_a_reopen_resumes_the_resolution_clock(
    colleague, owner, targets, watch_path
):
    # given: an assigned inquiry with a next reply owed and its resolution clock running
    inquiry = factories.inquiry(received_at=timezone.now() - 10 * HOUR)
    inquiry_assign(inquiry=inquiry, assignee=colleague, actor=owner)
    inquiry = write(reply(inquiry, colleague))
    assert inquiry.next_reply_state == SlaState.ON_TRACK
    # when: it is resolved (in time)
    inquiry = inquiry_status_set(inquiry=inquiry, status="resolved", actor=colleague)
    # then: nothing runs any more, whatever the hour
    assert inquiry.resolution_state == SlaState.MET and inquiry.resolution_due_at is None
    far = timezone.now() + 30 * 24 * HOUR
    assert sla_watch(now=far) == NOTHING
    assert sla_state_live(inquiry, far, NEXT_REPLY) == ""
    assert sla_state_live(inquiry, far, RESOLUTION) == SlaState.MET
    # a reopen resumes the resolution clock where it stopped (time resolved left out)
    inquiry = inquiry_status_set(inquiry=inquiry, status="open", actor=colleague)
    assert inquiry.resolution_state == SlaState.ON_TRACK
    assert inquiry.resolution_due_at == inquiry.created_at + 48 * HOUR + inquiry.resolution_paused
    events = InquiryEvent.objects.filter(inquiry=inquiry, kind="sla_resolution")
    assert list(events.values_list("old", "new")) == [("on_track", "met"), ("met", "on_track")]


def test_resolved_after_the_target_is_breached(colleague, targets):
    inquiry = factories.inquiry(received_at=timezone.now() - 49 * HOUR)
    inquiry = inquiry_status_set(inquiry=inquiry, status="resolved", actor=colleague)
    assert inquiry.resolution_state == SlaState.BREACHED


def test_resolution_notices_go_out_once_per_deadline_and_a_moved_deadline_warns_again(
    colleague, owner, targets, watch_path
):
    # given: 12 hours to resolve, received 11 hours ago: at risk already
    SlaPolicy.objects.update(resolution_minutes=12 * 60)
    SlaPolicy.objects.create(
        name="低: 48時間", priority="low", first_reply_minutes=48 * 60, resolution_minutes=24 * 60
    )
    inquiry = factories.inquiry(received_at=timezone.now() - 11 * HOUR)
    inquiry_assign(inquiry=inquiry, assignee=colleague, actor=owner)
    first_due = inquiry.resolution_due_at
    assert sla_watch() == {"at_risk": 1, "breached": 0}
    assert sla_watch() == NOTHING
    # when: a lower priority gives it 24 hours: a new deadline, back on track
    inquiry = inquiry_priority_set(inquiry=inquiry, priority="low", actor=owner)
    second_due = inquiry.resolution_due_at
    assert second_due == first_due + 12 * HOUR
    assert inquiry.resolution_state == SlaState.ON_TRACK
    # then: the new deadline warns again and breaches, each once
    assert sla_watch(now=second_due - HOUR) == {"at_risk": 1, "breached": 0}
    assert sla_watch(now=second_due - HOUR) == NOTHING
    assert sla_watch(now=second_due + MINUTE) == {"at_risk": 0, "breached": 1}
    assert sla_watch(now=second_due + 2 * MINUTE) == NOTHING
    first, second = (clock_notice_key(RESOLUTION, due) for due in (first_due, second_due))
    assert clock_notices(inquiry, "res_at_risk", "res_breach") == [
        ("colleague", "res_at_risk", first),
        ("colleague", "res_at_risk", second),
        ("colleague", "res_breach", second),
        ("owner", "res_breach", second),
    ]


def test_a_paused_resolution_clock_is_never_warned(colleague, owner, targets, watch_path):
    inquiry = factories.inquiry(received_at=timezone.now() - 11 * HOUR)
    inquiry_assign(inquiry=inquiry, assignee=colleague, actor=owner)
    inquiry = reply(inquiry, colleague)  # the first reply's clock stops too
    inquiry_status_set(inquiry=inquiry, status="waiting_third_party", actor=colleague)
    assert sla_watch(now=timezone.now() + 100 * HOUR) == NOTHING
    assert clock_notices(inquiry, "res_at_risk", "res_breach") == []
    assert Inquiry.objects.get(pk=inquiry.pk).resolution_state == SlaState.ON_TRACK


# --- Inbox and API ----------------------------------------------------------------


@pytest.fixture
def clocks_queue(colleague, targets):
    """Inquiries in each state of the next-reply and resolution clocks."""
    now = timezone.now()

    def owed(hours_ago):  # answered once; the customer wrote `hours_ago`
        inquiry = reply(factories.inquiry(received_at=now - HOUR), colleague)
        return write(inquiry, at=now - hours_ago * HOUR)

    waiting = factories.inquiry(received_at=now - HOUR)
    inquiry_status_set(inquiry=waiting, status="waiting_third_party", actor=colleague)
    return {
        "next_overdue": owed(9),
        "next_at_risk": owed(7),
        "next_on_track": owed(0),
        "resolution_at_risk": factories.inquiry(received_at=now - 47 * HOUR),
        "resolution_overdue": factories.inquiry(received_at=now - 49 * HOUR),
        "paused": waiting,
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("next_reply:breached", ["next_overdue"]),
        ("next_reply:at_risk", ["next_at_risk"]),
        ("next_reply:on_track", ["next_on_track"]),
        ("resolution:at_risk", ["resolution_at_risk"]),
        ("resolution:breached", ["resolution_overdue"]),
        ("resolution:paused", ["paused"]),
    ],
)
def test_the_inbox_filters_each_clock_by_its_live_state(
    client, colleague, clocks_queue, query, expected
):
    client.force_login(colleague)
    response = client.get(INBOX, {"sla": query})
    assert response.status_code == 200
    shown = [inquiry.reference for inquiry in response.context["cl"].result_list]
    assert sorted(shown) == sorted(clocks_queue[name].reference for name in expected)


def test_the_inbox_names_the_next_reply_and_resolution_clocks_in_words(
    client, colleague, clocks_queue
):
    client.force_login(colleague)
    with translation.override("ja"):
        page = client.get(INBOX, {"sla": "next_reply:breached"}).content.decode()
        assert "次回返信: 期限超過" in page  # the filter
        assert "次回返信期限: 1時間超過" in page  # the row
        page = client.get(INBOX, {"sla": "resolution:paused"}).content.decode()
        assert "解決期限: 一時停止中" in page


@pytest.mark.parametrize("query", ["next_reply:at_risk", "resolution:paused"])
def test_the_clock_filters_keep_the_inbox_query_count(
    client, colleague, targets, query, django_assert_num_queries
):
    def queue(count):
        for _ in range(count):
            inquiry = factories.inquiry(received_at=timezone.now() - HOUR)
            inquiry = write(reply(inquiry, colleague), at=timezone.now() - 7 * HOUR)
            inquiry_status_set(inquiry=inquiry, status="waiting_third_party", actor=colleague)
            if query.startswith("next_reply"):
                inquiry_status_set(inquiry=inquiry, status="open", actor=colleague)

    client.force_login(colleague)
    queue(2)
    client.get(INBOX, {"sla": query})
    with CaptureQueriesContext(connection) as small:
        assert len(client.get(INBOX, {"sla": query}).context["cl"].result_list) == 2
    queue(6)
    with django_assert_num_queries(len(small)):
        assert len(client.get(INBOX, {"sla": query}).context["cl"].result_list) == 8


def test_the_api_filters_by_the_stored_state_of_each_clock(django_assert_num_queries, targets):
    store = api_client(make_api_key(channels=["own_site"])[1])
    resolved_late = factories.inquiry(channel="own_site", received_at=timezone.now() - 49 * HOUR)
    inquiry_status_set(inquiry=resolved_late, status="resolved", actor=None)
    running = factories.inquiry(channel="own_site")
    url = "/api/v1/inquiries/"
    results = store.get(url, {"resolution_state": "breached"}).json()["results"]
    assert [row["reference"] for row in results] == [resolved_late.reference]
    results = store.get(url, {"resolution_state": "on_track"}).json()["results"]
    assert [row["reference"] for row in results] == [running.reference]
    assert store.get(url, {"next_reply_state": "on_track"}).json()["results"] == []
    assert store.get(url, {"next_reply_state": "nonsense"}).status_code == 400


# --- In words ----------------------------------------------------------------------


def test_the_inquiry_page_shows_each_clock_and_its_events_in_words(client, colleague, targets):
    # given: the customer wrote again after a reply; the inquiry waits on a third party
    inquiry = write(reply(factories.inquiry(received_at=timezone.now() - HOUR), colleague))
    inquiry_status_set(inquiry=inquiry, status="waiting_third_party", actor=colleague)
    page_url = reverse("admin:tickets_inquiry_change", args=[inquiry.pk])
    client.force_login(colleague)
    with translation.override("ja"):
        page = client.get(page_url).content.decode()
        assert "次回返信期限: <span" in page and "残り7時間59分" in page
        assert "解決期限: <span" in page and "一時停止中" in page
        assert "再開後の残り46時間59分" in page or "再開後の残り47時間" in page
        # when: it is answered and resolved
        reply(inquiry, colleague)
        inquiry_status_set(inquiry=inquiry, status="resolved", actor=colleague)
        response = client.get(page_url)
        # then: the clocks and the timeline say how they ended
        page = response.content.decode()
        assert "期限内に返信済み" in page and "期限内に解決" in page
        timeline = [
            (str(row["kind"]), str(row["old"]), str(row["new"]))
            for row in response.context["timeline"]
        ]
    assert ("次回返信のSLA", "期限内", "期限内に返信済み") in timeline
    assert ("解決のSLA", "期限内", "期限内に解決") in timeline


def test_a_resolution_notice_mail_names_the_resolution_deadline(smtp, django_user_model, targets):
    from tickets.models import NotificationKind
    from tickets.services.notices import staff_notifications_email

    user = django_user_model.objects.create_user("sato", email="sato@shop.example", is_staff=True)
    inquiry = factories.inquiry(received_at=timezone.now() - HOUR)
    StaffNotification.objects.create(
        user=user,
        inquiry=inquiry,
        kind=NotificationKind.RESOLUTION_BREACHED,
        key=clock_notice_key(RESOLUTION, inquiry.resolution_due_at),
    )
    with translation.override("ja"):
        assert staff_notifications_email() == 1
    (mail,) = smtp.received
    assert mail.message["Subject"] == (
        f"【期限超過】[{inquiry.reference}] 解決の期限を過ぎました: {inquiry.subject}"
    )
    due = timezone.localtime(inquiry.resolution_due_at).strftime("%Y-%m-%d %H:%M")
    assert due in mail.message.get_content()


def test_a_manager_sets_the_next_reply_and_resolution_targets_of_a_policy(client, owner):
    client.force_login(owner)
    response = client.post(
        reverse("admin:tickets_slapolicy_add"),
        {
            "name": "LINE: 2時間以内",
            "channel": "line",
            "priority": "",
            "first_reply_minutes": "120",
            "next_reply_minutes": "240",
            "resolution_minutes": "2880",
            "at_risk_minutes": "30",
            "clock": "calendar",
            "calendar": "",
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    policy = SlaPolicy.objects.get(name="LINE: 2時間以内")
    assert (policy.next_reply_minutes, policy.resolution_minutes) == (240, 2880)
    inquiry = factories.inquiry(channel="line")
    assert inquiry.resolution_due_at == inquiry.created_at + timedelta(minutes=2880)


def test_a_resolution_target_given_while_the_inquiry_waits_starts_paused(colleague, owner):
    # given: no resolution target for normal priority; 24 hours for low
    SlaPolicy.objects.create(
        name="低: 48時間", priority="low", first_reply_minutes=48 * 60, resolution_minutes=24 * 60
    )
    inquiry = factories.inquiry(received_at=timezone.now() - HOUR)
    assert inquiry.resolution_state == "" and inquiry.resolution_due_at is None
    inquiry = inquiry_status_set(inquiry=inquiry, status="waiting_third_party", actor=colleague)
    # when: a lower priority brings the target while it waits
    inquiry = inquiry_priority_set(inquiry=inquiry, priority="low", actor=owner)
    # then: the clock is there, paused; it runs when the inquiry is open again
    assert inquiry.resolution_state == SlaState.ON_TRACK
    assert inquiry.resolution_paused_at is not None and inquiry.resolution_due_at is None
    inquiry = inquiry_status_set(inquiry=inquiry, status="open", actor=colleague)
    assert inquiry.resolution_due_at == (inquiry.created_at + 24 * HOUR + inquiry.resolution_paused)
    # and a resolved inquiry given a target on the way gets no clock
    resolved = inquiry_status_set(inquiry=factories.inquiry(), status="resolved", actor=colleague)
    resolved = inquiry_priority_set(inquiry=resolved, priority="low", actor=owner)
    assert resolved.resolution_state == "" and resolved.resolution_due_at is None


def test_a_moved_deadline_gets_its_own_at_risk_and_breach_notices_once(
    colleague, owner, watch_path
):
    # given: an inquiry at risk of its 24-hour deadline, its assignee warned
    SlaPolicy.objects.create(
        name="低: 48時間", priority="low", first_reply_minutes=48 * 60, at_risk_minutes=240
    )
    inquiry = factories.inquiry(received_at=timezone.now() - timedelta(hours=21))
    inquiry_assign(inquiry=inquiry, assignee=colleague, actor=owner)
    first_due = inquiry.first_reply_due_at
    assert sla_watch() == {"at_risk": 1, "breached": 0}
    # when: a lower priority gives it 48 hours, back on track
    inquiry = inquiry_priority_set(inquiry=inquiry, priority="low", actor=owner)
    assert inquiry.sla_state == SlaState.ON_TRACK
    second_due = inquiry.first_reply_due_at
    assert second_due - first_due == timedelta(hours=24)
    # then: the new deadline warns again, and breaches, each once
    at_risk_again = second_due - timedelta(hours=3)
    assert sla_watch(now=at_risk_again) == {"at_risk": 1, "breached": 0}
    assert sla_watch(now=at_risk_again + timedelta(minutes=1)) == {"at_risk": 0, "breached": 0}
    late = second_due + timedelta(minutes=1)
    assert sla_watch(now=late) == {"at_risk": 0, "breached": 1}
    assert sla_watch(now=late + timedelta(minutes=1)) == {"at_risk": 0, "breached": 0}
    notes = StaffNotification.objects.filter(inquiry=inquiry).exclude(kind="assigned")
    assert sorted(notes.values_list("user__username", "kind", "key")) == sorted(
        [
            ("colleague", "at_risk", sla_notice_key(first_due)),
            ("colleague", "at_risk", sla_notice_key(second_due)),
            ("colleague", "breached", sla_notice_key(second_due)),
            ("owner", "breached", sla_notice_key(second_due)),
        ]
    )


def test_the_notice_key_is_the_deadline_to_the_microsecond_in_utc():
    due = timezone.datetime(2026, 12, 5, 9, 30, 0, 1234, tzinfo=timezone.get_current_timezone())
    assert sla_notice_key(due) == "2026-12-05T00:30:00.001234"
