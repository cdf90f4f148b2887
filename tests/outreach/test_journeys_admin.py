"""The journey admin (marketer): list, page with steps inline, on/off through
the services, the funnel on a hand-built fixture, query counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from outreach.models import Delivery, Journey, JourneyEvent, JourneyStep, SkipReason
from outreach.selectors import journey_funnel
from tests.outreach.journeys import consented, journey, order, template

pytestmark = pytest.mark.django_db


def follow_up(**fields) -> Journey:
    return journey(
        "到着後のフォロー",
        trigger="order_placed",
        steps=[{"delay_days": 1}, {"delay_days": 7, "condition": "no_order_since_previous"}],
        **fields,
    )


def funnel_fixture() -> tuple[Journey, list]:
    """Four customers enter: step 1 sent to three (one ordered two days
    later, one ten days later: outside the 7-day window), withdrawn for
    one (opt-out); step 2 waits for two, withdrawn for one (cancelled)."""
    Journey.objects.filter(is_builtin=True).update(active=False)
    journey_ = follow_up()
    first, second = journey_.steps.order_by("position")
    people = [consented() for _ in range(4)]
    orders = [
        order(person, f"F-{i}", ordered_at=timezone.now() - timedelta(hours=2))
        for i, person in enumerate(people)
    ]
    sent_at = timezone.now() - timedelta(days=12)
    rows1 = {d.customer_id: d for d in Delivery.objects.filter(send_id=first.send_id)}
    for person in people[:3]:
        Delivery.objects.filter(pk=rows1[person.pk].pk).update(status="sent", sent_at=sent_at)
    Delivery.objects.filter(pk=rows1[people[3].pk].pk).update(
        status="skipped", skip_reason="unsubscribed"
    )
    order(people[0], "F-again-0", ordered_at=sent_at + timedelta(days=2))
    order(people[1], "F-again-1", ordered_at=sent_at + timedelta(days=10))
    rows2 = Delivery.objects.filter(
        send_id=second.send_id, context_key__in=[f"order:{o.pk}" for o in orders]
    ).order_by("customer_id")
    Delivery.objects.filter(pk=rows2[0].pk).update(status="skipped", skip_reason="order_cancel")
    return journey_, people


def test_the_funnel_counts_entered_sent_withdrawn_why_and_converted():
    journey_, _people = funnel_fixture()
    with CaptureQueriesContext(connection) as queries:
        funnel = journey_funnel(journey_)
    # four orders entered, and people[1]'s later order (2 days ago: its
    # step 2 is still ahead; people[0]'s, 10 days ago, is past both steps)
    assert funnel.entered == 5
    step1, step2 = funnel.steps
    # converted: people[0] ordered 2 days after step 1 (people[1]: 10 days)
    assert (step1.sent, step1.waiting, step1.converted) == (3, 0, 1)
    assert step1.withdrawn == [(str(SkipReason.UNSUBSCRIBED.label), 1)]
    assert (step2.sent, step2.waiting) == (0, 4)
    assert step2.withdrawn == [(str(SkipReason.ORDER_CANCELLED.label), 1)]
    assert len(queries) <= 4


def test_the_journey_list_shows_entries_in_a_fixed_number_of_queries(client, marketer):
    client.force_login(marketer)
    follow_up()
    url = "/admin/outreach/journey/"
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    for index in range(5):
        journey(f"追加{index}", trigger="order_shipped", steps=[{}])
    order(consented(), "L-1")
    with CaptureQueriesContext(connection) as many:
        response = client.get(url)
    assert response.status_code == 200
    assert "到着後のフォロー" in response.content.decode()
    assert len(many) == len(few)


def test_the_journey_page_shows_the_funnel_in_words_in_a_fixed_number_of_queries(client, marketer):
    client.force_login(marketer)
    journey_, _people = funnel_fixture()
    url = f"/admin/outreach/journey/{journey_.pk}/change/"
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    page = response.content.decode()
    assert response.status_code == 200
    assert "配信停止" in page  # the withdrawal reason, in words
    assert "unsubscribed" not in page and "order_cancel" not in page
    more = [consented() for _ in range(5)]
    for index, person in enumerate(more):
        order(person, f"M-{index}")
    with CaptureQueriesContext(connection) as again:
        client.get(url)
    assert len(again) == len(queries)


def test_a_marketer_turns_a_journey_off_and_on_with_events(client, marketer):
    client.force_login(marketer)
    journey_ = follow_up()
    url = f"/admin/outreach/journey/{journey_.pk}/toggle/"
    client.post(url, {"active": "0"})
    journey_.refresh_from_db()
    assert not journey_.active
    client.post(url, {"active": "1"})
    journey_.refresh_from_db()
    assert journey_.active
    kinds = list(JourneyEvent.objects.filter(journey=journey_).values_list("kind", "actor"))
    assert kinds[-2:] == [("deactivated", marketer.pk), ("activated", marketer.pk)]


def step_post(name: str, template_id: int, *, review: bool = False, days: int = 7) -> dict:
    return {
        "steps-0-name": name,
        "steps-0-delay_days": str(days),
        "steps-0-delay_hours": "0",
        "steps-0-template": str(template_id),
        "steps-0-condition": "",
        "steps-0-holdout_percent": "0",
        **({"steps-0-is_review_request": "on"} if review else {}),
    }


def journey_post(name: str, **fields) -> dict:
    return {
        "name": name,
        "trigger": "order_delivered",
        "channel": "email",
        "conversion_window_days": "7",
        "steps-TOTAL_FORMS": "1",
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
        **fields,
    }


def test_a_marketer_adds_a_journey_with_its_step(client, marketer):
    client.force_login(marketer)
    mail = template("お手入れのご案内")
    response = client.post(
        "/admin/outreach/journey/add/",
        journey_post("お手入れ", **step_post("お手入れ案内", mail.pk)),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    saved = Journey.objects.get(name="お手入れ")
    [step] = JourneyStep.objects.filter(journey=saved)
    assert (step.position, step.send.kind, step.send.status) == (1, "journey", "sending")
    assert not saved.active
    assert [e.kind for e in saved.events.all()] == ["created"]


def test_a_review_step_with_praise_wording_is_refused_on_the_form(client, marketer):
    client.force_login(marketer)
    praise = template("レビュー依頼", purpose="transactional", body="★5をお願いします。")
    response = client.post(
        "/admin/outreach/journey/add/",
        journey_post(
            "レビュー",
            is_transactional="on",
            **step_post("レビュー依頼", praise.pk, review=True),
        ),
    )
    assert response.status_code == 200
    assert "★5" in response.content.decode()
    assert not Journey.objects.filter(name="レビュー").exists()


def test_the_demo_turns_on_the_follow_up_with_due_and_withdrawn_steps():
    from types import SimpleNamespace

    from outreach.demo import DEMO_JOURNEY, journey_demo

    for _index in range(4):
        consented()
    ctx = SimpleNamespace(users={})
    journey_demo(ctx)
    journey_demo(ctx)  # twice: nothing more
    follow = Journey.objects.get(name=DEMO_JOURNEY)
    assert follow.active
    funnel = journey_funnel(follow)
    assert funnel.entered == 4
    [step] = funnel.steps
    assert step.waiting == 3
    assert step.withdrawn == [(str(SkipReason.ORDER_CANCELLED.label), 1)]
    due = Delivery.objects.filter(send_id=step.step.send_id, status="queued")
    assert all(row.next_attempt_at <= timezone.now() for row in due)
