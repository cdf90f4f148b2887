"""Header fields: encoded-words, raw 8-bit values, addresses, message ids
and dates, read leniently the way Japanese mailers write them."""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from datetime import UTC, datetime, timedelta, timezone
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from .charsets import decode_text

JST = timezone(timedelta(hours=9), "JST")

# RFC 2047 encoded-word, with the RFC 2231 language suffix (=?ISO-2022-JP*ja?B?...?=).
_ENCODED_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=")
_FOLD = re.compile(rb"\r?\n(?=[ \t])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# What separates the ``local@domain`` tokens of the fallback address search.
_ADDRESS_DELIMITERS = re.compile(r"[\s<>\"'(),;:\[\]]+")
_MSG_ID = re.compile(r"<([^<>]*)>")
# How much of an address field (all its occurrences together) is read: a
# To of a thousand recipients fits; a megabyte of junk is not scanned.
MAX_ADDRESS_FIELD_BYTES = 32 * 1024
# Ids kept from a References field: the first (the thread's root) and the
# newest. RFC 5322 lets a mailer trim the middle the same way.
MAX_REFERENCES = 100


def raw_header(msg: Message, name: str) -> bytes | None:
    """The first ``name`` field of ``msg`` as the bytes that arrived, unfolded."""
    name = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == name:
            raw = str(value).encode("utf-8", "surrogateescape")
            return _FOLD.sub(b"", raw).replace(b"\r", b"").replace(b"\n", b"")
    return None


def raw_headers(msg: Message, name: str) -> list[bytes]:
    """Every ``name`` field of ``msg``, as bytes, unfolded."""
    name = name.lower()
    return [
        _FOLD.sub(b"", str(value).encode("utf-8", "surrogateescape"))
        for key, value in msg.raw_items()
        if key.lower() == name
    ]


def header_param(msg: Message, name: str, header: str = "content-type") -> str | tuple | None:
    """``msg.get_param``, except that parameters the stdlib cannot parse
    (it raises TypeError on broken RFC 2231 continuations) read as absent.
    RFC 2231 values come as ``(charset, language, value)`` like the stdlib's."""
    try:
        return msg.get_param(name, header=header)
    except Exception:  # the stdlib's parameter parser on damaged input
        return None


def header_param_text(msg: Message, name: str, header: str = "content-type") -> str:
    """A parameter as plain text ("" when absent or unreadable)."""
    value = header_param(msg, name, header)
    if isinstance(value, tuple):
        value = value[2]
    return str(value or "").strip()


def header_text(raw: bytes | None, warnings: list[str], field: str = "header") -> str:
    """Decode a raw field value: 8-bit bytes first (some mailers send
    Shift_JIS or ISO-2022-JP in headers unencoded), then encoded-words.
    Control characters become spaces; never raises."""
    if raw is None:
        return ""
    text, note = decode_text(raw, None)
    if note:
        warnings.append(f"{field}: {note}")
    return clean_header(decode_words(text, warnings, field))


def clean_header(text: str) -> str:
    """Line breaks and tabs become spaces, other control characters go."""
    text = text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("\t", " ")
    return _CONTROL.sub("", text).strip()


def decode_words(text: str, warnings: list[str], field: str = "header") -> str:
    """Decode the RFC 2047 encoded-words in ``text``.

    Whitespace between adjacent encoded-words is dropped (RFC 2047 §6.2);
    adjacent words in the same charset are joined as bytes before decoding,
    because mailers split multibyte characters across words. Each run is
    decoded by :func:`decode_text`, so CP932 characters inside
    ``=?ISO-2022-JP?...?=`` and mislabelled charsets still come out.
    """
    if "=?" not in text:
        return text
    # Runs of plain text (str) and of encoded bytes with their charset.
    runs: list[str | tuple[str, bytearray]] = []
    pos = 0
    for match in _ENCODED_WORD.finditer(text):
        gap = text[pos : match.start()]
        follows_word = bool(runs) and isinstance(runs[-1], tuple)
        if gap and not (follows_word and not gap.strip(" \t\r\n")):
            runs.append(gap)
        charset, kind, payload = match.groups()
        data = _b_decode(payload) if kind in "bB" else _q_decode(payload)
        last = runs[-1] if runs else None
        if isinstance(last, tuple) and last[0].lower() == charset.lower():
            last[1].extend(data)
        else:
            runs.append((charset, bytearray(data)))
        pos = match.end()
    runs.append(text[pos:])
    out = []
    for run in runs:
        if isinstance(run, str):
            out.append(run)
            continue
        decoded, note = decode_text(bytes(run[1]), run[0])
        if note:
            warnings.append(f"{field}: {note}")
        out.append(decoded)
    return "".join(out)


def _b_decode(payload: str) -> bytes:
    cleaned = re.sub(r"[^A-Za-z0-9+/]", "", payload)
    if len(cleaned) % 4 == 1:  # a stray character: no valid base64 ends like this
        cleaned = cleaned[:-1]
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except binascii.Error:  # pragma: no cover - cleaned input always decodes
        return b""


def _q_decode(payload: str) -> bytes:
    return quopri.decodestring(payload.encode("utf-8", "surrogateescape"), header=True)


def header_addresses(
    raw_values: list[bytes], warnings: list[str], field: str
) -> list[tuple[str, str]]:
    """``(display name, address)`` pairs from address fields, names decoded.

    Addresses are parsed before names are decoded (a decoded name may hold
    commas); when the parser finds nothing that looks like an address, a
    plain ``local@domain`` search of the field is the fallback.
    """
    pairs: list[tuple[str, str]] = []
    budget = MAX_ADDRESS_FIELD_BYTES
    for raw in raw_values:
        if len(raw) > budget:
            warnings.append(
                f"{field}: longer than {MAX_ADDRESS_FIELD_BYTES} bytes; the rest not read"
            )
            raw = raw[:budget]
        budget -= len(raw)
        if not raw:
            break
        text, note = decode_text(raw, None)
        if note:
            warnings.append(f"{field}: {note}")
        text = clean_header(text)
        try:
            parsed = getaddresses([text])
        except Exception:  # the stdlib address parser has raised on odd input
            parsed = []
        found = [
            (clean_header(decode_words(name, warnings, field)), address.strip())
            for name, address in parsed
            if "@" in address
        ]
        if not found:
            # Tokens with an "@" inside: a split, linear however long the
            # field (a search pattern would rescan a long token from each of
            # its characters).
            found = [("", token) for token in _ADDRESS_DELIMITERS.split(text) if "@" in token[1:-1]]
            if found:
                warnings.append(f"{field}: malformed address list, addresses picked out")
        pairs.extend(found)
    return pairs


def message_ids(raw: bytes | None) -> list[str]:
    """Message ids in a Message-ID, In-Reply-To or References field, as
    ``<local@domain>`` (the form outbound mail is stored in), in order, once
    each; past MAX_REFERENCES, the first and the newest. Ids without angle
    brackets are accepted when they hold an ``@``."""
    if not raw:
        return []
    text = clean_header(raw.decode("utf-8", "replace"))
    found = ["".join(inner.split()) for inner in _MSG_ID.findall(text)]
    if not found:
        found = [token.strip("<>,;") for token in text.split() if "@" in token]
    ids = list(dict.fromkeys(f"<{inner}>" for inner in found if inner))
    if len(ids) > MAX_REFERENCES:
        ids = [ids[0], *ids[len(ids) - MAX_REFERENCES + 1 :]]
    return ids


_LOOSE_DATE = re.compile(
    r"(\d{4})[/.\-年](\d{1,2})[/.\-月](\d{1,2})日?(?:\([^)]*\))?[ T]+"
    r"(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([+-]\d{2}:?\d{2}|Z|JST|UTC|GMT)?"
)


def header_date(raw: bytes | None, warnings: list[str]) -> datetime | None:
    """The Date field as an aware datetime, or None.

    RFC 5322 dates and the ``2026/11/20 10:15 +0900`` shape some Japanese
    systems write are read; ``-0000``, UT and GMT mean UTC, ``JST`` means
    +09:00. A date with no zone at all is not guessed at: None, and a warning.
    """
    if not raw:
        return None
    value = " ".join(decode_text(raw, None)[0].split())
    try:
        parsed: datetime | None = parsedate_to_datetime(value)
    except (ValueError, TypeError, IndexError, OverflowError):
        parsed = _loose_date(value)
    if parsed is not None and parsed.tzinfo is None:
        zone = value.rsplit(" ", 1)[-1].upper().strip("()")
        if zone in ("-0000", "UT", "UTC", "GMT", "Z"):
            parsed = parsed.replace(tzinfo=UTC)
        elif "JST" in value.upper():
            parsed = parsed.replace(tzinfo=JST)
        else:
            parsed = None
    if parsed is None or not 1970 <= parsed.year <= 2200:
        warnings.append(f"date: unreadable or zoneless Date {value[:80]!r}")
        return None
    return parsed


def _loose_date(value: str) -> datetime | None:
    match = _LOOSE_DATE.search(value)
    if not match:
        return None
    year, month, day, hour, minute, second, zone = match.groups()
    try:
        parsed = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0))
    except ValueError:
        return None
    if zone in (None, "JST", "UTC", "GMT", "Z"):
        return parsed if zone is None or zone == "JST" else parsed.replace(tzinfo=UTC)
    sign = 1 if zone[0] == "+" else -1
    digits = zone[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    if offset >= timedelta(hours=24):
        return None
    return parsed.replace(tzinfo=timezone(sign * offset))
