"""Inbound mail through `manage.py ingest_email` (SPEC rule 11): the raw
RFC 822 bytes a mail server pipes in, as Japanese mailers really write
them (tests/tickets/mail/*.eml, tests/tickets/mailfactory.py), become
inquiries and messages — once, threaded, readable — or are recorded as
ignored or failed with a reason, never lost and never answered in a loop."""

from __future__ import annotations

import base64
import io
import os
import random
import signal
import subprocess
import sys
import tracemalloc
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, make_msgid
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django_q.exceptions import TimeoutException
from django_q.timeout import TimeoutHandler

from crm.models import ChannelIdentity
from outreach.dispatch import send_dispatch
from outreach.models import Delivery, Send
from tests.concurrency import at_once
from tests.crm import factories as crm_factories
from tests.outreach import conftest as outreach_fixtures
from tests.tickets import factories
from tests.tickets import mailfactory as mf
from tests.worker import database_url
from tickets.mailparse import parse_message
from tickets.models import (
    Attachment,
    AutoAcknowledgement,
    InboundMail,
    Inquiry,
    InquiryEvent,
    InquiryMessage,
    InquiryStatus,
)
from tickets.services import inquiry_auto_acknowledge, inquiry_reply, inquiry_status_set
from tickets.services.inbound import mail_ingest

MAIL = Path(__file__).parent / "mail"
smtp = outreach_fixtures.smtp  # the in-process SMTP server, for replies sent back
ROOT = Path(__file__).resolve().parents[2]
EX_TEMPFAIL = 75


def fixture(name: str) -> bytes:
    return (MAIL / name).read_bytes()


def customer_mail(
    body: str = "注文した商品がまだ届きません。",
    *,
    subject: str = "配送について",
    sender: str = "kimura@example.jp",
    name: str = "木村 優子",
    charset: str = "ISO-2022-JP",
    date: datetime | None = None,
    message_id: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """A one-part text mail as a Japanese mailer writes it (ISO-2022-JP,
    7bit, encoded-word headers), dated now unless told otherwise."""
    content, encoded = mf.text_body(body, charset, "7bit" if charset == "ISO-2022-JP" else "base64")
    return mf.raw_mail(
        [
            ("From", f"{mf.encoded_words(name, charset)} <{sender}>"),
            ("To", "support@shop.example.jp"),
            ("Subject", mf.encoded_words(subject, charset)),
            ("Date", format_datetime(date or timezone.now())),
            ("Message-ID", message_id or make_msgid(domain=sender.partition("@")[2])),
            ("MIME-Version", "1.0"),
            *content,
            *headers,
        ],
        encoded,
    )


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def pipe(monkeypatch):
    """`manage.py ingest_email` with `raw` on its standard input; its output."""

    def run(raw: bytes, *args: str) -> str:
        monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=io.BytesIO(raw)))
        out = io.StringIO()
        call_command("ingest_email", *args, stdout=out, stderr=io.StringIO())
        return out.getvalue().strip()

    return run


@pytest.fixture
def acknowledgement():
    return AutoAcknowledgement.objects.create(
        channel="email",
        body="{{ customer.name }} 様\nお問い合わせ（{{ inquiry.reference }}）を受け付けました。",
    )


def ours(inquiry: Inquiry) -> list[InquiryMessage]:
    return list(inquiry.messages.filter(kind="outbound"))


# --------------------------------------------------------------------------
# Japanese mail comes out readable


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "subject", "text", "family", "given"),
    [
        (
            "iso2022jp_becky.eml",
            "商品の配送状況について（注文番号 12345）",
            "11月15日に注文した商品（注文番号 12345）がまだ届いておりません。",
            "山田",
            "花子",
        ),
        (
            "iso2022jp_cp932_outlook_express.eml",
            "①と②の商品について（㈱髙橋商店）",
            "②：№12 を ｶﾀﾛｸﾞ の通り 10 個",
            "㈱髙橋商店",
            "髙橋一郎",
        ),
        (
            "shiftjis_qp_webform.eml",
            "【お問い合わせ】商品について",
            "サイズ Ｍ～Ｌ の在庫はありますか？",
            "佐藤",
            "次郎",
        ),
        (
            "shiftjis_base64_cp932.eml",
            "商品の交換について①",
            "㈱ミナミの髙田です。\n注文した商品の色が①写真と違いました。",
            "髙田",
            "美咲",
        ),
        (
            "raw_sjis_headers.eml",
            "【至急】注文のキャンセル①",
            "表示されている金額～送料込みでしょうか。",
            "中村",
            "さくら",
        ),
    ],
    ids=["iso-2022-jp", "iso-2022-jp-cp932", "shift_jis-qp", "shift_jis-cp932", "raw-8bit-sjis"],
)
def test_japanese_mail_becomes_a_readable_inquiry(pipe, name, subject, text, family, given):
    output = pipe(fixture(name))

    assert output == f"processed: {subject}"
    inquiry = Inquiry.objects.get()
    assert (inquiry.channel, inquiry.subject, inquiry.status) == ("email", subject, "new")
    message = inquiry.messages.get()
    assert text in message.body_text
    assert "\ufffd" not in message.body_text + inquiry.subject
    assert (inquiry.customer.family_name, inquiry.customer.given_name) == (family, given)
    record = InboundMail.objects.get()
    assert (record.status, record.source, record.inquiry_message) == ("processed", "pipe", message)
    assert record.subject == subject


@pytest.mark.django_db
def test_the_source_option_is_recorded(pipe):
    pipe(customer_mail(), "--source", "postfix:support")
    assert InboundMail.objects.get().source == "postfix:support"


# --------------------------------------------------------------------------
# Attachments


@pytest.mark.django_db
def test_attachments_are_stored_under_media_root_with_their_japanese_names(pipe, settings):
    raw = fixture("attachments_mixed.eml")

    pipe(raw)

    message = InquiryMessage.objects.get()
    parsed = {a.filename: a for a in parse_message(raw).attachments}
    stored = {a.filename: a for a in message.attachments.all()}
    assert list(stored) == ["logo.png", "請求書.pdf", "見積書.xlsx", "パンフレット.pdf"]
    for filename, attachment in stored.items():
        assert not attachment.truncated
        path = Path(attachment.file.path)
        assert path.is_relative_to(settings.MEDIA_ROOT / "attachments" / message.inquiry.reference)
        assert path.read_bytes() == parsed[filename].payload
        assert attachment.size == len(parsed[filename].payload)
    assert stored["請求書.pdf"].content_type == "application/pdf"
    assert Path(stored["請求書.pdf"].file.name).name == "請求書.pdf"
    assert message.body_text == "請求書と見積書を添付します。\nロゴの画像も本文に入れました。"


def big_attachment_mail() -> bytes:
    boundary = "----=_Part_0_1234.5678"
    text_headers, text = mf.text_body(
        "見積書（PDF）を添付します。ご確認ください。", "ISO-2022-JP", "7bit"
    )
    pdf = b"%PDF-1.4\n" + b"0" * 40_000
    return mf.raw_mail(
        [
            ("From", f"{mf.encoded_words('高橋 一郎', 'ISO-2022-JP')} <ichiro@example.co.jp>"),
            ("To", "support@shop.example.jp"),
            ("Subject", mf.encoded_words("大きな見積書", "ISO-2022-JP")),
            ("Date", format_datetime(timezone.now())),
            ("Message-ID", "<big.attachment.1@example.co.jp>"),
            ("MIME-Version", "1.0"),
            ("Content-Type", f'multipart/mixed; boundary="{boundary}"'),
        ],
        b"\r\n".join(
            [
                f"--{boundary}".encode(),
                *(f"{k}: {v}".encode() for k, v in text_headers),
                b"",
                text,
                f"--{boundary}".encode(),
                b"Content-Type: application/pdf",
                b"Content-Disposition: attachment;",
                b" filename*=UTF-8''%E8%A6%8B%E7%A9%8D%E6%9B%B8.pdf",
                b"Content-Transfer-Encoding: base64",
                b"",
                mf.base64_lines(pdf),
                f"--{boundary}".encode(),
                b"Content-Type: image/png",
                b'Content-Disposition: attachment; filename="small.png"',
                b"Content-Transfer-Encoding: base64",
                b"",
                mf.base64_lines(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100),
                f"--{boundary}--".encode(),
                b"",
            ]
        ),
    )


@pytest.mark.django_db
def test_an_attachment_over_the_limit_is_kept_as_metadata_and_the_mail_is_not_lost(pipe, settings):
    settings.ATTACHMENT_MAX_BYTES = 10_000

    output = pipe(big_attachment_mail())

    assert output == "processed: 大きな見積書"
    message = InquiryMessage.objects.get()
    assert message.body_text == "見積書（PDF）を添付します。ご確認ください。"
    big = message.attachments.get(filename="見積書.pdf")
    assert (big.truncated, big.size, big.content_type) == (True, 40_009, "application/pdf")
    assert not big.file
    small = message.attachments.get(filename="small.png")
    assert not small.truncated
    assert Path(small.file.path).read_bytes().startswith(b"\x89PNG")
    assert Attachment.objects.count() == 2


def nul_header_mail() -> bytes:
    """A mail whose attachment's Content-Type holds a NUL byte (a broken
    mailer), with NULs in encoded-words of the subject and the file name too."""
    boundary = "nul-boundary"
    return mf.raw_mail(
        [
            ("From", f"{mf.encoded_words('中村 健')} <ken@example.jp>"),
            ("To", "support@shop.example.jp"),
            (
                "Subject",
                "=?UTF-8?B?" + base64.b64encode("返品\x00について".encode()).decode() + "?=",
            ),
            ("Date", format_datetime(timezone.now())),
            ("Message-ID", "<nul.header.1@example.jp>"),
            ("MIME-Version", "1.0"),
            ("Content-Type", f'multipart/mixed; boundary="{boundary}"'),
        ],
        b"\r\n".join(
            [
                f"--{boundary}".encode(),
                b'Content-Type: text/plain; charset="UTF-8"',
                b"",
                "写真を添付します。".encode(),
                f"--{boundary}".encode(),
                b'Content-Type: image/jp\x00eg; name="=?UTF-8?B?'
                + base64.b64encode("写真\x00.jpg".encode())
                + b'?="',
                b"Content-Transfer-Encoding: base64",
                b"",
                mf.base64_lines(b"\xff\xd8\xff\xe0" + b"\x00" * 64),
                f"--{boundary}--".encode(),
                b"",
            ]
        ),
    )


@pytest.mark.django_db
def test_a_nul_byte_in_a_header_value_does_not_stop_the_mail_becoming_an_inquiry(pipe):
    output = pipe(nul_header_mail())

    assert output == "processed: 返品について"
    message = InquiryMessage.objects.get()
    assert message.body_text == "写真を添付します。"
    attachment = message.attachments.get()
    assert (attachment.filename, attachment.content_type) == ("写真.jpg", "image/jpeg")


@pytest.mark.django_db
def test_a_piped_mail_over_the_size_limit_is_recorded_by_its_header(pipe, settings):
    settings.MAIL_MAX_MESSAGE_BYTES = 30_000

    output = pipe(big_attachment_mail())

    record = InboundMail.objects.get()
    assert output == f"failed: 大きな見積書 {record.reason}"
    assert record.reason == (
        f"too large: {len(big_attachment_mail())} bytes, over the limit of 30000; "
        "kept as its header only"
    )
    assert (record.message_id, record.from_address) == (
        "<big.attachment.1@example.co.jp>",
        "ichiro@example.co.jp",
    )
    assert big_attachment_mail().startswith(bytes(record.raw)) and len(record.raw) < 1000
    assert not Inquiry.objects.exists()


@pytest.mark.django_db
def test_a_mail_with_a_30_mb_attachment_is_stored_within_three_times_its_size(settings):
    settings.MAIL_MAX_MESSAGE_BYTES = settings.ATTACHMENT_MAX_BYTES = 64 * 1024 * 1024
    pdf = random.Random(30).randbytes(30 * 1024 * 1024)
    raw = mf.mail_with_pdf(
        [("From", "ono@example.jp"), ("Subject", "図面"), ("Message-ID", "<zumen.30@example.jp>")],
        pdf,
    )

    tracemalloc.start()
    try:
        record = mail_ingest(raw, source="pipe")
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert record.status == "processed"
    stored = record.inquiry_message.attachments.get()
    assert Path(stored.file.path).read_bytes() == pdf
    assert peak < 3 * len(raw)  # 41 MB of mail: 359 MB before, 92 MB now


@pytest.mark.django_db
def test_a_mail_read_under_the_workers_timeout_leaves_that_timeout_running(settings):
    settings.MAIL_PARSE_SECONDS = 0.3

    with TimeoutHandler(100):  # django-q2's task timeout, as in the worker
        record = mail_ingest(mf.slow_mail(), source="imap:test")
        left, _interval = signal.getitimer(signal.ITIMER_REAL)

    assert record.reason == "MailReadTimeout: reading the mail took longer than 0.3 s"
    assert 95 < left <= 100


@pytest.mark.django_db
def test_when_the_workers_timeout_comes_first_it_ends_the_task_and_the_mail_is_not_failed(
    settings,
):
    settings.MAIL_PARSE_SECONDS = 60
    settings.MAIL_MAX_MESSAGE_BYTES = 64 * 1024 * 1024

    # a mail that takes several seconds to read, past the worker's 1 s
    with pytest.raises(TimeoutException), TimeoutHandler(1):
        mail_ingest(mf.slow_mail(lines=20_000), source="imap:test")

    assert not InboundMail.objects.exists()  # read again by the next poll


@pytest.mark.django_db
def test_attachment_names_the_file_system_cannot_take_do_not_lose_the_mail(pipe):
    # 255 bytes is 85 Japanese characters; "★" leaves no character a file
    # name may keep
    long_name = "2026年11月20日_株式会社まどぐち様_御見積書_" * 5 + "最終版.pdf"
    boundary = "b0undary"
    parts = []
    for name, content in ((long_name, b"%PDF-1.4 long"), ("★", b"star")):
        parts += [
            f"--{boundary}".encode(),
            b"Content-Type: application/octet-stream",
            b"Content-Disposition: attachment;",
            b" filename*=UTF-8''" + quote(name).encode(),
            b"",
            content,
        ]
    raw = mf.raw_mail(
        [
            ("From", "Yamada <yamada@example.jp>"),
            ("Subject", mf.encoded_words("見積書の件")),
            ("Message-ID", "<names.1@example.jp>"),
            ("MIME-Version", "1.0"),
            ("Content-Type", f"multipart/mixed; boundary={boundary}"),
        ],
        b"\r\n".join(
            [
                f"--{boundary}".encode(),
                b"Content-Type: text/plain; charset=UTF-8",
                b"",
                "見積書を送ります。".encode(),
                *parts,
                f"--{boundary}--".encode(),
            ]
        ),
    )
    assert len(long_name.encode()) > 255

    assert pipe(raw) == "processed: 見積書の件"

    long, star = InquiryMessage.objects.get().attachments.order_by("id")
    assert long_name.startswith(long.filename.removesuffix(".pdf"))
    assert long.filename.endswith(".pdf") and len(long.filename.encode()) <= 200
    assert Path(long.file.path).read_bytes() == b"%PDF-1.4 long"
    assert star.filename == "attachment-2"
    assert Path(star.file.path).read_bytes() == b"star"


# --------------------------------------------------------------------------
# Threading


def conversation(pipe, *, sender: str, subject: str = "ご注文の件") -> tuple[Inquiry, str]:
    """A customer's first mail: the inquiry it opened and its Message-ID."""
    first_id = make_msgid(domain=sender.partition("@")[2])
    pipe(customer_mail(subject=subject, sender=sender, message_id=first_id))
    inquiry = Inquiry.objects.get(customer__email=sender)
    return inquiry, first_id


def agent_reply(inquiry: Inquiry, colleague) -> str:
    """An agent's reply by email: its Message-ID, as sent."""
    reply = inquiry_reply(inquiry=inquiry, body="交換のサイズをお知らせください。", actor=colleague)
    assert reply.message_id.startswith("<madoguchi.")
    return reply.message_id


@pytest.mark.django_db
def test_a_gmail_reply_joins_its_inquiry_by_in_reply_to_and_hides_the_quoted_history(
    pipe, colleague
):
    inquiry, first_id = conversation(pipe, sender="taro.yamada@gmail.com")
    our_id = agent_reply(inquiry, colleague)
    # Gmail's real reply, answering our reply's Message-ID
    raw = (
        fixture("gmail_reply_alternative.eml")
        .replace(b"<madoguchi.9f2c.117@shop.example.jp>", our_id.encode())
        .replace(b"<madoguchi.9f2c.101@shop.example.jp>", first_id.encode())
    )

    pipe(raw)

    assert Inquiry.objects.count() == 1
    reply = inquiry.messages.get(message_id="<CAHk7x9QzPq2VbN=Lw3o8yT+5sRj0@mail.gmail.com>")
    assert reply.in_reply_to == our_id
    assert reply.references.split() == [first_id, our_id]
    assert "> 交換のサイズをお知らせください。" in reply.body_text
    assert reply.visible_text == (
        "お世話になっております。\nご回答ありがとうございます。Mサイズで交換をお願いします。\n\n山田"
    )
    assert not any(line.startswith(">") for line in reply.visible_text.splitlines())
    inquiry.refresh_from_db()
    assert inquiry.status == InquiryStatus.OPEN  # was waiting on the customer


@pytest.mark.django_db
def test_an_outlook_reply_joins_by_in_reply_to_without_the_sashidashinin_block(pipe, colleague):
    inquiry, _first_id = conversation(pipe, sender="sato@example.co.jp", subject="返品について")
    our_id = agent_reply(inquiry, colleague)
    raw = fixture("outlook_reply_ja.eml").replace(
        b"<madoguchi.9f2c.130@shop.example.jp>", our_id.encode()
    )

    pipe(raw)

    reply = inquiry.messages.get(message_id__startswith="<TYCPR01MB84221C7D5A1F2E9B0C3A4D5E6F7A8")
    assert Inquiry.objects.count() == 1
    assert "差出人: Madoguchi サポート" in reply.body_text
    assert reply.visible_text.endswith("よろしくお願いいたします。\n\n佐藤")
    assert "差出人" not in reply.visible_text


@pytest.mark.django_db
def test_the_reference_in_the_subject_threads_mail_from_the_same_customer_only(pipe):
    inquiry, _first_id = conversation(pipe, sender="kimura@example.jp")
    # A reply written from scratch, with the reference typed full-width
    wide = inquiry.reference.translate({ord(c): ord(c) + 0xFEE0 for c in "Q-0123456789"})

    pipe(customer_mail("追加の質問です。", subject=f"Re: [{inquiry.reference}] ご注文の件"))
    pipe(customer_mail("もう一点あります。", subject=f"【{wide}】ご注文の件"))
    # A stranger quoting the same reference
    pipe(
        customer_mail(
            "関係ない人です。", subject=f"Re: [{inquiry.reference}]", sender="x@evil.example"
        )
    )

    assert [m.visible_text for m in inquiry.messages.all()] == [
        "注文した商品がまだ届きません。",
        "追加の質問です。",
        "もう一点あります。",
    ]
    stranger = Inquiry.objects.exclude(pk=inquiry.pk).get()
    assert stranger.customer.email == "x@evil.example"
    assert stranger.messages.get().body_text == "関係ない人です。"


@pytest.mark.django_db
def test_a_reply_to_a_closed_inquiry_reopens_it(pipe, owner):
    inquiry, first_id = conversation(pipe, sender="kimura@example.jp")
    inquiry_status_set(inquiry=inquiry, status=InquiryStatus.CLOSED, actor=owner)

    pipe(
        customer_mail(
            "まだ解決していません。", subject="Re: ご注文の件", headers=[("In-Reply-To", first_id)]
        )
    )

    inquiry.refresh_from_db()
    assert inquiry.status == InquiryStatus.OPEN
    assert (inquiry.closed_at, inquiry.resolved_at) == (None, None)
    assert inquiry.messages.count() == 2
    assert InquiryEvent.objects.filter(inquiry=inquiry, kind="reopened").exists()
    assert Inquiry.objects.count() == 1


@pytest.mark.django_db
def test_a_reply_long_after_closing_opens_a_linked_inquiry_with_its_own_acknowledgement(
    pipe, owner, settings, acknowledgement
):
    inquiry, first_id = conversation(pipe, sender="kimura@example.jp")
    inquiry_status_set(inquiry=inquiry, status=InquiryStatus.CLOSED, actor=owner)
    closed = timezone.now() - timedelta(days=settings.INQUIRY_REOPEN_DAYS, hours=1)
    Inquiry.objects.filter(pk=inquiry.pk).update(closed_at=closed, resolved_at=closed)

    pipe(
        customer_mail(
            "また同じ問題です。", subject="Re: ご注文の件", headers=[("In-Reply-To", first_id)]
        )
    )

    inquiry.refresh_from_db()
    assert inquiry.status == InquiryStatus.CLOSED
    follow_up = Inquiry.objects.get(reopened_from=inquiry)
    assert follow_up.status == InquiryStatus.NEW
    assert follow_up.messages.filter(kind="inbound").get().body_text == "また同じ問題です。"
    # the new inquiry is acknowledged under its own reference
    [ack] = ours(follow_up)
    assert ack.is_automatic and follow_up.reference in ack.body_text
    assert Delivery.objects.count() == 2


# --------------------------------------------------------------------------
# Mail that must not become an inquiry, or be answered


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("autoreply_fuzai.eml", "auto-submitted"),
        ("bounce_postfix.eml", "bounce"),
        ("own_delivery.eml", "own-delivery"),
    ],
)
def test_automatic_mail_is_ignored_with_its_reason_and_never_answered(
    pipe, acknowledgement, name, reason
):
    output = pipe(fixture(name))

    record = InboundMail.objects.get()
    assert (record.status, record.reason, record.inquiry_message) == ("ignored", reason, None)
    assert output.startswith("ignored: ") and output.endswith(reason)
    assert not Inquiry.objects.exists()
    assert not Delivery.objects.exists()
    assert not Send.objects.exists()


@pytest.mark.django_db
def test_an_out_of_office_answer_to_our_acknowledgement_starts_no_mail_loop(pipe, acknowledgement):
    inquiry, _first_id = conversation(pipe, sender="suzuki@example.co.jp")
    [ack] = ours(inquiry)
    # The customer's out-of-office answers our acknowledgement
    raw = fixture("autoreply_fuzai.eml").replace(
        b"<madoguchi.9f2c.140@shop.example.jp>", ack.message_id.encode()
    )

    pipe(raw)
    pipe(raw)

    assert InboundMail.objects.filter(status="ignored").count() == 1
    assert inquiry.messages.count() == 2  # the customer's mail and our acknowledgement
    assert Delivery.objects.count() == 1


@pytest.mark.django_db
def test_our_acknowledgement_is_marked_automatic_and_ignored_when_it_comes_back_stripped(
    pipe, acknowledgement, smtp
):
    # Given a customer's mail, acknowledged by mail through the real SMTP server
    pipe(customer_mail(sender="suzuki@example.co.jp"))
    [ack] = ours(Inquiry.objects.get())
    send_dispatch(send_id=ack.delivery.send_id)
    [received] = smtp.received
    assert received.message["Auto-Submitted"] == "auto-replied"
    assert received.message["Message-ID"] == ack.message_id

    # When a forwarder hands it back to us with our headers stripped and its
    # own sender (SRS), so that only our Message-ID is left to know it by
    back = received.message
    for name in ("X-Madoguchi-Delivery", "Auto-Submitted", "From", "Return-Path"):
        del back[name]
    back["From"] = "forwarder@relay.example.net"
    output = pipe(back.as_bytes())

    # Then it is recorded as ours, and nothing is opened or answered
    assert output.endswith("own-delivery")
    assert InboundMail.objects.get(message_id=ack.message_id).status == "ignored"
    assert Inquiry.objects.count() == 1
    assert Delivery.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sender", ["support@shop.example.jp", "Support@Shop.Example.JP", "info@shop.example.jp"]
)
def test_mail_from_our_own_address_opens_no_inquiry_and_gets_no_acknowledgement(
    pipe, acknowledgement, settings, sender
):
    settings.DEFAULT_FROM_EMAIL = "サポート <support@shop.example.jp>"
    settings.MAIL_OWN_ADDRESSES = ["info@shop.example.jp"]

    output = pipe(customer_mail(sender=sender, message_id="<relay.1@relay.example.net>"))

    assert output.endswith("own-address")
    assert InboundMail.objects.get().status == "ignored"
    assert not Inquiry.objects.exists()
    assert not Delivery.objects.exists()


@pytest.mark.django_db
def test_a_message_id_in_our_form_with_a_wrong_tag_is_not_taken_for_ours(pipe, acknowledgement):
    forged = "<madoguchi.1.2.0123456789abcdef@shop.example.jp>"

    output = pipe(customer_mail(message_id=forged))

    assert output == "processed: 配送について"
    assert Delivery.objects.count() == 1


@pytest.mark.django_db
def test_no_acknowledgement_goes_to_our_own_address(acknowledgement, settings):
    settings.MAIL_OWN_ADDRESSES = ["info@shop.example.jp"]
    customer = crm_factories.customer(channel="own_site", email="INFO@shop.example.jp")
    inquiry = factories.inquiry(customer=customer)

    assert inquiry_auto_acknowledge(inquiry=inquiry) is None
    assert not Delivery.objects.exists()


@pytest.mark.django_db
def test_acknowledgements_to_one_address_are_limited_in_the_window(pipe, acknowledgement, settings):
    settings.ACKNOWLEDGEMENT_MAX_PER_ADDRESS = 2
    # A mailer that ignores Auto-Submitted answers each acknowledgement with
    # a new mail (no In-Reply-To): each opens an inquiry
    for number in range(4):
        pipe(customer_mail(subject=f"自動転送 {number}", sender="loop@example.jp"))
    pipe(customer_mail(sender="other@example.jp"))

    assert Inquiry.objects.count() == 5
    acknowledged = InquiryMessage.objects.filter(is_automatic=True)
    assert acknowledged.filter(inquiry__customer__email="loop@example.jp").count() == 2
    assert acknowledged.filter(inquiry__customer__email="other@example.jp").count() == 1

    # An hour later the address is acknowledged again
    InquiryMessage.objects.filter(is_automatic=True).update(
        created_at=timezone.now() - timedelta(minutes=61)
    )
    pipe(customer_mail(subject="自動転送 5", sender="loop@example.jp"))
    assert acknowledged.filter(inquiry__customer__email="loop@example.jp").count() == 3


# --------------------------------------------------------------------------
# Once, and nothing lost


@pytest.mark.django_db
def test_the_same_message_ingested_twice_is_one_record_and_one_message(pipe, acknowledgement):
    raw = fixture("iso2022jp_becky.eml")

    first = pipe(raw)
    second = pipe(raw)

    assert first == second == "processed: 商品の配送状況について（注文番号 12345）"
    assert InboundMail.objects.count() == 1
    assert InquiryMessage.objects.filter(kind="inbound").count() == 1
    assert Delivery.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("sender", ["taro..yamada.@docomo.ne.jp", ".hanako@ezweb.ne.jp"])
def test_a_mail_from_an_old_japanese_carrier_address_is_answered_at_that_address(
    pipe, colleague, smtp, sender
):
    # docomo and au issued addresses with misplaced dots before 2009
    output = pipe(customer_mail(sender=sender))

    assert output == "processed: 配送について"
    inquiry = Inquiry.objects.get()
    assert (inquiry.customer.email, inquiry.customer.email_normalized) == (sender, sender)
    reply = inquiry_reply(inquiry=inquiry, body="確認いたします。", actor=colleague)
    report = send_dispatch(send_id=reply.delivery.send_id)

    assert report.sent == 1
    [received] = smtp.received
    assert received.rcpt_tos == [sender]
    assert received.message["To"] == sender


@pytest.mark.django_db
def test_a_mail_without_a_sender_is_kept_as_failed_with_its_bytes(pipe):
    raw = mf.raw_mail(
        [
            ("To", "support@shop.example.jp"),
            ("Subject", mf.encoded_words("差出人なし", "ISO-2022-JP")),
            ("Message-ID", "<nofrom.1@form.example.jp>"),
        ],
        mf.encode("差出人のないフォームから届きました。", "ISO-2022-JP"),
    )

    output = pipe(raw)

    record = InboundMail.objects.get()
    assert (record.status, record.reason) == ("failed", "no usable From address")
    assert bytes(record.raw) == raw
    assert record.subject == "差出人なし"
    assert output == "failed: 差出人なし no usable From address"
    assert not Inquiry.objects.exists()


@pytest.mark.django_db
def test_input_that_is_no_mail_at_all_is_kept_as_failed_with_its_bytes(pipe):
    raw = "これはメールではありません\r\n".encode("cp932")

    output = pipe(raw)

    record = InboundMail.objects.get()
    assert record.status == "failed"
    assert "no header field" in record.reason
    assert bytes(record.raw) == raw
    assert output.startswith("failed:")
    pipe(raw)
    assert InboundMail.objects.count() == 1  # the same bytes, recorded once


@pytest.mark.django_db
def test_empty_input_asks_the_mail_server_to_retry(pipe):
    with pytest.raises(SystemExit) as exit_:
        pipe(b"\r\n")
    assert exit_.value.code == EX_TEMPFAIL
    assert not InboundMail.objects.exists()


# --------------------------------------------------------------------------
# Channels, acknowledgement, deadline


@pytest.mark.django_db
def test_mail_through_the_amazon_relay_is_an_amazon_inquiry_from_an_amazon_buyer(pipe):
    pipe(fixture("amazon_relay.eml"))

    inquiry = Inquiry.objects.get()
    assert inquiry.channel == "amazon"
    assert inquiry.subject == "商品のお問い合わせ (注文: 249-1234567-7654321)"
    customer = inquiry.customer
    assert (customer.family_name, customer.given_name) == ("山田", "太郎")
    assert customer.email == "k8x7m2p9q4r1t5v@marketplace.amazon.co.jp"
    # known on Amazon by the masked address, so Amazon's rules apply (SPEC rule 9)
    assert list(ChannelIdentity.objects.values_list("channel", "external_id")) == [
        ("amazon", "k8x7m2p9q4r1t5v@marketplace.amazon.co.jp")
    ]


@pytest.mark.django_db
def test_a_relay_reply_with_the_reference_joins_the_amazon_inquiry(pipe):
    pipe(fixture("amazon_relay.eml"))
    inquiry = Inquiry.objects.get()

    pipe(
        customer_mail(
            "Lサイズでお願いします。",
            subject=f"Re: [{inquiry.reference}] 商品のお問い合わせ",
            sender="k8x7m2p9q4r1t5v@marketplace.amazon.co.jp",
            charset="UTF-8",
        )
    )

    assert Inquiry.objects.count() == 1
    assert inquiry.messages.filter(body_text="Lサイズでお願いします。").exists()


@pytest.mark.django_db
def test_an_acknowledgement_goes_out_once_for_a_new_inquiry_and_not_for_a_follow_up(
    pipe, acknowledgement
):
    first_id = "<first.2026@example.jp>"
    pipe(customer_mail(message_id=first_id))
    inquiry = Inquiry.objects.get()

    [ack] = ours(inquiry)
    assert ack.is_automatic and ack.author is None
    assert ack.body_text == f"木村 優子 様\nお問い合わせ（{inquiry.reference}）を受け付けました。"
    send = Send.objects.get()
    assert send.content["headers"]["In-Reply-To"] == first_id
    assert inquiry.reference in send.content["subject"]
    assert Delivery.objects.get().customer == inquiry.customer
    # an acknowledgement is no reply by a person: the clock keeps running
    inquiry.refresh_from_db()
    assert (inquiry.first_replied_at, inquiry.status) == (None, InquiryStatus.NEW)

    # The customer answers the acknowledgement
    pipe(
        customer_mail(
            "追記です。", subject="Re: 配送について", headers=[("In-Reply-To", ack.message_id)]
        )
    )

    assert inquiry.messages.filter(kind="inbound").count() == 2
    assert Delivery.objects.count() == 1


@pytest.mark.django_db
def test_a_mobile_mail_written_in_its_subject_alone_becomes_an_inquiry(pipe):
    subject = "至急、電話ください 090-1234-5678"

    output = pipe(customer_mail("", subject=subject, sender="taro.y@docomo.ne.jp"))

    assert output == f"processed: {subject}"
    message = Inquiry.objects.get().messages.get()
    assert (message.subject, message.body_text, message.visible_text) == (subject,) * 3


@pytest.mark.django_db
def test_a_broken_acknowledgement_does_not_lose_the_inquiry(pipe):
    AutoAcknowledgement.objects.create(channel="email", body="{% if %}壊れたテンプレート")

    output = pipe(customer_mail())

    assert output == "processed: 配送について"
    assert Inquiry.objects.get().messages.get().kind == "inbound"
    assert not Delivery.objects.exists()


@pytest.mark.django_db
def test_the_first_reply_deadline_counts_from_a_plausible_date_header(pipe):
    written = (timezone.now() - timedelta(hours=3)).replace(microsecond=0)

    pipe(customer_mail(date=written))

    inquiry = Inquiry.objects.get()
    assert inquiry.created_at == written
    assert inquiry.messages.get().created_at == written
    assert inquiry.last_inbound_at == written
    assert inquiry.first_reply_due_at == written + timedelta(hours=24)
    assert inquiry.at_risk_at == written + timedelta(hours=20)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "date",
    [
        pytest.param(timedelta(days=2), id="in-the-future"),
        pytest.param(datetime(1970, 1, 1, tzinfo=UTC), id="epoch"),
        pytest.param(timedelta(days=-400), id="a-year-ago"),
    ],
)
def test_an_implausible_date_header_is_not_trusted(pipe, date):
    now = timezone.now()
    written = now + date if isinstance(date, timedelta) else date

    pipe(customer_mail(date=written))

    inquiry = Inquiry.objects.get()
    after = timezone.now()
    assert now <= inquiry.created_at <= after
    assert now <= inquiry.messages.get().created_at <= after
    assert now + timedelta(hours=24) <= inquiry.first_reply_due_at <= after + timedelta(hours=24)
    assert inquiry.reference.startswith(timezone.localtime(inquiry.created_at).strftime("Q-%y%m-"))


@pytest.mark.django_db
def test_a_mail_without_a_date_counts_from_its_arrival(pipe):
    raw = b"\r\n".join(
        line for line in customer_mail().split(b"\r\n") if not line.startswith(b"Date:")
    )
    before = timezone.now()

    pipe(raw)

    assert before <= Inquiry.objects.get().created_at <= timezone.now()


# --------------------------------------------------------------------------
# The real pipe: a mail server runs `manage.py ingest_email < message`


def manage_ingest(raw: bytes, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "ingest_email"],
        cwd=ROOT,
        input=raw,
        capture_output=True,
        timeout=60,
        env={
            **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
            "DATABASE_URL": database_url(connection.settings_dict),
            **env,
        },
    )


@pytest.fixture
def postgres():
    if connection.vendor != "postgresql":
        pytest.skip("the subprocess shares the test database on PostgreSQL only")


@pytest.mark.django_db(transaction=True)
def test_a_mail_piped_into_the_command_is_stored_and_exits_zero_even_on_a_legacy_terminal(
    postgres, tmp_path
):
    # An old server's EUC-JP locale has no ① or ㈱: the summary line must not
    # crash the command after the mail is stored, or the mail server would
    # bounce a mail we have
    raw = fixture("iso2022jp_cp932_outlook_express.eml")

    done = manage_ingest(raw, MADOGUCHI_VAR_DIR=str(tmp_path), PYTHONIOENCODING="euc_jp")

    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode("euc_jp").startswith("processed: ")
    inquiry = Inquiry.objects.get()
    assert inquiry.subject == "①と②の商品について（㈱髙橋商店）"
    assert "②：№12 を ｶﾀﾛｸﾞ の通り 10 個" in inquiry.messages.get().body_text
    assert InboundMail.objects.get().source == "pipe"


@pytest.mark.django_db(transaction=True)
def test_a_database_failure_exits_75_so_the_mail_server_retries(postgres, pipe, tmp_path):
    raw = customer_mail("障害中の問い合わせです。", subject="至急")
    settings = connection.settings_dict
    blocker = psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"],
        user=settings["USER"],
        password=settings["PASSWORD"],
        dbname=settings["NAME"],
    )
    try:
        # Inquiry numbering is locked longer than the command waits
        blocker.execute("LOCK TABLE tickets_referencecounter IN EXCLUSIVE MODE")
        failed = manage_ingest(
            raw, MADOGUCHI_VAR_DIR=str(tmp_path), PGOPTIONS="-c lock_timeout=300"
        )
    finally:
        blocker.rollback()
        blocker.close()

    assert failed.returncode == EX_TEMPFAIL, failed.stderr.decode()
    assert "Could not store the message: OperationalError" in failed.stderr.decode()
    assert not InboundMail.objects.exists()  # not "failed": it was never stored
    assert not Inquiry.objects.exists()

    # The mail server delivers it again later
    assert pipe(raw) == "processed: 至急"
    assert Inquiry.objects.get().messages.get().body_text == "障害中の問い合わせです。"


@pytest.mark.django_db(transaction=True)
def test_the_same_mail_arriving_twice_at_once_makes_one_inquiry(postgres, acknowledgement):
    # Postfix's pipe and the IMAP poller (or two pollers) see the same mail
    from tickets.services.inbound import mail_ingest

    raw = customer_mail("同時に届きました。", subject="同時")
    assert at_once(lambda: mail_ingest(raw, source="race"), 4) == []
    assert InboundMail.objects.count() == 1
    assert Inquiry.objects.count() == 1
    assert InquiryMessage.objects.filter(kind="inbound").count() == 1
    assert Delivery.objects.count() == 1
