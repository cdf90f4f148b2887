"""Building test mail the way Japanese mailers really write it.

Two kinds of helpers:

* byte-level builders (:func:`raw_mail`, :func:`encoded_words`,
  :func:`iso2022jp_windows`) for the shapes the stdlib would never produce:
  Shift_JIS labelled "Shift_JIS" but holding CP932 characters, ISO-2022-JP
  with NEC/IBM extensions as Outlook Express and Becky! send it, raw 8-bit
  headers, encoded-words split in the middle of a character;
* :func:`email_package_message`, which builds with Python's own ``email``
  package, for the round-trip properties.
"""

from __future__ import annotations

import base64
import quopri
from email import encoders, policy
from email.header import Header
from email.message import EmailMessage, Message
from email.mime.nonmultipart import MIMENonMultipart
from email.mime.text import MIMEText

CRLF = b"\r\n"


def iso2022jp_windows(text: str) -> bytes:
    """Encode like Windows' CP50221: CP932 characters (①, ㈱, 髙...) as JIS
    codes under ``ESC $ B``, half-width katakana under ``ESC ( I``.

    Each CP932 double-byte code is converted arithmetically to its JIS row
    and cell; characters beyond JIS row 94 (IBM extensions at 0xFA-0xFC that
    have no NEC-selected twin) cannot be written and raise ValueError.
    """
    out = bytearray()
    mode = "ascii"

    def switch(new: str) -> None:
        nonlocal mode
        if new != mode:
            out.extend({"ascii": b"\x1b(B", "kanji": b"\x1b$B", "kana": b"\x1b(I"}[new])
            mode = new

    for char in text:
        if char in "\r\n":
            switch("ascii")
            out.extend(char.encode("ascii"))
            continue
        code = char.encode("cp932")
        if len(code) == 1 and code[0] < 0x80:
            switch("ascii")
            out.extend(code)
        elif len(code) == 1:  # half-width katakana 0xA1-0xDF
            switch("kana")
            out.append(code[0] - 0x80)
        else:
            switch("kanji")
            out.extend(_sjis_to_jis(code[0], code[1]))
    switch("ascii")
    return bytes(out)


def _sjis_to_jis(s1: int, s2: int) -> bytes:
    if s1 >= 0xF0:
        raise ValueError(f"CP932 {s1:02X}{s2:02X} has no JIS row")
    row = (s1 - 0x81 if s1 <= 0x9F else s1 - 0xC1) * 2
    if s2 >= 0x9F:
        return bytes((row + 0x22, s2 - 0x7E))
    return bytes((row + 0x21, s2 - (0x20 if s2 >= 0x80 else 0x1F)))


def encode(text: str, charset: str) -> bytes:
    """``text`` in a mail charset label as mailers write it: "Shift_JIS"
    means CP932, "ISO-2022-JP" means Windows' CP50221."""
    label = charset.lower()
    if label in ("shift_jis", "shift-jis", "sjis", "windows-31j", "cp932"):
        return text.encode("cp932")
    if label == "iso-2022-jp":
        return iso2022jp_windows(text)
    return text.encode(label)


def encoded_words(
    text: str, charset: str = "UTF-8", *, kind: str = "B", chars_per_word: int = 12
) -> str:
    """``text`` as RFC 2047 encoded-words of at most ``chars_per_word``
    characters each, folded onto continuation lines (each word stands alone,
    as the RFC wants: ISO-2022-JP words end in ASCII mode)."""
    words = []
    for start in range(0, max(len(text), 1), chars_per_word):
        chunk = encode(text[start : start + chars_per_word], charset)
        if kind.upper() == "B":
            payload = base64.b64encode(chunk).decode("ascii")
        else:
            payload = quopri.encodestring(chunk, header=True).decode("ascii")
            payload = payload.replace("?", "=3F").replace("=\n", "")
        words.append(f"=?{charset}?{kind}?{payload}?=")
    return "\r\n ".join(words)


def split_encoded_words(text: str, charset: str = "UTF-8", *, split_at: int = 4) -> str:
    """Encoded-words split in the middle of a multibyte character, as some
    mobile-phone mailers do: the bytes, not the characters, are cut."""
    data = encode(text, charset)
    parts = [data[i : i + split_at] for i in range(0, len(data), split_at)]
    return " ".join(f"=?{charset}?B?{base64.b64encode(p).decode('ascii')}?=" for p in parts)


def raw_mail(headers: list[tuple[str, str | bytes]], body: bytes | str = b"") -> bytes:
    """A message from header fields and a body, with CRLF line ends. Str
    values and bodies go out as UTF-8 (raw, unencoded: as some mailers do);
    pass bytes for anything else."""
    lines = []
    for name, value in headers:
        value_bytes = value if isinstance(value, bytes) else value.encode("utf-8")
        lines.append(name.encode("ascii") + b": " + value_bytes)
    body_bytes = body if isinstance(body, bytes) else body.encode("utf-8")
    body_bytes = body_bytes.replace(b"\r\n", b"\n").replace(b"\n", CRLF)
    return CRLF.join(lines) + CRLF + CRLF + body_bytes


def base64_lines(data: bytes) -> bytes:
    """Base64 in 76-character lines, as MIME wants."""
    encoded = base64.b64encode(data)
    return CRLF.join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


def text_body(text: str, charset: str, transfer: str) -> tuple[list[tuple[str, str]], bytes]:
    """Content headers and encoded body of a text/plain part, CRLF line ends."""
    data = encode(text.replace("\r\n", "\n"), charset)
    if transfer == "base64":
        body = base64_lines(data.replace(b"\n", CRLF))
    elif transfer == "quoted-printable":
        body = quopri.encodestring(data).replace(b"\n", CRLF)
    else:
        body = data.replace(b"\n", CRLF)
    headers = [
        ("Content-Type", f'text/plain; charset="{charset}"'),
        ("Content-Transfer-Encoding", transfer),
    ]
    return headers, body


def email_package_message(subject: str, body: str, charset: str) -> bytes:
    """Build with Python's ``email`` package: UTF-8 through
    :class:`EmailMessage`, ISO-2022-JP through :class:`MIMEText` and
    :class:`Header` (7bit, as Japanese mailers send it), and Shift_JIS as a
    CP932 payload labelled "Shift_JIS" in base64 (the stdlib would convert
    Shift_JIS to ISO-2022-JP on its own; the subject's encoded-words come
    from :func:`encoded_words`, since :class:`Header` would encode with the
    strict Shift_JIS codec)."""
    if charset == "utf-8":
        msg = EmailMessage(policy=policy.SMTP)
        msg["Subject"] = subject
        msg["From"] = "Customer <customer@example.jp>"
        msg["To"] = "support@shop.example.jp"
        msg.set_content(body, charset="utf-8")
        return msg.as_bytes()
    if charset == "iso-2022-jp":
        legacy: Message = MIMEText(body, "plain", "iso-2022-jp")
        legacy["Subject"] = Header(subject, "iso-2022-jp", header_name="Subject")
    elif charset == "shift_jis":
        legacy = MIMENonMultipart("text", "plain", charset="Shift_JIS")
        legacy.set_payload(body.replace("\n", "\r\n").encode("cp932"))
        encoders.encode_base64(legacy)
        legacy["Subject"] = encoded_words(subject, "Shift_JIS")
    else:
        raise ValueError(charset)
    legacy["From"] = "Customer <customer@example.jp>"
    legacy["To"] = "support@shop.example.jp"
    return legacy.as_bytes(policy=policy.compat32.clone(linesep="\r\n"))


def mail_with_pdf(headers: list[tuple[str, str]], pdf: bytes) -> bytes:
    """A multipart mail: a short text and ``pdf`` attached in base64."""
    return raw_mail(
        [*headers, ("Content-Type", 'multipart/mixed; boundary="b1"')],
        CRLF.join(
            [
                b"--b1",
                b"Content-Type: text/plain; charset=utf-8",
                b"",
                "図面を添付します。".encode(),
                b"--b1",
                b"Content-Type: application/pdf",
                b'Content-Disposition: attachment; filename="zumen.pdf"',
                b"Content-Transfer-Encoding: base64",
                b"",
                base64_lines(pdf),
                b"--b1--",
                b"",
            ]
        ),
    )


def slow_mail(lines: int = 9000) -> bytes:
    """Undeclared Shift_JIS (15 MB by default): charset detection reads it
    in about 0.2 s per 1,000 lines on an idle machine (a mail that takes
    long to read, without any bug). Tests give it a few times the time
    limit they test."""
    return raw_mail(
        [("From", "slow@example.jp"), ("Subject", "長文"), ("Message-ID", "<slow.1@example.jp>")],
        (("在庫はありますか。明日までに届きますか。" * 40 + "\n") * lines).encode("cp932"),
    )
