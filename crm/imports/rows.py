"""One data row of an import file, read into what the crm services take:
the customer, the consent, the order and its line (crm.imports.presets
names the columns of each format)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.choices import Channel
from crm.models import ConsentSource, OrderStatus
from crm.normalize import email_normalize
from crm.services import OrderLineData

if TYPE_CHECKING:
    from .presets import Preset

_CHANNELS = frozenset(Channel.values)


class RowError(Exception):
    """One row cannot be imported: the message says why, in Japanese."""


@dataclass(frozen=True)
class CustomerData:
    channel: str
    external_id: str
    identity_display_name: str
    profile: dict[str, Any]
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConsentData:
    granted: bool
    source: str
    wording_version: str
    occurred_at: datetime | None


@dataclass(frozen=True)
class OrderData:
    channel: str
    order_number: str
    ordered_at: datetime
    status: str
    total: int | None
    shipped_at: datetime | None
    delivered_at: datetime | None


@dataclass(frozen=True)
class Row:
    """One data row of the file, read."""

    line: int
    raw: list[str]
    customer: CustomerData
    consent: ConsentData | None = None
    order: OrderData | None = None
    order_line: OrderLineData | None = None


_DATETIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y%m%d%H%M%S",
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y%m%d",
)
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d")
_YES = {"1", "yes", "true", "y", "はい", "する", "希望する", "受け取る", "同意", "同意する", "○"}
_NO = {"0", "no", "false", "n", "いいえ", "しない", "希望しない", "受け取らない", "拒否", "×"}
_CONSENT_SOURCES = {
    "": ConsentSource.IMPORT,
    "import": ConsentSource.IMPORT,
    "web_form": ConsentSource.WEB_FORM,
    "store": ConsentSource.STORE,
    "api": ConsentSource.API,
    "ウェブフォーム": ConsentSource.WEB_FORM,
    "店頭": ConsentSource.STORE,
}
_LABELS = {
    "order_number": gettext_lazy("order number"),
    "ordered_at": gettext_lazy("ordered at"),
    "shipped_at": gettext_lazy("shipped at"),
    "delivered_at": gettext_lazy("delivered at"),
    "total": gettext_lazy("total (JPY)"),
    "quantity": gettext_lazy("quantity"),
    "unit_price": gettext_lazy("unit price (JPY)"),
    "birthday": gettext_lazy("birthday"),
    "consent_at": gettext_lazy("consent date"),
}


def _datetime(value: str, name: str) -> datetime:
    value = value.strip()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
        for pattern in _DATETIME_FORMATS:
            try:
                parsed = datetime.strptime(value, pattern)
                break
            except ValueError:
                continue
    if parsed is None:
        raise RowError(
            _("%(field)s 「%(value)s」 is not a date and time (e.g. 2024-05-01 12:34).")
            % {"field": _LABELS[name], "value": value}
        )
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.get_default_timezone())
    return parsed


def _date(value: str, name: str) -> date:
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(value.strip(), pattern).date()
        except ValueError:
            continue
    raise RowError(
        _("%(field)s 「%(value)s」 is not a date (e.g. 1990-04-01).")
        % {"field": _LABELS[name], "value": value}
    )


def _amount(value: str, name: str, *, minimum: int = 0) -> int:
    cleaned = re.sub(r"[,\s¥￥円]", "", value)
    try:
        number = int(cleaned)
    except ValueError:
        number = None
    if number is None or number < minimum:
        raise RowError(
            _("%(field)s 「%(value)s」 is not a whole number of at least %(minimum)d.")
            % {"field": _LABELS[name], "value": value, "minimum": minimum}
        )
    return number


def row_read(preset: Preset, mapping: dict[str, int], line: int, raw: list[str]) -> Row:
    """One data row as the services take it; RowError says what is wrong."""

    def get(name: str) -> str:
        index = mapping.get(name)
        if index is None or index >= len(raw):
            return ""
        return raw[index].strip()

    customer = _customer_read(preset, get)
    consent = _consent_read(get) if "email_consent" in mapping else None
    if preset.kind == "customers":
        return Row(line=line, raw=raw, customer=customer, consent=consent)
    order, order_line = _order_read(preset, get)
    return Row(
        line=line,
        raw=raw,
        customer=customer,
        consent=consent,
        order=order,
        order_line=order_line,
    )


def _joined(get, *names: str, separator: str = "") -> str:
    return separator.join(value for value in (get(name) for name in names) if value)


def _customer_read(preset: Preset, get) -> CustomerData:
    channel = preset.channel or get("channel")
    if channel and channel not in _CHANNELS:
        raise RowError(_("Unknown channel 「%(value)s」.") % {"value": channel})
    family, given = get("family_name"), get("given_name")
    if not (family or given) and get("full_name"):
        family, _space, given = get("full_name").replace("\u3000", " ").partition(" ")
    profile: dict[str, Any] = {
        "family_name": family,
        "given_name": given,
        "family_name_kana": get("family_name_kana"),
        "given_name_kana": get("given_name_kana"),
        "email": get("email"),
        "phone": get("phone") or _joined(get, "phone_1", "phone_2", "phone_3", separator="-"),
        "postal_code": get("postal_code")
        or _joined(get, "postal_code_1", "postal_code_2", separator="-"),
        "prefecture": get("prefecture"),
        "address": get("address") or _joined(get, "address_city", "address_rest", "address_rest_2"),
    }
    if get("birthday"):
        profile["birthday"] = _date(get("birthday"), "birthday")
    profile = {name: value for name, value in profile.items() if value not in ("", None)}
    external_id = get("external_id")
    if not external_id and preset.identity_from_email and channel:
        external_id = email_normalize(profile.get("email", ""))
    if not (external_id or profile.get("email") or profile.get("phone")):
        raise RowError(_("The row has no member id, email or phone to identify the customer."))
    tags = tuple(tag.strip() for tag in get("tags").split("|") if tag.strip())
    return CustomerData(
        channel=channel if external_id or channel in (Channel.EMAIL, Channel.PHONE) else "",
        external_id=external_id,
        identity_display_name=_joined(get, "family_name", "given_name", separator=" ")
        or get("full_name"),
        profile=profile,
        tags=tags,
    )


def _consent_read(get) -> ConsentData | None:
    value = get("email_consent")
    if not value:
        return None
    if value.lower() in _YES:
        granted = True
    elif value.lower() in _NO:
        granted = False
    else:
        raise RowError(
            _("The consent 「%(value)s」 is neither yes (1) nor no (0).") % {"value": value}
        )
    wording = get("consent_wording_version")
    if not wording:
        raise RowError(_("Consent without the version of its wording cannot be imported."))
    source = _CONSENT_SOURCES.get(get("consent_source").lower())
    if source is None:
        raise RowError(
            _("Unknown consent source 「%(value)s」.") % {"value": get("consent_source")}
        )
    occurred_at = _datetime(get("consent_at"), "consent_at") if get("consent_at") else None
    return ConsentData(
        granted=granted, source=source, wording_version=wording, occurred_at=occurred_at
    )


def _order_read(preset: Preset, get) -> tuple[OrderData, OrderLineData | None]:
    order_number = get("order_number")
    if not order_number:
        raise RowError(_("The order number is empty."))
    if get("ordered_at"):
        ordered_at = _datetime(get("ordered_at"), "ordered_at")
    else:
        ordered_at = _datetime(
            _joined(get, "ordered_date", "ordered_time", separator=" "), "ordered_at"
        )
    raw_status = get("status")
    status = preset.statuses.get(raw_status) if raw_status else OrderStatus.PAID
    if status is None:
        raise RowError(
            _("The order status 「%(value)s」 is not one we know.") % {"value": raw_status}
        )
    order = OrderData(
        channel=preset.channel or get("channel"),
        order_number=order_number,
        ordered_at=ordered_at,
        status=status,
        total=_amount(get("total"), "total") if get("total") else None,
        shipped_at=_datetime(get("shipped_at"), "shipped_at") if get("shipped_at") else None,
        delivered_at=_datetime(get("delivered_at"), "delivered_at")
        if get("delivered_at")
        else None,
    )
    if not order.channel:
        raise RowError(_("The row has no channel."))
    if not (get("sku") or get("product_name")):
        return order, None
    return order, OrderLineData(
        sku=(get("sku") or get("product_name"))[:64],
        name=(get("product_name") or get("sku"))[:255],
        quantity=_amount(get("quantity") or "1", "quantity", minimum=1),
        unit_price=_amount(get("unit_price") or "0", "unit_price"),
    )
