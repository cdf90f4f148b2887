"""The IMAP poller against a real Dovecot server (tests/imap_server.py):
mail is APPENDed the way a delivery agent leaves it, then tickets.imap
fetches it by UID and hands each message to the ingester."""

from __future__ import annotations

import imaplib
import itertools
import os
import subprocess
import sys
import time
from email.utils import format_datetime, make_msgid
from pathlib import Path

import psycopg
import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from tests.imap_server import DOVECOT_MISSING, ImapServer, dovecot_binary
from tests.tickets import mailfactory as mf
from tests.worker import ROOT, database_url
from tickets.imap import ImapAccount, PollReport, imap_poll
from tickets.models import InboundMail, Inquiry, MailboxState
from tickets.tasks import imap_poll_task

MAIL = Path(__file__).parent / "mail"
_mailboxes = itertools.count(1)


def fixture(name: str) -> bytes:
    return (MAIL / name).read_bytes()


def customer_mail(subject: str, body: str, *, sender: str = "kyaku@example.jp") -> bytes:
    """A fresh UTF-8 mail from a customer, dated now."""
    content, encoded = mf.text_body(body, "UTF-8", "base64")
    return mf.raw_mail(
        [
            ("From", f"{mf.encoded_words('木村 優子')} <{sender}>"),
            ("To", "support@shop.example.jp"),
            ("Subject", mf.encoded_words(subject)),
            ("Date", format_datetime(timezone.now())),
            ("Message-ID", make_msgid(domain="example.jp")),
            ("MIME-Version", "1.0"),
            *content,
        ],
        encoded,
    )


# No From address at all: a broken form mailer.
NO_SENDER = mf.raw_mail(
    [
        ("To", "support@shop.example.jp"),
        ("Subject", "=?UTF-8?B?5ZWP44GE5ZCI44KP44Gb?="),
        ("Date", "Fri, 20 Nov 2026 12:00:00 +0900"),
        ("Message-ID", "<no-sender.7@form.example.jp>"),
    ],
    "差出人のないメールです。",
)
# Not a mail message at all (no header field); Dovecot stores it anyway.
NOT_A_MAIL = b"\xe3\x81\x82\xe3\x81\x84\xe3\x81\x86 this is not a mail message\r\n"


@pytest.fixture(scope="module")
def imap_server():
    if dovecot_binary() is None:
        pytest.skip(DOVECOT_MISSING)
    with ImapServer() as server:
        yield server


@pytest.fixture
def mailbox(imap_server) -> str:
    """A mailbox of its own for each test (the database starts empty, the
    server does not)."""
    name = f"Support{next(_mailboxes)}"
    imap_server.mailbox_create(name)
    return name


def account_for(server: ImapServer, mailbox: str) -> ImapAccount:
    return ImapAccount(
        host=server.host,
        port=server.port,
        user=server.user,
        password=server.password,
        mailbox=mailbox,
        ssl=False,
    )


@pytest.fixture
def account(imap_server, mailbox) -> ImapAccount:
    return account_for(imap_server, mailbox)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.mark.django_db
def test_poll_turns_japanese_mail_into_inquiries_and_records_every_outcome(
    imap_server, mailbox, account
):
    # Given a mailbox with mail in ISO-2022-JP and Shift_JIS (CP932), an
    # out-of-office reply, a mail without sender and bytes that are no mail
    uids = [
        imap_server.append(fixture(name), mailbox=mailbox)
        for name in (
            "iso2022jp_becky.eml",
            "autoreply_fuzai.eml",
            "shiftjis_base64_cp932.eml",
        )
    ]
    uids.append(imap_server.append(NO_SENDER, mailbox=mailbox))
    uids.append(imap_server.append(NOT_A_MAIL, mailbox=mailbox))

    # When the poller runs
    report = imap_poll(account)

    # Then each message has its record, and only customer mail became inquiries
    assert report == PollReport(fetched=5, processed=2, ignored=1, failed=2)
    source = f"imap:{account.name}"
    assert set(InboundMail.objects.values_list("source", flat=True)) == {source}
    by_id = {mail.message_id: mail for mail in InboundMail.objects.all()}
    becky = by_id["<20261120101530.8F3C.HANAKO@example.ne.jp>"]
    assert becky.status == "processed"
    assert becky.inquiry_message.inquiry.subject == "商品の配送状況について（注文番号 12345）"
    assert "11月15日に注文した商品（注文番号 12345）がまだ届いておりません。" in (
        becky.inquiry_message.body_text
    )
    sjis = by_id["<20261121081245.7A9C.MISAKI@example.co.jp>"]
    assert sjis.inquiry_message.inquiry.subject == "商品の交換について①"
    assert "㈱ミナミの髙田です。" in sjis.inquiry_message.body_text
    assert sjis.inquiry_message.inquiry.customer.family_name == "髙田"
    auto = by_id["<auto.20261120101601.3321@example.co.jp>"]
    assert (auto.status, auto.reason, auto.inquiry_message) == ("ignored", "auto-submitted", None)
    no_sender = by_id["<no-sender.7@form.example.jp>"]
    assert (no_sender.status, no_sender.reason) == ("failed", "no usable From address")
    assert bytes(no_sender.raw).replace(b"\r\n", b"\n") == NO_SENDER.replace(b"\r\n", b"\n")
    not_a_mail = by_id[""]
    assert not_a_mail.status == "failed"
    assert "no header field" in not_a_mail.reason
    assert bytes(not_a_mail.raw).rstrip() == NOT_A_MAIL.rstrip()
    assert Inquiry.objects.count() == 2

    # The mailbox position is saved; the mail is left unread for people
    state = MailboxState.objects.get(name=account.name)
    assert state.last_uid == uids[-1]
    assert state.uid_validity == imap_server.uid_validity(mailbox)
    assert state.polled_at is not None
    assert all("\\Seen" not in flags for flags in imap_server.flags(mailbox).values())


@pytest.mark.django_db
def test_a_broken_message_in_the_middle_does_not_stop_the_ones_after_it(
    imap_server, mailbox, account
):
    imap_server.append(customer_mail("一通目", "最初の問い合わせです。"), mailbox=mailbox)
    imap_server.append(NOT_A_MAIL, mailbox=mailbox)
    imap_server.append(NO_SENDER, mailbox=mailbox)
    imap_server.append(fixture("shiftjis_qp_webform.eml"), mailbox=mailbox)
    imap_server.append(fixture("amazon_relay.eml"), mailbox=mailbox)

    report = imap_poll(account)

    assert (report.fetched, report.processed, report.failed) == (5, 3, 2)
    assert sorted(Inquiry.objects.values_list("subject", "channel")) == sorted(
        [
            ("一通目", "email"),
            ("【お問い合わせ】商品について", "email"),
            ("商品のお問い合わせ (注文: 249-1234567-7654321)", "amazon"),
        ]
    )


@pytest.mark.django_db
def test_a_second_poll_fetches_nothing_new(imap_server, mailbox, account):
    imap_server.append(fixture("iso2022jp_becky.eml"), mailbox=mailbox)
    imap_server.append(fixture("shiftjis_qp_webform.eml"), mailbox=mailbox)
    first = imap_poll(account)

    second = imap_poll(account)

    assert first.fetched == 2
    assert second == PollReport()
    assert InboundMail.objects.count() == 2
    assert Inquiry.objects.count() == 2


@pytest.mark.django_db
def test_polling_survives_a_restart_and_fetches_only_the_new_mail(imap_server, mailbox):
    imap_server.append(customer_mail("再起動前", "一通目です。"), mailbox=mailbox)
    imap_poll(account_for(imap_server, mailbox))

    # The worker restarts: a new account object, the position read afresh
    new_uids = [
        imap_server.append(customer_mail("再起動後", "二通目です。"), mailbox=mailbox),
        imap_server.append(fixture("iso2022jp_cp932_outlook_express.eml"), mailbox=mailbox),
    ]
    assert MailboxState.objects.get().last_uid == new_uids[0] - 1
    report = imap_poll(account_for(imap_server, mailbox))

    assert report == PollReport(fetched=2, processed=2)
    assert sorted(Inquiry.objects.values_list("subject", flat=True)) == sorted(
        ["再起動前", "再起動後", "①と②の商品について（㈱髙橋商店）"]
    )
    assert MailboxState.objects.get().last_uid == new_uids[-1]


@pytest.mark.django_db
def test_a_poll_with_a_limit_leaves_the_rest_for_the_next_poll(imap_server, mailbox, account):
    for number in range(3):
        imap_server.append(customer_mail(f"問い合わせ{number}", "本文です。"), mailbox=mailbox)

    assert imap_poll(account, limit=2).fetched == 2
    assert imap_poll(account, limit=2).fetched == 1
    assert Inquiry.objects.count() == 3


@pytest.mark.django_db
def test_a_new_uidvalidity_reads_the_mailbox_again_without_duplicates(
    imap_server, mailbox, account
):
    old = [customer_mail("在庫について", "在庫はありますか？"), fixture("iso2022jp_becky.eml")]
    for raw in old:
        imap_server.append(raw, mailbox=mailbox)
    imap_poll(account)
    before = MailboxState.objects.get().uid_validity

    # The mailbox is rebuilt (restored from a backup, migrated...): same
    # mail under new UIDs, plus one that is really new
    imap_server.mailbox_recreate(mailbox)
    for raw in [*old, customer_mail("新しい問い合わせ", "初めて連絡します。")]:
        imap_server.append(raw, mailbox=mailbox)
    report = imap_poll(account)

    state = MailboxState.objects.get()
    assert state.uid_validity != before
    assert state.uid_validity == imap_server.uid_validity(mailbox)
    assert state.last_uid == 3
    assert report.fetched == 3  # read from the start again...
    assert InboundMail.objects.count() == 3  # ...but each mail is recorded once
    assert Inquiry.objects.count() == 3
    assert sum(inquiry.messages.count() for inquiry in Inquiry.objects.all()) == 3


@pytest.mark.django_db
def test_a_mailbox_with_a_japanese_name_is_polled(imap_server):
    # 問い合わせ in IMAP's modified UTF-7 (RFC 3501 5.1.3), as a mail client
    # creates it; Dovecot lists it as 問い合わせ
    imap_server.mailbox_create("&VU8wRFQIMI8wWw-")
    imap_server.append(fixture("shiftjis_qp_webform.eml"), mailbox="&VU8wRFQIMI8wWw-")

    report = imap_poll(account_for(imap_server, "問い合わせ"))

    assert report == PollReport(fetched=1, processed=1)
    assert Inquiry.objects.get().subject == "【お問い合わせ】商品について"
    assert MailboxState.objects.get().name.endswith("/問い合わせ")


@pytest.mark.django_db(transaction=True)
def test_a_database_outage_stops_the_poll_at_that_message_and_the_next_poll_retries_it(
    imap_server, mailbox, account
):
    imap_server.append(customer_mail("障害中に届いた", "届いていますか？"), mailbox=mailbox)
    # Another session holds the inquiry numbering lock longer than we wait
    settings = connection.settings_dict
    blocker = psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"],
        user=settings["USER"],
        password=settings["PASSWORD"],
        dbname=settings["NAME"],
    )
    try:
        blocker.execute("LOCK TABLE tickets_referencecounter IN EXCLUSIVE MODE")
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '300ms'")
        with pytest.raises(OperationalError):
            imap_poll(account)
        # nothing recorded as failed, nothing half-written, position kept,
        # and the outage is not counted against the message
        assert not InboundMail.objects.exists()
        assert not Inquiry.objects.exists()
        assert (MailboxState.objects.get().last_uid, MailboxState.objects.get().attempts) == (0, 0)
    finally:
        blocker.rollback()
        blocker.close()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")

    report = imap_poll(account)

    assert report == PollReport(fetched=1, processed=1)
    assert Inquiry.objects.get().subject == "障害中に届いた"


@pytest.mark.django_db
def test_the_worker_task_polls_the_mailbox_named_in_settings(imap_server, mailbox, settings):
    settings.IMAP_HOST = imap_server.host
    settings.IMAP_PORT = imap_server.port
    settings.IMAP_USER = imap_server.user
    settings.IMAP_PASSWORD = imap_server.password
    settings.IMAP_MAILBOX = mailbox
    settings.IMAP_SSL = False
    imap_server.append(fixture("iso2022jp_becky.eml"), mailbox=mailbox)
    imap_server.append(fixture("bounce_postfix.eml"), mailbox=mailbox)

    assert imap_poll_task() == {"fetched": 2, "processed": 1, "ignored": 1, "failed": 0}
    assert imap_poll_task() == {"fetched": 0, "processed": 0, "ignored": 0, "failed": 0}
    assert InboundMail.objects.get(status="ignored").reason == "bounce"
    assert Inquiry.objects.get().subject == "商品の配送状況について（注文番号 12345）"


@pytest.mark.django_db
def test_the_worker_task_does_nothing_without_an_imap_host(settings):
    settings.IMAP_HOST = ""
    assert imap_poll_task() is None
    assert not MailboxState.objects.exists()


@pytest.mark.django_db
def test_a_wrong_password_is_an_error_and_moves_nothing(imap_server, mailbox):
    account = ImapAccount(
        host=imap_server.host,
        port=imap_server.port,
        user=imap_server.user,
        password="wrong",
        mailbox=mailbox,
        ssl=False,
    )
    imap_server.append(customer_mail("届かない", "本文"), mailbox=mailbox)

    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        imap_poll(account)
    assert not InboundMail.objects.exists()


def mail_with_attachment(size: int) -> bytes:
    """A customer's mail with a PDF of ``size`` bytes."""
    headers = [
        ("From", f"{mf.encoded_words('大野 誠')} <ono@example.jp>"),
        ("To", "support@shop.example.jp"),
        ("Subject", mf.encoded_words("図面を送ります")),
        ("Date", format_datetime(timezone.now())),
        ("Message-ID", "<zumen.1@example.jp>"),
        ("MIME-Version", "1.0"),
    ]
    return mf.mail_with_pdf(headers, b"%PDF-1.4\n" + b"0" * size)


@pytest.mark.django_db
def test_a_mail_over_the_size_limit_is_recorded_by_its_header_and_the_poll_moves_on(
    imap_server, mailbox, account, settings
):
    settings.MAIL_MAX_MESSAGE_BYTES = 100_000
    imap_server.append(mail_with_attachment(200_000), mailbox=mailbox)
    last = imap_server.append(customer_mail("次の問い合わせ", "届いていますか？"), mailbox=mailbox)

    report = imap_poll(account)

    assert report == PollReport(fetched=2, processed=1, failed=1)
    big = InboundMail.objects.get(status="failed")
    assert big.reason.startswith("too large: ")
    assert "over the limit of 100000" in big.reason
    assert (big.message_id, big.from_address, big.subject) == (
        "<zumen.1@example.jp>",
        "ono@example.jp",
        "図面を送ります",
    )
    assert bytes(big.raw).startswith(b"From: ") and len(big.raw) < 1000  # the header only
    assert Inquiry.objects.get().subject == "次の問い合わせ"
    assert MailboxState.objects.get().last_uid == last
    assert imap_poll(account) == PollReport()


@pytest.mark.django_db
def test_a_mail_that_takes_too_long_to_read_is_recorded_and_the_poll_moves_on(
    imap_server, mailbox, account, settings
):
    settings.MAIL_PARSE_SECONDS = 0.3
    slow = mf.slow_mail()
    imap_server.append(slow, mailbox=mailbox)
    last = imap_server.append(customer_mail("次の問い合わせ", "届いていますか？"), mailbox=mailbox)

    report = imap_poll(account)

    assert report == PollReport(fetched=2, processed=1, failed=1)
    record = InboundMail.objects.get(status="failed")
    assert record.reason == "MailReadTimeout: reading the mail took longer than 0.3 s"
    assert bytes(record.raw).replace(b"\r\n", b"\n") == slow.replace(b"\r\n", b"\n")
    assert Inquiry.objects.get().subject == "次の問い合わせ"
    assert MailboxState.objects.get().last_uid == last


def poll_killed_while_reading(account: ImapAccount, uid: int, *, attempt: int) -> None:
    """Run a poll in a process of its own and SIGKILL it while it reads
    message ``uid`` (its ``attempt``-th time), as the worker's guard or the
    OOM killer would."""
    code = (
        "from tickets.imap import ImapAccount, imap_poll; "
        f"imap_poll(ImapAccount(**{account.__dict__!r}))"
    )
    process = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
            "DATABASE_URL": database_url(connection.settings_dict),
            "MAIL_PARSE_SECONDS": "600",
        },
    )
    try:
        deadline = time.monotonic() + 30
        while not MailboxState.objects.filter(attempt_uid=uid, attempts=attempt).exists():
            assert process.poll() is None, "the poll ended before reading the message"
            assert time.monotonic() < deadline, "the poll never reached the message"
            time.sleep(0.02)
    finally:
        process.kill()
        process.wait()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_message_the_poller_dies_on_twice_is_recorded_and_passed_by(
    imap_server, mailbox, account
):
    if connection.vendor != "postgresql":
        pytest.skip("the subprocess shares the test database on PostgreSQL only")
    slow = imap_server.append(mf.slow_mail(), mailbox=mailbox)
    last = imap_server.append(customer_mail("次の問い合わせ", "届いていますか？"), mailbox=mailbox)

    # The poll dies while reading the slow message, twice
    poll_killed_while_reading(account, slow, attempt=1)
    poll_killed_while_reading(account, slow, attempt=2)
    assert not InboundMail.objects.exists()
    assert MailboxState.objects.get().attempts == 2

    # The next poll records it by its header and goes on
    report = imap_poll(account)

    assert report == PollReport(fetched=2, processed=1, failed=1)
    record = InboundMail.objects.get(status="failed")
    assert record.reason == "reading it stopped the poller 2 times; kept as its header only"
    assert (record.message_id, record.from_address) == ("<slow.1@example.jp>", "slow@example.jp")
    assert Inquiry.objects.get().subject == "次の問い合わせ"
    assert MailboxState.objects.get().last_uid == last
    assert imap_poll(account) == PollReport()
