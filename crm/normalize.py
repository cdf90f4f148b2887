"""Pure normalisers for identity resolution and search.

Japanese input arrives in every width and script: full-width digits
(０９０), half-width katakana (ﾔﾏﾀﾞ), hiragana kana (やまだ), +81 numbers.
"""

from __future__ import annotations

import re
import unicodedata

import phonenumbers

_NON_DIGIT = re.compile(r"\D")
_SPACES = re.compile(r"\s+")


def email_normalize(raw: str | None) -> str:
    """Lower-cased, trimmed address, or "" if it is not an address."""
    if not raw:
        return ""
    value = unicodedata.normalize("NFKC", raw).strip().lower()
    local, at, domain = value.rpartition("@")
    if not at or not local or "." not in domain:
        return ""
    return value


def phone_normalize(raw: str | None) -> str:
    """Domestic digits-only form of a Japanese number (09012345678), or ""
    if it is not one: 10 or 11 digits starting with 0 after turning
    +81 / 81 into the trunk 0."""
    if not raw:
        return ""
    value = unicodedata.normalize("NFKC", raw).strip()
    international = value.startswith("+")
    digits = _NON_DIGIT.sub("", value)
    if international or (digits.startswith("81") and len(digits) in (11, 12)):
        if not digits.startswith("81"):
            return ""
        digits = digits[2:]
        if not digits.startswith("0"):
            digits = "0" + digits
    if len(digits) not in (10, 11) or not digits.startswith("0") or digits.startswith("00"):
        return ""
    return digits


def phone_display(raw: str | None) -> str:
    """A Japanese number as people write it, whatever was stored:
    090-1234-5678, 03-1234-5678, 0120-123-456, 0422-51-5131, 04992-2-1441
    (+81 and full-width input too). The area code's length comes from
    libphonenumber's table of Japanese numbering, not from a guess. Anything
    that is not a valid Japanese number (a foreign number, a typo, too few
    digits) is shown exactly as stored, never regrouped."""
    raw = raw or ""
    digits = phone_normalize(raw)
    if not digits:
        return raw
    number = phonenumbers.parse(digits, "JP")
    if not phonenumbers.is_valid_number(number):
        return raw
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


def kana_normalize(raw: str | None) -> str:
    """Full-width katakana with single spaces: ﾔﾏﾀﾞ and やまだ become ヤマダ."""
    if not raw:
        return ""
    value = unicodedata.normalize("NFKC", raw)
    value = "".join(
        chr(ord(ch) + 0x60) if "\u3041" <= ch <= "\u3096" or ch in "\u309d\u309e" else ch
        for ch in value
    )
    return _SPACES.sub(" ", value).strip()


def postal_code_normalize(raw: str | None) -> str:
    """123-4567 from 〒１２３４５６７, 1234567 or 123-4567; "" if not 7 digits."""
    if not raw:
        return ""
    digits = _NON_DIGIT.sub("", unicodedata.normalize("NFKC", raw))
    if len(digits) != 7:
        return ""
    return f"{digits[:3]}-{digits[3:]}"


def name_search_key(*parts: str | None) -> str:
    """The key a name is searched by: the parts run together without any
    space, NFKC (half-width kana and full-width letters to their usual
    form), hiragana folded to katakana, lower case. 「岡田 彩」 gives 岡田彩;
    「おかだ あや」, 「ｵｶﾀﾞ ｱﾔ」 and 「オカダ アヤ」 all give オカダアヤ."""
    return _SPACES.sub("", kana_normalize(" ".join(part for part in parts if part))).lower()


def digits_only(raw: str | None) -> str:
    """The digits of `raw` in any width (０９０-１２３４ gives 0901234)."""
    return _NON_DIGIT.sub("", unicodedata.normalize("NFKC", raw or ""))
