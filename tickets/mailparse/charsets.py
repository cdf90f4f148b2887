"""Turning the bytes of Japanese mail into text, whatever they claim to be.

Japanese mail arrives in these encodings, often mislabelled:

* ISO-2022-JP (7-bit, escape sequences). Windows mailers write Microsoft's
  variant (CP50220/CP50221): the JIS rows CP932 adds (①, ㈱, the NEC-selected
  IBM kanji such as 髙) and half-width katakana, all under the plain
  ``charset=ISO-2022-JP`` label. :func:`decode_iso2022jp_ms` reads them by
  converting JIS codes to Shift_JIS and decoding with CP932.
* Shift_JIS, which in practice is always CP932 (a superset).
* EUC-JP, rare now, and UTF-8.

:func:`decode_text` never raises: it tries the declared charset and its
sensible supersets, then detection, then decodes with replacement characters
and says so in the warning it returns.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable

ESC = 0x1B
# Escapes that start a double-byte or kana run: their presence means ISO-2022-JP.
_ISO2022_MARKERS = (b"\x1b$@", b"\x1b$B", b"\x1b(I", b"\x1b$(D")

# What CP932 makes of bytes no Japanese text contains (0x80, 0xA0, 0xFD-0xFF):
# a reading with these is not a clean one.
_CP932_STRAYS = frozenset("\x80\uf8f0\uf8f1\uf8f2\uf8f3")

# Labels seen on Japanese mail that Python's codec registry does not know.
_ALIASES = {
    "windows-31j": "cp932",
    "x-sjis": "cp932",
    "x-shift-jis": "cp932",
    "x-shift_jis": "cp932",
    "shift-jis": "cp932",
    "x-ms-cp932": "cp932",
    "cp943": "cp932",
    "cp943c": "cp932",
    "x-euc-jp": "euc_jp",
    "x-eucjp": "euc_jp",
    "eucjp-ms": "euc_jp",
    "euc-jp-ms": "euc_jp",
    "cseucpkdfmtjapanese": "euc_jp",
    "iso-2022-jp-ms": "iso2022_jp",
    "cp50220": "iso2022_jp",
    "cp50221": "iso2022_jp",
    "cp50222": "iso2022_jp",
    "utf8mb4": "utf-8",
}
# Labels that carry no information: decode as undeclared 8-bit.
_UNINFORMATIVE = {"", "us-ascii", "ascii", "unknown-8bit", "x-unknown", "unknown", "default"}


def _decode_with(codec: str) -> Callable[[bytes, str], str]:
    return lambda data, errors: data.decode(codec, errors)


def decode_iso2022jp_ms(data: bytes, errors: str = "strict") -> str:
    """Decode ISO-2022-JP as Windows writes it (CP50220/CP50221).

    JIS X 0208 pairs are converted arithmetically to Shift_JIS and decoded
    with CP932, so the NEC special characters (row 13) and NEC-selected IBM
    extensions (rows 89-92) come out right; ``ESC ( I`` and SO/SI select
    half-width katakana. Escapes CP932 has no table for (JIS X 0212, 0213)
    and 8-bit bytes are errors: with ``errors="strict"`` they raise
    :class:`UnicodeDecodeError`, otherwise they become U+FFFD.
    """
    pieces: list[str] = []
    buf = bytearray()
    mode = saved_mode = "ascii"  # ascii | kanji | kana
    i, n = 0, len(data)

    def bad(start: int, end: int, reason: str) -> None:
        if errors == "strict":
            raise UnicodeDecodeError("iso2022_jp_ms", data, start, end, reason)
        pieces.append(buf.decode("cp932", errors))
        pieces.append("\ufffd")
        buf.clear()

    while i < n:
        byte = data[i]
        if byte == ESC:
            seq = data[i : i + 4]
            if seq.startswith((b"\x1b(B", b"\x1b(J", b"\x1b(H")):
                mode, i = "ascii", i + 3
            elif seq.startswith(b"\x1b(I"):
                mode, i = "kana", i + 3
            elif seq.startswith((b"\x1b$B", b"\x1b$@")):
                mode, i = "kanji", i + 3
            elif seq.startswith(b"\x1b&@"):
                i += 3  # JIS X 0208-1990 announcer, followed by ESC $ B
            else:
                bad(i, min(i + 4, n), "escape sequence CP932 has no table for")
                mode, i = "ascii", i + 1
        elif byte == 0x0E:  # SO: half-width katakana until SI
            saved_mode, mode, i = mode, "kana", i + 1
        elif byte == 0x0F:  # SI
            mode, i = (saved_mode if saved_mode != "kana" else "ascii"), i + 1
        elif byte >= 0x80:
            bad(i, i + 1, "8-bit byte in 7-bit ISO-2022-JP")
            i += 1
        elif byte in (0x0A, 0x0D):  # a line break ends any shift, as mailers assume
            buf.append(byte)
            mode, i = "ascii", i + 1
        elif mode == "kanji":
            second = data[i + 1] if i + 1 < n else None
            if second is None or not (0x21 <= byte <= 0x7E and 0x21 <= second <= 0x7E):
                bad(i, min(i + 2, n), "incomplete or invalid JIS X 0208 pair")
                i += 1
                continue
            buf.extend(_jis_to_sjis(byte, second))
            i += 2
        elif mode == "kana" and 0x21 <= byte <= 0x5F:
            buf.append(byte + 0x80)
            i += 1
        else:
            buf.append(byte)
            i += 1
    pieces.append(buf.decode("cp932", errors))
    return "".join(pieces)


def _jis_to_sjis(j1: int, j2: int) -> bytes:
    s1 = ((j1 - 0x21) >> 1) + 0x81
    if s1 > 0x9F:
        s1 += 0x40
    if j1 & 1:
        s2 = j2 + 0x1F
        if s2 >= 0x7F:
            s2 += 1
    else:
        s2 = j2 + 0x7E
    return bytes((s1, s2))


_ISO2022JP_CHAIN: tuple[tuple[str, Callable[[bytes, str], str]], ...] = (
    ("iso-2022-jp", _decode_with("iso2022_jp")),
    ("iso-2022-jp (CP932 extensions)", decode_iso2022jp_ms),
    ("iso-2022-jp-2", _decode_with("iso2022_jp_2")),
    ("iso-2022-jp-2004", _decode_with("iso2022_jp_2004")),
)
_CP932_CHAIN = (
    ("cp932", _decode_with("cp932")),
    ("shift_jis_2004", _decode_with("shift_jis_2004")),
)
_EUCJP_CHAIN = (("euc-jp", _decode_with("euc_jp")), ("euc-jis-2004", _decode_with("euc_jis_2004")))
_UTF8_CHAIN = (("utf-8", _decode_with("utf-8-sig")),)


# The Japanese codecs (by codecs.lookup name) and the chain that reads each.
_JAPANESE_CODECS = {
    **dict.fromkeys(
        ("iso2022_jp", "iso2022_jp_1", "iso2022_jp_2", "iso2022_jp_2004", "iso2022_jp_3"),
        _ISO2022JP_CHAIN,
    ),
    "iso2022_jp_ext": _ISO2022JP_CHAIN,
    **dict.fromkeys(("shift_jis", "cp932", "shift_jis_2004", "shift_jisx0213"), _CP932_CHAIN),
    **dict.fromkeys(("euc_jp", "euc_jis_2004", "euc_jisx0213"), _EUCJP_CHAIN),
    "utf-8": _UTF8_CHAIN,
}
# Other charsets mail is written in. Only text codecs: Python's registry also
# holds codecs that are not text at all (zlib_codec, base64_codec, rot_13)
# and ones that decode in quadratic time (punycode, idna): a label naming
# one of those is unknown, and the bytes are read by detection.
_TEXT_CODECS = frozenset(
    codecs.lookup(label).name
    for label in (
        *("utf-16", "utf-16-be", "utf-16-le", "utf-32", "utf-32-be", "utf-32-le", "utf-7"),
        *(f"iso8859-{part}" for part in (*range(1, 12), *range(13, 17))),
        *(f"cp{page}" for page in (*range(1250, 1259), 874, 437, 850, 852, 855, 866)),
        *("koi8-r", "koi8-u", "mac-roman", "tis-620"),
        *("big5", "big5hkscs", "cp950", "gb2312", "gbk", "gb18030", "hz"),
        *("euc-kr", "cp949", "johab", "iso2022-kr"),
    )
)


def _chain_for(label: str) -> tuple[tuple[str, Callable[[bytes, str], str]], ...] | None:
    """The decoders to try, in order, for a declared charset label;
    None when the label says nothing useful (absent, us-ascii, unknown, or
    a codec that is no text charset)."""
    if label in _UNINFORMATIVE:
        return None
    label = _ALIASES.get(label, label)  # Japanese labels the registry does not know
    try:
        name = codecs.lookup(label).name
    except (LookupError, ValueError):
        return None
    if name in _JAPANESE_CODECS:
        return _JAPANESE_CODECS[name]
    if name not in _TEXT_CODECS:
        return None
    return ((name, _decode_with(name)),)


def _japanese_score(text: str) -> int:
    """How much a reading looks like real Japanese: kana and kanji count for
    it, half-width katakana and private-use characters against."""
    score = 0
    for ch in text:
        cp = ord(ch)
        if 0x3041 <= cp <= 0x309F:  # hiragana: the strongest sign
            score += 3
        elif 0x30A0 <= cp <= 0x30FF or 0x4E00 <= cp <= 0x9FFF or 0x3000 <= cp <= 0x303F:
            score += 1
        elif 0xFF61 <= cp <= 0xFF9F or 0xE000 <= cp <= 0xF8FF:
            score -= 2
    return score


def _junk_count(text: str) -> int:
    """Replacement characters, control characters and CP932's strays."""
    return sum(
        1
        for ch in text
        if ch == "\ufffd"
        or (ch < " " and ch not in "\t\r\n")
        or "\x7f" <= ch <= "\x9f"
        or ch in _CP932_STRAYS
    )


def _detect(data: bytes) -> tuple[str, str] | None:
    """Decode undeclared bytes: ISO-2022-JP when escapes are present, else
    UTF-8, CP932 or EUC-JP (the likeliest Japanese reading wins). None when
    no candidate decodes cleanly."""
    if all(b < 0x80 for b in data):
        if _looks_iso2022jp(data):
            for name, decoder in _ISO2022JP_CHAIN:
                try:
                    return decoder(data, "strict"), name
                except UnicodeDecodeError:
                    continue
            return None
        return data.decode("ascii"), "us-ascii"
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    readings = []
    for name, decoder in (*_CP932_CHAIN[:1], *_EUCJP_CHAIN[:1]):
        try:
            text = decoder(data, "strict")
        except UnicodeDecodeError:
            continue
        if not _CP932_STRAYS.intersection(text):
            readings.append((text, name))
    if not readings:
        return None
    return max(readings, key=lambda reading: _japanese_score(reading[0]))


def _best_lossy(data: bytes, chain: tuple[tuple[str, Callable[[bytes, str], str]], ...]) -> str:
    """The reading with the fewest replaced or control characters (then the
    most Japanese-looking, then the declared charset's first)."""
    candidates = [*chain, ("utf-8", _decode_with("utf-8")), *_CP932_CHAIN[:1], *_EUCJP_CHAIN[:1]]
    readings = []
    for index, (_name, decoder) in enumerate(candidates):
        try:
            text = decoder(data, "replace")
        except ValueError:
            continue
        readings.append((_junk_count(text), -_japanese_score(text), index, text))
    return min(readings)[3]


def _normalise_label(declared: str | None) -> str:
    return (declared or "").strip().strip("\"'").lower()


def decode_text(data: bytes, declared: str | None) -> tuple[str, str | None]:
    """Decode ``data`` labelled ``declared`` (a MIME charset, or None).

    Returns the text and a warning: None when the bytes decoded cleanly as
    declared (or, with nothing useful declared, as detected); otherwise a
    sentence saying what was done, e.g. that bytes were replaced.
    """
    label = _normalise_label(declared)
    chain = _chain_for(label)
    if chain is not None:
        for _name, decoder in chain:
            try:
                text = decoder(data, "strict")
            except ValueError:  # UnicodeDecodeError, or a codec's own complaint
                continue
            if chain is not _ISO2022JP_CHAIN and _looks_iso2022jp(data):
                detected = _detect(data)
                if detected is not None:
                    return detected[0], f"declared {declared!r} but read as {detected[1]}"
            return text, None
        detected = _detect(data)
        if detected is not None:
            return detected[0], f"declared {declared!r} but read as {detected[1]}"
        return _best_lossy(data, chain), f"declared {declared!r}; undecodable bytes replaced"
    note = "" if label in _UNINFORMATIVE or _is_ascii(label) else f"unknown charset {declared!r}"
    detected = _detect(data)
    if detected is not None:
        return detected[0], (f"{note}; read as {detected[1]}" if note else None)
    guess = _ISO2022JP_CHAIN if _looks_iso2022jp(data) else ()
    return _best_lossy(data, guess), f"{note or 'no charset declared'}; undecodable bytes replaced"


def _is_ascii(label: str) -> bool:
    try:
        return codecs.lookup(label).name == "ascii"
    except LookupError:
        return False


def _looks_iso2022jp(data: bytes) -> bool:
    return b"\x1b" in data and any(marker in data for marker in _ISO2022_MARKERS)
