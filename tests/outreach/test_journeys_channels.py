"""Journeys on two channels in order of preference (LINE, then email): each
person gets each step on the first channel that can reach them (address,
and consent for marketing), once per step and order across channels; a
step needs a template for every channel the journey may send it on. Real
PostgreSQL, a real SMTP server and the LINE fake."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation

from crm import services as crm
from outreach import services
from outreach.dispatch import send_dispatch
from outreach.models import (
    Delivery,
    DeliveryStatus,
    Journey,
    JourneyStep,
    MessageTemplate,
    SkipReason,
)
from outreach.selectors import journey_funnel
from outreach.tasks import journeys_tick
from tests.crm import factories
from tests.outreach.audience import line_user
from tests.outreach.journeys import order, template
from tests.outreach.test_journeys import _builtins_off, _fast_worker  # noqa: F401 (autouse)
from tests.outreach.test_journeys_admin import journey_post, step_post

pytestmark = pytest.mark.django_db


def line_template(name: str) -> MessageTemplate:
    return services.template_save(
        template=MessageTemplate(
            name=name,
            channel="line",
            purpose="marketing",
            line_messages=["{{ customer.family_name }}様、ご購入ありがとうございます。"],
        )
    )


def line_then_email(**step) -> Journey:
    """A thank-you journey on LINE, then email, on a new order."""
    return services.journey_save(
        journey=Journey(
            name="ご購入のお礼（LINE→メール）",
            trigger="order_placed",
            channel="line",
            next_channel="email",
        ),
        steps=[
            JourneyStep(
                name="お礼",
                template=line_template("お礼LINE"),
                next_template=step.pop("next_template", None) or template("お礼メール"),
                **step,
            )
        ],
    )


def person(index: int, *, line_consent: bool, email_consent: bool, **profile):
    """A customer known on LINE (`line_user(index)`) and by email."""
    customer, _ = crm.customer_upsert(
        channel="line", external_id=line_user(index), email=f"p{index}@example.jp", **profile
    )
    for channel, given in (("line", line_consent), ("email", email_consent)):
        if given:
            crm.consent_record(
                customer=customer, channel=channel, action="opt_in", source="web_form"
            )
    return customer


def email_only(index: int, *, consent: bool = True):
    customer = factories.customer(email=f"m{index}@example.jp")
    if consent:
        crm.consent_record(customer=customer, channel="email", action="opt_in", source="web_form")
    return customer


def test_each_person_gets_the_step_on_the_first_channel_that_reaches_them(line, smtp):
    journey_ = line_then_email()
    services.journey_activate(journey=journey_)
    both = person(1, line_consent=True, email_consent=True)
    mail_only = email_only(2)
    line_without_consent = person(3, line_consent=False, email_consent=True)
    nowhere = email_only(4, consent=False)
    claimant = person(5, line_consent=True, email_consent=True)
    crm.customer_claimant_set(customer=claimant, reason="暴言", actor=None)
    people = [both, mail_only, line_without_consent, nowhere, claimant]
    for index, customer in enumerate(people):
        order(customer, f"C-{index}", ordered_at=timezone.now() - timedelta(minutes=5))
    step = journey_.steps.get()
    # Everyone enters on the first channel.
    assert set(Delivery.objects.filter(send_id=step.send_id).values_list("channel", flat=True)) == {
        "line"
    }

    send_dispatch(send_id=step.send_id)
    # The tick starts the next channel's send for the rows moved there.
    assert step.next_send_id in journeys_tick_sends()
    send_dispatch(send_id=step.next_send_id)

    assert [r.recipients for r in line.accepted_requests] == [(line_user(1),)]
    sent_mail = {rcpt for message in smtp.received for rcpt in message.rcpt_tos}
    assert sent_mail == {mail_only.email, line_without_consent.email}
    rows = Delivery.objects.filter(send_id__in=step.send_ids())
    outcome = {
        customer.pk: [
            (r.channel, r.status, r.skip_reason)
            for r in rows.filter(customer=customer).order_by("pk")
        ]
        for customer in people
    }
    assert outcome[both.pk] == [("line", "sent", "")]
    assert outcome[mail_only.pk] == [("line", "skipped", "next_channel"), ("email", "sent", "")]
    assert outcome[nowhere.pk] == [
        ("line", "skipped", "next_channel"),
        ("email", "skipped", "no_consent"),
    ]
    assert outcome[claimant.pk] == [("line", "skipped", "claimant")]  # on no channel

    [funnel] = journey_funnel(journey_).steps
    assert (funnel.sent, funnel.sent_by_channel) == (3, {"line": 1, "email": 2})
    assert dict(funnel.withdrawn) == {
        str(SkipReason.NO_CONSENT.label): 1,
        str(SkipReason.CLAIMANT.label): 1,
    }
    assert journey_funnel(journey_).entered == 5


def journeys_tick_sends() -> list[int]:
    from outreach.selectors import journey_sends_due

    journeys_tick()
    return journey_sends_due(now=timezone.now())


def test_a_step_goes_once_per_order_across_channels(line, smtp):
    journey_ = line_then_email()
    services.journey_activate(journey=journey_)
    customer = email_only(7)
    placed = order(customer, "ONCE-1", ordered_at=timezone.now() - timedelta(minutes=5))
    step = journey_.steps.get()
    for _again in range(2):
        send_dispatch(send_id=step.send_id)
        send_dispatch(send_id=step.next_send_id)
        order(customer, "ONCE-1", ordered_at=placed.ordered_at, status="shipped")  # no re-entry
    [first] = Delivery.objects.filter(send_id=step.send_id)
    # Moving a row again (a second worker that took it after a lease ran
    # out) adds nobody to the next channel.
    services.journey_rows_next_channel(step=step, ids=[first.pk], now=timezone.now())
    assert Delivery.objects.filter(send_id=step.next_send_id).count() == 1
    assert len(smtp.received) == 1
    assert line.accepted_requests == []


def test_a_step_without_a_template_for_the_next_channel_is_refused_naming_both():
    with translation.override("ja"), pytest.raises(ValidationError) as refused:
        services.journey_save(
            journey=Journey(
                name="LINEとメール", trigger="order_placed", channel="line", next_channel="email"
            ),
            steps=[JourneyStep(name="お礼のステップ", template=line_template("お礼LINE2"))],
        )
    [message] = refused.value.message_dict["steps"]
    assert "「お礼のステップ」" in message and "メール" in message
    assert "email" not in message


def test_a_template_of_the_wrong_channel_for_the_next_channel_is_refused():
    with pytest.raises(ValidationError):
        line_then_email(next_template=line_template("LINEのまま"))


def test_a_journey_saved_before_keeps_one_channel(smtp):
    """Existing journeys (next_channel empty) send on their channel only: a
    person it cannot reach there is withdrawn, not moved."""
    journey_ = services.journey_save(
        journey=Journey(name="メールだけ", trigger="order_placed", channel="email"),
        steps=[JourneyStep(name="お礼", template=template("お礼メールだけ"))],
    )
    services.journey_activate(journey=journey_)
    step = journey_.steps.get()
    assert (journey_.channels, step.next_send_id) == (["email"], None)
    customer = email_only(9, consent=False)
    order(customer, "ONE-1", ordered_at=timezone.now() - timedelta(minutes=5))
    send_dispatch(send_id=step.send_id)
    [row] = Delivery.objects.filter(customer=customer)
    assert (row.status, row.skip_reason) == (DeliveryStatus.SKIPPED, SkipReason.NO_CONSENT)


def test_a_marketer_picks_line_then_email_and_is_told_which_step_lacks_a_template(client, marketer):
    client.force_login(marketer)
    thanks = line_template("お礼LINE3")
    post = journey_post(
        "LINEのち メール", channel="line", next_channel="email", **step_post("お礼", thanks.pk)
    )
    response = client.post("/admin/outreach/journey/add/", post)
    assert response.status_code == 200
    assert "「お礼」" in response.content.decode()
    assert not Journey.objects.filter(name="LINEのち メール").exists()

    post["steps-0-next_template"] = str(template("お礼メール3").pk)
    response = client.post("/admin/outreach/journey/add/", post)
    assert response.status_code == 302, response.content.decode()[:3000]
    saved = Journey.objects.get(name="LINEのち メール")
    [step] = saved.steps.all()
    assert saved.channels == ["line", "email"]
    assert (step.send.channel, step.next_send.channel) == ("line", "email")


def test_the_journey_page_shows_what_each_channel_sent(client, marketer, line, smtp):
    client.force_login(marketer)
    journey_ = line_then_email()
    services.journey_activate(journey=journey_)
    for index, customer in enumerate(
        [person(11, line_consent=True, email_consent=True), email_only(12), email_only(13)]
    ):
        order(customer, f"P-{index}", ordered_at=timezone.now() - timedelta(minutes=5))
    step = journey_.steps.get()
    send_dispatch(send_id=step.send_id)
    send_dispatch(send_id=step.next_send_id)

    url = f"/admin/outreach/journey/{journey_.pk}/change/"
    with CaptureQueriesContext(connection) as queries:
        page = client.get(url).content.decode()
    assert "LINE 1<" in page and "メール 2<" in page
    listing = client.get("/admin/outreach/journey/").content.decode()
    assert "LINE → メール" in listing

    # more people on both channels: the page reads as many queries
    for index, customer in enumerate(
        [person(14, line_consent=True, email_consent=True), email_only(15), email_only(16)]
    ):
        order(customer, f"Q-{index}", ordered_at=timezone.now() - timedelta(minutes=5))
    send_dispatch(send_id=step.send_id)
    send_dispatch(send_id=step.next_send_id)
    with CaptureQueriesContext(connection) as again:
        page = client.get(url).content.decode()
    assert "LINE 2<" in page and "メール 4<" in page
    assert len(again) == len(queries)


def test_the_demo_has_a_two_channel_journey_whose_step_keeps_a_holdout(line, smtp):
    from types import SimpleNamespace

    from outreach.demo import DEMO_THANKS_JOURNEY, journey_channels_demo

    people = [person(21, line_consent=True, email_consent=False)]
    people += [email_only(22 + index) for index in range(3)]
    ctx = SimpleNamespace(users={})
    journey_channels_demo(ctx)
    journey_channels_demo(ctx)  # twice: nothing more

    thanks = Journey.objects.get(name=DEMO_THANKS_JOURNEY)
    [step] = thanks.steps.all()
    assert (thanks.active, thanks.channels, step.holdout_percent) == (True, ["line", "email"], 25)
    assert Delivery.objects.filter(send_id=step.send_id).count() == len(people)
    send_dispatch(send_id=step.send_id)
    send_dispatch(send_id=step.next_send_id)
    [funnel] = journey_funnel(thanks).steps
    assert funnel.sent + funnel.held_out == len(people)
    assert funnel.waiting == 0 and funnel.withdrawn == []


def test_not_ordered_since_the_previous_step_reads_the_channel_it_went_on(line, smtp):
    """Step 2 (condition: no order since step 1) for a person step 1
    reached by email: an order placed before step 1 went out there does
    not withdraw step 2; one placed after it would."""
    journey_ = services.journey_save(
        journey=Journey(
            name="二段のお礼", trigger="order_placed", channel="line", next_channel="email"
        ),
        steps=[
            JourneyStep(
                name="一通目",
                delay_hours=1,
                template=line_template("一通目LINE"),
                next_template=template("一通目メール"),
            ),
            JourneyStep(
                name="二通目",
                delay_hours=1,
                condition="no_order_since_previous",
                template=line_template("二通目LINE"),
                next_template=template("二通目メール"),
            ),
        ],
    )
    services.journey_activate(journey=journey_)
    first, second = journey_.steps.order_by("position")
    customer = email_only(31)
    order(customer, "TWO-1", ordered_at=timezone.now() - timedelta(hours=3))
    order(customer, "TWO-2", ordered_at=timezone.now())  # after entering, before step 1 went

    for step in (first, second):
        send_dispatch(send_id=step.send_id)
        send_dispatch(send_id=step.next_send_id)

    assert len(smtp.received) == 2
    assert not Delivery.objects.filter(skip_reason=SkipReason.CONDITION).exists()
