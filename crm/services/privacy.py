"""A person's rights under the APPI (個人情報保護法): the export of
everything the system holds about them (開示) and its erasure (削除).

Both read the inventory (crm.personal_data) and take the person as a
customer together with the customers merged into it. Every export and
erasure goes through `privacy_action_record`, which writes the customer's
event (who, why, when, and for an erasure how many rows): the one place an
audit trail will hook in.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from django.apps import apps
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.files.storage import default_storage
from django.db import models, transaction
from django.db.models import Case, Q, QuerySet, Value, When
from django.db.models.functions import Cast, Lower
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from core.audit import audit_record
from core.choices import Channel
from core.models import AuditAction, IdempotencyRecord
from core.timeline import actor_or_none
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
from crm.personal_data import ERASED_MARKER, PERSON_COLUMNS, PERSONAL, PersonalTable
from crm.services.customers import customer_event_add, customer_follow_merges

EXPORT_FORMAT = "madoguchi-personal-data/1"
_AUDIT_ACTIONS: dict[str, AuditAction] = {
    CustomerEventKind.EXPORTED: AuditAction.EXPORT,
    CustomerEventKind.ERASED: AuditAction.ERASE,
}


# --- Who the person is ---------------------------------------------------------


def privacy_customer_ids(customer: Customer) -> list[int]:
    """The customer the person now is (merges followed), first, and every
    customer merged into it, at any depth."""
    survivor = customer_follow_merges(customer)
    ids = {survivor.pk}
    frontier = [survivor.pk]
    while frontier:
        frontier = [
            pk
            for pk in Customer.objects.filter(merged_into__in=frontier).values_list("pk", flat=True)
            if pk not in ids
        ]
        ids.update(frontier)
    return [survivor.pk, *sorted(ids - {survivor.pk})]


def _reason_clean(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": [_("Say why (e.g. the customer's request of 5 Dec).")]})
    return reason[:500]


def privacy_action_record(
    *,
    customer: Customer,
    kind: str,
    actor: Actor,
    reason: str,
    request: HttpRequest | None = None,
    **data: Any,
) -> CustomerEvent:
    """The record of one export or erasure: who (a staff member, or the API
    key), why, when, and counts (never the values); and its row in the
    audit trail (where from: the request's page or API path and address)."""
    audit_record(
        action=_AUDIT_ACTIONS[kind],
        request=request,
        actor=actor,
        customer_id=customer.pk,
        what=reason,
    )
    api_key = getattr(actor, "api_key", None)
    if api_key is not None:
        data["api_key"] = str(api_key)
    return customer_event_add(customer, kind, actor_or_none(actor), reason=reason, **data)


# --- Where the person's rows are ------------------------------------------------


def _emails(ids: list[int]) -> set[str]:
    found = set(
        Customer.objects.filter(pk__in=ids)
        .exclude(email_normalized="")
        .values_list("email_normalized", flat=True)
    )
    found.update(
        CustomerChannelProfile.objects.filter(customer__in=ids)
        .exclude(email_normalized="")
        .values_list("email_normalized", flat=True)
    )
    found.update(
        ChannelIdentity.objects.filter(customer__in=ids, channel=Channel.EMAIL).values_list(
            "external_id", flat=True
        )
    )
    return {email.lower() for email in found if email}


def _line_user_ids(ids: list[int]) -> list[str]:
    return list(
        ChannelIdentity.objects.filter(customer__in=ids, channel=Channel.LINE).values_list(
            "external_id", flat=True
        )
    )


def _api_answers(ids: list[int]) -> QuerySet[IdempotencyRecord]:
    """Stored POST answers (Idempotency-Key) that name one of `ids`: an
    order's, consent event's or inquiry's "customer", or a customer's "id"."""
    body = Case(
        When(response_body__startswith="{", then=Cast("response_body", models.JSONField())),
        default=Value(None, output_field=models.JSONField()),
        output_field=models.JSONField(),
    )
    return IdempotencyRecord.objects.alias(body=body).filter(
        Q(body__customer__in=ids) | Q(path__endswith="/customers/", body__id__in=ids)
    )


def _admin_history(ids: list[int]) -> QuerySet[LogEntry]:
    from tickets.models import Inquiry

    types = ContentType.objects.get_for_models(Customer, Inquiry)
    customer_type, inquiry_type = types[Customer], types[Inquiry]
    inquiry_ids = Inquiry.objects.filter(customer__in=ids).values_list("pk", flat=True)
    return LogEntry.objects.filter(
        Q(content_type=customer_type, object_id__in=[str(pk) for pk in ids])
        | Q(content_type=inquiry_type, object_id__in=[str(pk) for pk in inquiry_ids])
    )


def _rows(table: PersonalTable, ids: list[int], extra: dict[str, Q]) -> QuerySet[Any]:
    model = apps.get_model(table.model)
    where = Q()
    for path in table.reach:
        where |= Q(**{f"{path}__in": ids})
    if table.model in extra:
        where |= extra[table.model]
    if not where:  # never every row of a table
        raise ImproperlyConfigured(f"{table.model}: no way to its customer's rows")
    return model._base_manager.filter(where, **table.where)  # type: ignore[no-any-return]  # a model found by name


def _extra_reach(ids: list[int]) -> dict[str, Q]:
    """The rows found by other means than a path to the customer (see
    crm.personal_data)."""
    emails = _emails(ids)
    from tickets.models import InboundMail

    by_sender = InboundMail.objects.alias(sender=Lower("from_address")).filter(
        sender__in=sorted(emails)
    )
    refused_rows = Q(pk__in=[])
    for email in sorted(emails):
        refused_rows |= Q(row__icontains=email)
    return {
        "crm.ImportRowError": refused_rows,
        "outreach.LineWebhookEvent": Q(user_id__in=_line_user_ids(ids)),
        "crm.Suppression": Q(address__in=sorted(emails)),
        "crm.MailBounce": Q(address__in=sorted(emails)),
        "tickets.InboundMail": Q(pk__in=by_sender.values("pk")),
        "core.IdempotencyRecord": Q(pk__in=_api_answers(ids).values("pk")),
        "admin.LogEntry": Q(pk__in=_admin_history(ids).values("pk")),
    }


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


# --- Erasure (削除) ---------------------------------------------------------------


def _blank(model: type[models.Model], name: str, table: PersonalTable) -> Any:
    if name in table.erased:
        return table.erased[name]
    field = model._meta.get_field(name)
    if isinstance(field, models.JSONField):
        return {}
    if isinstance(field, models.BinaryField):
        return b""
    if field.null:  # type: ignore[union-attr]  # a concrete field of this model
        return None
    return ""


# Where a column's erased value depends on the row.
_ERASED_EXPRESSIONS = {
    ("crm.Customer", "claimant_reason"): Case(
        When(is_claimant=True, then=Value(ERASED_MARKER)), default=Value("")
    ),
}


def _files_delete(names: Iterable[str]) -> int:
    """Delete the files and the folders they leave empty (attachments/
    <reference>/<message>/), up to the storage's root."""
    deleted = 0
    root = os.path.realpath(default_storage.location)  # type: ignore[attr-defined]  # the file-system storage, which has a location
    for name in names:
        if not name:
            continue
        if default_storage.exists(name):
            default_storage.delete(name)
            deleted += 1
        folder = os.path.dirname(os.path.realpath(default_storage.path(name)))
        while folder.startswith(root + os.sep) and os.path.isdir(folder):
            if os.listdir(folder):
                break
            os.rmdir(folder)
            folder = os.path.dirname(folder)
    return deleted


def customer_erase(
    *, customer: Customer, actor: Actor, reason: str, request: HttpRequest | None = None
) -> dict[str, int]:
    """Erase the person's personal data everywhere (crm.personal_data):
    values blanked in set-based UPDATEs, identities deleted, attachment files
    removed from disk, queued messages to them skipped. Ids, order stubs,
    totals, dates, statuses, lifecycle figures, consent facts and times stay.
    Returns the rows touched per model ("tickets.attachment": 2); the event
    records who, why and when, with those counts, the files deleted and the
    messages no longer sent."""
    from outreach.services import deliveries_skip_for_erasure
    from tickets.models import Attachment

    reason = _reason_clean(reason)
    now = timezone.now()
    with transaction.atomic():
        ids = privacy_customer_ids(customer)
        list(Customer.objects.select_for_update().filter(pk__in=ids).values_list("pk"))
        # Fixed before any value is blanked: the rows found by address.
        extra = {
            label: Q(
                pk__in=list(
                    apps.get_model(label)._base_manager.filter(q).values_list("pk", flat=True)
                )
            )
            for label, q in _extra_reach(ids).items()
        }
        files = list(
            Attachment.objects.filter(message__inquiry__customer__in=ids)
            .exclude(file="")
            .values_list("file", flat=True)
        )
        counts: dict[str, int] = {}
        skipped = deliveries_skip_for_erasure(customer_ids=ids)
        for table in PERSONAL:
            model = apps.get_model(table.model)
            rows = _rows(table, ids, extra)
            if table.delete_rows:
                count, _by_model = rows.delete()
            else:
                values = {
                    name: _ERASED_EXPRESSIONS.get((table.model, name), _blank(model, name, table))
                    for name in table.columns
                }
                if table.model == "crm.Customer":
                    values.update(anonymized_at=now, updated_at=now)
                count = rows.update(**values)
            if count:
                counts[model._meta.label_lower] = count
        privacy_action_record(
            customer=Customer.objects.get(pk=ids[0]),
            kind=CustomerEventKind.ERASED,
            actor=actor,
            reason=reason,
            request=request,
            erased=counts,
            files=_files_delete(files),
            skipped=skipped,
        )
    return counts
