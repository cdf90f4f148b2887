"""When trade can have happened: the dates an order, its shipment and
delivery, or a consent event may carry.

Before 2000 a date is a typo or a placeholder (0001-01-01, 1900-01-01), not
a sale; it also has no fixed offset in Asia/Tokyo before 1888 (local mean
time, +09:18:59). More than a year ahead it is a typo (2062 for 2026), not a
planned delivery.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils.translation import gettext as _

TRADE_START = datetime(2000, 1, 1, tzinfo=ZoneInfo("Asia/Tokyo"))
TRADE_HORIZON = timedelta(days=365)


def trade_time_error(value: datetime, *, now: datetime) -> str | None:
    """Why `value` cannot be a time of trade, or None when it can."""
    if value < TRADE_START or value > now + TRADE_HORIZON:
        return _("Give a date and time from 1 January 2000 up to one year from now.")
    return None
