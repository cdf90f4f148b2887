"""A person's rights under the APPI (個人情報保護法): the export of
everything the system holds about them (開示) and its erasure (削除).

Both read the inventory (crm.personal_data) and take the person as a
customer together with the customers merged into it. Every export and
erasure goes through `privacy_action_record`, which writes the customer's
event (who, why, when, and for an erasure how many rows): the one place an
audit trail will hook in.

This module holds who the person is, where their rows are and the record
of each action; the export is in privacy_export.py, the erasure in
privacy_erase.py.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import models
from django.db.models import Case, Q, QuerySet, Value, When
from django.db.models.functions import Cast, Lower
from django.http import HttpRequest
from django.utils.translation import gettext as _

from core.audit import audit_record
from core.choices import Channel
from core.models import AuditAction, IdempotencyRecord
from core.timeline import actor_or_none
from core.types import Actor
from crm.models import (
    ChannelIdentity,
    Customer,
    CustomerChannelProfile,
    CustomerEvent,
    CustomerEventKind,
)
from crm.personal_data import PersonalTable
from crm.services.customers import customer_event_add, customer_follow_merges

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
