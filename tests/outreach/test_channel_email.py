"""The email adapter's wire format: written directly, it is byte for byte
what Django's own message would send, and what it does not cover still goes
through Django."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.core.mail.message import sanitize_address

from outreach.channels import Result
from outreach.channels.email import (
    EmailAdapter,
    EmailMessage,
    _envelope_recipient,
    message_bytes,
    message_id_for,
    message_id_is_ours,
)

TO = "a@example.jp"
ONE_CLICK = {
    "X-Madoguchi-Delivery": "12",
    "List-Unsubscribe": "<http://127.0.0.1:8000/u/eyJjIjoxMn0:1tAbCd:x-y_z/>",
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    "Precedence": "bulk",
    "Auto-Submitted": "auto-generated",
}
THREAD = {
    "References": " ".join(f"<m{i}.abcdef@mail.example.jp>" for i in range(20)),
    "In-Reply-To": "<m19.abcdef@mail.example.jp>",
}


def django_bytes(message: EmailMessage) -> bytes:
    """What Django's SMTP backend sends for the adapter's message."""
    return EmailAdapter()._build(message).message().as_bytes(linesep="\r\n")


def direct_bytes_like(message: EmailMessage, reference: bytes) -> bytes | None:
    """message_bytes with the Date and boundary Django chose for `reference`."""
    date = re.search(rb"^Date: (.*)\r$", reference, re.MULTILINE).group(1).decode()
    boundary = re.search(rb'boundary="([^"]+)"', reference)
    return message_bytes(message, date=date, boundary=boundary and boundary.group(1).decode())


CASES = {
    "marketing, Japanese subject, text and HTML": EmailMessage(
        key=12,
        to="hanako@example.jp",
        subject="鈴木 花子様、冬のセールのお知らせ",
        text="鈴木様\n\n冬のセールを開催します。\n――――\n配信停止: http://127.0.0.1:8000/u/x/\n",
        html="<p>鈴木様</p><p>冬のセール</p><hr>\n<p>配信停止</p>\n",
        message_id="<madoguchi.3.12.0123456789abcdef@shop.example.jp>",
        headers=ONE_CLICK,
    ),
    "reply with threading headers and Reply-To": EmailMessage(
        key=5,
        to="taro@example.jp",
        subject="Re: 配送について [INQ-2026-000123]",
        text="山田様\r\n\r\nお問い合わせありがとうございます。\r\n",
        message_id="<madoguchi.4.5.0123456789abcdef@shop.example.jp>",
        headers={"X-Madoguchi-Delivery": "5", **THREAD},
        reply_to="support@shop.example.jp",
    ),
    "ASCII text, ASCII subject": EmailMessage(
        key=1, to="a@example.jp", subject="Re: hello", text="ok", message_id="<a.1@x.jp>"
    ),
    "a subject longer than one line, folded": EmailMessage(
        key=1,
        to="a@example.jp",
        subject="年末年始の営業についてのお知らせ、" * 12,
        text="本文",
        message_id="<a.1@x.jp>",
    ),
    "an ASCII subject over 998 characters": EmailMessage(
        key=1, to="a@example.jp", subject="sale " * 250, text="x", message_id="<a.1@x.jp>"
    ),
    "non-ASCII, tab and long extra headers": EmailMessage(
        key=1,
        to="a@example.jp",
        subject="x",
        text="x",
        message_id="<a.1@x.jp>",
        headers={"X-Shop": "まどぐち雑貨店", "X-Tab": "a\tb", "X-Long": "<x>" * 400},
    ),
    "a display-name sender and an international address": EmailMessage(
        key=1,
        to="山田@例え.jp",
        subject="x",
        text="x",
        message_id="<a.1@x.jp>",
        from_email="まどぐち雑貨店 <support@shop.example.jp>",
    ),
    "ASCII display names Django quotes": EmailMessage(
        key=1,
        to="Taro Y. <taro@example.jp>",
        subject="x",
        text="x",
        message_id="<a.1@x.jp>",
        from_email="Shop Inc. <support@shop.example.jp>",
        reply_to="Shop, Support <support@shop.example.jp>",
    ),
    "mixed line ends, dot lines, From lines": EmailMessage(
        key=1,
        to="a@example.jp",
        subject="x",
        text="a\r\nb\rc\n.\n..d\nFrom me\n\n",
        html="<p>\r\n.</p>",
        message_id="<a.1@x.jp>",
    ),
    "an empty body": EmailMessage(
        key=1, to="a@example.jp", subject="x", text="", message_id="<a.1@x.jp>"
    ),
    "lines just under the limit": EmailMessage(
        key=1,
        to="a@example.jp",
        subject="x",
        text="あ" * 332 + "\n" + "a" * 998,
        message_id="<a.1@x.jp>",
    ),
}


@pytest.mark.parametrize("message", CASES.values(), ids=CASES.keys())
def test_written_bytes_are_what_djangos_message_would_send(message):
    reference = django_bytes(message)
    assert direct_bytes_like(message, reference) == reference


@pytest.mark.parametrize(
    "message",
    [
        EmailMessage(key=1, to=TO, subject="x", text="あ" * 333, message_id="<a@x>"),
        EmailMessage(key=1, to=TO, subject="x", text="", html="<p>x</p>", message_id="<a@x>"),
        EmailMessage(key=1, to="", subject="x", text="x", message_id="<a@x>"),
        EmailMessage(key=1, to=TO, subject="x", text="x"),
        EmailMessage(key=1, to=TO, subject="x", text="x", headers={"Date": "Mon, 1 Jan 2026"}),
    ],
    ids=["a line over 998 bytes", "HTML without text", "no address", "no Message-ID", "own Date"],
)
def test_what_the_writer_does_not_cover_is_left_to_django(message):
    assert message_bytes(message) is None


@pytest.mark.django_db
def test_a_long_line_goes_quoted_printable_and_an_idn_domain_in_punycode(smtp):
    long_line = "冬のセール、" * 200  # 3,600 bytes in UTF-8
    messages = [
        EmailMessage(key=1, to=TO, subject="長い行", text=long_line, message_id="<a@x>"),
        EmailMessage(key=2, to="taro@例え.jp", subject="IDN", text="本文", message_id="<b@x>"),
    ]
    with EmailAdapter() as adapter:
        outcomes = list(adapter.send(messages))

    assert [(key, outcome.result) for key, outcome in outcomes] == [
        (1, Result.SENT),
        (2, Result.SENT),
    ]
    first, second = smtp.received
    assert first.message["Content-Transfer-Encoding"] == "quoted-printable"
    assert first.message.get_content().rstrip() == long_line  # SMTP ends the data with CRLF
    assert second.rcpt_tos == ["taro@xn--r8jz45g.jp"]
    assert second.message.get_content().rstrip() == "本文"


@pytest.mark.django_db
def test_a_message_with_a_refused_header_fails_alone_and_the_rest_are_sent(smtp):
    # An inbound Message-ID with a line break, reused in In-Reply-To: the
    # message cannot be written; it fails with the reason, nothing is sent
    # for it, and the messages after it still go.
    messages = [
        EmailMessage(key=1, to=TO, subject="一通目", text="本文", message_id="<a@x>"),
        EmailMessage(
            key=2,
            to=TO,
            subject="二通目",
            text="本文",
            message_id="<b@x>",
            headers={"In-Reply-To": "<broken\n@x>"},
        ),
        EmailMessage(key=3, to=TO, subject="三通目", text="本文", message_id="<c@x>"),
    ]
    with EmailAdapter() as adapter:
        outcomes = dict(adapter.send(messages))

    assert [outcomes[key].result for key in (1, 2, 3)] == [Result.SENT, Result.FAILED, Result.SENT]
    assert "newlines" in outcomes[2].error
    assert [received.message["Subject"] for received in smtp.received] == ["一通目", "三通目"]


@pytest.mark.django_db
def test_another_backend_gets_djangos_message(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    message = CASES["marketing, Japanese subject, text and HTML"]
    with EmailAdapter() as adapter:
        [(key, outcome)] = list(adapter.send([message]))

    assert (key, outcome.result) == (12, Result.SENT)
    [sent] = mail.outbox
    assert sent.subject == message.subject and sent.to == [message.to]
    assert sent.extra_headers["List-Unsubscribe"] == ONE_CLICK["List-Unsubscribe"]


@pytest.mark.parametrize(
    "address",
    [
        "customer12345@example.jp",
        "taro.yamada+sale@mail.example.co.jp",
        "a_b%c-d@x-y.jp",
        "taro@例え.jp",
        "Taro <taro@example.jp>",
        "=?utf-8?q?x?=@example.jp",
        "a..b@example.jp",
        "a@example.jp.",
        "a@" + "x" * 63 + ".jp",
    ],
)
def test_envelope_addresses_are_what_django_would_use(address):
    def outcome(function, *args):
        try:
            return function(*args)
        except ValueError as exc:  # an address Django refuses is refused alike
            return repr(exc)

    assert outcome(_envelope_recipient, address) == outcome(sanitize_address, address, "utf-8")


@pytest.mark.parametrize(
    ("change", "ours"),
    [
        (lambda mid: mid, True),
        (lambda mid: mid.replace("@shop.example.jp>", "@old-shop.example.jp>"), True),
        (lambda mid: mid.replace(".7.", ".8.", 1), False),  # another delivery's number
        (lambda mid: mid[:-20] + ("1" if mid[-20] == "0" else "0") + mid[-19:], False),  # forged
        (lambda mid: mid.strip("<>"), False),
        (lambda mid: "<madoguchi.1.2.x@shop.example.jp>", False),
    ],
)
def test_our_message_ids_are_recognised_by_their_tag(settings, change, ours):
    settings.DEFAULT_FROM_EMAIL = "support@shop.example.jp"
    mid = message_id_for(send_id=3, delivery_id=7)

    assert message_id_is_ours(change(mid)) is ours
