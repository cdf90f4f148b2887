"""A journey step's holdout (比較グループ): a random share of the people due
at the step is kept out when due (recorded in the ledger, never sent),
apart from "sent" in the funnel, and compared with the recipients' orders
and revenue within the journey's window (the lift). Real PostgreSQL and a
real SMTP server; the worker code runs as in production."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from outreach.dispatch import send_dispatch
from outreach.holdout import holdout_draw
from outreach.models import Delivery, DeliveryStatus, Journey, SkipReason
from outreach.selectors import journey_funnel
from tests.crm import factories
from tests.outreach.journeys import consented, journey, order
from tests.outreach.test_journeys import _builtins_off, _fast_worker  # noqa: F401 (autouse)

pytestmark = pytest.mark.django_db


def test_holdout_draw_takes_the_exact_share_of_a_batch_and_a_single_row_at_that_rate():
    assert len(holdout_draw(list(range(8)), 50)) == 4
    assert set(holdout_draw(list(range(8)), 100)) == set(range(8))
    assert holdout_draw(list(range(8)), 0) == []
    # One row at a time (a journey step's usual batch): held out one time
    # in four at 25 %, not never (rounding down) nor always (rounding up).
    held = sum(len(holdout_draw([1], 25)) for _ in range(400))
    assert 60 <= held <= 140


def thank_you(holdout_percent: int) -> Journey:
    return journey(
        "ご購入のお礼",
        trigger="order_placed",
        steps=[{"holdout_percent": holdout_percent}],
    )


def enter(journey_: Journey, people) -> list[Delivery]:
    for index, person in enumerate(people):
        order(person, f"H-{person.pk}-{index}", ordered_at=timezone.now() - timedelta(hours=1))
    step = journey_.steps.get()
    send_dispatch(send_id=step.send_id)
    return list(Delivery.objects.filter(send_id=step.send_id).order_by("pk"))


def test_a_step_holds_out_its_share_of_the_reachable_never_sends_them_and_counts_them_apart(smtp):
    journey_ = thank_you(50)
    people = [consented(email=f"h{i}@example.jp") for i in range(6)]
    unreachable = factories.customer(email="no-consent@example.jp")

    rows = enter(journey_, [*people, unreachable])

    held = {r.customer_id for r in rows if r.skip_reason == SkipReason.HOLDOUT}
    assert len(held) == 3  # half of the six who could be reached, not of seven
    assert unreachable.pk not in held
    by_customer = {r.customer_id: r for r in rows}
    assert by_customer[unreachable.pk].skip_reason == SkipReason.NO_CONSENT
    sent_to = {rcpt for message in smtp.received for rcpt in message.rcpt_tos}
    assert sent_to == {p.email for p in people if p.pk not in held}
    assert all(by_customer[pk].sent_at is None for pk in held)

    [step] = journey_funnel(journey_).steps
    assert (step.sent, step.held_out, step.waiting) == (3, 3, 0)
    assert step.withdrawn == [(str(SkipReason.NO_CONSENT.label), 1)]  # the holdout apart
    assert (step.results.recipients.members, step.results.holdout.members) == (3, 3)

    # Due again (the worker runs the step's send again): nobody is drawn twice.
    send_dispatch(send_id=journey_.steps.get().send_id)
    assert len(smtp.received) == 3


def lift_fixture() -> tuple[Journey, dict]:
    """Four people due at a step with a 50 % holdout: two are sent it (R1,
    R2), two held out (H1, H2). Orders after that, by hand:
      R1: ¥3,000 after 1 day, ¥2,000 after 6 days, ¥9,999 after 8 days (outside 7)
      R2: ¥1,500 after 3 days
      H1: ¥4,000 after 2 days, ¥7,000 after 1 day but cancelled
      H2: ¥1,000 an hour before it was held out (before the window)
    Recipients: 2 members, 2 ordered, 3 orders, ¥6,500. Holdout: 2 members,
    1 ordered, 1 order, ¥4,000. Lift: (2/2 − 1/2) / (1/2) = +100 %; revenue
    added: 6,500 − 4,000 / 2 × 2 = ¥2,500."""
    journey_ = thank_you(50)
    people = [consented() for _ in range(4)]
    rows = enter(journey_, people)
    sent = [r for r in rows if r.status == DeliveryStatus.SENT]
    held = [r for r in rows if r.skip_reason == SkipReason.HOLDOUT]
    assert (len(sent), len(held)) == (2, 2)
    customers = {p.pk: p for p in people}
    (r1, r2), (h1, h2) = sent, held

    def buy(row, days: float, total: int, *, status: str = "paid", since=None) -> None:
        since = since or (row.sent_at if row.status == DeliveryStatus.SENT else row.next_attempt_at)
        factories.order(
            customer=customers[row.customer_id],
            ordered_at=since + timedelta(days=days),
            total=total,
            status=status,
        )

    buy(r1, 1, 3000)
    buy(r1, 6, 2000)
    buy(r1, 8, 9999)
    buy(r2, 3, 1500)
    buy(h1, 2, 4000)
    buy(h1, 1, 7000, status="cancelled")
    buy(h2, -1 / 24, 1000)
    return journey_, {"r1": r1, "h1": h1}


def test_a_steps_attributed_revenue_and_lift_equal_a_hand_computed_fixture(smtp):
    journey_, _rows = lift_fixture()

    [step] = journey_funnel(journey_).steps

    recipients, holdout = step.results.recipients, step.results.holdout
    assert (recipients.members, recipients.converted, recipients.orders, recipients.revenue) == (
        2,
        2,
        3,
        6500,
    )
    assert (holdout.members, holdout.converted, holdout.orders, holdout.revenue) == (
        1 + 1,
        1,
        1,
        4000,
    )
    assert step.results.lift == pytest.approx(1.0)
    assert step.results.incremental_revenue == 2500
    assert step.converted == 2


def test_the_journey_page_shows_held_out_and_the_lift_next_to_the_holdouts_orders(
    client, marketer, smtp
):
    client.force_login(marketer)
    journey_, _rows = lift_fixture()

    page = client.get(f"/admin/outreach/journey/{journey_.pk}/change/").content.decode()

    assert "比較グループ（送信せず）" in page and "比較グループ 50 %" in page
    assert "¥6,500" in page and "¥4,000" in page
    assert "+100.0%" in page
