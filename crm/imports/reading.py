"""Reading a CSV file as the shops have them: CP932 (Shift_JIS with
Microsoft's extensions: ①, ㈱, 髙) or UTF-8, with or without a BOM."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator

from django.utils.translation import gettext as _

UTF8_BOM = "utf-8-sig"
UTF8 = "utf-8"
CP932 = "cp932"


class ImportFileError(Exception):
    """The file as a whole cannot be read (its encoding, its header)."""


def csv_decode(data: bytes) -> tuple[str, str]:
    """The file's text and its encoding: a BOM says UTF-8; otherwise UTF-8
    when the bytes are valid UTF-8 (CP932 text with kanji almost never is),
    else CP932."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode(UTF8, errors="strict"), UTF8_BOM
    try:
        return data.decode(UTF8), UTF8
    except UnicodeDecodeError:
        pass
    try:
        return data.decode(CP932), CP932
    except UnicodeDecodeError as error:
        raise ImportFileError(
            _(
                "The file is neither UTF-8 nor Shift_JIS (CP932): "
                "it cannot be read from byte %(position)d."
            )
            % {"position": error.start + 1}
        ) from None


def csv_rows(text: str) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The header and the data rows, each with the line of the file it
    starts on (the header is line 1; a quoted value may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise ImportFileError(_("The file is empty.")) from None

    def rows() -> Iterator[tuple[int, list[str]]]:
        start = reader.line_num + 1
        for row in reader:
            if any(cell.strip() for cell in row):
                yield start, row
            start = reader.line_num + 1

    return header, rows()
