"""Inquiry references in subjects, and reply/forward prefixes."""

from __future__ import annotations

import re

# Full-width ASCII (Ｑ, ０-９, ［, ：) to ASCII, and the ideographic space to a
# space: one character for one, so match positions stay valid in the original.
_WIDTH_FOLD = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
# Everything a Japanese keyboard or IME produces for "-".
_DASHES = "\\-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc\uff0d\ufe63\uff70"
_REFERENCE = re.compile(
    rf"(?<![A-Za-z0-9])[Qq]\s?[{_DASHES}]\s?(\d{{2}})(0[1-9]|1[0-2])\s?[{_DASHES}]\s?(\d{{5}})(?!\d)"
)
_PREFIX = re.compile(
    r"\s*(?:re|fwd?|aw|wg|sv|vs|tr|rv|antw|転送|返信|回复|答复)\s*"
    r"(?:\[\d+\]|\(\d+\)|\^\d+)?\s*[:：]\s*",
    re.IGNORECASE,
)
_FORWARD_PREFIX = re.compile(r"\s*(?:fwd?|wg|tr|转发|転送)\s*(?:\[\d+\])?\s*[:：]", re.IGNORECASE)


def _fold(text: str) -> str:
    return text.translate(_WIDTH_FOLD)


def find_reference(subject: str | None) -> str | None:
    """The first inquiry reference (``Q-2611-00042``: "Q-", year and month,
    "-", five digits) in ``subject``, in that canonical form, or None.

    Full-width characters (Ｑ－２６１１－０００４２), the dashes an IME produces
    (ー, −, ―), brackets of any kind and any reply prefix are tolerated; a
    month outside 01-12, a letter or digit glued to the front ("FAQ-...") or
    a sixth digit at the end are not references.
    """
    if not subject:
        return None
    match = _REFERENCE.search(_fold(subject))
    if match is None:
        return None
    year, month, number = match.groups()
    return f"Q-{year}{month}-{number}"


def subject_strip_prefixes(subject: str | None) -> str:
    """``subject`` without its leading reply and forward prefixes ("Re:",
    "RE[2]:", "Fwd:", "FW:", "転送:", "返信:", full-width "Ｒｅ：" ...), however
    many are stacked; the rest is returned as written."""
    if not subject:
        return ""
    folded = _fold(subject)
    position = 0
    while match := _PREFIX.match(folded, position):
        position = match.end()
    return subject[position:].strip()


def is_forward_subject(subject: str | None) -> bool:
    """Whether the subject's outermost prefix marks a forward (Fwd:, FW:, 転送:)."""
    return bool(subject) and bool(_FORWARD_PREFIX.match(_fold(subject or "")))
