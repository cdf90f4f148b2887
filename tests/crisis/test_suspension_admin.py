"""The suspension screens: the list and page in bounded queries, recording
through the form (the 48-hour rule and the template check say why), who
was told and what failed, linking inquiries, 「再開する」 and the CSV."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.html import escape

from crisis.admin.suspension_words import CSV_HEADERS
from crisis.models import Suspension, SuspensionInquiry, SuspensionNotice
from crisis.services.suspensions import suspension_record
from crm.models import OrderStatus
from outreach.dispatch import send_dispatch
from outreach.models import SkipReason
from tests.crisis.test_suspensions import (
    SKU,
    buyer,
    delay_email_template,
    delay_line_template,
    line,  # noqa: F401  (the LINE fake fixture)
    mail_by_recipient,
    resume_email_template,
    smtp,  # noqa: F401  (the aiosmtpd fixture)
)
from tests.tickets import factories as ticket_factories

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:crisis_suspension_changelist")
ADD = reverse("admin:crisis_suspension_add")


def change_url(suspension: Suspension) -> str:
    return reverse("admin:crisis_suspension_change", args=[suspension.pk])


def ja(text) -> str:
    """`text` (an msgid or a lazy label) as the Japanese screen shows it."""
    with translation.override("ja"):
        return translation.gettext(str(text))


def suspension(owner, *, sku=SKU, customers=0, email_template=None, **overrides) -> Suspension:
    for index in range(customers):
        buyer(sku=sku, email=f"{sku.lower()}-{index}@example.jp")
    values = {
        "sku": sku,
        "product_name": "玉露 50g",
        "channels": ["rakuten", "yahoo"],
        "reason": "stock_out",
        "expected_resume_at": timezone.now() + timedelta(days=4),
        "sales_stopped": True,
        "email_template": email_template,
        "actor": owner,
        **overrides,
    }
    return suspension_record(**values)


def add_form_data(**overrides) -> dict:
    resume = timezone.localtime(timezone.now() + timedelta(days=3))
    return {
        "sku": SKU,
        "product_name": "玉露 50g",
        "reason": "delivery_delay",
        "expected_resume_at": resume.strftime("%Y-%m-%dT%H:%M"),
        "sales_stopped": "on",
        "channels": ["rakuten"],
        "note": "",
        "email_template": "",
        "line_template": "",
        **overrides,
    }


# --- The list ---------------------------------------------------------------------


def test_the_list_shows_each_suspension_in_words_in_queries_that_do_not_grow(
    client, owner, django_assert_num_queries
):
    template = delay_email_template()
    for number in range(2):
        suspension(owner, sku=f"SKU-{number}", customers=2, email_template=template)
    client.force_login(owner)
    with CaptureQueriesContext(connection) as few:
        response = client.get(CHANGELIST)
    assert response.status_code == 200
    for number in range(2, 6):
        suspension(owner, sku=f"SKU-{number}", customers=3, email_template=template)

    # session, user, the incident banner, permissions (2), count, the page,
    # the notices of the page, their ledger counts
    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(CHANGELIST)

    assert len(few.captured_queries) == 9
    content = response.content.decode()
    rows = {row.sku: row for row in response.context["cl"].result_list}
    assert len(rows) == 6
    assert ja("Rakuten Ichiba") in content and ja("Yahoo! Shopping") in content
    assert ja("Out of stock") in content
    assert "店長" in content  # who decided, by name
    assert rows["SKU-5"].notice_counts["suspended"].total == 3
    assert rows["SKU-5"].notice_counts["suspended"].pending == 3


# --- The page ----------------------------------------------------------------------


def test_the_page_shows_who_was_told_how_and_what_failed(client, owner, smtp, line):  # noqa: F811
    # Given a notice that reached one customer by email and one on LINE,
    # failed for one (their mail server refused it) and could not go to one
    # (no address).
    told = buyer(email="told@example.jp")
    refused = buyer(email="refused@example.jp")
    unreachable = buyer(email="")
    on_line = buyer(email="fan@example.jp", line_user="U" + "5" * 32)
    smtp.handler.permanent_for = {refused.email}
    record = suspension(
        owner, email_template=delay_email_template(), line_template=delay_line_template()
    )
    for notice in SuspensionNotice.objects.filter(suspension=record):
        send_dispatch(send_id=notice.send_id)
    assert list(mail_by_recipient(smtp)) == [told.email]
    client.force_login(owner)

    response = client.get(change_url(record))

    assert response.status_code == 200
    recipients = {row["customer"].pk: row for row in response.context["recipients"]}
    assert set(recipients) == {told.pk, refused.pk, unreachable.pk, on_line.pk}
    assert recipients[on_line.pk]["channel"] == ja("LINE")
    assert recipients[told.pk]["channel"] == ja("Email")
    assert recipients[told.pk]["outcome"] == ja("Sent")
    assert recipients[unreachable.pk]["status"] == "skipped"
    assert ja(SkipReason.NO_ADDRESS.label) in recipients[unreachable.pk]["outcome"]
    assert recipients[refused.pk]["status"] == "failed"
    with translation.override("ja"):
        from crisis.admin.suspension_words import delivery_outcome

        refused_row = record.notices.get(channel="email").send.deliveries.get(customer=refused)
        assert recipients[refused.pk]["outcome"] == delivery_outcome(refused_row)
    assert "SMTP" not in recipients[refused.pk]["outcome"]  # in words, not the server's reply
    content = response.content.decode()
    assert escape(recipients[refused.pk]["outcome"]) in content
    assert "lift_form" in response.context


def test_the_page_reads_in_queries_that_do_not_grow_with_recipients_and_inquiries(
    client, owner, django_assert_num_queries
):
    template = delay_email_template()
    small = suspension(owner, sku="SKU-A", customers=1, email_template=template)
    big = suspension(owner, sku="SKU-B", customers=6, email_template=template)
    for record in (small, big):
        inquiries = [
            ticket_factories.inquiry(order=order, customer=order.customer)
            for order in _orders_of(record.sku)
        ]
        SuspensionInquiry.objects.create(suspension=record, inquiry=inquiries[0])
    client.force_login(owner)
    with CaptureQueriesContext(connection) as few:
        assert client.get(change_url(small)).status_code == 200

    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(change_url(big))

    assert len(response.context["recipients"]) == 6
    assert len(response.context["suggested_inquiries"]) == 5
    # session, user, the suspension, permissions (2), its notices, their
    # counts, the recipients, the linked and suggested inquiries, the
    # history, the templates of the two lift fields
    assert len(few.captured_queries) == 14  # with the incident banner


def _orders_of(sku: str):
    from crm.models import Order

    return list(Order.objects.filter(lines__sku=sku).select_related("customer"))


# --- Recording through the form -------------------------------------------------------


def test_a_48_hour_delay_without_a_sales_stop_is_refused_on_the_form_saying_why(client, owner):
    client.force_login(owner)
    data = add_form_data(sales_stopped="")

    response = client.post(ADD, data)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "sales_stopped" in errors
    assert "48" in errors["sales_stopped"][0]
    assert not Suspension.objects.exists()


def test_a_vague_template_is_refused_on_the_form_naming_the_word(client, owner):
    vague = delay_email_template(
        body_text="{{ extra.expected_resume }}ごろ発送予定ですが、近日中にご連絡します。"
    )
    client.force_login(owner)

    response = client.post(ADD, add_form_data(email_template=str(vague.pk)))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["email_template"]
    assert any("近日中" in error for error in errors)
    assert not Suspension.objects.exists()


def test_recording_through_the_form_tells_the_customers(client, owner):
    waiting = buyer(email="waiting@example.jp")
    client.force_login(owner)

    response = client.post(ADD, add_form_data(email_template=str(delay_email_template().pk)))

    assert response.status_code == 302
    record = Suspension.objects.get()
    assert record.decided_by == owner
    assert record.channels == ["rakuten"]
    notice = record.notices.get()
    assert list(notice.send.deliveries.values_list("customer_id", flat=True)) == [waiting.pk]


# --- Lifting, linking -------------------------------------------------------------------


def test_resuming_sends_the_follow_up_once_and_a_second_click_sends_nothing(
    client,
    owner,
    smtp,  # noqa: F811
):
    customer = buyer(email="waiting@example.jp")
    record = suspension(owner, email_template=delay_email_template())
    send_dispatch(send_id=record.notices.get().send_id)
    template = resume_email_template()
    client.force_login(owner)
    lift = reverse("admin:crisis_suspension_lift", args=[record.pk])

    first = client.post(lift, {"email_template": template.pk})
    second = client.post(lift, {"email_template": template.pk})

    assert first.status_code == second.status_code == 302
    record.refresh_from_db()
    assert record.lifted_by == owner
    resumed = record.notices.get(kind="resumed")
    assert list(resumed.send.deliveries.values_list("customer_id", flat=True)) == [customer.pk]
    assert record.events.filter(kind="lifted").count() == 1
    page = client.get(change_url(record))
    assert "lift_form" not in page.context


def test_a_vague_resume_template_is_refused_and_nothing_is_lifted(client, owner):
    record = suspension(owner)
    vague = delay_email_template(name="再開（あいまい）", body_text="順次発送いたします。")
    client.force_login(owner)

    response = client.post(
        reverse("admin:crisis_suspension_lift", args=[record.pk]), {"email_template": vague.pk}
    )

    assert response.status_code == 302
    record.refresh_from_db()
    assert record.lifted_at is None
    assert any("順次" in str(m) for m in response.wsgi_request._messages)


def test_several_suggested_inquiries_are_linked_at_once(client, owner):
    record = suspension(owner, customers=3)
    inquiries = [
        ticket_factories.inquiry(order=order, customer=order.customer) for order in _orders_of(SKU)
    ]
    unrelated = ticket_factories.inquiry()
    client.force_login(owner)
    page = client.get(change_url(record))
    assert {i.pk for i in page.context["suggested_inquiries"]} == {i.pk for i in inquiries}

    response = client.post(
        reverse("admin:crisis_suspension_link", args=[record.pk]),
        {"inquiries": [inquiries[0].pk, inquiries[2].pk]},
    )

    assert response.status_code == 302
    assert set(record.inquiries.all()) == {inquiries[0], inquiries[2]}
    assert record.events.filter(kind="inquiry_linked").count() == 1
    refused = client.post(
        reverse("admin:crisis_suspension_link", args=[record.pk]), {"inquiries": [unrelated.pk]}
    )
    assert refused.status_code == 302
    assert unrelated not in record.inquiries.all()


# --- The CSV ---------------------------------------------------------------------------


def test_the_affected_orders_csv_has_a_bom_japanese_headers_and_the_notice_result(client, owner):
    waiting = buyer(channel="rakuten", email="waiting@example.jp")
    unreachable = buyer(status=OrderStatus.PENDING, email="")
    buyer(status=OrderStatus.DELIVERED, email="old@example.jp")
    record = suspension(owner, email_template=delay_email_template())
    client.force_login(owner)

    response = client.get(reverse("admin:crisis_suspension_orders_csv", args=[record.pk]))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    raw = response.content
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    with translation.override("ja"):
        headers = [str(header) for header in CSV_HEADERS]
    assert headers[:4] == ["モール", "注文番号", "注文日時", "お客様"]
    assert headers[6:] == ["数量", "状態", "通知チャネル", "通知結果"]
    assert rows[0] == headers
    body = {row[3]: row for row in rows[1:]}
    assert set(body) == {waiting.display_name, unreachable.display_name}
    row = body[waiting.display_name]
    assert row[0] == ja("Rakuten Ichiba")
    assert row[4:7] == [SKU, "玉露 50g", "1"]
    assert row[7] == ja("Paid")
    assert row[8] == ja("Email")
    assert ja(SkipReason.NO_ADDRESS.label) in body[unreachable.display_name][9]


# --- Who may ---------------------------------------------------------------------------


def test_an_agent_sees_suspensions_but_cannot_record_lift_or_link(client, owner, colleague):
    record = suspension(owner, customers=1)
    client.force_login(colleague)

    assert client.get(CHANGELIST).status_code == 200
    page = client.get(change_url(record))
    assert page.status_code == 200
    assert "lift_form" not in page.context
    assert client.get(ADD).status_code == 403
    assert client.post(ADD, add_form_data()).status_code == 403
    lift = client.post(reverse("admin:crisis_suspension_lift", args=[record.pk]), {})
    link = client.post(reverse("admin:crisis_suspension_link", args=[record.pk]), {})
    assert lift.status_code == link.status_code == 403
    record.refresh_from_db()
    assert record.lifted_at is None
    assert Suspension.objects.count() == 1


def test_an_outsider_is_sent_to_the_login_page(client, owner, outsider):
    record = suspension(owner)
    client.force_login(outsider)
    for url in (CHANGELIST, change_url(record), ADD):
        assert client.get(url).status_code == 302
    csv_url = reverse("admin:crisis_suspension_orders_csv", args=[record.pk])
    assert client.get(csv_url).status_code == 302
