"""A customer event's details as the customer page shows them: each stored
key (channel, fields, matched_by, ...) by its Japanese name and each value
by its label, never the JSON the event keeps."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.choices import Channel
from crm.models import ChannelIdentity, Customer, CustomerEvent

SEPARATOR = " / "
LIST_SEPARATOR = "、"

KEY_LABELS = {
    "channel": _("channel"),
    "external_id": ChannelIdentity._meta.get_field("external_id").verbose_name,
    "matched_by": _("matched by"),
    "fields": _("fields changed"),
    "reason": _("reason"),
    "previous_reason": _("previous reason"),
    "loser_id": _("merged from"),
    "winner_id": _("merged into"),
    "moved": _("records moved"),
    "erased": _("records erased"),
    "files": _("files deleted"),
    "skipped": _("messages no longer sent"),
    "api_key": _("API key"),
    "retention_days": _("retention period (days)"),
}


# Kept in the event, not shown in its line: an identity's ID on its channel
# (a mall member ID, a LINE user ID) is the channel's code for the person;
# the channel names the identity, and the customer page's identity shows the
# ID on hover.
UNSHOWN_KEYS = frozenset({"external_id"})


def _field_label(name: str) -> str:
    try:
        return str(Customer._meta.get_field(name).verbose_name)  # type: ignore[union-attr]  # a concrete field of this model, which has a verbose_name
    except FieldDoesNotExist:
        return name


def _model_label(label_lower: str) -> str:
    try:
        return str(apps.get_model(label_lower)._meta.verbose_name_plural)
    except (LookupError, ValueError):
        return label_lower


def _value(key: str, value: Any) -> str:
    if key == "channel":
        return str(dict(Channel.choices).get(value, value))
    if key == "matched_by":
        labels = {"email": _field_label("email"), "phone": _field_label("phone")}
        return labels.get(value, str(value))
    if key == "fields":
        return LIST_SEPARATOR.join(_field_label(name) for name in value)
    if key in ("loser_id", "winner_id"):
        return f"#{value}"
    if key in ("moved", "erased"):
        return LIST_SEPARATOR.join(
            gettext("%(what)s: %(count)s") % {"what": _model_label(label), "count": count}
            for label, count in value.items()
        )
    if isinstance(value, list):
        return LIST_SEPARATOR.join(str(item) for item in value)
    return str(value)


def customer_event_details(event: CustomerEvent) -> str:
    """「チャネル: 自社サイト / 照合: メールアドレス」: known keys by name, in
    the order of KEY_LABELS (PostgreSQL's jsonb keeps no order); a key this
    page does not know shows its value only, last."""
    order = {key: index for index, key in enumerate(KEY_LABELS)}
    data = event.data or {}
    parts = []
    for key in sorted(data, key=lambda key: (order.get(key, len(order)), key)):
        value = data[key]
        if value in ("", None, [], {}) or key in UNSHOWN_KEYS:
            continue
        shown = _value(key, value)
        label = KEY_LABELS.get(key)
        parts.append(f"{label}: {shown}" if label else shown)
    return SEPARATOR.join(parts) or "-"


# What a retention run counted (crm.services.retention), in the order shown.
RETENTION_COUNT_LABELS = {
    "customers": _("customers"),
    "customers_fully_anonymized": _("customers anonymised as a whole"),
    "channel_profiles": _("channel profiles"),
    "identities": _("channel identities"),
    "customer_events": _("customer events"),
    "inquiries": _("inquiries"),
    "messages": _("messages"),
    "attachments": _("attachments"),
    "files_deleted": _("files deleted"),
    "inbound_mails": _("inbound mail"),
    "deliveries": _("ledger rows"),
    "sends": _("send contents"),
    "orders": _("orders"),
    "consent_events": _("consent events pruned"),
}


def retention_event_summary(event) -> str:
    """「保存期間（日）: 30 / 顧客 3件、メッセージ 4件」: the period and what the
    run changed; 「対象なし」 when it changed nothing."""
    data = event.data or {}
    counts = LIST_SEPARATOR.join(
        gettext("%(what)s: %(count)s") % {"what": label, "count": data[key]}
        for key, label in RETENTION_COUNT_LABELS.items()
        if data.get(key)
    )
    period = f"{KEY_LABELS['retention_days']}: {data.get('retention_days', '-')}"
    return SEPARATOR.join([period, counts or gettext("nothing to do")])
