"""The CSV formats an import reads, and how one row becomes what the crm
services take (crm.imports.runner calls them).

Madoguchi's own format (the columns are the API's field names, UTF-8 or
CP932, a header row first):

customers  channel, external_id, family_name, given_name, family_name_kana,
           given_name_kana, email, phone, postal_code, prefecture, address,
           birthday (YYYY-MM-DD), tags (separated by "|"); optionally the
           email consent: email_consent (1/0, yes/no), consent_wording_version
           (required with email_consent), consent_source (web_form, store or
           import), consent_at
orders     one row per order line, the rows of an order one after another:
           channel, order_number, ordered_at, status, total, shipped_at,
           delivered_at, the buyer's columns as above (external_id, email,
           phone, names, address), sku, product_name, quantity, unit_price

The presets read the exports shops have, one row per order line, under
the column names those exports use: Rakuten RMS 「通常購入データ」 (受注番号,
注文日 + 注文時間 or 注文日時, 注文者名字 ...), Yahoo! ショッピング's store order
CSV (OrderId, OrderTime, BillLastName ...) and a generic own-site export
(注文番号, 注文日時, 会員ID, 姓, 名, ..., メルマガ配信 + 同意文言版). Mall
exports carry no member id: the buyer's email is their identity there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.choices import Channel
from crm.models import ConsentSource, ImportPreset, OrderStatus
from crm.normalize import email_normalize
from crm.services import OrderLineData

from .reading import ImportFileError


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


@dataclass(frozen=True)
class Preset:
    key: str
    label: Any
    kind: str  # "customers" or "orders"
    columns: dict[str, tuple[str, ...]]
    required: tuple[tuple[str, ...], ...]  # each: one of these fields
    channel: str = ""  # fixed channel; "" reads the channel column
    identity_from_email: bool = False
    statuses: dict[str, str] = field(default_factory=dict)

    def mapping(self, header: list[str]) -> dict[str, int]:
        """Field name → column index for the header; refuses a header
        without the columns this format needs."""
        index = {name: i for i, name in reversed(list(enumerate(header)))}
        found = {}
        for name, aliases in self.columns.items():
            for alias in aliases:
                if alias in index:
                    found[name] = index[alias]
                    break
        missing = [
            self.columns[alternatives[0]][0]
            for alternatives in self.required
            if not any(name in found for name in alternatives)
        ]
        if missing:
            raise ImportFileError(
                _("The file lacks columns this format needs: %(columns)s.")
                % {"columns": "、".join(missing)}
            )
        if "email_consent" in found and "consent_wording_version" not in found:
            raise ImportFileError(
                _(
                    "The file has a consent column (%(column)s) but no column with the "
                    "version of the wording the customer agreed to (%(wording)s): "
                    "consent cannot be imported without it."
                )
                % {
                    "column": header[found["email_consent"]],
                    "wording": self.columns["consent_wording_version"][0],
                }
            )
        return found


_PROFILE_COLUMNS = {
    "external_id": ("external_id",),
    "family_name": ("family_name",),
    "given_name": ("given_name",),
    "family_name_kana": ("family_name_kana",),
    "given_name_kana": ("given_name_kana",),
    "email": ("email",),
    "phone": ("phone",),
    "postal_code": ("postal_code",),
    "prefecture": ("prefecture",),
    "address": ("address",),
}
_CONSENT_COLUMNS = {
    "email_consent": ("email_consent",),
    "consent_wording_version": ("consent_wording_version",),
    "consent_source": ("consent_source",),
    "consent_at": ("consent_at",),
}
_ORDER_COLUMNS = {
    "order_number": ("order_number",),
    "ordered_at": ("ordered_at",),
    "status": ("status",),
    "total": ("total",),
    "shipped_at": ("shipped_at",),
    "delivered_at": ("delivered_at",),
    "sku": ("sku",),
    "product_name": ("product_name",),
    "quantity": ("quantity",),
    "unit_price": ("unit_price",),
}
_OWN_STATUSES = {status.value: status.value for status in OrderStatus}

# Rakuten RMS: 受注ステータス as text (通常購入データ) or as the code of the
# newer order download (100 注文確認待ち ... 900 キャンセル確定).
_RAKUTEN_STATUSES: dict[str, str] = {
    "新規受付": OrderStatus.PAID,
    "注文確認待ち": OrderStatus.PAID,
    "楽天処理中": OrderStatus.PAID,
    "発送待ち": OrderStatus.PAID,
    "変更確定待ち": OrderStatus.PAID,
    "発送済": OrderStatus.SHIPPED,
    "支払手続き中": OrderStatus.SHIPPED,
    "支払手続き済": OrderStatus.SHIPPED,
    "キャンセル確定待ち": OrderStatus.CANCELLED,
    "キャンセル確定": OrderStatus.CANCELLED,
    "保留": OrderStatus.PENDING,
    "100": OrderStatus.PAID,
    "200": OrderStatus.PAID,
    "300": OrderStatus.PAID,
    "400": OrderStatus.PAID,
    "500": OrderStatus.SHIPPED,
    "600": OrderStatus.SHIPPED,
    "700": OrderStatus.SHIPPED,
    "800": OrderStatus.CANCELLED,
    "900": OrderStatus.CANCELLED,
}
# Yahoo! ショッピング OrderStatus: 1 予約中, 2 処理中, 3 保留, 4 キャンセル, 5 完了.
_YAHOO_STATUSES: dict[str, str] = {
    "1": OrderStatus.PENDING,
    "2": OrderStatus.PAID,
    "3": OrderStatus.PENDING,
    "4": OrderStatus.CANCELLED,
    "5": OrderStatus.SHIPPED,
}
_OWN_SITE_STATUSES: dict[str, str] = {
    "入金待ち": OrderStatus.PENDING,
    "未入金": OrderStatus.PENDING,
    "入金済み": OrderStatus.PAID,
    "受付": OrderStatus.PAID,
    "発送済み": OrderStatus.SHIPPED,
    "発送済": OrderStatus.SHIPPED,
    "配達済み": OrderStatus.DELIVERED,
    "キャンセル": OrderStatus.CANCELLED,
    "返品": OrderStatus.RETURNED,
}

PRESETS: dict[str, Preset] = {
    preset.key: preset
    for preset in (
        Preset(
            key=ImportPreset.CUSTOMERS,
            label=ImportPreset.CUSTOMERS.label,
            kind="customers",
            columns={
                "channel": ("channel",),
                **_PROFILE_COLUMNS,
                "birthday": ("birthday",),
                "tags": ("tags",),
                **_CONSENT_COLUMNS,
            },
            required=(("external_id", "email", "phone"),),
        ),
        Preset(
            key=ImportPreset.ORDERS,
            label=ImportPreset.ORDERS.label,
            kind="orders",
            columns={"channel": ("channel",), **_PROFILE_COLUMNS, **_ORDER_COLUMNS},
            required=(("channel",), ("order_number",), ("ordered_at",)),
            statuses=_OWN_STATUSES,
        ),
        Preset(
            key=ImportPreset.RAKUTEN,
            label=ImportPreset.RAKUTEN.label,
            kind="orders",
            channel=Channel.RAKUTEN,
            identity_from_email=True,
            columns={
                "order_number": ("受注番号", "注文番号"),
                "ordered_at": ("注文日時",),
                "ordered_date": ("注文日",),
                "ordered_time": ("注文時間",),
                "status": ("受注ステータス", "ステータス"),
                "total": ("合計金額", "請求金額"),
                "family_name": ("注文者名字", "注文者姓"),
                "given_name": ("注文者名前", "注文者名"),
                "family_name_kana": ("注文者名字フリガナ", "注文者姓カナ"),
                "given_name_kana": ("注文者名前フリガナ", "注文者名カナ"),
                "email": ("注文者メールアドレス", "メールアドレス"),
                "postal_code_1": ("注文者郵便番号1", "注文者郵便番号１"),
                "postal_code_2": ("注文者郵便番号2", "注文者郵便番号２"),
                "prefecture": ("注文者住所：都道府県", "注文者住所:都道府県", "注文者住所都道府県"),
                "address_city": ("注文者住所：都市区", "注文者住所:都市区", "注文者住所郡市区"),
                "address_rest": (
                    "注文者住所：町以降",
                    "注文者住所:町以降",
                    "注文者住所それ以降の住所",
                ),
                "phone_1": ("注文者電話番号1", "注文者電話番号１"),
                "phone_2": ("注文者電話番号2", "注文者電話番号２"),
                "phone_3": ("注文者電話番号3", "注文者電話番号３"),
                "sku": ("商品番号", "商品管理番号"),
                "product_name": ("商品名",),
                "quantity": ("個数",),
                "unit_price": ("単価",),
            },
            required=(("order_number",), ("ordered_at", "ordered_date"), ("email",)),
            statuses=_RAKUTEN_STATUSES,
        ),
        Preset(
            key=ImportPreset.YAHOO,
            label=ImportPreset.YAHOO.label,
            kind="orders",
            channel=Channel.YAHOO,
            identity_from_email=True,
            columns={
                "order_number": ("OrderId",),
                "ordered_at": ("OrderTime",),
                "status": ("OrderStatus",),
                "total": ("TotalPrice", "SettleAmount"),
                "family_name": ("BillLastName",),
                "given_name": ("BillFirstName",),
                "family_name_kana": ("BillLastNameKana",),
                "given_name_kana": ("BillFirstNameKana",),
                "email": ("BillMailAddress",),
                "postal_code": ("BillZipCode",),
                "prefecture": ("BillPrefecture",),
                "address_city": ("BillCity",),
                "address_rest": ("BillAddress1",),
                "address_rest_2": ("BillAddress2",),
                "phone": ("BillPhoneNumber",),
                "shipped_at": ("ShipDate",),
                "sku": ("ItemId",),
                "product_name": ("Title",),
                "quantity": ("Quantity",),
                "unit_price": ("UnitPrice",),
            },
            required=(("order_number",), ("ordered_at",), ("email",)),
            statuses=_YAHOO_STATUSES,
        ),
        Preset(
            key=ImportPreset.OWN_SITE,
            label=ImportPreset.OWN_SITE.label,
            kind="orders",
            channel=Channel.OWN_SITE,
            columns={
                "order_number": ("注文番号", "受注番号"),
                "ordered_at": ("注文日時", "受注日時"),
                "status": ("注文ステータス", "ステータス"),
                "total": ("合計金額", "お支払い金額"),
                "external_id": ("会員ID", "会員番号"),
                "family_name": ("姓",),
                "given_name": ("名",),
                "full_name": ("氏名", "注文者氏名"),
                "family_name_kana": ("セイ",),
                "given_name_kana": ("メイ",),
                "email": ("メールアドレス",),
                "phone": ("電話番号",),
                "postal_code": ("郵便番号",),
                "prefecture": ("都道府県",),
                "address": ("住所",),
                "shipped_at": ("発送日時", "発送日"),
                "sku": ("商品コード", "商品番号"),
                "product_name": ("商品名",),
                "quantity": ("数量", "個数"),
                "unit_price": ("単価", "販売価格"),
                "email_consent": ("メルマガ配信", "メールマガジン"),
                "consent_wording_version": ("同意文言版",),
                "consent_at": ("同意日時",),
            },
            required=(("order_number",), ("ordered_at",), ("external_id", "email")),
            identity_from_email=True,
            statuses=_OWN_SITE_STATUSES,
        ),
    )
}

PRESET_CHOICES = [(preset.key, preset.label) for preset in PRESETS.values()]

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
    if channel and channel not in Channel.values:
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
