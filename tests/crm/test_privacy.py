"""A person's rights (APPI 開示・削除, SPEC rule 17): the export holds every
personal value the system has about them, and erasure leaves none in any
table (every text, char, JSON and binary column of the database catalogue
is searched) or file, while ids, order stubs, figures and the fact of
consent stay. The inventory (crm.personal_data) covers every column."""

from __future__ import annotations

import base64
import json
import os
import uuid
from datetime import date
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import connection, models

from crm import services
from crm.models import (
    ChannelIdentity,
    ConsentEvent,
    ConsentState,
    Customer,
    CustomerChannelProfile,
    CustomerEvent,
    CustomerEventKind,
    Order,
)
from crm.personal_data import CHECKED_APPS, NOT_PERSONAL, PERSONAL
from outreach.dispatch import send_dispatch
from outreach.models import Delivery, DeliveryStatus, LineWebhookEvent, SkipReason
from tests.api_client import api_client
from tests.conftest import make_api_key
from tests.crm import factories
from tests.outreach.conftest import smtp as smtp
from tests.tickets.test_inbound import deliver, said
from tests.tickets.test_inbound import line as line
from tickets.models import Attachment, Inquiry, InquiryMessage
from tickets.services import AttachmentData, InboundMessage, inquiry_create, inquiry_reply
from tickets.services.inbound import line_messages_consume, mail_ingest

pytestmark = pytest.mark.django_db

LINE_USER = "U" + "5eed" * 8
# One seed per kind of personal value: each must be found in the export and
# nowhere after erasure.
SEEDS = {
    "family_name": "種忍野",
    "given_name": "秘扇子",
    "family_name_kana": "タネオシノ",
    "given_name_kana": "ヒメセンス",
    "email": "seed.oshino@example.jp",
    "phone": "090-7531-8642",
    "phone_normalized": "09075318642",
    "postal_code": "987-6543",
    "address": "架空市秘密町三丁目",
    "rakuten_address": "楽天側住所九番地",
    "rakuten_member": "rakuten-seed-77",
    "line_user": LINE_USER,
    "line_text": "ライン本文の種",
    "notes": "店の備考の種",
    "claimant_reason": "クレーム理由の種",
    "consent_note": "電話で同意の種",
    "inquiry_subject": "問い合わせ件名の種",
    "message_body": "問い合わせ本文の種",
    "attachment_name": "seed-receipt-oshino.pdf",
    "attachment_bytes": "seed-attachment-bytes-7c1",
    "reply_body": "返信本文の種",
    "mail_subject": "メール件名の種",
    "mail_body": "メール本文の種",
    "api_display_name": "自社サイト表示名の種",
    "merged_email": "seed.merged@example.jp",
    "admin_history": "種忍野 秘扇子",  # the customer's name in Django's admin log
}


@pytest.fixture
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _mail(sender: str, subject: str, body: str) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "support@shop.example.jp"
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="example.jp")
    message.set_content(body)
    return message.as_bytes()


@pytest.fixture
def person(request, line, media, colleague) -> Customer:
    """One person with one value of every kind of personal data, reached
    through the real doors: the API, LINE's webhook, mail, staff."""
    smtp = request.getfixturevalue("smtp")
    s = SEEDS
    # The store site's API, with an Idempotency-Key: its answer is stored.
    client = api_client(make_api_key(channels=["own_site", "rakuten"])[1])
    response = client.post(
        "/api/v1/customers/",
        {
            "channel": "own_site",
            "external_id": "member-seed-1",
            "identity_display_name": s["api_display_name"],
            "family_name": s["family_name"],
            "given_name": s["given_name"],
            "family_name_kana": s["family_name_kana"],
            "given_name_kana": s["given_name_kana"],
            "email": s["email"],
            "phone": s["phone"],
            "postal_code": s["postal_code"],
            "prefecture": "沖縄県",
            "address": s["address"],
            "birthday": "1987-06-05",
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
    )
    assert response.status_code == 201, response.content
    customer = Customer.objects.get(pk=response.json()["id"])
    # A second channel's profile, and an order there.
    services.customer_upsert(
        channel="rakuten",
        external_id=s["rakuten_member"],
        email=s["email"],
        address=s["rakuten_address"],
    )
    factories.order(customer=customer, channel="rakuten", total=4800)
    # Staff's notes, a claimant flag, a consent given by phone.
    services.customer_update(customer=customer, actor=colleague, notes=s["notes"])
    services.customer_claimant_set(customer=customer, reason=s["claimant_reason"], actor=colleague)
    services.consent_record(
        customer=customer,
        channel="email",
        action="opt_in",
        source="staff",
        note=s["consent_note"],
        actor=colleague,
    )
    # An inquiry with an attachment, and a reply that went out by mail.
    inquiry = inquiry_create(
        customer=customer,
        channel="email",
        message=InboundMessage(
            subject=s["inquiry_subject"],
            body_text=s["message_body"],
            attachments=[
                AttachmentData(
                    filename=s["attachment_name"],
                    content_type="application/pdf",
                    content=s["attachment_bytes"].encode(),
                    size=len(s["attachment_bytes"]),
                )
            ],
        ),
    )
    reply = inquiry_reply(inquiry=inquiry, body=s["reply_body"], actor=colleague)
    send_dispatch(send_id=reply.delivery.send_id)
    # A second reply the mail server refused: the ledger keeps its answer,
    # which names the address.
    smtp.refuse(s["email"])
    refused = inquiry_reply(inquiry=inquiry, body="二通目の返信", actor=colleague)
    send_dispatch(send_id=refused.delivery.send_id)
    assert s["email"] in Delivery.objects.get(pk=refused.delivery_id).last_error
    # A mail from the person's address.
    mail_ingest(_mail(s["email"], s["mail_subject"], s["mail_body"]), source="test")
    # A LINE message from a user who is then found to be the same person.
    deliver(line, said(line, LINE_USER, s["line_text"]))
    line_messages_consume()
    line_customer = ChannelIdentity.objects.get(external_id=LINE_USER).customer
    services.customer_merge(winner=customer, loser=line_customer, actor=colleague)
    # Django's admin history names the customer.
    LogEntry.objects.log_actions(
        user_id=colleague.pk,
        queryset=Customer.objects.filter(pk=customer.pk),
        action_flag=CHANGE,
        change_message="edited",
    )
    # A customer merged in earlier, with an address of its own.
    other = factories.customer(email=s["merged_email"])
    services.customer_merge(winner=customer, loser=other, actor=colleague)
    customer.refresh_from_db()
    return customer


def _searched_columns() -> list[tuple[str, str, str]]:
    """Every text, char, JSON and binary column of every table, from the
    database catalogue (not from the models)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT table_name, column_name, data_type FROM information_schema.columns
            WHERE table_schema = current_schema()
              AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb',
                                'bytea')
            ORDER BY table_name, column_name
            """
        )
        return cursor.fetchall()


def _where_found(values: list[str]) -> list[tuple[str, str, str]]:
    """(table, column, value) wherever one of `values` is stored."""
    found = []
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        for table, column, data_type in _searched_columns():
            text = (
                f"convert_from({qn(column)}, 'UTF8')"
                if data_type == "bytea"
                else f"{qn(column)}::text"
            )
            for value in values:
                cursor.execute(
                    f"SELECT 1 FROM {qn(table)} WHERE strpos({text}, %s) > 0 LIMIT 1", [value]
                )
                if cursor.fetchone():
                    found.append((table, column, value))
    return found


def _in_media(media: Path, values: list[str]) -> list[tuple[str, str]]:
    found = []
    for folder, _dirs, files in os.walk(media):
        for name in files:
            path = Path(folder) / name
            content = path.read_bytes().decode("utf-8", errors="replace")
            found += [(str(path), v) for v in values if v in str(path) or v in content]
    return found


def test_before_erasure_every_seeded_value_is_stored_somewhere(person, media):
    # The search finds what it looks for: each seed is in the database or a file.
    stored = {value for _t, _c, value in _where_found(list(SEEDS.values()))}
    stored |= {value for _path, value in _in_media(media, list(SEEDS.values()))}
    assert stored == set(SEEDS.values())


def test_the_export_holds_every_personal_value_of_the_person(person, owner):
    document = services.customer_export(customer=person, actor=owner, reason="本人からの開示請求")
    text = json.dumps(document, ensure_ascii=False)
    missing = [
        name for name, value in SEEDS.items() if value not in text and name != "attachment_bytes"
    ]
    assert missing == []
    (attachment,) = [
        a for i in document["inquiries"] for m in i["messages"] for a in m["attachments"]
    ]
    assert base64.b64decode(attachment["content_base64"]).decode() == SEEDS["attachment_bytes"]
    assert attachment["filename"] == SEEDS["attachment_name"]
    # each kind in its own section
    assert any(
        SEEDS["line_text"] in json.dumps(e["payload"], ensure_ascii=False)
        for e in document["line_events"]
    )
    assert any(SEEDS["email"] in d["last_error"] for d in document["deliveries"])
    assert any(SEEDS["family_name"] in a["response_body"] for a in document["api_answers"])
    assert [m["subject"] for m in document["inbound_mail"]] == [SEEDS["mail_subject"]]
    assert SEEDS["consent_note"] in [e["note"] for e in document["consent_events"]]
    assert any(SEEDS["admin_history"] in h["object_repr"] for h in document["admin_history"])
    assert SEEDS["rakuten_member"] in [i["external_id"] for i in document["identities"]]
    assert {row["channel"] for row in document["channel_profiles"]} >= {"own_site", "rakuten"}
    assert document["customers"][0]["birthday"] == "1987-06-05"
    assert [o["total"] for o in document["orders"]] == [4800]


def test_the_export_of_a_merged_stub_is_the_whole_person(person, owner):
    stub = Customer.objects.filter(merged_into=person).first()
    document = services.customer_export(customer=stub, actor=owner, reason="開示請求")
    assert document["customer_id"] == person.pk
    assert SEEDS["address"] in json.dumps(document, ensure_ascii=False)


def test_an_export_records_who_and_why(person, owner):
    services.customer_export(customer=person, actor=owner, reason="本人からの開示請求")
    event = CustomerEvent.objects.get(customer=person, kind=CustomerEventKind.EXPORTED)
    assert event.actor == owner and event.data["reason"] == "本人からの開示請求"


def test_export_and_erasure_need_a_reason(person, owner):
    with pytest.raises(ValidationError):
        services.customer_export(customer=person, actor=owner, reason=" ")
    with pytest.raises(ValidationError):
        services.customer_erase(customer=person, actor=owner, reason="")
    assert Customer.objects.get(pk=person.pk).email == SEEDS["email"]


def test_erasure_leaves_no_seeded_value_in_any_table_or_file(person, owner, media):
    # when
    services.customer_erase(customer=person, actor=owner, reason="本人からの削除請求")
    # then: not in any text, char, JSON or binary column, nor under MEDIA_ROOT
    assert _where_found(list(SEEDS.values())) == []
    assert _in_media(media, list(SEEDS.values())) == []
    assert not list(Path(media).rglob("*.pdf"))


def test_erasure_keeps_ids_order_stubs_figures_and_the_fact_of_consent(person, owner):
    order = Order.objects.get(customer=person)
    consent_at = ConsentEvent.objects.get(customer=person, note=SEEDS["consent_note"]).occurred_at
    figures = Customer.objects.values("order_count", "total_spent", "lifecycle_segment").get(
        pk=person.pk
    )
    inquiries = Inquiry.objects.filter(customer=person).count()
    # when
    counts = services.customer_erase(customer=person, actor=owner, reason="削除請求")
    # then
    assert Order.objects.get(pk=order.pk).total == 4800
    assert (
        Customer.objects.values("order_count", "total_spent", "lifecycle_segment").get(pk=person.pk)
        == figures
    )
    assert Inquiry.objects.filter(customer=person).count() == inquiries
    event = ConsentEvent.objects.get(customer=person, occurred_at=consent_at, source="staff")
    assert (event.action, event.note) == ("opt_in", "")
    assert ConsentState.objects.get(customer=person, channel="email").granted
    erased = Customer.objects.get(pk=person.pk)
    assert erased.anonymized_at is not None and str(erased) == f"#{person.pk}"
    assert erased.is_claimant and erased.claimant_reason == "匿名"
    assert not ChannelIdentity.objects.filter(customer__merged_into=person).exists()
    assert not Attachment.objects.exclude(file="").exists()
    assert counts["crm.customer"] == 3  # the person and the two merged into them


def test_erasure_records_who_why_and_counts_not_values(person, owner):
    services.customer_erase(customer=person, actor=owner, reason="本人からの削除請求")
    (event,) = CustomerEvent.objects.filter(customer=person, kind=CustomerEventKind.ERASED)
    assert event.actor == owner and event.data["reason"] == "本人からの削除請求"
    assert event.data["erased"]["tickets.inquirymessage"] >= 3
    assert (
        not CustomerEvent.objects.exclude(pk=event.pk)
        .exclude(data={})
        .filter(
            customer__in=[person.pk, *Customer.objects.filter(merged_into=person).values_list("pk")]
        )
        .exists()
    )


def test_erasure_skips_what_is_still_queued_to_the_person(person, owner, colleague):
    inquiry = Inquiry.objects.filter(customer=person, channel="email").first()
    queued = inquiry_reply(inquiry=inquiry, body="まだ送っていない返信", actor=colleague).delivery
    services.customer_erase(customer=person, actor=owner, reason="削除請求")
    queued.refresh_from_db()
    assert (queued.status, queued.skip_reason) == (DeliveryStatus.SKIPPED, SkipReason.GONE)


def test_erasure_runs_in_set_based_statements_not_per_row(
    person, owner, django_assert_max_num_queries
):
    # Many more messages and LINE events: the statement count stays the same.
    inquiry = Inquiry.objects.filter(customer=person).first()
    for number in range(30):
        InquiryMessage.objects.create(
            inquiry=inquiry, kind="note", channel="email", body_text=f"メモ{number}"
        )
    with django_assert_max_num_queries(45):
        services.customer_erase(customer=person, actor=owner, reason="削除請求")
    assert not LineWebhookEvent.objects.exclude(payload={}).exists()


def test_erasing_twice_is_harmless(person, owner):
    services.customer_erase(customer=person, actor=owner, reason="削除請求")
    services.customer_erase(customer=person, actor=owner, reason="削除請求（再）")
    assert _where_found([SEEDS["email"], SEEDS["family_name"]]) == []


# --- The inventory ----------------------------------------------------------------

TEXT_FIELDS = (
    models.CharField,
    models.TextField,
    models.JSONField,
    models.FileField,
    models.BinaryField,
)


def _text_columns() -> set[tuple[str, str]]:
    return {
        (model._meta.label, field.name)
        for app_label in CHECKED_APPS
        for model in apps.get_app_config(app_label).get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, TEXT_FIELDS)
    }


def _inventory() -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    personal = {(table.model, name) for table in PERSONAL for name in table.columns}
    known = {(label, name) for label, columns in NOT_PERSONAL.items() for name in columns}
    return personal, known


def test_every_text_column_is_in_the_inventory_as_personal_or_not():
    personal, known = _inventory()
    unlisted = _text_columns() - personal - known
    assert unlisted == set(), (
        "New columns: list each in crm/personal_data.py, as PERSONAL (with how its rows "
        "reach a customer) or NOT_PERSONAL (with why)."
    )


def test_the_inventory_names_only_columns_that_exist_once():
    personal, known = _inventory()
    assert personal & known == set()
    existing = {
        (model._meta.label, field.name)
        for app_label in CHECKED_APPS
        for model in apps.get_app_config(app_label).get_models()
        for field in model._meta.concrete_fields
    }
    assert (personal | known) - existing == set()


def test_the_inventory_check_catches_a_new_column(monkeypatch):
    # A model gaining a text column that nobody classified fails the check.
    from django.db.models import CharField

    field = CharField(max_length=50, blank=True)
    field.set_attributes_from_name("shipping_name")
    field.model = Order
    monkeypatch.setattr(
        Order._meta, "concrete_fields", (*Order._meta.concrete_fields, field), raising=False
    )
    personal, known = _inventory()
    assert ("crm.Order", "shipping_name") in _text_columns() - personal - known


def test_birthday_is_blank_after_erasure(person, owner):
    services.customer_erase(customer=person, actor=owner, reason="削除請求")
    assert Customer.objects.get(pk=person.pk).birthday is None
    assert date(1987, 6, 5) not in set(
        CustomerChannelProfile.objects.values_list("birthday", flat=True)
    )


def test_an_inventory_entry_without_a_way_to_its_rows_blanks_nothing(monkeypatch, owner):
    # An entry that names no path to the customer must not blank a whole table.
    from crm.personal_data import PersonalTable
    from crm.services import privacy_erase

    customer = factories.customer(tags=["ギフト"])
    broken = PersonalTable("crm.Tag", ("name",), reach=(), how="")
    monkeypatch.setattr(privacy_erase, "PERSONAL", (*PERSONAL, broken))
    with pytest.raises(ImproperlyConfigured):
        services.customer_erase(customer=customer, actor=owner, reason="削除請求")
    assert list(customer.tags.values_list("name", flat=True)) == ["ギフト"]
    assert Customer.objects.get(pk=customer.pk).email
