"""The erasure (削除) of a person's personal data: every inventoried column
(crm.personal_data) blanked or marked erased, stored files deleted."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.core.files.storage import default_storage
from django.db import models, transaction
from django.db.models import Case, Q, Value, When
from django.http import HttpRequest
from django.utils import timezone

from core.types import Actor
from crm.models import Customer, CustomerEventKind
from crm.personal_data import ERASED_MARKER, PERSONAL, PersonalTable
from crm.services.privacy import (
    _extra_reach,
    _reason_clean,
    _rows,
    privacy_action_record,
    privacy_customer_ids,
)

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
