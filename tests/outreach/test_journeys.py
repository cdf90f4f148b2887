"""Journeys (ステップ配信): triggers from the crm services, scheduling in the
delivery ledger, withdrawal when due, the marketplace rules. Real
PostgreSQL and a real SMTP server; the worker code runs as in production."""

from __future__ import annotations

from datetime import UTC, date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm import services as crm
from crm.models import Customer
from outreach import services
from outreach.dispatch import send_dispatch
from outreach.models import Delivery, DeliveryStatus, Journey, JourneyStep, SkipReason
from outreach.tasks import journeys_tick
from tests.crm import factories
from tests.outreach.journeys import consented, journey, jst, order, template

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_worker(settings):
    settings.QUIET_HOURS_START = settings.QUIET_HOURS_END = 0  # off unless a test sets them
    settings.DELIVERY_BACKOFF_SECONDS = 0
    settings.EMAIL_RATE = 10_000


@pytest.fixture(autouse=True)
def _builtins_off():
    """The built-in order confirmation and shipping notice are on from the
    start; these tests build the journeys they look at."""
    Journey.objects.filter(is_builtin=True).update(active=False)


def rows(journey_: Journey, position: int = 1):
    step = journey_.steps.get(position=position)
    return Delivery.objects.filter(send_id=step.send_id).order_by("pk")


def recipients(smtp) -> list[str]:
    return [rcpt for message in smtp.received for rcpt in message.rcpt_tos]


# --- Triggers ----------------------------------------------------------------------


def test_order_placed_enters_once_per_order_due_after_the_delay(smtp):
    thanks = journey(
        "ご購入のお礼", trigger="order_placed", steps=[{"delay_days": 1, "delay_hours": 2}]
    )
    customer = consented(email="placed@example.jp")
    placed_at = timezone.now() - timedelta(minutes=30)
    placed = order(customer, "A-1", ordered_at=placed_at)
    order(customer, "A-1", ordered_at=placed_at, status="shipped")  # the same order again

    [row] = rows(thanks)
    assert row.context_key == f"order:{placed.pk}"
    assert row.status == DeliveryStatus.QUEUED
    due = placed_at + timedelta(days=1, hours=2)
    assert row.next_attempt_at == due

    send_dispatch(send_id=row.send_id, now_fn=lambda: due - timedelta(minutes=1))
    assert smtp.received == []
    send_dispatch(send_id=row.send_id, now_fn=lambda: due)
    send_dispatch(send_id=row.send_id, now_fn=lambda: due + timedelta(days=1))
    assert recipients(smtp) == ["placed@example.jp"]


def test_shipped_and_delivered_fire_once_when_their_time_first_arrives():
    shipped = journey("発送のお知らせ", trigger="order_shipped", steps=[{}])
    delivered = journey("到着後のフォロー", trigger="order_delivered", steps=[{"delay_days": 3}])
    customer = consented()
    placed_at = timezone.now() - timedelta(days=2)
    order(customer, "S-1", ordered_at=placed_at)
    assert not rows(shipped).exists()
    shipped_at = placed_at + timedelta(days=1, hours=12)
    for _again in range(2):
        order(customer, "S-1", ordered_at=placed_at, status="shipped", shipped_at=shipped_at)
    assert [r.next_attempt_at for r in rows(shipped)] == [shipped_at]
    assert not rows(delivered).exists()
    delivered_at = timezone.now() - timedelta(hours=1)
    for _again in range(2):
        order(
            customer,
            "S-1",
            ordered_at=placed_at,
            status="delivered",
            shipped_at=shipped_at,
            delivered_at=delivered_at,
        )
    assert [r.next_attempt_at for r in rows(delivered)] == [delivered_at + timedelta(days=3)]


def test_first_order_fires_for_the_first_counted_order_only():
    welcome = journey("はじめてのご購入", trigger="first_order", steps=[{"delay_days": 1}])
    customer = consented()
    first = order(customer, "F-1", ordered_at=timezone.now() - timedelta(hours=3))
    order(customer, "F-2")
    assert [r.context_key for r in rows(welcome)] == [f"order:{first.pk}"]


def test_an_imported_history_does_not_fire_steps_long_past():
    journey("到着後のフォロー", trigger="order_delivered", steps=[{"delay_days": 3}])
    customer = consented()
    long_ago = timezone.now() - timedelta(days=400)
    order(customer, "OLD-1", ordered_at=long_ago, status="delivered", delivered_at=long_ago)
    assert not Delivery.objects.exists()


def test_business_days_skip_the_year_end_closure_across_the_new_year(smtp):
    """Delivered on 28 December (Asia/Tokyo); one business day later is the
    first weekday after the closure (12/29–1/3), at the same local time."""
    now = timezone.localtime()
    year = now.year if (now.month, now.day) < (12, 20) else now.year + 1
    follow = journey(
        "年末年始のフォロー",
        trigger="order_delivered",
        steps=[{"delay_days": 1, "business_days": True}],
    )
    customer = consented(email="newyear@example.jp")
    delivered_at = jst(year, 12, 28, 10, 30)
    order(
        customer,
        "Y-1",
        ordered_at=jst(year, 12, 20, 9, 0),
        status="delivered",
        delivered_at=delivered_at,
    )
    first_open = date(year + 1, 1, 4)
    while first_open.weekday() >= 5:
        first_open += timedelta(days=1)
    due = jst(first_open.year, first_open.month, first_open.day, 10, 30)
    [row] = rows(follow)
    assert row.next_attempt_at == due

    send_dispatch(send_id=row.send_id, now_fn=lambda: jst(year + 1, 1, 3, 23, 59))
    assert smtp.received == []
    send_dispatch(send_id=row.send_id, now_fn=lambda: due)
    assert recipients(smtp) == ["newyear@example.jp"]


def test_business_days_add_counts_open_days_only():
    # Friday 26 December 2025, 15:00: Monday 29th to Saturday 3 January are closed.
    assert services.business_days_add(jst(2025, 12, 26, 15), 1) == jst(2026, 1, 5, 15)
    assert services.business_days_add(jst(2026, 1, 9, 15), 1) == jst(2026, 1, 13, 15)  # 成人の日


def test_became_sleeping_enters_once_per_sleep_through_the_nightly_recompute(settings):
    settings.LIFECYCLE_SLEEPING_DAYS = 180
    win_back = journey("休眠のお客様へ", trigger="became_sleeping", steps=[{"delay_days": 1}])
    awake = consented()
    dozing = consented()
    order(awake, "W-1", ordered_at=timezone.now() - timedelta(days=10))
    last = order(dozing, "D-1", ordered_at=timezone.now() - timedelta(days=170))
    assert not rows(win_back).exists()

    later = timezone.now() + timedelta(days=15)
    crm.lifecycle_recompute(now=later)
    crm.lifecycle_recompute(now=later + timedelta(days=1))  # still sleeping: not again

    [row] = rows(win_back)
    assert row.customer_id == dozing.pk
    assert row.context_key == f"sleeping:{timezone.localtime(last.ordered_at).date()}"
    assert row.next_attempt_at == later + timedelta(days=1)


def test_birthday_month_enters_once_a_year():
    birthday = journey("お誕生月のお祝い", trigger="birthday_month", steps=[{}])
    this_month = timezone.localtime().month
    born = consented(birthday=date(1990, this_month, 1))
    consented(birthday=date(1990, this_month % 12 + 1, 1))
    services.journeys_birthday_enter()
    services.journeys_birthday_enter()
    [row] = rows(birthday)
    assert (row.customer_id, row.context_key) == (
        born.pk,
        f"birthday:{timezone.localtime().year}",
    )


def test_birthday_month_turns_with_the_new_year_in_tokyo_not_in_utc():
    """At 00:30 on 1 January in Tokyo it is still 31 December in UTC: the
    January birthdays enter, for the new year, and December's do not; a
    year later they enter again, once."""
    birthday = journey("お誕生月のお祝い", trigger="birthday_month", steps=[{"delay_hours": 10}])
    january = consented(birthday=date(1990, 1, 15))
    consented(birthday=date(1990, 12, 15))
    new_year = jst(2027, 1, 1, 0, 30)
    assert new_year.astimezone(UTC).month == 12

    for year in (0, 0, 1):  # the daily job twice, then the next new year
        services.journeys_birthday_enter(now=new_year.replace(year=2027 + year))

    assert [(r.customer_id, r.context_key, r.next_attempt_at) for r in rows(birthday)] == [
        (january.pk, "birthday:2027", jst(2027, 1, 1, 10, 30)),
        (january.pk, "birthday:2028", jst(2028, 1, 1, 10, 30)),
    ]


def test_lifecycle_condition_limits_who_enters():
    vip_note = journey(
        "VIPのお客様へ",
        trigger="order_delivered",
        lifecycle_segments=["vip"],
        steps=[{"delay_days": 2}],
    )
    customer = consented()
    now = timezone.now()
    order(customer, "L-1", ordered_at=now - timedelta(days=2), status="delivered", delivered_at=now)
    assert not rows(vip_note).exists()


# --- Withdrawn when due --------------------------------------------------------------


def test_a_cancelled_order_withdraws_its_waiting_steps(smtp):
    follow = journey("到着後のフォロー", trigger="order_placed", steps=[{"delay_days": 3}])
    customer = consented()
    placed = order(customer, "C-1")
    order(customer, "C-1", ordered_at=placed.ordered_at, status="cancelled")
    [row] = rows(follow)
    assert (row.status, row.skip_reason) == ("skipped", SkipReason.ORDER_CANCELLED)


def test_an_order_cancelled_by_a_path_that_skipped_the_service_is_withdrawn_when_due(smtp):
    from crm.models import Order

    follow = journey("到着後のフォロー", trigger="order_placed", steps=[{"delay_days": 3}])
    customer = consented()
    placed = order(customer, "C-2")
    Order.objects.filter(pk=placed.pk).update(status="returned")
    [row] = rows(follow)
    send_dispatch(send_id=row.send_id, now_fn=lambda: row.next_attempt_at)
    row.refresh_from_db()
    assert (row.status, row.skip_reason) == ("skipped", SkipReason.ORDER_CANCELLED)
    assert smtp.received == []


def test_an_opt_out_withdraws_marketing_steps(smtp):
    follow = journey("到着後のフォロー", trigger="order_placed", steps=[{"delay_days": 3}])
    customer = consented()
    order(customer, "O-1")
    crm.consent_withdraw(customer=customer, channel="email", source="unsubscribe")
    [row] = rows(follow)
    assert (row.status, row.skip_reason) == ("skipped", SkipReason.UNSUBSCRIBED)


def test_a_customer_turned_claimant_is_withdrawn_when_the_step_is_due(smtp):
    follow = journey("到着後のフォロー", trigger="order_placed", steps=[{"delay_days": 3}])
    customer = consented()
    order(customer, "K-1")
    crm.customer_claimant_set(customer=customer, reason="強い苦情", actor=None)
    [row] = rows(follow)
    send_dispatch(send_id=row.send_id, now_fn=lambda: row.next_attempt_at)
    row.refresh_from_db()
    assert (row.status, row.skip_reason) == ("skipped", SkipReason.CLAIMANT)
    assert smtp.received == []


def test_a_step_whose_condition_failed_is_withdrawn_and_the_others_go(smtp):
    """Step 2 goes only to who has not ordered again since step 1 went out."""
    nudge = journey(
        "再購入のご案内",
        trigger="order_placed",
        steps=[{"delay_days": 1}, {"delay_days": 7, "condition": "no_order_since_previous"}],
    )
    again = consented(email="again@example.jp")
    quiet = consented(email="quiet@example.jp")
    placed_at = timezone.now() - timedelta(hours=2)
    first = order(again, "N-1", ordered_at=placed_at)
    second = order(quiet, "N-2", ordered_at=placed_at)
    step1_due = placed_at + timedelta(days=1)
    send_dispatch(send_id=rows(nudge, 1)[0].send_id, now_fn=lambda: step1_due)
    assert sorted(recipients(smtp)) == ["again@example.jp", "quiet@example.jp"]
    # `again` orders after step 1 went out (the order is dated after it)
    order(again, "N-3", ordered_at=timezone.now() + timedelta(days=2))

    step2_due = step1_due + timedelta(days=7)
    send_dispatch(send_id=rows(nudge, 2)[0].send_id, now_fn=lambda: step2_due)

    outcome = {
        r.customer_id: (r.status, r.skip_reason)
        for r in rows(nudge, 2).filter(context_key__in=[f"order:{first.pk}", f"order:{second.pk}"])
    }
    assert outcome == {again.pk: ("skipped", SkipReason.CONDITION), quiet.pk: ("sent", "")}
    assert recipients(smtp)[2:] == ["quiet@example.jp"]


def test_turning_a_journey_off_withdraws_what_waits_and_stops_entries():
    follow = journey("到着後のフォロー", trigger="order_placed", steps=[{"delay_days": 3}])
    customer = consented()
    order(customer, "T-1")
    assert services.journey_deactivate(journey=follow)
    order(customer, "T-2")
    [row] = rows(follow)
    assert (row.status, row.skip_reason) == ("skipped", SkipReason.JOURNEY_OFF)
    assert [e.kind for e in follow.events.all()] == ["created", "activated", "deactivated"]


# --- Marketplace rules (SPEC rule 9) --------------------------------------------------


def test_an_amazon_order_never_enters_a_marketing_journey():
    marketing = journey("ご購入のお礼", trigger="order_placed", steps=[{"delay_days": 1}])
    notice = journey("ご注文確認", trigger="order_placed", is_transactional=True, steps=[{}])
    customer = consented()
    order(customer, "AMZ-1", channel="amazon")
    assert not rows(marketing).exists()
    assert rows(notice).count() == 1


def test_a_marketing_journey_for_amazon_orders_is_refused():
    with pytest.raises(ValidationError) as refused:
        journey("Amazon向け", trigger="order_placed", order_channels=["amazon"], steps=[{}])
    assert "Amazon" in str(refused.value.message_dict["order_channels"])


def test_a_transactional_journey_with_a_step_that_sells_is_refused():
    selling = template("新商品のご案内", purpose="marketing")
    with pytest.raises(ValidationError) as refused:
        journey(
            "ご注文確認",
            trigger="order_placed",
            is_transactional=True,
            steps=[{"template": selling}],
        )
    assert "販促のステップは入れられません" in str(refused.value.message_dict["steps"])


def review_journey(name: str, *, days: int = 7, **template_fields) -> Journey:
    review = template(
        f"{name}テンプレート",
        purpose="transactional",
        body="商品はいかがでしたか。率直なご感想をレビューでお聞かせください。",
        **template_fields,
    )
    return journey(
        name,
        trigger="order_delivered",
        is_transactional=True,
        steps=[{"delay_days": days, "is_review_request": True, "template": review}],
    )


def test_a_second_review_request_for_an_order_is_refused():
    first = review_journey("レビューのお願い")
    second = review_journey("レビューのお願い（再）", days=10)
    customer = consented()
    now = timezone.now()
    order(customer, "R-1", ordered_at=now - timedelta(days=3), status="delivered", delivered_at=now)
    [kept] = rows(first)
    [refused] = rows(second)
    assert kept.status == DeliveryStatus.QUEUED
    assert (refused.status, refused.skip_reason) == ("skipped", SkipReason.REVIEW_ONCE)


@pytest.mark.parametrize("days", [4, 31])
def test_a_review_request_outside_5_to_30_days_after_delivery_is_refused(days):
    with pytest.raises(ValidationError) as refused:
        review_journey("レビューのお願い", days=days)
    assert "5〜30日後" in str(refused.value.message_dict["steps"])


@pytest.mark.parametrize(
    "wording",
    [
        "ぜひ高評価をお願いします。",
        "★5をいただけると励みになります。",
        "★５をお願いします。",
        "星5つのレビューをお待ちしています。",
        "良いレビューをお願いします。",
        "レビューを書いてくださった方に100ポイントを差し上げます。",
        "レビュー投稿で次回使えるクーポンをプレゼント！",
    ],
)
def test_review_wording_that_asks_for_praise_or_pays_for_it_is_refused(wording):
    with pytest.raises(ValidationError) as at_journey_save:
        review_journey("レビューのお願い", body_html=f"<p>{wording}</p>")
    assert at_journey_save.value.messages
    # and at template save, once the template is a review step's
    journey_ = review_journey("レビューのお願い（正しい文面）")
    review = journey_.steps.get().template
    review.body_text = wording
    with pytest.raises(ValidationError) as at_template_save:
        services.template_save(template=review)
    assert at_template_save.value.messages


def test_honest_review_wording_passes():
    assert (
        services.review_wording_problems(
            ["商品はいかがでしたか。よろしければ率直なご感想をお聞かせください。"]
        )
        == []
    )


# --- The tick ---------------------------------------------------------------------------


def test_the_tick_with_nothing_due_reads_one_query_and_starts_nothing():
    follow = journey("到着後のフォロー", trigger="order_placed", steps=[{"delay_days": 3}])
    order(consented(), "Q-1")
    assert rows(follow).count() == 1
    with CaptureQueriesContext(connection) as queries:
        assert journeys_tick() == 0
    assert len(queries) == 1


def test_a_step_send_stays_open_after_its_rows_are_done(smtp):
    thanks = journey("ご購入のお礼", trigger="order_placed", steps=[{}])
    order(consented(), "P-1")
    [row] = rows(thanks)
    send_dispatch(send_id=row.send_id)
    assert len(smtp.received) == 1
    step = JourneyStep.objects.select_related("send").get(journey=thanks)
    assert step.send.status == "sending"
    order(Customer.objects.get(pk=row.customer_id), "P-2")
    assert rows(thanks).count() == 2


# --- Built-in journeys -------------------------------------------------------------------


def test_built_in_journeys_are_there_in_japanese_and_only_transactional_ones_are_on(smtp):
    Journey.objects.filter(
        is_builtin=True, is_transactional=True, name__in=["ご注文確認", "発送のお知らせ"]
    ).update(active=True)
    builtin = {j.name: j for j in Journey.objects.filter(is_builtin=True)}
    assert set(builtin) == {
        "ご注文確認",
        "発送のお知らせ",
        "到着後のフォロー",
        "レビューのお願い",
        "休眠のお客様へ",
        "新規のお客様へ（ようこそ）",
        "常連のお客様へ（関連商品）",
        "VIPのお客様へ（店主より）",
    }
    assert {name for name, j in builtin.items() if j.active} == {"ご注文確認", "発送のお知らせ"}
    assert [s.name for s in builtin["新規のお客様へ（ようこそ）"].steps.all()] == [
        "はじめてのお客様へ",
        "商品の楽しみ方ガイド",
    ]
    assert not any("claimant" in j.lifecycle_segments for j in builtin.values())
    # every built-in journey passes the rules it would be saved under
    for journey_ in builtin.values():
        assert services.journey_problems(journey_, list(journey_.steps.all())) == {}
    # the order confirmation goes to an Amazon buyer without marketing consent
    buyer = factories.customer(email="amazon-buyer@example.jp")
    placed = order(buyer, "AMZ-9", channel="amazon")
    [row] = rows(builtin["ご注文確認"])
    send_dispatch(send_id=row.send_id)
    [mail] = smtp.received
    assert placed.order_number in mail.message["Subject"]


def test_the_tick_finds_due_rows_and_rows_whose_worker_died_but_not_live_ones():
    follow = journey("到着後のフォロー", trigger="order_placed", steps=[{"delay_days": 3}])
    order(consented(), "Q-2")
    [row] = rows(follow)
    now = timezone.now()
    assert journeys_tick() == 0
    Delivery.objects.filter(pk=row.pk).update(next_attempt_at=now - timedelta(minutes=1))
    assert journeys_tick() == 1  # due
    # claimed by a worker whose lease is still running: not started again
    Delivery.objects.filter(pk=row.pk).update(
        status="sending", lease_expires_at=now + timedelta(minutes=5)
    )
    assert journeys_tick() == 0
    # that worker died: its lease ran out
    Delivery.objects.filter(pk=row.pk).update(lease_expires_at=now - timedelta(seconds=1))
    assert journeys_tick() == 1


def test_marketing_steps_wait_out_quiet_hours_and_transactional_ones_do_not(smtp, settings):
    settings.QUIET_HOURS_START, settings.QUIET_HOURS_END = 21, 9
    marketing = journey("ご購入のお礼", trigger="order_placed", steps=[{}])
    notice = journey("ご注文確認", trigger="order_placed", is_transactional=True, steps=[{}])
    order(consented(email="night@example.jp"), "QH-1")
    night = jst(2026, 11, 24, 22, 30)
    for journey_ in (marketing, notice):
        [row] = rows(journey_)
        Delivery.objects.filter(pk=row.pk).update(next_attempt_at=night - timedelta(minutes=5))
    [marketing_row] = rows(marketing)
    report = send_dispatch(send_id=marketing_row.send_id, now_fn=lambda: night)
    assert report.deferred_until == jst(2026, 11, 25, 9, 0)
    assert smtp.received == []
    send_dispatch(send_id=rows(notice)[0].send_id, now_fn=lambda: night)
    assert recipients(smtp) == ["night@example.jp"]
    send_dispatch(send_id=marketing_row.send_id, now_fn=lambda: jst(2026, 11, 25, 9, 0))
    assert recipients(smtp) == ["night@example.jp"] * 2


def test_the_journey_tick_runs_every_minute_and_birthdays_daily():
    from django_q.models import Schedule

    from core.schedules import schedules_sync

    schedules_sync()
    tick = Schedule.objects.get(name="outreach.journeys_tick")
    assert (tick.func, tick.schedule_type, tick.minutes) == ("outreach.tasks.journeys_tick", "I", 1)
    daily = Schedule.objects.get(name="outreach.journeys_birthday")
    assert (daily.func, daily.schedule_type) == ("outreach.tasks.journeys_birthday_task", "D")
