"""Sales suspensions: the 48-hour rule, the notices to customers with open
orders of the SKU (sent for real: the worker's dispatch into aiosmtpd and
the LINE fake), the template check, lifting and its follow-up."""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from crisis.models import (
    Suspension,
    SuspensionEvent,
    SuspensionEventKind,
    SuspensionNotice,
    SuspensionReason,
)
from crisis.services.suspensions import (
    notice_template_problems,
    suspension_inquiries_link,
    suspension_lift,
    suspension_record,
)
from crm import services as crm
from crm.models import Order, OrderStatus
from outreach.dispatch import send_dispatch
from outreach.models import Delivery, MessageTemplate
from outreach.services import template_save
from tests.concurrency import at_once
from tests.crm import factories
from tests.outreach import conftest as outreach_fixtures
from tests.tickets import factories as ticket_factories

pytestmark = pytest.mark.django_db

smtp = outreach_fixtures.smtp  # the aiosmtpd server
line = outreach_fixtures.line  # the LINE fake
TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")
# Monday 7 December 2026, 10:00 in Tokyo; the delay lasts until Thursday.
NOW = datetime(2026, 12, 7, 10, 0, tzinfo=TOKYO)
THURSDAY = datetime(2026, 12, 10, 15, 0, tzinfo=TOKYO)
SKU = "TEA-GYOKURO-50"


def delay_email_template(**overrides) -> MessageTemplate:
    values = {
        "name": "遅延のお知らせ（メール）",
        "channel": "email",
        "purpose": "transactional",
        "subject": "【{{ shop.name }}】{{ extra.product_name }} 発送遅延のお知らせ",
        "body_text": (
            "{{ customer.name }}様\n\nご注文の{{ extra.product_name }}（{{ extra.sku }}）は"
            "入荷が遅れております。{{ extra.expected_resume }}に発送いたします。\n"
        ),
        **overrides,
    }
    return template_save(template=MessageTemplate(**values))


def delay_line_template(**overrides) -> MessageTemplate:
    values = {
        "name": "遅延のお知らせ（LINE）",
        "channel": "line",
        "purpose": "transactional",
        "line_messages": [
            "{{ customer.name }}様、ご注文の{{ extra.product_name }}は"
            "{{ extra.expected_resume }}に発送いたします。"
        ],
        **overrides,
    }
    return template_save(template=MessageTemplate(**values))


def resume_email_template() -> MessageTemplate:
    return template_save(
        template=MessageTemplate(
            name="入荷・発送再開のお知らせ（メール）",
            channel="email",
            purpose="transactional",
            subject="【{{ shop.name }}】{{ extra.product_name }} 発送再開のお知らせ",
            body_text=(
                "{{ customer.name }}様\n\n{{ extra.product_name }}が入荷し、本日発送しました。"
            ),
        )
    )


def resume_line_template() -> MessageTemplate:
    return template_save(
        template=MessageTemplate(
            name="入荷・発送再開のお知らせ（LINE）",
            channel="line",
            purpose="transactional",
            line_messages=["{{ extra.product_name }}が入荷し、本日発送しました。"],
        )
    )


def buyer(*, channel="own_site", status=OrderStatus.PAID, sku=SKU, line_user="", **profile):
    customer = factories.customer(channel=channel, **profile)
    if line_user:
        crm.customer_upsert(channel="line", external_id=line_user, email=customer.email)
    factories.order(
        customer=customer,
        channel=channel,
        status=status,
        lines=[crm.OrderLineData(sku=sku, name="玉露 50g", quantity=1, unit_price=3000)],
    )
    return customer


def record(actor, **overrides) -> Suspension:
    values = {
        "sku": SKU,
        "product_name": "玉露 50g",
        "channels": ["rakuten", "own_site"],
        "reason": SuspensionReason.DELIVERY_DELAY,
        "expected_resume_at": THURSDAY,
        "sales_stopped": True,
        "actor": actor,
        "now": NOW,
        **overrides,
    }
    return suspension_record(**values)


def dispatch_notices(suspension: Suspension, kind: str = "suspended") -> None:
    for notice in SuspensionNotice.objects.filter(suspension=suspension, kind=kind):
        send_dispatch(send_id=notice.send_id)


def mail_by_recipient(server) -> dict[str, list]:
    found: dict[str, list] = {}
    for received in server.handler.received:
        for address in received.rcpt_tos:
            found.setdefault(address, []).append(received.message)
    return found


# --- The 48-hour rule -----------------------------------------------------------


def test_a_48_hour_delay_cannot_be_recorded_without_a_sales_stop(owner):
    with pytest.raises(ValidationError) as refused:
        record(owner, expected_resume_at=NOW + timedelta(hours=48), sales_stopped=False)

    assert list(refused.value.error_dict) == ["sales_stopped"]
    message = refused.value.error_dict["sales_stopped"][0].messages[0]
    assert message.startswith("48時間以上の欠品・遅延は販売停止が必要です（今回の見込みは48時間）")
    assert not Suspension.objects.exists()


def test_a_48_hour_stock_out_cannot_be_recorded_without_a_sales_stop(owner):
    with pytest.raises(ValidationError) as refused:
        record(
            owner,
            reason=SuspensionReason.STOCK_OUT,
            expected_resume_at=NOW + timedelta(hours=80),
            sales_stopped=False,
        )
    assert "sales_stopped" in refused.value.error_dict


def test_a_47_hour_delay_may_be_recorded_without_a_sales_stop(owner):
    suspension = record(
        owner, expected_resume_at=NOW + timedelta(hours=47), sales_stopped=False, channels=[]
    )

    assert suspension.sales_stopped is False
    assert suspension.decided_by == owner
    assert suspension.decided_at == NOW
    assert list(suspension.events.values_list("kind", flat=True)) == ["recorded"]


def test_a_long_defect_is_not_under_the_48_hour_rule(owner):
    suspension = record(
        owner,
        reason=SuspensionReason.DEFECT,
        expected_resume_at=NOW + timedelta(days=10),
        sales_stopped=False,
        channels=[],
    )
    assert suspension.pk


def test_a_48_hour_delay_with_a_sales_stop_is_recorded_with_its_channels(owner):
    suspension = record(owner, expected_resume_at=NOW + timedelta(hours=48))

    assert suspension.sales_stopped is True
    assert suspension.channels == ["rakuten", "own_site"]
    event = suspension.events.get()
    assert event.kind == SuspensionEventKind.RECORDED
    assert event.actor == owner


def test_the_resume_time_must_be_in_the_future(owner):
    with pytest.raises(ValidationError) as refused:
        record(owner, expected_resume_at=NOW - timedelta(minutes=1))
    assert list(refused.value.error_dict) == ["expected_resume_at"]


def test_a_sales_stop_names_at_least_one_sales_channel(owner):
    with pytest.raises(ValidationError) as refused:
        record(owner, channels=[])
    assert list(refused.value.error_dict) == ["channels"]
    with pytest.raises(ValidationError) as refused:
        record(owner, channels=["line"])
    assert list(refused.value.error_dict) == ["channels"]


def test_an_agent_cannot_record_or_lift_a_suspension(owner, colleague):
    with pytest.raises(PermissionDenied):
        record(colleague)
    suspension = record(owner)
    with pytest.raises(PermissionDenied):
        suspension_lift(suspension=suspension, actor=colleague)
    suspension.refresh_from_db()
    assert suspension.lifted_at is None
    assert Suspension.objects.count() == 1


# --- The notices ------------------------------------------------------------------


def test_notices_reach_exactly_the_customers_with_open_orders_of_the_sku_once_each(
    owner, smtp, line
):
    # Given customers waiting for the SKU on several channels, one of them
    # reachable on LINE, one an Amazon buyer (a relay address), one with two
    # open orders, and customers who are not waiting for it.
    paid = buyer(email="paid@example.jp")
    pending = buyer(channel="rakuten", status=OrderStatus.PENDING, email="pending@example.jp")
    relay = "0a1b2c3d4e5f6g7@marketplace.amazon.co.jp"
    amazon = buyer(channel="amazon", external_id=relay, email=relay)
    on_line = buyer(channel="yahoo", email="line-fan@example.jp", line_user="U" + "7" * 32)
    twice = buyer(email="twice@example.jp")
    factories.order(
        customer=twice,
        status=OrderStatus.PAID,
        lines=[crm.OrderLineData(sku=SKU, name="玉露 50g", quantity=2, unit_price=3000)],
    )
    buyer(email="shipped@example.jp", status=OrderStatus.SHIPPED)
    buyer(email="delivered@example.jp", status=OrderStatus.DELIVERED)
    buyer(email="cancelled@example.jp", status=OrderStatus.CANCELLED)
    buyer(email="other-sku@example.jp", sku="TEA-SENCHA-100")

    # When a manager records the suspension on Rakuten only, with both templates.
    suspension = record(
        owner,
        channels=["rakuten"],
        email_template=delay_email_template(),
        line_template=delay_line_template(),
    )
    dispatch_notices(suspension)

    # Then every waiting customer, whatever their channel, is told once,
    # with the concrete date, on LINE if they are there, else by email.
    mail = mail_by_recipient(smtp)
    assert sorted(mail) == sorted([paid.email, pending.email, amazon.email, twice.email])
    assert all(len(messages) == 1 for messages in mail.values())
    body = mail[relay][0].get_body(("plain",)).get_content()
    assert "12月10日（木）に発送いたします" in body
    assert "玉露 50g（TEA-GYOKURO-50）" in body
    assert mail[relay][0]["Subject"].endswith("玉露 50g 発送遅延のお知らせ")
    assert "line-fan@example.jp" not in mail
    assert line.texts_for("U" + "7" * 32) == [
        f"{on_line.display_name}様、ご注文の玉露 50gは12月10日（木）に発送いたします。"
    ]
    assert len(line.deliveries) == 1
    rows = Delivery.objects.filter(send__in=suspension.notices.values("send"))
    assert rows.count() == 5
    assert set(rows.values_list("status", flat=True)) == {"sent"}
    assert set(rows.values_list("send__purpose", "send__kind").distinct()) == {
        ("transactional", "notice")
    }
    assert set(suspension.notices.values_list("kind", "channel")) == {
        ("suspended", "email"),
        ("suspended", "line"),
    }
    assert suspension.events.filter(kind="notice_sent").count() == 2


def test_without_a_line_template_line_customers_are_told_by_email(owner, smtp):
    customer = buyer(email="line-fan@example.jp", line_user="U" + "8" * 32)

    suspension = record(owner, email_template=delay_email_template())
    dispatch_notices(suspension)

    assert list(mail_by_recipient(smtp)) == [customer.email]
    assert list(suspension.notices.values_list("channel", flat=True)) == ["email"]


def test_a_customer_without_an_address_is_recorded_as_not_told_with_why(owner, smtp):
    no_address = buyer(email="")

    suspension = record(owner, email_template=delay_email_template())
    dispatch_notices(suspension)

    row = Delivery.objects.get(customer=no_address)
    assert (row.status, row.skip_reason) == ("skipped", "no_address")
    assert smtp.handler.received == []


def test_a_line_template_without_an_email_template_is_refused(owner):
    buyer(email="a@example.jp")
    with pytest.raises(ValidationError) as refused:
        record(owner, line_template=delay_line_template())
    assert "email_template" in refused.value.error_dict
    assert not Suspension.objects.exists()


# --- The template check -------------------------------------------------------------


@pytest.mark.parametrize("word", ["近日中", "しばらく", "未定", "順次", "追って", "目処"])
def test_a_template_with_vague_wording_is_refused_naming_the_word(owner, word):
    buyer(email="a@example.jp")
    vague = delay_email_template(
        body_text=f"{{{{ extra.expected_resume }}}}ごろ、{word}発送いたします。"
    )

    with pytest.raises(ValidationError) as refused:
        record(owner, email_template=vague)

    messages = refused.value.error_dict["email_template"][0].messages
    assert any(f"「{word}」とあります" in m and "具体的な日付を伝える" in m for m in messages)
    assert not Suspension.objects.exists()
    assert not Delivery.objects.exists()


def test_a_delay_template_without_the_date_variable_is_refused(owner):
    undated = delay_email_template(body_text="ご注文の商品の発送が遅れております。")
    problems = notice_template_problems(template=undated, kind="suspended")
    assert len(problems) == 1
    assert "再開予定日" in problems[0]  # the value by its name, not the variable's path
    assert "extra.expected_resume" not in problems[0]
    with pytest.raises(ValidationError):
        record(owner, email_template=undated)


def test_a_line_template_with_vague_wording_is_refused(owner):
    vague = delay_line_template(
        line_messages=["{{ extra.expected_resume }}を予定していますが、入荷は未定です。"]
    )
    with pytest.raises(ValidationError) as refused:
        record(owner, email_template=delay_email_template(), line_template=vague)
    assert "未定" in refused.value.error_dict["line_template"][0].messages[0]


def test_a_marketing_template_cannot_carry_a_notice(owner):
    marketing = delay_email_template(name="セール", purpose="marketing")
    assert notice_template_problems(template=marketing, kind="suspended")


def test_a_concrete_template_passes_the_check():
    assert notice_template_problems(template=delay_email_template(), kind="suspended") == []
    assert notice_template_problems(template=resume_email_template(), kind="resumed") == []


# --- Lifting ---------------------------------------------------------------------------


def test_lifting_tells_the_same_customers_once_and_a_second_lift_sends_nothing(owner, smtp, line):
    told_by_mail = buyer(email="mail@example.jp")
    told_on_line = buyer(email="line@example.jp", line_user="U" + "9" * 32)
    not_reachable = buyer(email="")
    suspension = record(
        owner, email_template=delay_email_template(), line_template=delay_line_template()
    )
    dispatch_notices(suspension)
    # A customer who orders after the notice went out was not told: the
    # follow-up does not go to them either.
    late = buyer(email="late@example.jp")
    smtp.handler.received.clear()

    lifted = suspension_lift(
        suspension=suspension,
        actor=owner,
        email_template=resume_email_template(),
        line_template=resume_line_template(),
    )
    dispatch_notices(lifted, kind="resumed")
    again = suspension_lift(
        suspension=suspension,
        actor=owner,
        email_template=MessageTemplate.objects.get(name="入荷・発送再開のお知らせ（メール）"),
    )
    dispatch_notices(lifted, kind="resumed")

    assert lifted.lifted_at is not None and lifted.lifted_by == owner
    assert again.lifted_at == lifted.lifted_at
    mail = mail_by_recipient(smtp)
    assert list(mail) == [told_by_mail.email]
    assert len(mail[told_by_mail.email]) == 1
    assert (
        "玉露 50gが入荷し、本日発送しました。"
        in mail[told_by_mail.email][0].get_body(("plain",)).get_content()
    )
    assert line.texts_for("U" + "9" * 32)[-1] == "玉露 50gが入荷し、本日発送しました。"
    assert len(line.deliveries_for("U" + "9" * 32)) == 2  # the delay notice, the follow-up
    resumed = Delivery.objects.filter(
        send__in=suspension.notices.filter(kind="resumed").values("send")
    )
    assert set(resumed.values_list("customer_id", flat=True)) == {
        told_by_mail.pk,
        told_on_line.pk,
    }
    assert not_reachable.pk not in set(resumed.values_list("customer_id", flat=True))
    assert late.pk not in set(resumed.values_list("customer_id", flat=True))
    kinds = list(suspension.events.values_list("kind", flat=True))
    assert kinds.count("lifted") == 1
    assert suspension.notices.filter(kind="resumed").count() == 2


def test_lifting_without_templates_sends_nothing(owner, smtp):
    buyer(email="mail@example.jp")
    suspension = record(owner, email_template=delay_email_template())

    suspension_lift(suspension=suspension, actor=owner)

    assert not suspension.notices.filter(kind="resumed").exists()
    assert SuspensionEvent.objects.filter(suspension=suspension, kind="lifted").count() == 1


# --- Inquiries ---------------------------------------------------------------------------


def test_linking_inquiries_several_at_once_records_one_event_and_never_twice(owner):
    suspension = record(owner)
    first, second = ticket_factories.inquiry(), ticket_factories.inquiry()

    assert suspension_inquiries_link(suspension=suspension, inquiries=[first, second], actor=owner)
    assert suspension_inquiries_link(suspension=suspension, inquiries=[first], actor=owner) == 0

    assert set(suspension.inquiries.all()) == {first, second}
    event = suspension.events.get(kind="inquiry_linked")
    assert sorted(event.data["inquiries"]) == sorted([first.pk, second.pk])


# --- Demo data ---------------------------------------------------------------------------


def test_the_demo_makes_a_lifted_suspension_with_its_notices_once(owner):
    from crisis.demo_suspensions import DEMO_SKU, suspensions_demo
    from crm.management.commands.demo_data import DemoContext

    customers = [
        factories.customer(channel=channel, email=f"{channel}@example.jp")
        for channel in ("rakuten", "amazon", "yahoo", "own_site", "own_site")
    ]
    crm.customer_upsert(channel="line", external_id="U" + "3" * 32, email=customers[4].email)
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    ctx = DemoContext(seed=1, people=0, today=today, users={"manager": owner}, customers=customers)

    suspensions_demo(ctx)
    suspensions_demo(ctx)

    suspension = Suspension.objects.get()
    assert suspension.sku == DEMO_SKU and suspension.lifted_by == owner
    assert suspension.lifted_at < timezone.now()
    assert set(suspension.notices.values_list("kind", "channel")) == {
        ("suspended", "email"),
        ("suspended", "line"),
        ("resumed", "email"),
        ("resumed", "line"),
    }
    told = Delivery.objects.filter(send__in=suspension.notices.values("send"))
    assert set(told.values_list("customer_id", flat=True)) == {c.pk for c in customers}
    assert told.filter(channel="line").count() == 2  # the delay notice and the follow-up
    delay = suspension.notices.filter(kind="suspended").first().send
    assert delay.content["extra"]["expected_resume"].endswith("）")  # 12月3日（木）
    # the orders waited, and have shipped since
    assert set(Order.objects.filter(lines__sku=DEMO_SKU).values_list("status", flat=True)) == {
        "shipped"
    }
    assert ctx.created["suspensions"] == 1 and ctx.kept["suspensions"] == 1
    assert MessageTemplate.objects.filter(name__contains="のお知らせ").count() == 4


# --- One at a time -------------------------------------------------------------------------


def test_a_sku_suspended_already_cannot_be_recorded_again_until_lifted(owner):
    first = record(owner)

    with pytest.raises(ValidationError) as refused:
        record(owner, product_name="玉露 50g（二重送信）")

    assert list(refused.value.error_dict) == ["sku"]
    assert SKU in refused.value.error_dict["sku"][0].messages[0]
    suspension_lift(suspension=first, actor=owner)
    assert record(owner).pk != first.pk


@pytest.mark.django_db(transaction=True)
def test_a_double_submit_records_one_suspension_and_tells_each_customer_once(owner):
    customer = buyer(email="waiting@example.jp")
    template = delay_email_template()

    errors = at_once(lambda: record(owner, email_template=template), 4)

    assert len(errors) == 3
    assert all(isinstance(error, ValidationError) for error in errors)
    suspension = Suspension.objects.get()
    rows = Delivery.objects.filter(send__in=suspension.notices.values("send"))
    assert list(rows.values_list("customer_id", flat=True)) == [customer.pk]


@pytest.mark.django_db(transaction=True)
def test_lifting_from_several_clicks_at_once_sends_the_follow_up_once(owner):
    customer = buyer(email="waiting@example.jp")
    suspension = record(owner, email_template=delay_email_template())
    template = resume_email_template()

    errors = at_once(
        lambda: suspension_lift(suspension=suspension, actor=owner, email_template=template), 4
    )

    assert errors == []
    resumed = suspension.notices.filter(kind="resumed")
    assert resumed.count() == 1
    assert list(resumed.get().send.deliveries.values_list("customer_id", flat=True)) == [
        customer.pk
    ]
    assert suspension.events.filter(kind="lifted").count() == 1
