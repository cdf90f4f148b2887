"""tickets.mailparse: raw Japanese mail in, readable structure out.

The fixtures in tests/tickets/mail/ are byte-exact messages shaped like what
Becky!, Outlook Express, Outlook, Gmail, Thunderbird, PHP web forms, old
Windows mailers, the Amazon relay and Postfix really send; mailfactory.py
builds the variations."""

from __future__ import annotations

import base64
import email
import functools
import math
import random
import re
import signal
import time
import tracemalloc
import unicodedata
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from tests.tickets import mailfactory as mf
from tickets.mailparse import (
    MailParseError,
    ParsedMail,
    find_reference,
    is_forward_subject,
    parse_message,
    subject_strip_prefixes,
)
from tickets.mailparse.charsets import decode_iso2022jp_ms, decode_text
from tickets.mailparse.htmltext import html_to_text, sanitise_html
from tickets.mailparse.quoting import visible_text

MAIL = Path(__file__).parent / "mail"
JST = timezone(timedelta(hours=9))


def fixture(name: str) -> ParsedMail:
    return parse_message((MAIL / name).read_bytes())


def simple(
    body: str = "本文",
    *,
    subject: str = "件名",
    headers=(),
    charset: str = "UTF-8",
    transfer: str = "base64",
):
    """A one-part text/plain mail from a customer, in ``charset``."""
    content, encoded = mf.text_body(body, charset, transfer)
    return mf.raw_mail(
        [
            ("From", "Customer <customer@example.jp>"),
            ("To", "support@shop.example.jp"),
            ("Subject", mf.encoded_words(subject, charset)),
            ("Date", "Fri, 20 Nov 2026 10:15:00 +0900"),
            ("Message-ID", "<simple.1@example.jp>"),
            ("MIME-Version", "1.0"),
            *content,
            *headers,
        ],
        encoded,
    )


# --------------------------------------------------------------------------
# Real-world-shaped fixtures


def test_iso2022jp_becky_mail_decodes_subject_sender_body_and_drops_signature():
    mail = fixture("iso2022jp_becky.eml")

    assert mail.subject == "商品の配送状況について（注文番号 12345）"
    assert mail.from_name == "山田\u3000花子"
    assert mail.from_address == "hanako@example.ne.jp"
    assert mail.to == ("support@shop.example.jp",)
    assert mail.message_id == "<20261120101530.8F3C.HANAKO@example.ne.jp>"
    assert mail.date == datetime(2026, 11, 20, 10, 15, 30, tzinfo=JST)
    assert "11月15日に注文した商品（注文番号 12345）がまだ届いておりません。" in mail.text
    assert mail.text.endswith("-- \n山田 花子\nhanako@example.ne.jp")
    assert mail.visible_text.endswith("よろしくお願いいたします。")
    assert "hanako@example.ne.jp" not in mail.visible_text
    assert mail.html_body == ""
    assert mail.warnings == ()
    assert not mail.should_ignore


def test_iso2022jp_with_cp932_characters_from_outlook_express_decodes_without_loss():
    mail = fixture("iso2022jp_cp932_outlook_express.eml")

    assert mail.subject == "①と②の商品について（㈱髙橋商店）"
    assert mail.from_name == "㈱髙橋商店 髙橋一郎"
    assert "①：３個～５個" in mail.text
    assert "②：№12 を ｶﾀﾛｸﾞ の通り 10 個" in mail.text  # ESC ( I half-width katakana
    assert "合計金額は≒５万円の予定です。" in mail.text
    assert "\ufffd" not in mail.text + mail.subject + mail.from_name
    assert mail.warnings == ()


def test_shift_jis_quoted_printable_web_form_mail():
    mail = fixture("shiftjis_qp_webform.eml")

    assert mail.subject == "【お問い合わせ】商品について"
    assert mail.from_name == "佐藤 次郎"
    assert mail.reply_to == ("jiro@example.com",)
    assert "お問い合わせ種別：①商品について" in mail.text
    assert "サイズ Ｍ～Ｌ の在庫はありますか？" in mail.text
    assert mail.warnings == ()


def test_shift_jis_base64_with_cp932_only_characters_is_read_as_cp932():
    mail = fixture("shiftjis_base64_cp932.eml")

    assert mail.subject == "商品の交換について①"
    assert mail.from_name == "髙田 美咲"
    assert mail.text == (
        "お世話になります。\n㈱ミナミの髙田です。\n注文した商品の色が①写真と違いました。\n"
        "交換をお願いできますか～？\nｻｲｽﾞはMです。"
    )
    assert mail.date == datetime(2026, 11, 20, 23, 12, 45, tzinfo=UTC)


def test_gmail_reply_prefers_plain_text_keeps_threading_and_hides_quoted_history():
    mail = fixture("gmail_reply_alternative.eml")

    assert mail.subject == "Re: 【Q-2611-00042】ご注文の件"
    assert mail.reference == "Q-2611-00042"
    assert mail.in_reply_to == "<madoguchi.9f2c.117@shop.example.jp>"
    assert mail.references == (
        "<madoguchi.9f2c.101@shop.example.jp>",
        "<madoguchi.9f2c.117@shop.example.jp>",
    )
    assert mail.thread_ids == (
        "<madoguchi.9f2c.117@shop.example.jp>",
        "<madoguchi.9f2c.101@shop.example.jp>",
    )
    assert mail.cc == ("hanako@example.ne.jp",)
    assert "> 交換のサイズをお知らせください。" in mail.text
    assert mail.visible_text == (
        "お世話になっております。\nご回答ありがとうございます。Mサイズで交換をお願いします。\n\n山田"
    )
    # the HTML alternative is kept, sanitised
    assert "<blockquote>" in mail.html_body
    assert "style=" not in mail.html_body
    assert 'rel="noopener noreferrer nofollow"' in mail.html_body


def test_html_only_mail_is_converted_to_text_and_sanitised():
    mail = fixture("html_only_script.eml")

    # no charset parameter: the <meta> tag's Shift_JIS is used
    assert mail.text.startswith("いつもご利用ありがとうございます。\n注文番号 A-20261120-0042")
    assert "・配送日：11月25日\n・配送業者：ヤマト運輸" in mail.text
    assert "注文履歴 (https://shop.example.jp/orders/42)" in mail.text
    for hidden in ("document.cookie", "font-family", "お知らせ"):  # script, style, <title>
        assert hidden not in mail.text
    html = mail.html_body.lower()
    for dangerous in ("<script", "<style", "<iframe", "<img", "javascript:", "onclick", "onload"):
        assert dangerous not in html
    assert "onmouseover" not in html
    assert '<a href="https://shop.example.jp/orders/42"' in html
    assert "<b>a-20261120-0042</b>" in html


def test_attachments_with_japanese_names_in_every_encoding_and_inline_image():
    mail = fixture("attachments_mixed.eml")

    by_name = {attachment.filename: attachment for attachment in mail.attachments}
    assert list(by_name) == ["logo.png", "請求書.pdf", "見積書.xlsx", "パンフレット.pdf"]
    invoice = by_name["請求書.pdf"]  # RFC 2231 filename*=UTF-8''...
    assert invoice.content_type == "application/pdf"
    assert invoice.payload.startswith(b"%PDF-1.4")
    assert invoice.size == len(invoice.payload)
    assert not invoice.is_inline and not invoice.truncated
    assert by_name["見積書.xlsx"].payload.startswith(b"PK\x03\x04")  # encoded-word name
    # Apple Mail's decomposed (NFD) name in RFC 2231 continuations comes out composed
    assert b"%E3%83%8F%E3%82%9A" in (MAIL / "attachments_mixed.eml").read_bytes()  # ハ + ゜
    assert unicodedata.is_normalized("NFC", mail.attachments[3].filename)
    logo = by_name["logo.png"]
    assert logo.is_inline and logo.content_id == "part1.logo@example.co.jp"
    assert logo.payload.startswith(b"\x89PNG")
    assert mail.text == "請求書と見積書を添付します。\nロゴの画像も本文に入れました。"
    assert mail.warnings == ()


def test_outlook_reply_in_japanese_cuts_the_sashidashinin_block():
    mail = fixture("outlook_reply_ja.eml")

    assert mail.subject == "RE: 【Q-2611-00042】返品について"
    assert mail.reference == "Q-2611-00042"
    assert mail.date == datetime(2026, 11, 20, 2, 31, 7, tzinfo=UTC)
    assert "差出人: Madoguchi サポート" in mail.text
    assert mail.visible_text.endswith("よろしくお願いいたします。\n\n佐藤")
    assert "____" not in mail.visible_text
    assert "返品の手続きをご案内します。" not in mail.visible_text


def test_amazon_relay_mail_is_a_customer_message_with_the_relay_as_reply_address():
    mail = fixture("amazon_relay.eml")

    assert mail.from_name == "山田 太郎 - Amazon Marketplace"
    assert mail.reply_to == ("k8x7m2p9q4r1t5v@marketplace.amazon.co.jp",)
    assert mail.subject == "商品のお問い合わせ (注文: 249-1234567-7654321)"
    assert "まだ間に合いますか？" in mail.visible_text
    assert "------------- メッセージはここまで -------------" in mail.visible_text
    assert not mail.should_ignore


def test_out_of_office_reply_is_ignored_by_its_auto_submitted_header():
    mail = fixture("autoreply_fuzai.eml")

    assert mail.subject == "不在通知: Re: 【Q-2611-00042】ご注文の件"
    assert mail.is_auto_submitted
    assert mail.auto_signals == ("Auto-Submitted: auto-replied",)
    assert mail.subject_looks_automatic
    assert mail.should_ignore and mail.ignore_reason == "auto-submitted"
    assert "出張のため不在" in mail.text


def test_postfix_bounce_is_ignored_and_names_our_bounced_delivery():
    mail = fixture("bounce_postfix.eml")

    assert mail.is_bounce
    assert mail.bounce_signals == (
        "multipart/report; report-type=delivery-status",
        "From: MAILER-DAEMON@mx.shop.example.jp",
        "Return-Path: <>",
    )
    assert mail.ignore_reason == "bounce"
    assert mail.bounced_delivery_id == "4711"
    assert mail.our_delivery_id == ""  # the id is in the returned original, not on the bounce
    assert "Recipient address rejected" in mail.text
    assert [a.content_type for a in mail.attachments] == [
        "message/delivery-status",
        "text/rfc822-headers",
    ]
    assert b"Status: 5.1.1" in mail.attachments[0].payload


def test_our_own_outbound_mail_coming_back_is_ignored():
    mail = fixture("own_delivery.eml")

    assert mail.our_delivery_id == "4712"
    assert mail.ignore_reason == "own-delivery"  # before auto-submitted
    assert mail.reference == "Q-2611-00042"


def test_truncated_multipart_keeps_the_text_and_the_partial_attachment_and_warns():
    mail = fixture("truncated_multipart.eml")

    assert mail.text == "領収書を添付します。\n宛名は㈱髙橋商店でお願いします。"
    assert [a.filename for a in mail.attachments] == ["receipt.pdf"]
    assert mail.attachments[0].payload.startswith(b"%PDF-1.4")
    assert "mime: multipart is truncated: its closing boundary is missing" in mail.warnings


def test_raw_8bit_shift_jis_headers_and_undeclared_body_are_detected():
    mail = fixture("raw_sjis_headers.eml")

    assert mail.subject == "【至急】注文のキャンセル①"
    assert mail.from_name == "中村 さくら"
    assert mail.from_address == "sakura@example.ne.jp"
    assert mail.text == "注文をキャンセルしたいです。\n表示されている金額～送料込みでしょうか。"
    assert mail.warnings == ()


def test_multipart_with_a_wrong_boundary_is_recovered_with_the_one_in_the_body():
    mail = fixture("wrong_boundary.eml")

    assert mail.text == "破損していた商品の写真です。"
    assert [(a.filename, a.content_type) for a in mail.attachments] == [("damage.png", "image/png")]
    assert "mime: multipart read with the boundary found in its body" in mail.warnings


def test_forwarded_content_is_kept_in_the_visible_text():
    mail = fixture("forwarded_ja.eml")

    assert is_forward_subject(mail.subject)
    assert "-------- 転送メッセージ --------" in mail.visible_text
    assert "送料 800円\n送料 800円" in mail.visible_text
    assert "> 合計 4,600円" in mail.visible_text  # forwarded text is kept as it is


@pytest.mark.parametrize("path", sorted(MAIL.glob("*.eml")), ids=lambda path: path.stem)
def test_fixtures_read_the_same_with_bare_newlines_and_an_mbox_from_line(path):
    # Postfix pipes mail with LF line ends; mbox files start with "From ".
    crlf = path.read_bytes()
    lf = b"From MAILER-DAEMON Fri Nov 20 10:15:00 2026\n" + crlf.replace(b"\r\n", b"\n")

    a, b = parse_message(crlf), parse_message(lf)

    assert (a.subject, a.from_address, a.text, a.visible_text, a.warnings) == (
        b.subject,
        b.from_address,
        b.text,
        b.visible_text,
        b.warnings,
    )
    assert [(x.filename, binary_size(x)) for x in a.attachments] == [
        (x.filename, binary_size(x)) for x in b.attachments
    ]
    assert a.subject and a.text


def binary_size(attachment) -> int | None:
    """The size, for parts whose bytes do not depend on line ends."""
    return None if attachment.content_type.startswith(("text/", "message/")) else attachment.size


# --------------------------------------------------------------------------
# Charsets


def test_the_factory_writes_nec_special_characters_at_their_jis_codes():
    # JIS row 13 (NEC special characters): ① is 0x2D21, ㈱ is 0x2D6A
    assert mf.iso2022jp_windows("①㈱") == b"\x1b$B-!-j\x1b(B"


@pytest.mark.parametrize(
    ("charset", "transfer", "text"),
    [
        ("ISO-2022-JP", "7bit", "髙橋です。①の件、ｶﾀｶﾅ～"),
        ("ISO-2022-JP", "quoted-printable", "髙橋です。①の件"),
        ("Shift_JIS", "quoted-printable", "髙橋です。①の件、ｶﾀｶﾅ～"),
        ("Shift_JIS", "base64", "髙橋です。①の件、ｶﾀｶﾅ～"),
        ("Shift_JIS", "8bit", "髙橋です。①の件、ｶﾀｶﾅ～"),
        ("EUC-JP", "base64", "高橋です。在庫の件"),
        ("UTF-8", "8bit", "髙橋です。①の件 🙇"),
        ("UTF-8", "quoted-printable", "髙橋です。①の件 🙇"),
    ],
)
def test_body_in_each_charset_and_transfer_encoding(charset, transfer, text):
    mail = parse_message(simple(f"{text}\n二行目", charset=charset, transfer=transfer))

    assert mail.text == f"{text}\n二行目"
    assert mail.warnings == ()


@pytest.mark.parametrize("label", ["ISO-2022-JP", "Shift_JIS", "CP932", "Windows-31J", "UTF-8"])
def test_subject_with_cp932_characters_under_each_label(label):
    raw = simple("本文", subject="髙橋様 ①の件 ㈱テスト", charset=label)

    mail = parse_message(raw)

    assert mail.subject == "髙橋様 ①の件 ㈱テスト"
    assert mail.warnings == ()


def test_encoded_words_split_inside_a_character_are_joined_before_decoding():
    subject = mf.split_encoded_words("ご注文の件について", "UTF-8", split_at=4)
    raw = mf.raw_mail([("From", "a@example.jp"), ("Subject", subject)], "x")

    assert parse_message(raw).subject == "ご注文の件について"


def test_encoded_words_with_language_q_encoding_and_text_between():
    raw = mf.raw_mail(
        [
            ("From", "a@example.jp"),
            (
                "Subject",
                "Re: =?ISO-2022-JP*ja?B?GyRCJUYlOSVIGyhC?= and =?utf-8?q?caf=C3=A9_au_lait?=",
            ),
        ],
        "x",
    )

    assert parse_message(raw).subject == "Re: テスト and café au lait"


def test_raw_iso2022jp_in_a_header_without_encoded_words():
    raw = mf.raw_mail(
        [("From", "a@example.jp"), ("Subject", mf.iso2022jp_windows("お問い合わせ"))], "x"
    )

    assert parse_message(raw).subject == "お問い合わせ"


def test_raw_utf8_and_euc_jp_headers():
    utf8 = mf.raw_mail([("From", "a@example.jp"), ("Subject", "返品について".encode())], "x")
    euc = mf.raw_mail(
        [("From", "a@example.jp"), ("Subject", "ご注文ありがとうございます".encode("euc_jp"))], "x"
    )

    assert parse_message(utf8).subject == "返品について"
    assert parse_message(euc).subject == "ご注文ありがとうございます"


@pytest.mark.parametrize(
    ("encoding", "text"),
    [
        ("utf-8", "ご注文ありがとうございます。髙橋①"),
        ("cp932", "ご注文ありがとうございます。髙橋①"),
        ("euc_jp", "ご注文ありがとうございます。在庫を確認します。"),
    ],
)
def test_undeclared_8bit_body_is_detected(encoding, text):
    raw = mf.raw_mail([("From", "a@example.jp"), ("Subject", "x")], text.encode(encoding))

    mail = parse_message(raw)

    assert mail.text == text
    assert mail.warnings == ()


def test_body_declared_utf8_but_sent_in_shift_jis_is_read_and_the_mismatch_noted():
    raw = mf.raw_mail(
        [("From", "a@example.jp"), ("Content-Type", "text/plain; charset=utf-8")],
        "交換をお願いします".encode("cp932"),
    )

    mail = parse_message(raw)

    assert mail.text == "交換をお願いします"
    assert "body (text/plain): declared 'utf-8' but read as cp932" in mail.warnings


def test_body_declared_iso2022jp_but_sent_in_8bit_shift_jis():
    raw = mf.raw_mail(
        [("From", "a@example.jp"), ("Content-Type", "text/plain; charset=ISO-2022-JP")],
        "㈱髙橋商店です".encode("cp932"),
    )

    assert parse_message(raw).text == "㈱髙橋商店です"


@pytest.mark.parametrize("label", ["x-sjis", "Windows-31J", "MS932", "SJIS", "shift-jis", "cp932"])
def test_shift_jis_labels_all_mean_cp932(label):
    raw = mf.raw_mail(
        [("From", "a@example.jp"), ("Content-Type", f"text/plain; charset={label}")],
        "①髙～".encode("cp932"),
    )

    mail = parse_message(raw)

    assert mail.text == "①髙～"
    assert mail.warnings == ()


def test_undecodable_bytes_become_replacement_characters_and_a_warning():
    raw = mf.raw_mail(
        [("From", "a@example.jp"), ("Content-Type", "text/plain; charset=utf-8")],
        b"\xe3\x81\x82\xff\xfe\x80 ok",
    )

    mail = parse_message(raw)

    assert mail.text.startswith("あ\ufffd")
    assert mail.text.endswith(" ok")
    assert "body (text/plain): declared 'utf-8'; undecodable bytes replaced" in mail.warnings


def test_unknown_and_bytes_to_bytes_charset_labels_fall_back_to_detection():
    for label in ("x-unheard-of", "zlib", "base64"):
        raw = mf.raw_mail(
            [("From", "a@example.jp"), ("Content-Type", f"text/plain; charset={label}")],
            "在庫はありますか".encode(),
        )
        mail = parse_message(raw)
        assert mail.text == "在庫はありますか"
        assert f"body (text/plain): unknown charset '{label}'; read as utf-8" in mail.warnings


def test_iso2022jp_ms_decoder_reads_half_width_kana_by_shift_out_and_ibm_extensions():
    assert decode_iso2022jp_ms(b"\x0e6E\x0f ok") == "ｶﾅ ok"
    assert decode_iso2022jp_ms(mf.iso2022jp_windows("髙﨑")) == "髙﨑"
    with pytest.raises(UnicodeDecodeError):
        decode_iso2022jp_ms(b"\x1b$Bx")  # half a pair


def test_decode_text_never_claims_a_clean_reading_of_stray_bytes():
    text, warning = decode_text(b"\x80\xa0\xfd", None)

    assert warning == "no charset declared; undecodable bytes replaced"
    assert "\ufffd" in text


# --------------------------------------------------------------------------
# Bodies: alternatives, HTML, format=flowed


def test_plain_text_is_preferred_over_html_and_html_only_is_converted():
    html = "<p>こんにちは<br>二行目</p>"
    both = mf.raw_mail(
        [
            ("From", "a@example.jp"),
            ("Content-Type", 'multipart/alternative; boundary="b"'),
        ],
        "--b\nContent-Type: text/plain; charset=us-ascii\n\nplain version\n"
        f"--b\nContent-Type: text/html; charset=utf-8\n\n{html}\n--b--\n".encode(),
    )
    html_only = mf.raw_mail(
        [("From", "a@example.jp"), ("Content-Type", "text/html; charset=utf-8")], html.encode()
    )

    assert parse_message(both).text == "plain version"
    assert parse_message(both).html_body == "<p>こんにちは<br>二行目</p>"
    assert parse_message(html_only).text == "こんにちは\n二行目"


def test_html_to_text_renders_blockquotes_as_quotes_so_history_is_hidden():
    text = html_to_text(
        "<div>了解しました。</div><div>2026年11月20日(金) 10:15 山田 太郎 &lt;taro@example.jp&gt;:"
        "</div><blockquote>前のメール<blockquote>さらに前</blockquote></blockquote>"
    )

    assert text.splitlines()[-2:] == ["> 前のメール", "> > さらに前"]
    assert visible_text(text) == "了解しました。"


def test_html_to_text_joins_japanese_lines_broken_in_the_source_without_a_space():
    assert html_to_text("<p>注文した商品が\n  まだ届きません。 Thank\nyou</p>") == (
        "注文した商品がまだ届きません。 Thank you"
    )


def test_html_to_text_keeps_pre_and_ideographic_spaces():
    assert html_to_text("<p>山田\u3000太郎</p><pre>a\n  b</pre>") == "山田\u3000太郎\n\na\n  b"


def test_sanitiser_drops_active_content():
    dirty = (
        '<p onclick="steal()">hi<script>alert(1)</script><style>p{}</style>'
        '<iframe src="https://evil.example"></iframe><a href="javascript:alert(1)">x</a>'
        '<a href="https://ok.example/">ok</a><img src="https://track.example/p.gif" onerror="x()">'
        '<object data="x.swf"></object><form action="/"><input name="q"></form></p>'
    )

    clean = sanitise_html(dirty)

    assert clean == (
        '<p>hi<a rel="noopener noreferrer nofollow">x</a>'
        '<a href="https://ok.example/" rel="noopener noreferrer nofollow">ok</a></p><p></p>'
    )  # the HTML5 parser closes <p> at <form>; the form and its input are gone


def test_format_flowed_soft_breaks_are_joined():
    raw = mf.raw_mail(
        [
            ("From", "a@example.jp"),
            ("Content-Type", "text/plain; charset=utf-8; format=flowed; delsp=yes"),
        ],
        "長い行は途中で \n折り返されます。\n> 引用も \n> 続きます。\n-- \n署名\n".encode(),
    )

    assert (
        parse_message(raw).text == "長い行は途中で折り返されます。\n> 引用も続きます。\n-- \n署名"
    )


def test_crlf_and_nul_characters_are_normalised_away():
    raw = mf.raw_mail(
        [("From", "a@example.jp"), ("Subject", "a\x00b"), ("Content-Type", "text/plain")],
        b"line1\r\nline2\rline3\x00\r\n\r\n",
    )

    mail = parse_message(raw)

    assert mail.text == "line1\nline2\nline3"
    assert mail.subject == "ab"


# --------------------------------------------------------------------------
# visible_text: quoted history, signatures, forwards


GMAIL_EN_WRAPPED = """Thanks, that works.

On Fri, Nov 20, 2026 at 10:15 AM Madoguchi Support <
support@shop.example.jp> wrote:

> Could you tell us the size?
>
"""

APPLE_JA = """承知しました。

2026/11/20 10:15、Madoguchi サポート <support@shop.example.jp> のメッセージ:

> サイズを教えてください。
"""

APPLE_JA_MAIL = """承知しました。

2026/11/20 10:15、Madoguchi サポート <support@shop.example.jp>のメール:
> サイズを教えてください。
"""

THUNDERBIRD_JA = """承知しました。

2026/11/20 10:15 に Madoguchi サポート さんは書きました:
> サイズを教えてください。
"""

OUTLOOK_EN = """Please cancel the order.

Regards,
Ken

-----Original Message-----
From: Madoguchi Support <support@shop.example.jp>
Sent: Friday, November 20, 2026 10:15 AM
To: Ken Sato <sato@example.co.jp>
Subject: Your order

Dear Mr Sato,
"""

OUTLOOK_FROM_SENT = """Please cancel the order.

From: Madoguchi Support <support@shop.example.jp>
Sent: Friday, November 20, 2026 10:15 AM
To: Ken Sato <sato@example.co.jp>
Subject: Your order

Dear Mr Sato,
"""

SPACED_ORIGINAL = """キャンセルをお願いします。

----- Original Message -----
From: "Madoguchi" <support@shop.example.jp>
"""

GMAIL_JA_WRAPPED = """了解です。

2026年11月20日(金) 10:15 Madoguchi サポート <
support@shop.example.jp>:

> サイズを教えてください。
"""

INLINE_ANSWERS = """ご回答します。

2026年11月20日(金) 10:15 Madoguchi サポート <support@shop.example.jp>:
> サイズはMでよろしいですか？
はい、Mでお願いします。
> 色はいかがですか？
赤です。
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GMAIL_EN_WRAPPED, "Thanks, that works."),
        (GMAIL_JA_WRAPPED, "了解です。"),
        (APPLE_JA, "承知しました。"),
        (APPLE_JA_MAIL, "承知しました。"),
        (THUNDERBIRD_JA, "承知しました。"),
        (OUTLOOK_EN, "Please cancel the order.\n\nRegards,\nKen"),
        (OUTLOOK_FROM_SENT, "Please cancel the order."),
        (SPACED_ORIGINAL, "キャンセルをお願いします。"),
        (INLINE_ANSWERS, "ご回答します。\n\nはい、Mでお願いします。\n赤です。"),
        ("＞全角の引用\n本文です。\n  > 字下げした引用", "本文です。"),
        ("本文\n\n-- \n山田 太郎\nTEL 03-0000-0000\n", "本文"),
        ("本文\n--\n山田", "本文"),
    ],
    ids=[
        "gmail-en-wrapped",
        "gmail-ja-wrapped",
        "apple-ja",
        "apple-ja-no-mail",
        "thunderbird-ja",
        "outlook-original-message",
        "outlook-from-sent",
        "original-message-with-spaces",
        "inline-answers-kept",
        "full-width-quotes",
        "signature",
        "signature-without-space",
    ],
)
def test_visible_text(text, expected):
    assert visible_text(text) == expected


def test_visible_text_keeps_a_long_tail_after_a_double_dash():
    text = "本文\n-- \n" + "\n".join(f"{n}行目" for n in range(30))

    assert visible_text(text) == text


def test_visible_text_of_an_all_quoted_mail_falls_back_to_the_full_text():
    assert visible_text("> only quotes\n> here\n") == "> only quotes\n> here"


def test_outlook_forward_keeps_the_original_message_block():
    text = (
        "ご確認ください。\n\n-----Original Message-----\n"
        "From: a@example.jp\nSent: today\n\n注文内容"
    )

    assert visible_text(text, forwarded=True) == text
    assert visible_text(text) == "ご確認ください。"


def test_dates_in_customer_text_are_not_taken_for_attribution_lines():
    text = "2026年11月20日に届く予定です:\n到着したら連絡します。"

    assert visible_text(text) == text


def test_a_fw_subject_makes_parse_message_keep_outlook_blocks():
    body = "見てください。\n\n-----Original Message-----\nFrom: shop@example.jp\n\n注文確認"
    mail = parse_message(simple(body, subject="FW: 注文確認"))

    assert "注文確認" in mail.visible_text.splitlines()[-1]


# --------------------------------------------------------------------------
# Attachments


def attachment_mail(*parts: str | bytes) -> bytes:
    """multipart/mixed with the given parts (str parts go out as UTF-8)."""
    body = b"".join(
        b"--b\n" + (part if isinstance(part, bytes) else part.encode()) + b"\n" for part in parts
    )
    body += b"--b--\n"
    return mf.raw_mail(
        [("From", "a@example.jp"), ("Content-Type", 'multipart/mixed; boundary="b"')], body
    )


def test_attachment_over_the_limit_is_kept_as_metadata_with_a_warning():
    raw = attachment_mail(
        "Content-Type: text/plain\n\nsee attached",
        'Content-Type: application/pdf\nContent-Disposition: attachment; filename="big.pdf"\n'
        "Content-Transfer-Encoding: base64\n\n" + mf.base64_lines(b"x" * 3000).decode(),
    )

    mail = parse_message(raw, max_attachment_bytes=1000)

    (big,) = mail.attachments
    assert (big.filename, big.size, big.truncated, big.payload) == ("big.pdf", 3000, True, None)
    assert "attachment 'big.pdf': 3000 bytes is over the limit of 1000; not kept" in mail.warnings
    assert not parse_message(raw).attachments[0].truncated


def test_raw_shift_jis_and_iso2022jp_rfc2231_filenames():
    raw = attachment_mail(
        b'Content-Type: application/pdf\nContent-Disposition: attachment; filename="'
        + "請求書①.pdf".encode("cp932")
        + b'"\n\n%PDF',
        "Content-Type: application/pdf\nContent-Disposition: attachment;"
        " filename*=iso-2022-jp''"
        + "".join(f"%{b:02X}" for b in mf.iso2022jp_windows("髙橋.pdf"))
        + "\n\n%PDF",
    )

    names = [a.filename for a in parse_message(raw).attachments]

    assert names == ["請求書①.pdf", "髙橋.pdf"]


def test_filenames_lose_directories_and_unnamed_parts_get_a_name():
    raw = attachment_mail(
        "Content-Type: application/octet-stream\nContent-Disposition: attachment;"
        ' filename="..\\\\..\\\\windows\\\\evil.exe"\n\nMZ',
        "Content-Type: image/jpeg\n\nJFIF",
    )

    names = [a.filename for a in parse_message(raw).attachments]

    assert names == ["evil.exe", "attachment-2.jpg"]


def test_attached_message_is_kept_as_eml_named_by_its_subject():
    inner = simple("元のメール", subject="ご注文確認").decode("ascii")
    raw = attachment_mail(
        "Content-Type: text/plain\n\nforwarding as attachment",
        "Content-Type: message/rfc822\n\n" + inner,
    )

    mail = parse_message(raw)

    (eml,) = mail.attachments
    assert eml.filename == "ご注文確認.eml"
    assert eml.content_type == "message/rfc822"
    assert parse_message(eml.payload).text == "元のメール"
    assert mail.text == "forwarding as attachment"


def test_text_attachment_is_not_mistaken_for_the_body():
    raw = attachment_mail(
        "Content-Type: text/plain; charset=utf-8\n\n本文です",
        'Content-Type: text/csv; charset=utf-8\nContent-Disposition: attachment; filename="a.csv"'
        "\n\nid,name",
        'Content-Type: text/plain\nContent-Disposition: attachment; filename="memo.txt"\n\nmemo',
    )

    mail = parse_message(raw)

    assert mail.text == "本文です"
    assert [a.filename for a in mail.attachments] == ["a.csv", "memo.txt"]


# --------------------------------------------------------------------------
# Automatic mail, bounces, our own mail


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Auto-Submitted", "auto-generated"),
        ("Auto-Submitted", "auto-replied; owner-email=x@example.jp"),
        ("X-Autoreply", "yes"),
        ("X-Autorespond", "Out of office"),
        ("Precedence", "bulk"),
        ("Precedence", "junk"),
        ("Precedence", "list"),
        ("Precedence", "auto_reply"),
        ("X-Auto-Response-Suppress", "All"),
        ("X-Auto-Response-Suppress", "DR, OOF, AutoReply"),
    ],
)
def test_header_signals_make_a_mail_automatic(header, value):
    mail = parse_message(simple(headers=[(header, value)]))

    assert mail.is_auto_submitted
    assert mail.auto_signals == (f"{header}: {value}",)
    assert mail.ignore_reason == "auto-submitted"


@pytest.mark.parametrize(
    ("header", "value"),
    [("Auto-Submitted", "no"), ("Precedence", "first-class"), ("X-Auto-Response-Suppress", "DR")],
)
def test_header_values_that_do_not_mean_automatic(header, value):
    assert not parse_message(simple(headers=[(header, value)])).is_auto_submitted


@pytest.mark.parametrize(
    "subject",
    [
        "自動応答: ご注文の件",
        "Automatic reply: order",
        "Out of Office: back Monday",
        "【自動返信】受付",
    ],
)
def test_automatic_looking_subjects_are_a_hint_never_a_reason_to_ignore(subject):
    mail = parse_message(simple(subject=subject))

    assert mail.subject_looks_automatic
    assert not mail.should_ignore


def test_a_missed_delivery_slip_subject_is_not_automatic():
    mail = parse_message(simple(subject="不在票が入っていました"))

    assert not mail.subject_looks_automatic
    assert not mail.should_ignore


def test_read_receipt_is_automatic():
    raw = mf.raw_mail(
        [
            ("From", "a@example.jp"),
            (
                "Content-Type",
                'multipart/report; report-type=disposition-notification; boundary="b"',
            ),
        ],
        "--b\nContent-Type: text/plain\n\nread\n--b\n"
        "Content-Type: message/disposition-notification\n\n"
        "Disposition: manual-action/MDN-sent-manually; displayed\n--b--\n",
    )

    assert parse_message(raw).auto_signals == ("read receipt (disposition-notification)",)


@pytest.mark.parametrize(
    ("headers", "signal"),
    [
        ([("From", "postmaster@example.jp")], "From: postmaster@example.jp"),
        (
            [("From", "Mail Delivery Subsystem <mailer-daemon@googlemail.com>")],
            "From: mailer-daemon@googlemail.com",
        ),
        ([("From", "a@example.jp"), ("Return-Path", "<>")], "Return-Path: <>"),
    ],
)
def test_bounce_signals(headers, signal):
    raw = mf.raw_mail([*headers, ("Subject", "Delivery Status Notification (Failure)")], "failed")

    mail = parse_message(raw)

    assert mail.bounce_signals == (signal,)
    assert mail.ignore_reason == "bounce"


# --------------------------------------------------------------------------
# Headers: ids, addresses, dates


def test_message_ids_in_references_are_collected_in_order_once_each():
    raw = mf.raw_mail(
        [
            ("From", "a@example.jp"),
            ("References", "<a@x>\r\n\t<b@x> <a@x>\r\n <c @x>"),
            ("In-Reply-To", "<c@x> (Taro's message of Fri, 20 Nov)"),
            ("Message-ID", "no-brackets@example.jp"),
        ],
        "x",
    )

    mail = parse_message(raw)

    assert mail.references == ("<a@x>", "<b@x>", "<c@x>")
    assert mail.in_reply_to == "<c@x>"
    assert mail.message_id == "<no-brackets@example.jp>"
    assert mail.thread_ids == ("<c@x>", "<b@x>", "<a@x>")


def test_address_lists_with_encoded_names_containing_commas():
    raw = mf.raw_mail(
        [
            ("From", "a@example.jp"),
            ("To", mf.encoded_words("山田, 太郎") + " <taro@example.jp>, hanako@example.jp"),
            ("Cc", '"Sato, Ken" <ken@example.jp>, <broken@, Nobody'),
        ],
        "x",
    )

    mail = parse_message(raw)

    assert mail.to == ("taro@example.jp", "hanako@example.jp")
    assert mail.cc == ("ken@example.jp",)  # what is not an address is skipped


def test_malformed_from_still_yields_the_address():
    raw = mf.raw_mail([("From", "山田 <taro@example.jp".encode())], "x")

    assert parse_message(raw).from_address == "taro@example.jp"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Fri, 20 Nov 2026 10:15:00 +0900 (JST)", datetime(2026, 11, 20, 10, 15, tzinfo=JST)),
        ("Fri, 20 Nov 2026 10:15:00 JST", datetime(2026, 11, 20, 10, 15, tzinfo=JST)),
        ("Fri, 20 Nov 2026 01:15:00 -0000", datetime(2026, 11, 20, 1, 15, tzinfo=UTC)),
        ("Fri, 20 Nov 2026 01:15:00 GMT", datetime(2026, 11, 20, 1, 15, tzinfo=UTC)),
        ("2026/11/20 10:15:00 +0900", datetime(2026, 11, 20, 10, 15, tzinfo=JST)),
        ("2026年11月20日(金) 10:15 JST", datetime(2026, 11, 20, 10, 15, tzinfo=JST)),
    ],
)
def test_dates_are_aware(value, expected):
    date = parse_message(mf.raw_mail([("From", "a@example.jp"), ("Date", value)], "x")).date

    assert date == expected
    assert date.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    "value", ["Fri, 20 Nov 2026 10:15:00", "Fri, 31 Feb 2026 10:15:00 +0900", "yesterday"]
)
def test_zoneless_or_impossible_dates_are_none_with_a_warning(value):
    mail = parse_message(mf.raw_mail([("From", "a@example.jp"), ("Date", value)], "x"))

    assert mail.date is None
    assert any(w.startswith("date: ") for w in mail.warnings)


# --------------------------------------------------------------------------
# References in subjects


@pytest.mark.parametrize(
    "subject",
    [
        "Q-2611-00042",
        "Re: [Q-2611-00042] ご注文の件",
        "RE: Fwd: 【Q-2611-00042】",
        "転送: 返信: お問い合わせ（Q-2611-00042）",
        "Ｒｅ：Ｑ－２６１１－０００４２ について",
        "ご注文の件 Q－2611ー00042",
        "q-2611-00042",
        "お問い合わせ番号Q-2611-00042です",
    ],
)
def test_find_reference(subject):
    assert find_reference(subject) == "Q-2611-00042"


@pytest.mark.parametrize(
    "subject",
    [None, "", "Q-2613-00042", "FAQ-2611-00042", "Q-2611-000421", "Q-2611-0042", "Q2611-00042"],
)
def test_not_a_reference(subject):
    assert find_reference(subject) is None


@pytest.mark.parametrize(
    ("subject", "stripped"),
    [
        ("Re: RE: Fwd: ご注文", "ご注文"),
        ("Re[2]: FW: 転送: 返信: ご注文", "ご注文"),
        ("Ｒｅ：ご注文", "ご注文"),
        ("AW: Antw: Bestellung", "Bestellung"),
        ("Reply needed: order", "Reply needed: order"),
        ("Re: 【Q-2611-00042】Re: 件名", "【Q-2611-00042】Re: 件名"),
    ],
)
def test_subject_strip_prefixes(subject, stripped):
    assert subject_strip_prefixes(subject) == stripped


# --------------------------------------------------------------------------
# Robustness


@pytest.mark.parametrize(
    "raw", [b"", b"\r\n\r\n  ", b"\x00\x01binary junk\xff", b"no header line here\r\n\r\nbody"]
)
def test_input_without_any_header_is_not_a_mail(raw):
    with pytest.raises(MailParseError):
        parse_message(raw)


def test_str_input_is_a_programming_error():
    with pytest.raises(TypeError):
        parse_message("Subject: x\r\n\r\nbody")  # type: ignore[arg-type]


def test_a_mail_with_only_a_subject_is_read_and_the_missing_sender_noted():
    mail = parse_message(b"Subject: hello\r\n")

    assert (mail.subject, mail.from_address, mail.text, mail.date) == ("hello", "", "", None)
    assert "from: no sender address" in mail.warnings


def test_binary_junk_in_a_body_is_replaced_not_raised():
    raw = mf.raw_mail([("From", "a@example.jp"), ("Subject", "x")], bytes(range(256)) * 4)

    mail = parse_message(raw)

    assert "\x00" not in mail.text
    assert any("undecodable bytes replaced" in w for w in mail.warnings)


def test_multipart_without_boundary_parameter_is_read_as_text():
    raw = mf.raw_mail(
        [("From", "a@example.jp"), ("Content-Type", "multipart/mixed")], "just some text"
    )

    mail = parse_message(raw)

    assert mail.text == "just some text"
    assert "mime: multipart without a boundary" in mail.warnings


def test_absurdly_deep_nesting_is_cut_off():
    depth = 60
    body = "".join(
        f"--b{n}\nContent-Type: multipart/mixed; boundary=b{n + 1}\n\n" for n in range(depth)
    )
    body += "--b60\nContent-Type: text/plain\n\ndeep\n"
    raw = mf.raw_mail(
        [("From", "a@example.jp"), ("Content-Type", "multipart/mixed; boundary=b0")], body
    )

    mail = parse_message(raw)

    assert mail.text == ""
    assert any("nested deeper than" in w for w in mail.warnings)


def test_thousands_of_nested_multiparts_are_read_as_text_without_parsing_them():
    # the stdlib parser takes seconds on this, then overflows the stack
    depth = 2000
    body = "".join(
        f"--b{n}\nContent-Type: multipart/mixed; boundary=b{n + 1}\n\n" for n in range(depth)
    )
    raw = mf.raw_mail(
        [("From", "a@example.jp"), ("Content-Type", "multipart/mixed; boundary=b0")], body
    )

    mail = parse_message(raw)

    assert mail.text.startswith("--b0\nContent-Type: multipart/mixed; boundary=b1")
    assert "mime: more than 200 multipart boundaries; body read as text" in mail.warnings


def test_damaged_base64_is_decoded_as_far_as_possible():
    raw = mf.raw_mail(
        [
            ("From", "a@example.jp"),
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Transfer-Encoding", "base64"),
        ],
        "44GC44GE4!!!4GG\n",
    )

    mail = parse_message(raw)

    assert mail.text.startswith("あい")
    assert any("base64" in w for w in mail.warnings)


# --------------------------------------------------------------------------
# Properties

HIRAGANA = [chr(c) for c in range(0x3041, 0x3097)]
KATAKANA = [chr(c) for c in range(0x30A1, 0x30F7)]
KANJI = list("注文商品配送返品交換確認在庫送料請求書見積様株式会社山田髙橋佐藤一二三")
SYMBOLS = list("、。「」（）！？ー・①②㈱～№≒ｱｲｳｴｵﾞﾟ 　")
NON_ROUNDTRIP = "¢£¬‖−〜"  # CP932 maps these onto other code points


def roundtrips(text: str, codec: str) -> bool:
    try:
        return text.encode(codec).decode(codec) == text
    except UnicodeError:
        return False


@functools.cache  # built once per codec: st.characters(codec=...) scans the code space
def texts(codec: str, *, newlines: bool) -> st.SearchStrategy[str]:
    """Mostly Japanese text, with any other printable character the codec
    can write and read back unchanged."""
    japanese = [c for c in HIRAGANA + KATAKANA + KANJI + SYMBOLS if roundtrips(c, codec)]
    other = st.characters(
        codec=codec,
        categories=["L", "M", "N", "P", "S", "Zs"],
        exclude_characters=NON_ROUNDTRIP,
    )
    alphabet = st.one_of(st.sampled_from(japanese), other, *([st.just("\n")] if newlines else []))
    return st.text(alphabet, max_size=120)


def tidy(text: str) -> str:
    """The documented normalisation of ParsedMail.text: leading blank lines
    and trailing whitespace go; a body of nothing but whitespace is empty."""
    return re.sub(r"\A(?:[ \t]*\n)+", "", text).rstrip(" \t\n") if text.strip() else ""


@pytest.mark.parametrize(
    ("charset", "codec"),
    [("utf-8", "utf-8"), ("iso-2022-jp", "iso2022_jp"), ("shift_jis", "cp932")],
)
@settings(max_examples=150)
@given(data=st.data())
def test_property_subject_and_body_round_trip_through_the_email_package(charset, codec, data):
    subject = data.draw(texts(codec, newlines=False), label="subject")
    body = data.draw(texts(codec, newlines=True), label="body")
    assume(roundtrips(subject, codec) and roundtrips(body, codec))
    assume("=?" not in subject)

    mail = parse_message(mf.email_package_message(subject, body, charset))

    assert mail.subject == subject.strip()
    assert mail.text == tidy(body)
    assert not any(w.startswith(("body", "subject")) for w in mail.warnings)


@settings(max_examples=300)
@given(raw=st.binary(max_size=2000))
@example(raw=b"Content-Type: multipart/mixed; boundary=x\n\n--x\n")
@example(raw=b"Subject: =?iso-2022-jp?B?GyRC?=\n\n\x1b$B")
def test_property_parse_message_never_raises_on_arbitrary_bytes(raw):
    try:
        mail = parse_message(raw)
    except MailParseError:
        return
    assert_sane(mail)


def assert_sane(mail: ParsedMail) -> None:
    assert not any(w.startswith("internal") for w in mail.warnings)
    for text in (mail.subject, mail.text, mail.visible_text, mail.from_name):
        assert "\x00" not in text  # PostgreSQL text refuses NUL


header_names = st.sampled_from(
    ["Subject", "From", "To", "Cc", "Date", "Message-ID", "References", "In-Reply-To",
     "Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "Return-Path",
     "Auto-Submitted", "X-Madoguchi-Delivery"]
)  # fmt: skip
header_values = st.one_of(
    st.sampled_from(
        [
            "multipart/mixed; boundary=b",
            'multipart/alternative; boundary="b"',
            "multipart/report; report-type=delivery-status; boundary=b",
            "text/plain; charset=iso-2022-jp",
            "text/html; charset=shift_jis",
            "text/plain; charset*=utf-8''%E3%81%82",
            "message/rfc822",
            "base64",
            "quoted-printable",
            "attachment; filename*0*=utf-8''%E8; filename*1=x.pdf",
            "=?ISO-2022-JP?B?GyRCJCIbKEI=?=",
            "=?utf-8?q?=E3=81?= =?utf-8?q?=82?=",
            "<a@b> <c@d>",
            "<>",
            "Fri, 20 Nov 2026 10:15:00 +0900",
        ]
    ),
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b" ").decode("latin-1")),
)
part_headers = st.lists(st.tuples(header_names, header_values), max_size=4)


@st.composite
def mail_like(draw) -> bytes:
    """Mail-shaped input: plausible and broken headers, nested parts with
    boundary lines, random payloads, cut anywhere."""
    out = []
    for name, value in draw(
        st.lists(st.tuples(header_names, header_values), min_size=1, max_size=8)
    ):
        out.append(f"{name}: {value}\r\n".encode("latin-1"))
    out.append(b"\r\n")
    for _ in range(draw(st.integers(0, 4))):
        out.append(b"--b\r\n")
        for name, value in draw(part_headers):
            out.append(f"{name}: {value}\r\n".encode("latin-1"))
        out.append(b"\r\n" + draw(st.binary(max_size=200)) + b"\r\n")
    if draw(st.booleans()):
        out.append(b"--b--\r\n")
    raw = b"".join(out)
    return raw[: draw(st.integers(1, len(raw)))]


@settings(max_examples=300)
@given(raw=mail_like())
@example(raw=b"To: x\r\nContent-Type: attachment; filename*0*=utf-8''%E8; filename*")
def test_property_mail_shaped_garbage_never_breaks_the_parser(raw):
    try:
        mail = parse_message(raw)
    except MailParseError:
        return
    assert_sane(mail)


REFERENCE_PREFIXES = st.lists(
    st.sampled_from(["Re:", "RE:", "Fwd:", "FW:", "転送:", "返信:", "Ｒｅ：", "Re[2]:", "AW:"]),
    max_size=4,
)
FULL_WIDTH = str.maketrans("Q-0123456789", "Ｑ－０１２３４５６７８９")


@settings(max_examples=200)
@given(
    prefixes=REFERENCE_PREFIXES,
    before=st.text(max_size=30),
    after=st.text(max_size=30),
    year=st.integers(0, 99),
    month=st.integers(1, 12),
    number=st.integers(0, 99999),
    frame=st.sampled_from(["{}", "[{}]", "【{}】", "({})", "（{}）", "「{}」"]),
    dash=st.sampled_from(["-", "－", "ー", "−", "―"]),
    full_width=st.booleans(),
)
def test_property_find_reference_finds_an_embedded_reference(
    prefixes, before, after, year, month, number, frame, dash, full_width
):
    assume(find_reference(before) is None)
    canonical = f"Q-{year:02d}{month:02d}-{number:05d}"
    written = canonical.translate(FULL_WIDTH) if full_width else canonical
    written = written.replace("-", dash).replace("－", dash) if dash != "-" else written
    subject = " ".join([*prefixes, before, frame.format(written), after])

    assert find_reference(subject) == canonical


@given(prefixes=REFERENCE_PREFIXES, subject=st.text(max_size=40))
def test_property_prefixes_never_change_the_stripped_subject(prefixes, subject):
    assert subject_strip_prefixes(" ".join([*prefixes, subject])) == subject_strip_prefixes(subject)


# CP932's side of the pairs in NON_ROUNDTRIP: Windows writes ￠ as the JIS
# code of ¢, and ISO-2022-JP cannot say which of the two was meant. Those
# codes read the JIS way (¢, 〜) unless the mail also uses CP932's own rows
# (①, 髙: then it is Windows's and they read ￠, ～); the rest must come back.
CP932_SIDE_OF_NON_ROUNDTRIP = "￠￡￢∥－～"


@given(text=texts("cp932", newlines=True))
def test_property_windows_iso2022jp_decodes_back_to_the_text(text):
    assume(roundtrips(text, "cp932"))
    assume(not set(CP932_SIDE_OF_NON_ROUNDTRIP) & set(text))
    try:
        encoded = mf.iso2022jp_windows(text)
    except ValueError:  # an IBM extension without a JIS row
        assume(False)

    assert decode_text(encoded, "ISO-2022-JP") == (text, None)


DANGEROUS = st.sampled_from(
    [
        "<script>alert(1)</script>", "<SCRIPT SRC=//evil></SCRIPT>", "<img src=x onerror=alert(1)>",
        '<a href="javascript:alert(1)">x</a>', '<a href=" JaVaScRiPt:alert(1)">x</a>',
        "<iframe src=//evil></iframe>", '<div style="background:url(javascript:x)">s</div>',
        "<svg onload=alert(1)>", '<p onclick="x()">p</p>', "<style>*{}</style>", "<b>bold</b>",
        "<!-- comment <script> -->", "<object data=x></object>", "<embed src=x>", "テキスト",
        "<form><input></form>", "<math><mi xlink:href=javascript:x>m</mi></math>", "<",
    ]
)  # fmt: skip


@given(fragments=st.lists(DANGEROUS, max_size=8))
def test_property_sanitised_html_has_no_active_content(fragments):
    clean = sanitise_html("".join(fragments)).lower()

    for needle in ("<script", "javascript:", "onerror", "onclick", "onload", "<iframe", "style="):
        assert needle not in clean
    html_to_text("".join(fragments))  # and the text rendering copes


# --------------------------------------------------------------------------
# No input takes more than linear time (issue 15, point 19)


@contextmanager
def at_most(seconds: float):
    """Stop the block with TimeoutError after ``seconds`` (a quadratic
    parser must fail the test, not hang the run)."""

    def expire(_signum, _frame):
        raise TimeoutError(f"still parsing after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def parse_seconds(raw: bytes) -> float:
    """How long parse_message takes, infinite past 5 s."""
    start = time.perf_counter()
    try:
        with at_most(5):
            parse_message(raw)
    except TimeoutError:
        return math.inf
    return time.perf_counter() - start


def assert_linear(build) -> None:
    """A megabyte parses well under a second, and ten times the input takes
    about ten times as long (a quadratic parser: a hundred times)."""
    small, large = parse_seconds(build(100_000)), parse_seconds(build(1_000_000))
    assert large < 1.0
    assert large < 30 * small + 0.25


def huge_address_fields(size: int) -> bytes:
    junk = b"x" * size  # no "@": the parser finds nothing, the fallback searches
    return mf.raw_mail([("From", junk), ("To", junk), ("Cc", junk)], "本文")


def huge_references(size: int) -> bytes:
    ids = " ".join(f"<{number}.ref@example.jp>" for number in range(size // 20))
    return mf.raw_mail([("From", "a@example.jp"), ("References", ids)], "本文")


def punycode_body(size: int) -> bytes:
    # decoding punycode inserts each character into a list: quadratic
    text = "".join(chr(0x3042 + (number * 7) % 80) for number in range(size // 2))
    data = text.encode("punycode")[:size]
    return mf.raw_mail(
        [("From", "a@example.jp"), ("Content-Type", "text/plain; charset=punycode")], data
    )


def punycode_subject(size: int) -> bytes:
    text = "".join(chr(0x3042 + (number * 7) % 80) for number in range(size // 3))
    word = base64.b64encode(text.encode("punycode")[: size * 3 // 4]).decode("ascii")
    return mf.raw_mail([("From", "a@example.jp"), ("Subject", f"=?punycode?B?{word}?=")], "本文")


@pytest.mark.parametrize(
    "build", [huge_address_fields, huge_references, punycode_body, punycode_subject]
)
def test_parsing_time_grows_linearly_with_the_input(build):
    assert_linear(build)


def test_a_megabyte_address_field_without_an_address_is_read_up_to_a_bound():
    mail = parse_message(huge_address_fields(1_000_000))

    assert (mail.from_address, mail.to, mail.cc) == ("", (), ())
    assert "from: longer than 32768 bytes; the rest not read" in mail.warnings


def test_the_fallback_address_search_finds_what_the_pattern_found():
    # an unclosed comment: the stdlib parser finds no address at all
    broken = "(x taro@example.jp;@x @ y@ hanako@@example.jp"
    raw = mf.raw_mail([("From", broken), ("To", broken)], "x")

    mail = parse_message(raw)

    assert mail.from_address == "taro@example.jp"
    assert mail.to == ("taro@example.jp", "hanako@@example.jp")
    assert "from: malformed address list, addresses picked out" in mail.warnings


def test_thousands_of_references_keep_the_root_and_the_newest():
    mail = parse_message(huge_references(1_000_000))

    assert len(mail.references) == 100
    assert mail.references[0] == "<0.ref@example.jp>"
    assert mail.references[-1] == f"<{1_000_000 // 20 - 1}.ref@example.jp>"
    assert len(set(mail.thread_ids)) == len(mail.thread_ids) == 100


@pytest.mark.parametrize("label", ["punycode", "idna", "zlib_codec", "rot13", "unicode_escape"])
def test_a_codec_that_is_no_text_charset_is_an_unknown_label(label):
    raw = mf.raw_mail(
        [
            ("From", "a@example.jp"),
            ("Subject", f"=?{label}?B?{base64.b64encode('在庫'.encode()).decode()}?="),
            ("Content-Type", f"text/plain; charset={label}"),
        ],
        "在庫はありますか".encode(),
    )

    mail = parse_message(raw)

    assert (mail.subject, mail.text) == ("在庫", "在庫はありますか")
    assert f"body (text/plain): unknown charset '{label}'; read as utf-8" in mail.warnings


@pytest.mark.parametrize(
    ("label", "text"),
    [("windows-1252", "café"), ("koi8-r", "привет"), ("gb2312", "你好"), ("utf-16", "こんにちは")],
)
def test_text_charsets_beyond_japanese_are_still_read(label, text):
    raw = mf.raw_mail(
        [("From", "a@example.jp"), ("Content-Type", f"text/plain; charset={label}")],
        text.encode(label),
    )

    mail = parse_message(raw)

    assert mail.text == text
    assert not mail.warnings


def mail_with_attachment(payload: bytes) -> bytes:
    return mf.mail_with_pdf([("From", "a@example.jp"), ("Subject", "図面を送ります")], payload)


def test_a_30_mb_attachment_is_read_within_three_times_the_message_size():
    payload = random.Random(30).randbytes(30 * 1024 * 1024)
    raw = mail_with_attachment(payload)

    tracemalloc.start()
    try:
        mail = parse_message(raw, max_attachment_bytes=len(payload))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert mail.text == "図面を添付します。"
    [attachment] = mail.attachments
    assert (attachment.filename, attachment.size) == ("zumen.pdf", len(payload))
    assert attachment.payload == payload
    assert peak < 3 * len(raw)  # the stdlib parser alone: nine times


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda body: body + b"\r\nnot base64 at the end", id="trailing text"),
        pytest.param(lambda body: body[:-3] + b"\r\n", id="bad padding"),
    ],
)
def test_a_long_base64_body_decodes_as_the_stdlib_decodes_it(damage):
    payload = random.Random(7).randbytes(200_000)
    raw = mail_with_attachment(payload)
    body = mf.base64_lines(payload)
    damaged = raw.replace(body, damage(body))

    [attachment] = parse_message(damaged).attachments

    part = email.message_from_bytes(damaged).get_payload()[1]
    assert attachment.payload == part.get_payload(decode=True)


def test_an_attached_message_with_a_long_base64_part_is_kept_whole():
    payload = random.Random(8).randbytes(200_000)
    inner = mail_with_attachment(payload)
    raw = mf.raw_mail(
        [("From", "a@example.jp"), ("Content-Type", 'multipart/mixed; boundary="outer"')],
        b"\r\n".join([b"--outer", b"Content-Type: message/rfc822", b"", inner, b"--outer--", b""]),
    )

    [attached] = parse_message(raw).attachments

    assert attached.filename == "図面を送ります.eml"
    assert parse_message(attached.payload).attachments[0].payload == payload
