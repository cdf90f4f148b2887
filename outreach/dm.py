"""The postal DM address list (宛名リスト) as the print shop gets it: a CSV
in CP932 (Shift_JIS as Windows writes it, what most print shops' software
reads) or UTF-8 with a BOM, one row per recipient recorded sent
(outreach.selectors.dm_labels), by postal code.

CP932 cannot hold every character a customer's name or address may have
(an emoji, a rare variant kanji). Characters with a CP932 twin (〜 as ～,
− as －) are written as the twin; any other becomes 〓 (geta, the printer's
mark for a missing glyph) and the row's note names what was replaced (by
its code point, U+1F600), so that the shop can write it by hand. A row is never left out and the
download never fails: the ledger says it was sent."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.utils.translation import gettext

from outreach.models import Delivery
from outreach.services import LABEL_SEPARATOR

CP932 = "cp932"
UTF8 = "utf-8"
ENCODINGS = (CP932, UTF8)
BOM = "\ufeff"
GETA = "〓"
HONORIFIC = "様"

# Unicode characters that JIS-based converters produce, for which CP932
# has a character of its own (the "wave dash problem"): written as that
# character. (Python's codec takes most of them silently but refuses
# — and ¦; mapped here all alike, so the file says what it holds.)
CP932_TWINS = str.maketrans(
    {
        "\u301c": "\uff5e",  # 〜 → ～
        "\u2212": "\uff0d",  # − → －
        "\u2016": "\u2225",  # ‖ → ∥
        "\u2014": "\u2015",  # — → ―
        "\u00a2": "\uffe0",  # ¢ → ￠
        "\u00a3": "\uffe1",  # £ → ￡
        "\u00ac": "\uffe2",  # ¬ → ￢
        "\u00a6": "\uffe4",  # ¦ → ￤
    }
)
# Invisible joiners and variation selectors of emoji: dropped, so that one
# emoji becomes one 〓.
INVISIBLE = dict.fromkeys(map(ord, "\u200d\ufe0e\ufe0f"))


@dataclass(frozen=True)
class DmLabel:
    customer_id: int
    postal_code: str
    address: str
    name: str

    @classmethod
    def from_delivery(cls, delivery: Delivery) -> DmLabel:
        """The label as the export recorded it in the ledger row."""
        parts = [*delivery.address.split(LABEL_SEPARATOR), "", "", ""][:4]
        postal_code, address, family_name, given_name = (part.strip() for part in parts)
        name = " ".join(part for part in (family_name, given_name) if part)
        return cls(delivery.customer_id, postal_code, address, f"{name} {HONORIFIC}")


def cp932_fit(text: str) -> tuple[str, list[str]]:
    """`text` as CP932 can hold it, and the characters replaced by 〓."""
    text = text.translate(CP932_TWINS)
    try:
        text.encode(CP932)
    except UnicodeEncodeError:
        pass
    else:
        return text, []
    fitted, lost = [], []
    for char in text.translate(INVISIBLE):
        try:
            char.encode(CP932)
        except UnicodeEncodeError:
            fitted.append(GETA)
            lost.append(char)
        else:
            fitted.append(char)
    return "".join(fitted), lost


def dm_columns() -> list[str]:
    return [
        gettext("Postal code"),
        gettext("Address"),
        gettext("Addressee"),
        gettext("Customer number"),
        gettext("Remarks"),
    ]


def dm_rows(labels: Iterable[DmLabel], *, encoding: str) -> Iterable[Sequence[str]]:
    for label in labels:
        row = [label.postal_code, label.address, label.name]
        note = ""
        if encoding == CP932:
            fitted = [cp932_fit(value) for value in row]
            row = [value for value, _lost in fitted]
            # Named by code point: the note is in CP932 too.
            lost = " ".join(f"U+{ord(char):04X}" for _value, chars in fitted for char in chars)
            if lost:
                note = gettext(
                    "Characters Shift_JIS cannot print were replaced by 〓: %(chars)s"
                ) % {"chars": lost}
        yield [*row, str(label.customer_id), note]


def dm_csv(deliveries: Iterable[Delivery], *, encoding: str) -> bytes:
    """The address list of `deliveries` (dm_labels) as CSV bytes in
    `encoding` (CP932, or UTF-8 with a BOM)."""
    if encoding not in ENCODINGS:
        raise ValueError(encoding)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(dm_columns())
    labels = (DmLabel.from_delivery(delivery) for delivery in deliveries)
    writer.writerows(dm_rows(labels, encoding=encoding))
    text = buffer.getvalue()
    if encoding == UTF8:
        return (BOM + text).encode(UTF8)
    # Whatever is left unencodable (a translated column header) becomes 〓.
    return cp932_fit(text)[0].encode(CP932)
