"""CSV export of a report's tables: UTF-8 with a BOM, so that Excel in
Japan opens it as UTF-8 rather than Shift_JIS (SPEC rule 15). Shared by the
monthly report and the home pages."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from urllib.parse import quote

from django.http import HttpResponse

BOM = "\ufeff"


def csv_response(*, filename: str, columns: Sequence, rows: Iterable[Sequence]) -> HttpResponse:
    """A download of `rows` under a header row of `columns`; None is an
    empty cell. `filename` may be Japanese (sent as RFC 6266 filename*)."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f"attachment; filename=\"report.csv\"; filename*=UTF-8''{quote(filename)}"
    )
    response.write(BOM)
    writer = csv.writer(response, lineterminator="\r\n")
    writer.writerow([str(column) for column in columns])
    for row in rows:
        writer.writerow(["" if value is None else str(value) for value in row])
    return response
