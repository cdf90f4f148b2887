"""The export (開示) of everything the system holds about a person: their
customers' profiles, identities, orders, inquiries with attachments,
consent, and the shop's other records of them, as one document."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from django.contrib.admin.models import LogEntry
from django.core.files.storage import default_storage
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from core.models import IdempotencyRecord
from core.types import Actor
from crm.models import (
    ChannelIdentity,
    ConsentEvent,
    ConsentState,
    Customer,
    CustomerChannelProfile,
    CustomerEvent,
    CustomerEventKind,
    Order,
)
from crm.personal_data import PERSON_COLUMNS
from crm.services.privacy import (
    _extra_reach,
    _reason_clean,
    privacy_action_record,
    privacy_customer_ids,
)

EXPORT_FORMAT = "madoguchi-personal-data/1"


# --- Export (開示) ----------------------------------------------------------------


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return timezone.localtime(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, memoryview | bytes):
        return bytes(value).decode("utf-8", errors="replace")
    return value


def _dicts(queryset: QuerySet[Any], fields: Iterable[str]) -> list[dict[str, Any]]:
    fields = list(fields)
    return [
        {name: _value(value) for name, value in row.items()} for row in queryset.values(*fields)
    ]


_CUSTOMER_FIELDS = (
    "id",
    *PERSON_COLUMNS,
    "notes",
    "is_claimant",
    "claimant_reason",
    "lifecycle_segment",
    "order_count",
    "total_spent",
    "first_order_at",
    "last_order_at",
    "merged_into",
    "anonymized_at",
    "created_at",
)


def _attachment_content(name: str) -> str | None:
    if not name or not default_storage.exists(name):
        return None
    with default_storage.open(name, "rb") as handle:
        return base64.b64encode(handle.read()).decode("ascii")


def _inquiries(ids: list[int], channels: list[str] | None) -> list[dict[str, Any]]:
    from tickets.models import Attachment, Inquiry, InquiryMessage

    inquiries = Inquiry.objects.filter(customer__in=ids).order_by("created_at", "id")
    if channels is not None:
        inquiries = inquiries.filter(channel__in=channels)
    found = _dicts(
        inquiries,
        [
            "id",
            "reference",
            "customer",
            "channel",
            "subject",
            "order_number_given",
            "status",
            "created_at",
            "closed_at",
        ],
    )
    messages = _dicts(
        InquiryMessage.objects.filter(inquiry__in=[row["id"] for row in found]).order_by(
            "created_at", "id"
        ),
        [
            "id",
            "inquiry",
            "kind",
            "channel",
            "subject",
            "body_text",
            "visible_text",
            "body_html",
            "created_at",
        ],
    )
    attachments = _dicts(
        Attachment.objects.filter(message__in=[row["id"] for row in messages]).order_by("id"),
        ["message", "filename", "content_type", "size", "file"],
    )
    for attachment in attachments:
        attachment["content_base64"] = _attachment_content(attachment.pop("file"))
    for message in messages:
        message["attachments"] = [
            {k: v for k, v in a.items() if k != "message"}
            for a in attachments
            if a["message"] == message["id"]
        ]
    for inquiry in found:
        pk = inquiry.pop("id")
        inquiry["messages"] = [
            {k: v for k, v in m.items() if k not in ("id", "inquiry")}
            for m in messages
            if m["inquiry"] == pk
        ]
    return found


def _orders(ids: list[int], channels: list[str] | None) -> list[dict[str, Any]]:
    from crm.models import OrderLine

    orders = Order.objects.filter(customer__in=ids).order_by("ordered_at", "id")
    if channels is not None:
        orders = orders.filter(channel__in=channels)
    found = _dicts(
        orders,
        [
            "id",
            "channel",
            "order_number",
            "status",
            "ordered_at",
            "shipped_at",
            "delivered_at",
            "total",
        ],
    )
    lines = _dicts(
        OrderLine.objects.filter(order__in=[row["id"] for row in found]).order_by("id"),
        ["order", "sku", "name", "quantity", "unit_price"],
    )
    for order in found:
        pk = order.pop("id")
        order["lines"] = [
            {k: v for k, v in line.items() if k != "order"} for line in lines if line["order"] == pk
        ]
    return found


def _shop_records(ids: list[int], extra: dict[str, Q]) -> dict[str, Any]:
    """What the shop itself recorded about the person: sends, LINE events,
    mail, stored API answers, timelines."""
    from outreach.models import Delivery, LineWebhookEvent
    from tickets.models import InboundMail

    answers = IdempotencyRecord.objects.filter(extra["core.IdempotencyRecord"])
    return {
        "deliveries": _dicts(
            Delivery.objects.filter(customer__in=ids).order_by("created_at", "id"),
            [
                "channel",
                "send__kind",
                "send__purpose",
                "status",
                "address",
                "sent_at",
                "last_error",
                "created_at",
            ],
        ),
        "line_events": _dicts(
            LineWebhookEvent.objects.filter(
                Q(customer__in=ids) | extra["outreach.LineWebhookEvent"]
            ).order_by("occurred_at", "id"),
            ["event_type", "user_id", "occurred_at", "payload"],
        ),
        "inbound_mail": _dicts(
            InboundMail.objects.filter(
                Q(inquiry_message__inquiry__customer__in=ids) | extra["tickets.InboundMail"]
            ).order_by("received_at", "id"),
            ["from_address", "subject", "status", "reason", "received_at", "raw"],
        ),
        "api_answers": _dicts(
            answers.order_by("created_at", "id"), ["path", "created_at", "response_body"]
        ),
        "timeline": _dicts(
            CustomerEvent.objects.filter(customer__in=ids).order_by("created_at", "id"),
            ["customer", "kind", "created_at", "data"],
        ),
        "admin_history": _dicts(
            LogEntry.objects.filter(extra["admin.LogEntry"]).order_by("action_time", "id"),
            ["action_time", "object_repr", "change_message"],
        ),
    }


def _customer_sections(ids: list[int], channels: list[str] | None) -> dict[str, Any]:
    customers = _dicts(Customer.objects.filter(pk__in=ids).order_by("pk"), _CUSTOMER_FIELDS)
    profiles = CustomerChannelProfile.objects.filter(customer__in=ids).order_by(
        "customer", "channel"
    )
    identities = ChannelIdentity.objects.filter(customer__in=ids).order_by("customer", "id")
    if channels is not None:
        # An API key reads only what its channels gave (SPEC rule 17): the
        # merged profile mixes every channel's.
        customers = [{"id": row["id"], "created_at": row["created_at"]} for row in customers]
        profiles = profiles.filter(channel__in=channels)
        identities = identities.filter(channel__in=channels)
    tags: dict[int, list[str]] = {pk: [] for pk in ids}
    for pk, name in Customer.tags.through.objects.filter(customer__in=ids).values_list(
        "customer", "tag__name"
    ):
        tags[pk].append(name)
    for row in customers:
        row["tags"] = sorted(tags[row["id"]]) if channels is None else []
    return {
        "customers": customers,
        "channel_profiles": _dicts(
            profiles, ["customer", "channel", *PERSON_COLUMNS, "updated_at"]
        ),
        "identities": _dicts(
            identities, ["customer", "channel", "external_id", "display_name", "created_at"]
        ),
    }


def _consent(ids: list[int], channels: list[str] | None) -> dict[str, Any]:
    from crm.models import STORE_SITE_CONSENT_SOURCES

    events = _dicts(
        ConsentEvent.objects.filter(customer__in=ids).order_by("occurred_at", "id"),
        ["channel", "action", "source", "wording_version", "occurred_at", "recorded_at", "note"],
    )
    if channels is not None:  # staff's notes stay in the shop (selectors.consent_event_list)
        for event in events:
            if event["source"] not in STORE_SITE_CONSENT_SOURCES:
                event["note"] = ""
    return {
        "consent_events": events,
        "consent_now": _dicts(
            ConsentState.objects.filter(customer__in=ids).order_by("channel"),
            ["channel", "granted", "changed_at"],
        ),
    }


def customer_export(
    *,
    customer: Customer,
    actor: Actor,
    reason: str,
    channels: Iterable[str] | None = None,
    request: HttpRequest | None = None,
) -> dict[str, Any]:
    """Everything the system holds about the person, as one JSON-ready
    document: profiles, identities, orders, inquiries with their messages
    and attachments (base64), the consent ledger, and the shop's own
    records of them (deliveries, LINE events, mail, API answers, timeline).

    `channels` (an API key's): only what those channels gave, and none of
    the shop's own records (SPEC rule 17)."""
    reason = _reason_clean(reason)
    channels = None if channels is None else list(channels)
    ids = privacy_customer_ids(customer)
    document: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "customer_id": ids[0],
        "exported_at": _value(timezone.now()),
        **_customer_sections(ids, channels),
        "orders": _orders(ids, channels),
        "inquiries": _inquiries(ids, channels),
        **_consent(ids, channels),
    }
    if channels is None:
        document.update(_shop_records(ids, _extra_reach(ids)))
    privacy_action_record(
        customer=Customer.objects.get(pk=document["customer_id"]),
        kind=CustomerEventKind.EXPORTED,
        actor=actor,
        reason=reason,
        request=request,
    )
    return document
