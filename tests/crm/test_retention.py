"""The retention job (crm.services.retention): Amazon buyers' personal data
anonymised 30 days after delivery, the consent ledger pruned after 3 years
without a send (SPEC rules 8, 9, 17)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

import pytest
from django.apps import apps
from django.db import connection
from django.db.models import Count, F
from django.db.models.functions import TruncMonth
from django.utils import timezone, translation

from core.models import AuditAction, AuditEntry
from crm import services
from crm.event_details import customer_event_details, retention_event_summary
from crm.models import (
    ConsentAction,
    ConsentEvent,
    ConsentSource,
    ConsentState,
    Customer,
    CustomerChannelProfile,
    CustomerEvent,
    CustomerEventKind,
    Order,
    OrderStatus,
    RetentionEvent,
    RetentionEventKind,
)
from crm.services.retention import ANONYMIZED_TEXT
from crm.tasks import retention_run_task
from outreach.dispatch import send_dispatch
from outreach.models import Delivery, Purpose, SendKind
from outreach.services import deliveries_snapshot, send_create
from tests.crm import factories
from tests.outreach.conftest import smtp  # noqa: F401  (the real SMTP server)
from tickets.models import Attachment, Category, InboundMail, Inquiry, InquiryMessage
from tickets.services import InboundMessage, inquiry_create, inquiry_reply
from tickets.services.inbound import mail_ingest

DAY = timedelta(days=1)

# What Amazon gave of buyer A (known only there) and of buyer B (known on
# Rakuten too): none of it may remain anywhere after the run.
A_MASKED = "x7q2zk9m4abc@marketplace.amazon.co.jp"
A_VALUES = (
    "x7q2zk9m4abc",
    "天野",
    "花子",
    "アマノ",
    "ハナコ",
    "090-4411-2277",
    "09044112277",
    "港区芝公園4-2-8",
    "1985-04-12",
    "天野_領収書",
    "割れた湯呑みの写真を送ります",
    "%PDF-amano-receipt",
)
B_MASKED = "b9y8w7v6zz@marketplace.amazon.co.jp"
B_AMAZON_VALUES = (
    "b9y8w7v6zz",
    "080-7733-1199",
    "08077331199",
    "梅田1-1-1 置き配ボックス",
    "1979-11-03",
    "置き配の箱が潰れていました",
)
# What Rakuten gave of buyer B: it stays.
B_RAKUTEN = {
    "family_name": "北川",
    "given_name": "誠",
    "family_name_kana": "キタガワ",
    "given_name_kana": "マコト",
    "email": "kitagawa.makoto@example.jp",
    "postal_code": "530-0001",
    "prefecture": "大阪府",
}
B_RAKUTEN_MESSAGE = "楽天で買った急須の蓋が合いません"


def _hex(value: str) -> str:
    return value.encode().hex()


def _amazon_mail(*, sent_at, subject: str, body: str, attachment: bytes) -> bytes:
    mail = EmailMessage()
    mail["From"] = f"天野 花子 <{A_MASKED}>"
    mail["To"] = "shop@example.jp"
    mail["Subject"] = subject
    mail["Date"] = format_datetime(sent_at)
    mail["Message-ID"] = "<amano.1@marketplace.amazon.co.jp>"
    mail.set_content(body)
    mail.add_attachment(
        attachment, maintype="application", subtype="pdf", filename="天野_領収書.pdf"
    )
    return mail.as_bytes()


def _amazon_order(customer, *, ordered_days_ago: float, delivered_days_ago: float | None):
    now = timezone.now()
    order, _ = services.order_upsert(
        channel="amazon",
        order_number=f"250-{customer.pk:07d}-{int(ordered_days_ago * 10):07d}",
        customer=customer,
        ordered_at=now - ordered_days_ago * DAY,
        delivered_at=None if delivered_days_ago is None else now - delivered_days_ago * DAY,
        status=OrderStatus.DELIVERED if delivered_days_ago is not None else OrderStatus.SHIPPED,
        total=4800,
        lines=[
            services.OrderLineData(
                sku="YUNOMI-1", name="波佐見焼 湯呑み", quantity=1, unit_price=4800
            )
        ],
    )
    return order


def _amazon_buyer(name: str, **profile):
    customer, _ = services.customer_upsert(
        channel="amazon",
        external_id=f"{name}@marketplace.amazon.co.jp",
        email=f"{name}@marketplace.amazon.co.jp",
        family_name=f"{name}姓",
        given_name=f"{name}名",
        **profile,
    )
    return customer


def _reply_sent(inquiry, body: str, agent) -> None:
    """An agent's reply, sent by the worker's own code to the SMTP server."""
    reply = inquiry_reply(inquiry=inquiry, body=body, actor=agent)
    send_dispatch(send_id=reply.delivery.send_id)


@dataclass
class World:
    a: Customer  # Amazon only, delivered 45 days ago: anonymised
    b: Customer  # Rakuten and Amazon, delivered 40 days ago: Amazon's part goes
    inside: Customer  # delivered 29 days ago: untouched
    undelivered: Customer  # no delivery, ordered 31 days ago: anonymised
    late_delivery: Customer  # ordered 40 days ago, delivered 20 days ago: untouched
    repeat: Customer  # an old order and one 10 days ago: untouched
    a_inquiry: Inquiry
    b_rakuten_inquiry: Inquiry
    attachment_path: str


@pytest.fixture
def world(settings, tmp_path, colleague, smtp) -> World:  # noqa: F811
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.QUIET_HOURS_START = settings.QUIET_HOURS_END = 0
    now = timezone.now()

    # Buyer A writes through Amazon's relay, with a photo, 50 days ago...
    record = mail_ingest(
        _amazon_mail(
            sent_at=now - 50 * DAY,
            subject="天野の湯呑みが割れていました",
            body="割れた湯呑みの写真を送ります。天野花子 港区芝公園4-2-8 090-4411-2277",
            attachment=b"%PDF-amano-receipt",
        ),
        source="pipe",
    )
    assert record.status == "processed", record.reason
    a = record.inquiry_message.inquiry.customer
    # ... the store's Amazon feed gives the rest of the profile ...
    services.customer_upsert(
        channel="amazon",
        external_id=A_MASKED,
        family_name_kana="アマノ",
        given_name_kana="ハナコ",
        phone="090-4411-2277",
        postal_code="105-0011",
        prefecture="東京都",
        address="港区芝公園4-2-8",
        birthday=date(1985, 4, 12),
    )
    _amazon_order(a, ordered_days_ago=50, delivered_days_ago=45)
    a_inquiry = record.inquiry_message.inquiry
    # ... and an agent answers, to an address the mail server refuses (its
    # answer, kept in the ledger, names the address).
    smtp.refuse(A_MASKED)
    _reply_sent(a_inquiry, "天野 花子様 ご迷惑をおかけしました。", colleague)

    # Buyer B: a Rakuten member, who bought on Amazon too with the same email.
    b = factories.customer(channel="rakuten", external_id="rakuten-kitagawa", **B_RAKUTEN)
    services.customer_upsert(
        channel="amazon",
        external_id=B_MASKED,
        email=B_RAKUTEN["email"],
        family_name="北川",
        given_name="誠",
        phone="080-7733-1199",
        address="梅田1-1-1 置き配ボックス",
        birthday=date(1979, 11, 3),
    )
    _amazon_order(b, ordered_days_ago=42, delivered_days_ago=40)
    factories.order(customer=b, channel="rakuten", ordered_at=now - 60 * DAY)
    inquiry_create(
        customer=b,
        channel="amazon",
        message=InboundMessage(
            subject="配送について",
            body_text="置き配の箱が潰れていました。",
            received_at=now - 39 * DAY,
        ),
        category=Category.objects.get(code="delivery_delay"),
    )
    # Yahoo knows B by the same email, with their name written otherwise
    # (later than Rakuten): the customer keeps the name they have.
    services.customer_upsert(
        channel="yahoo", external_id="yahoo-kitagawa", email=B_RAKUTEN["email"], given_name="まこと"
    )
    b_rakuten_inquiry = inquiry_create(
        customer=b,
        channel="rakuten",
        message=InboundMessage(
            subject="急須の蓋", body_text=B_RAKUTEN_MESSAGE, received_at=now - 55 * DAY
        ),
    )
    _reply_sent(b_rakuten_inquiry, "北川様 代わりの蓋をお送りします。", colleague)

    inside = _amazon_buyer("inside29")
    _amazon_order(inside, ordered_days_ago=33, delivered_days_ago=29)
    inquiry_create(
        customer=inside,
        channel="amazon",
        message=InboundMessage(
            subject="まだ期間内", body_text="期間内の問い合わせ", received_at=now - 30 * DAY
        ),
    )
    undelivered = _amazon_buyer("undelivered31")
    _amazon_order(undelivered, ordered_days_ago=31, delivered_days_ago=None)
    late_delivery = _amazon_buyer("late40")
    _amazon_order(late_delivery, ordered_days_ago=40, delivered_days_ago=20)
    repeat = _amazon_buyer("repeat")
    _amazon_order(repeat, ordered_days_ago=90, delivered_days_ago=85)
    _amazon_order(repeat, ordered_days_ago=12, delivered_days_ago=10)

    attachment = Attachment.objects.get(message__inquiry=a_inquiry)
    return World(
        a=a,
        b=b,
        inside=inside,
        undelivered=undelivered,
        late_delivery=late_delivery,
        repeat=repeat,
        a_inquiry=a_inquiry,
        b_rakuten_inquiry=b_rakuten_inquiry,
        attachment_path=attachment.file.path,
    )


# Tables the job writes its own record to, or that hold no shop data.
# The job's own records (each run writes one, with its counts) and Django's.
_NOT_SHOP_DATA = {"crm_retentionevent", "core_auditentry", "django_session", "django_migrations"}


def _shop_tables() -> list[str]:
    tables = {model._meta.db_table for model in apps.get_models(include_auto_created=True)}
    return sorted(tables - _NOT_SHOP_DATA)


def _every_row() -> dict[str, list[str]]:
    """Every row of every table, as PostgreSQL writes it as text (bytea as
    hex), in id order."""
    rows = {}
    with connection.cursor() as cursor:
        for table in _shop_tables():
            cursor.execute(f'SELECT t::text FROM "{table}" t ORDER BY 1')
            rows[table] = [row[0] for row in cursor.fetchall()]
    return rows


def _found(values, rows: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [
        (value, table)
        for value in values
        for table, texts in rows.items()
        for text in texts
        if value in text or _hex(value) in text
    ]


def _customer_rows(customer: Customer) -> dict[str, list]:
    """Everything about one customer, as stored."""
    return {
        "customer": list(Customer.objects.filter(pk=customer.pk).values()),
        "profiles": list(CustomerChannelProfile.objects.filter(customer=customer).values()),
        "identities": list(customer.identities.values()),
        "events": list(CustomerEvent.objects.filter(customer=customer).values()),
        "orders": list(Order.objects.filter(customer=customer).values()),
        "inquiries": list(Inquiry.objects.filter(customer=customer).values()),
        "messages": list(InquiryMessage.objects.filter(inquiry__customer=customer).values()),
        "deliveries": list(Delivery.objects.filter(customer=customer).values()),
    }


def _report_figures() -> dict:
    """What the monthly trouble analysis reads: inquiries by month, channel
    and category, and each inquiry's first-reply time."""
    counts = list(
        Inquiry.objects.annotate(month=TruncMonth("created_at"))
        .values("month", "channel", "category")
        .annotate(count=Count("id"))
        .order_by("month", "channel", "category")
    )
    first_replies = list(
        Inquiry.objects.exclude(first_replied_at=None)
        .annotate(first_reply=F("first_replied_at") - F("created_at"))
        .values_list("pk", "first_reply", "sla_state", "status")
        .order_by("pk")
    )
    return {"counts": counts, "first_replies": first_replies}


_LIFECYCLE = (
    "pk",
    "first_order_at",
    "last_order_at",
    "order_count",
    "total_spent",
    "lifecycle_segment",
)


def _lifecycle_figures() -> list[tuple]:
    return list(Customer.objects.order_by("pk").values_list(*_LIFECYCLE))


@pytest.mark.django_db
def test_amazon_data_past_the_period_is_gone_from_every_table_and_the_disk(world):
    before = _every_row()
    assert _found(A_VALUES, before), "the seeded values are where the search looks"
    assert _found(B_AMAZON_VALUES, before)

    services.retention_run()

    assert _found(A_VALUES + B_AMAZON_VALUES, _every_row()) == []
    assert not (world.attachment_path and __import__("os").path.exists(world.attachment_path))
    a = Customer.objects.get(pk=world.a.pk)
    assert a.anonymized_at is not None
    assert a.display_name == ""
    assert not InboundMail.objects.exclude(raw=b"").filter(inquiry_message__inquiry__customer=a)
    assert set(
        InquiryMessage.objects.filter(inquiry=world.a_inquiry).values_list("body_text", flat=True)
    ) == {ANONYMIZED_TEXT}
    assert Attachment.objects.get(message__inquiry=world.a_inquiry).file.name == ""


@pytest.mark.django_db
def test_what_other_channels_gave_stays(world):
    services.retention_run()

    b = Customer.objects.get(pk=world.b.pk)
    assert b.anonymized_at is None
    for name, value in B_RAKUTEN.items():
        assert getattr(b, name) == value, name
    assert b.email_normalized == B_RAKUTEN["email"]
    # Given only by Amazon: gone.
    assert (b.phone, b.phone_normalized, b.address, b.birthday) == ("", "", "", None)
    rakuten = CustomerChannelProfile.objects.get(customer=b, channel="rakuten")
    assert {name: getattr(rakuten, name) for name in B_RAKUTEN} == B_RAKUTEN
    amazon = CustomerChannelProfile.objects.get(customer=b, channel="amazon")
    assert (amazon.family_name, amazon.email, amazon.phone, amazon.birthday) == ("", "", "", None)
    assert b.identities.get(channel="rakuten").external_id == "rakuten-kitagawa"
    assert B_RAKUTEN_MESSAGE in world.b_rakuten_inquiry.messages.values_list("body_text", flat=True)
    assert Inquiry.objects.get(pk=world.b_rakuten_inquiry.pk).subject == "急須の蓋"
    # The reply on Rakuten: its text kept for the ledger.
    reply = world.b_rakuten_inquiry.messages.get(kind="outbound")
    assert "北川様" in reply.delivery.send.content["body_text"]


@pytest.mark.django_db
def test_buyers_inside_the_period_are_untouched(world):
    """29 days after delivery; delivered 20 days ago though ordered 40 days
    ago (the delivery counts); an old order and a recent one."""
    kept = (world.inside, world.late_delivery, world.repeat)
    before = [_customer_rows(customer) for customer in kept]

    services.retention_run()

    assert [_customer_rows(customer) for customer in kept] == before
    assert Customer.objects.get(pk=world.inside.pk).family_name == "inside29姓"


@pytest.mark.django_db
def test_a_buyer_with_no_delivery_counts_from_the_order_date(world):
    services.retention_run()

    undelivered = Customer.objects.get(pk=world.undelivered.pk)
    assert undelivered.anonymized_at is not None
    assert (undelivered.family_name, undelivered.email) == ("", "")
    assert undelivered.identities.get().external_id.startswith("anonymized-")


@pytest.mark.django_db
def test_report_and_lifecycle_figures_and_order_stubs_stay_the_same(world):
    reports, lifecycle = _report_figures(), _lifecycle_figures()
    orders = list(
        Order.objects.order_by("pk").values_list(
            "pk", "channel", "order_number", "customer", "status", "ordered_at", "total"
        )
    )
    assert reports["first_replies"], "replies were seeded"

    services.retention_run()
    services.lifecycle_recompute()

    assert _report_figures() == reports
    assert _lifecycle_figures() == lifecycle
    assert (
        list(
            Order.objects.order_by("pk").values_list(
                "pk", "channel", "order_number", "customer", "status", "ordered_at", "total"
            )
        )
        == orders
    )


@pytest.mark.django_db
def test_each_run_records_its_counts_and_the_customers_timeline_says_so(world):
    retention_run_task()

    event = RetentionEvent.objects.get(kind=RetentionEventKind.ANONYMIZED, channel="amazon")
    assert event.data["customers"] == 3  # a, b, undelivered
    assert event.data["customers_fully_anonymized"] == 2  # a, undelivered
    assert event.data["channel_profiles"] == 3
    assert event.data["files_deleted"] == 1
    assert event.data["orders"] == 3
    assert event.data["messages"] >= 3  # a's mail and our reply, b's Amazon message
    timeline = CustomerEvent.objects.get(customer=world.a, kind=CustomerEventKind.ANONYMIZED)
    assert timeline.data == {"channel": "amazon", "retention_days": 30}
    with translation.override("ja"):
        assert customer_event_details(timeline) == "チャネル: Amazon / 保存期間（日）: 30"
    assert RetentionEvent.objects.filter(kind=RetentionEventKind.CONSENT_PRUNED).count() == 1
    # and the audit trail holds the run's counts, by nobody (the job)
    (audit,) = AuditEntry.objects.filter(action=AuditAction.ERASE)
    assert audit.user_id is None
    with translation.override("ja"):
        assert f"個人情報を匿名化（Amazon）: {retention_event_summary(event)}" in audit.what


@pytest.mark.django_db
def test_a_second_run_touches_nothing(world):
    services.retention_run()
    before = _every_row()

    services.retention_run()

    assert _every_row() == before
    second = RetentionEvent.objects.filter(kind=RetentionEventKind.ANONYMIZED).first()
    assert set(
        second.data[name] for name in second.data if name not in ("retention_days", "cutoff")
    ) == {0}


@pytest.mark.django_db
def test_a_buyer_back_after_anonymisation_counts_a_period_of_their_own(world):
    services.retention_run()
    # The feed sends the order again with its buyer: the masked address is
    # no longer known (a new customer), the order moves to them.
    again = Order.objects.filter(customer=world.undelivered).get()
    buyer, created = services.customer_upsert(
        channel="amazon", external_id="undelivered31@marketplace.amazon.co.jp", phone="03-5555-0101"
    )
    assert created
    services.order_upsert(
        channel="amazon",
        order_number=again.order_number,
        customer=buyer,
        ordered_at=again.ordered_at,
        total=again.total,
        status=OrderStatus.DELIVERED,
        delivered_at=timezone.now() - 5 * DAY,
    )

    services.retention_run()
    assert Order.objects.get(pk=again.pk).anonymized_at is None
    assert Customer.objects.get(pk=buyer.pk).phone == "03-5555-0101"

    services.retention_run(now=timezone.now() + 26 * DAY)
    assert Order.objects.get(pk=again.pk).anonymized_at is not None
    assert Customer.objects.get(pk=buyer.pk).phone == ""


@pytest.mark.django_db
def test_retention_is_off_for_a_channel_set_to_zero(world, settings):
    settings.RETENTION_DAYS = {**settings.RETENTION_DAYS, "amazon": 0}

    services.retention_run()

    assert Customer.objects.get(pk=world.a.pk).family_name == "天野"
    assert not RetentionEvent.objects.filter(kind=RetentionEventKind.ANONYMIZED).exists()


@pytest.mark.django_db
def test_the_retention_job_is_scheduled():
    from django_q.models import Schedule

    from core.schedules import schedules_sync

    schedules_sync()

    assert Schedule.objects.get(name="crm.retention_run").func == "crm.tasks.retention_run_task"


# --- The consent ledger -------------------------------------------------------


def _consent(customer, action, *, years_ago: float, days: float = 0) -> ConsentEvent:
    return services.consent_record(
        customer=customer,
        channel="email",
        action=action,
        source=ConsentSource.API,
        occurred_at=timezone.now() - timedelta(days=365 * years_ago + days),
    )


def _sent(customer, *, years_ago: float) -> None:
    send = send_create(
        kind=SendKind.NOTICE,
        channel="email",
        purpose=Purpose.TRANSACTIONAL,
        content={"subject": "発送のお知らせ", "body_text": "発送しました。"},
    )
    deliveries_snapshot(
        send=send, audience=Customer.objects.filter(pk=customer.pk), now=timezone.now()
    )
    Delivery.objects.filter(send=send).update(
        status="sent", sent_at=timezone.now() - timedelta(days=365 * years_ago)
    )


@pytest.mark.django_db
def test_the_consent_ledger_prunes_only_events_older_than_the_rule(settings):
    assert settings.CONSENT_LEDGER_RETENTION_DAYS == 3 * 365
    # Nothing sent: events older than 3 years go, but the one the current
    # state rests on stays (proof for the next send).
    quiet = factories.customer()
    quiet_old = [
        _consent(quiet, ConsentAction.OPT_IN, years_ago=5),
        _consent(quiet, ConsentAction.OPT_OUT, years_ago=3, days=1),
    ]
    quiet_recent = [
        _consent(quiet, ConsentAction.OPT_IN, years_ago=3, days=-1),
        _consent(quiet, ConsentAction.OPT_OUT, years_ago=1),
    ]
    withdrawn = factories.customer()
    withdrawn_first = _consent(withdrawn, ConsentAction.OPT_IN, years_ago=6)
    withdrawn_current = _consent(withdrawn, ConsentAction.OPT_OUT, years_ago=4)
    # Sent to two years ago: everything stays until three years after that.
    mailed = factories.customer()
    mailed_events = [
        _consent(mailed, ConsentAction.OPT_IN, years_ago=6),
        _consent(mailed, ConsentAction.OPT_OUT, years_ago=5),
        _consent(mailed, ConsentAction.OPT_IN, years_ago=4),
    ]
    _sent(mailed, years_ago=2)
    # Sent to, but longer ago than the rule: as if nothing was sent.
    long_ago = factories.customer()
    long_ago_old = _consent(long_ago, ConsentAction.OPT_IN, years_ago=5)
    long_ago_current = _consent(long_ago, ConsentAction.OPT_IN, years_ago=4)
    _sent(long_ago, years_ago=3.5)
    states = list(ConsentState.objects.order_by("pk").values_list("customer", "granted", "event"))

    services.retention_run()

    remaining = set(ConsentEvent.objects.values_list("pk", flat=True))
    assert remaining == {
        event.pk for event in (*quiet_recent, withdrawn_current, *mailed_events, long_ago_current)
    }
    assert not {event.pk for event in (*quiet_old, withdrawn_first, long_ago_old)} & remaining
    assert (
        list(ConsentState.objects.order_by("pk").values_list("customer", "granted", "event"))
        == states
    )
    event = RetentionEvent.objects.get(kind=RetentionEventKind.CONSENT_PRUNED)
    assert event.data["consent_events"] == 4


# --- What managers see ----------------------------------------------------------


@pytest.mark.django_db
def test_managers_read_each_run_in_words_and_agents_do_not(
    world, client, owner, colleague, django_assert_num_queries
):
    for _run in range(3):
        services.retention_run()
    url = "/admin/crm/retentionevent/"

    client.force_login(owner)
    client.get(url)  # the session and permission caches warm
    with django_assert_num_queries(7):  # with the incident banner
        page = client.get(url).content.decode()

    assert "個人情報を匿名化" in page
    assert "保存期間（日）: 30 / 顧客 3件、全体を匿名化した顧客 2件、" in page
    assert "保存期間（日）: 1095 / 対象なし" in page
    assert page.count("対象なし") == 5  # two idle anonymisations, three prunes
    assert "customers_fully_anonymized" not in page
    client.force_login(colleague)
    assert client.get(url).status_code == 403
