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

from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

from core.choices import Channel
from crm.models import ImportPreset, OrderStatus

from .reading import ImportFileError
from .rows import Row, RowError, row_read

__all__ = ["PRESETS", "PRESET_CHOICES", "Preset", "Row", "RowError", "row_read"]


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
