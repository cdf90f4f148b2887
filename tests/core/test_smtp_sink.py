"""The SMTP sink of `make run`, as a real server on a free port."""

from __future__ import annotations

import smtplib
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from core.smtp_sink import SmtpSink, mail_summary


@pytest.fixture
def sink(tmp_path):
    with SmtpSink(directory=tmp_path / "mail", port=0) as server:
        yield server


def _saved(sink: SmtpSink) -> list:
    return sorted(sink.directory.glob("*.eml"))


def _parse(path):
    return message_from_bytes(path.read_bytes(), policy=policy.default)


def test_japanese_mail_is_saved_as_an_eml_file_that_parses_back(sink):
    message = EmailMessage()
    message["Subject"] = "【まどぐち雑貨店】ご注文の商品を発送しました"
    message["From"] = "まどぐち雑貨店 <support@shop.example.jp>"
    message["To"] = "佐藤 翔太 様 <shota@example.jp>"
    message.set_content("佐藤 翔太 様\n\n静岡煎茶 100g を本日発送いたしました。\n")

    with smtplib.SMTP(sink.host, sink.port) as client:
        client.send_message(message, to_addrs=["shota@example.jp", "archive@shop.example.jp"])

    files = _saved(sink)
    assert len(files) == 1
    saved = _parse(files[0])
    assert saved["Subject"] == "【まどぐち雑貨店】ご注文の商品を発送しました"
    assert saved["To"].addresses[0].display_name == "佐藤 翔太 様"
    assert "静岡煎茶 100g を本日発送いたしました。" in saved.get_content()
    # The envelope shows recipients the headers do not (Bcc, archive copies).
    assert saved["X-RcptTo"] == "shota@example.jp, archive@shop.example.jp"
    assert saved["X-MailFrom"] == "support@shop.example.jp"


def test_message_is_stored_byte_for_byte_whatever_its_charset(sink):
    body = "お問い合わせありがとうございます。".encode("iso-2022-jp")
    raw = (
        b"From: support@shop.example.jp\r\n"
        b"To: hanako@example.jp\r\n"
        b"Subject: =?ISO-2022-JP?B?GyRCJCpMZCQkOWckOyQ5JDckPyQ3GyhC?=\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: text/plain; charset="ISO-2022-JP"\r\n'
        b"Content-Transfer-Encoding: 7bit\r\n"
        b"\r\n" + body + b"\r\n"
    )
    with smtplib.SMTP(sink.host, sink.port) as client:
        client.sendmail("support@shop.example.jp", ["hanako@example.jp"], raw)

    (path,) = _saved(sink)
    stored = path.read_bytes()
    assert stored.endswith(raw)
    assert _parse(path).get_content().strip() == "お問い合わせありがとうございます。"


def test_utf8_addresses_are_accepted_with_smtputf8(sink):
    message = EmailMessage()
    message["Subject"] = "テスト"
    message["From"] = "店長@shop.example.jp"
    message["To"] = "さとう@example.jp"
    message.set_content("本文")

    with smtplib.SMTP(sink.host, sink.port) as client:
        client.send_message(message)  # smtplib asks for SMTPUTF8 by itself

    (path,) = _saved(sink)
    assert _parse(path)["X-RcptTo"] == "さとう@example.jp"


def test_file_names_sort_in_the_order_messages_arrived(sink):
    with smtplib.SMTP(sink.host, sink.port) as client:
        for number in range(1, 6):
            message = EmailMessage()
            message["Subject"] = f"通知 {number}"
            message["From"] = "support@shop.example.jp"
            message["To"] = "shota@example.jp"
            message.set_content("本文")
            client.send_message(message)

    subjects = [_parse(path)["Subject"] for path in _saved(sink)]
    assert subjects == [f"通知 {n}" for n in range(1, 6)]
    assert mail_summary(_saved(sink)[0]).endswith("「通知 1」")


def test_sink_that_cannot_bind_its_port_says_so(sink, tmp_path):
    taken = SmtpSink(directory=tmp_path / "other", host=sink.host, port=sink.port)
    with pytest.raises(OSError):
        taken.start()
