"""An import job: a CSV file read in batches by the worker through the same
services as the API (identity resolution, order upsert, the consent
ledger), each refused row kept with its line and reason, the lifecycle of
the customers it touched recomputed once at the end. A dry run does all of
it in one transaction and rolls it back: its counts are what the import
would do, and nothing stays but the job and its refused rows.

Safe to run twice: a job is claimed (queued → running) once; a file
imported again finds every customer and order as the first run left them
and writes nothing (no customer, order, event or consent row)."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator
from itertools import groupby

from django.contrib.auth.models import User
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.audit import audit_record
from core.models import AuditAction
from core.roles import MANAGER, MARKETER
from crm.models import (
    Customer,
    ImportJob,
    ImportPreset,
    ImportRowError,
    ImportStatus,
    Order,
)
from crm.services import (
    UpsertOutcome,
    consent_record,
    customer_upsert_outcome,
    lifecycle_recompute,
    order_upsert_outcome,
)

from .bulk import bulk_write, new_consent, order_lines, order_total
from .presets import PRESETS, Row, RowError, row_read
from .reading import CP932, UTF8_BOM, ImportFileError, csv_decode, csv_rows

BATCH_ROWS = 2000
_LIFECYCLE_CHUNK = 5000


def import_allowed(user) -> bool:
    """Managers and marketers import (superusers count)."""
    if user is None or not user.is_active:
        return False
    return user.is_superuser or user.groups.filter(name__in=[MANAGER, MARKETER]).exists()


def import_job_create(
    *,
    content: bytes,
    file_name: str,
    preset: str,
    dry_run: bool,
    actor: User | None,
    request=None,
    enqueue: bool = True,
) -> ImportJob:
    """Keep the file, record the import in the audit trail and queue it for
    the worker (`enqueue=False`: the caller runs it, as the command does).
    `actor` None: an operator's command line (manage.py import_csv), which
    has the machine's rights anyway."""
    if actor is not None and not import_allowed(actor):
        raise PermissionDenied(_("Only managers and marketers may import customers and orders."))
    if preset not in ImportPreset.values:
        raise ValidationError({"preset": [_("Choose the format of the file.")]})
    if not content:
        raise ValidationError({"file": [_("The file is empty.")]})
    from django_q.tasks import async_task

    with transaction.atomic():
        job = ImportJob(file_name=file_name[:255], preset=preset, dry_run=dry_run, created_by=actor)
        job.file.save(file_name, ContentFile(content), save=False)
        job.save()
        audit_record(
            action=AuditAction.IMPORT,
            request=request,
            actor=actor,
            what=_("%(file)s (%(format)s%(dry)s)")
            % {
                "file": job.file_name,
                "format": job.get_preset_display(),
                "dry": _(", dry run") if dry_run else "",
            },
        )
        if enqueue:
            transaction.on_commit(lambda: async_task("crm.tasks.import_job_run_task", job.pk))
    return job


def import_job_run(*, job_id: int, bulk: bool | None = None) -> ImportJob | None:
    """Run a queued job to its end (the worker's task, or the command).
    None when another run has it already. `bulk` (default: on PostgreSQL)
    lets the batch path create what is new in one statement per table
    (crm.imports.bulk); False sends every row through the services one by one
    (the tests compare the two)."""
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportStatus.QUEUED).update(
        status=ImportStatus.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return None
    job = ImportJob.objects.get(pk=job_id)
    try:
        _job_run(job, bulk=connection.vendor == "postgresql" if bulk is None else bulk)
    except ImportFileError as error:
        job.status = ImportStatus.FAILED
        job.failure = str(error)
    else:
        job.status = ImportStatus.DONE
    job.finished_at = timezone.now()
    # The file holds every row's personal data: once read, only the refused
    # rows are kept (crm.personal_data: ImportRowError).
    job.file.delete(save=False)
    job.save(
        update_fields=[
            "file",
            "status",
            "failure",
            "finished_at",
            "encoding",
            "header",
            "rows_total",
            "rows_done",
            "counts",
        ]
    )
    return job


class _Tally:
    """What a run did, counted (customers once each, whatever their rows)."""

    def __init__(self) -> None:
        self.customers: dict[int, str] = {}
        self.orders: Counter[str] = Counter()
        self.consents = 0
        self.rejected = 0
        self.lifecycle_ids: set[int] = set()

    def customer(self, customer: Customer, outcome: str) -> None:
        previous = self.customers.get(customer.pk)
        if previous in (UpsertOutcome.CREATED, UpsertOutcome.UPDATED):
            return
        self.customers[customer.pk] = outcome

    def counts(self) -> dict[str, int]:
        by_outcome = Counter(self.customers.values())
        return {
            "customers_created": by_outcome[UpsertOutcome.CREATED],
            "customers_updated": by_outcome[UpsertOutcome.UPDATED],
            "customers_unchanged": by_outcome[UpsertOutcome.UNCHANGED],
            "orders_created": self.orders[UpsertOutcome.CREATED],
            "orders_updated": self.orders[UpsertOutcome.UPDATED],
            "orders_unchanged": self.orders[UpsertOutcome.UNCHANGED],
            "consents_recorded": self.consents,
            "rows_rejected": self.rejected,
        }


def _job_run(job: ImportJob, *, bulk: bool) -> None:
    preset = PRESETS[job.preset]
    with job.file.open("rb") as handle:
        data = handle.read()
    text, job.encoding = csv_decode(data)
    header, rows = csv_rows(text)
    job.header = header
    mapping = preset.mapping(header)
    job.rows_total = sum(1 for _row in csv_rows(text)[1])
    job.save(update_fields=["encoding", "header", "rows_total"])
    tally = _Tally()
    errors: list[ImportRowError] = []

    def key(raw: list[str]) -> str:
        return _order_key(preset, mapping, raw)

    if job.dry_run:
        with transaction.atomic():
            for batch in _batches(rows, key):
                _batch_import(job, preset, mapping, batch, tally, errors, bulk=bulk)
                job.rows_done += len(batch)
            transaction.set_rollback(True)
        ImportRowError.objects.bulk_create(errors)
    else:
        for batch in _batches(rows, key):
            with transaction.atomic():
                _batch_import(job, preset, mapping, batch, tally, errors, bulk=bulk)
                ImportRowError.objects.bulk_create(errors)
                errors.clear()
                job.rows_done += len(batch)
                job.counts = tally.counts()
                job.save(update_fields=["rows_done", "counts"])
        ids = sorted(tally.lifecycle_ids)
        for start in range(0, len(ids), _LIFECYCLE_CHUNK):
            lifecycle_recompute(customer_ids=ids[start : start + _LIFECYCLE_CHUNK])
    job.counts = tally.counts()


def _batches(rows: Iterator[tuple[int, list[str]]], key) -> Iterator[list[tuple[int, list[str]]]]:
    """About BATCH_ROWS rows at a time, never cutting an order's rows."""
    batch: list[tuple[int, list[str]]] = []
    last = None
    for item in rows:
        current = key(item[1])
        if len(batch) >= BATCH_ROWS and (current != last or not current):
            yield batch
            batch = []
        batch.append(item)
        last = current
    if batch:
        yield batch


def _order_key(preset, mapping, raw: list[str]) -> str:
    """The rows of one order follow each other: they share its number."""
    index = mapping.get("order_number")
    if preset.kind != "orders" or index is None or index >= len(raw):
        return ""
    return raw[index].strip()


def _batch_import(job, preset, mapping, batch, tally: _Tally, errors: list, *, bulk: bool) -> None:
    """One batch: what is plainly new or unchanged in bulk (with `bulk`),
    then each other customer row, or each other order's rows, through the
    services on its own savepoint, so a row they refuse undoes only
    itself."""
    pending: list[tuple[list, list[Row]]] = []
    for unit in _units(preset, mapping, batch):
        read: list[Row] = []
        refused: list[tuple[int, list[str], str]] = []
        for line, raw in unit:
            try:
                read.append(row_read(preset, mapping, line, raw))
            except RowError as error:
                refused.append((line, raw, str(error)))
        if refused:
            _refuse(job, unit, refused, tally, errors)
        else:
            pending.append((unit, read))
    if bulk:
        pending = bulk_write(job, pending, tally)
    for unit, read in pending:
        try:
            with transaction.atomic():
                _unit_write(job, read, tally)
        except ValidationError as error:
            reason = _validation_reason(error)
            _refuse(job, unit, [(row.line, row.raw, reason) for row in read], tally, errors)


def _refuse(job, unit, refused, tally: _Tally, errors: list) -> None:
    """The refused rows of a unit, and the unit's other rows with them."""
    bad_lines = {line for line, _raw, _reason in refused}
    for line, raw in unit:
        if line not in bad_lines:
            refused.append(
                (
                    line,
                    raw,
                    _("Not imported: another row of the same order (line %(lines)s) was refused.")
                    % {"lines": "、".join(str(n) for n in sorted(bad_lines))},
                )
            )
    for line, raw, reason in sorted(refused):
        errors.append(ImportRowError(job=job, line=line, row=raw, reason=reason))
        tally.rejected += 1


def _units(preset, mapping, batch):
    """Customer rows one by one; order rows grouped by order number."""
    if preset.kind != "orders":
        return ([item] for item in batch)
    return (
        list(group)
        for _key, group in groupby(batch, key=lambda item: _order_key(preset, mapping, item[1]))
    )


def _validation_reason(error: ValidationError) -> str:
    if not hasattr(error, "error_dict"):
        return " ".join(error.messages)
    parts = []
    for name, messages in error.message_dict.items():
        label = _field_label(name)
        text = " ".join(messages)
        parts.append(f"{label}: {text}" if label else text)
    return " ".join(parts)


def _field_label(name: str) -> str:
    for model in (Customer, Order):
        try:
            return str(model._meta.get_field(name).verbose_name)  # type: ignore[union-attr]  # a concrete field of this model, which has a verbose_name
        except FieldDoesNotExist:
            continue
    return ""


def _unit_write(job: ImportJob, rows: list[Row], tally: _Tally) -> None:
    """One customer row, or the rows of one order, through the services."""
    first = rows[0]
    data = first.customer
    customer, outcome = customer_upsert_outcome(
        channel=data.channel,
        external_id=data.external_id,
        identity_display_name=data.identity_display_name,
        tags=data.tags,
        actor=job.created_by,
        **data.profile,
    )
    tally.customer(customer, outcome)
    if first.consent is not None:
        _consent_write(job, customer, first.consent, tally)
    if first.order is None:
        return
    order = first.order
    lines = order_lines(rows)
    total = order_total(order, lines)
    written, outcome = order_upsert_outcome(
        channel=order.channel,
        order_number=order.order_number,
        customer=customer,
        ordered_at=order.ordered_at,
        total=total,
        status=order.status,
        shipped_at=order.shipped_at,
        delivered_at=order.delivered_at,
        lines=lines if lines else None,
        lifecycle=False,
        journeys=False,  # history brought in, not news: no order confirmation
    )
    tally.orders[outcome] += 1
    tally.lifecycle_ids.update(getattr(written, "lifecycle_customer_ids", ()))


def _consent_write(job: ImportJob, customer: Customer, consent, tally: _Tally) -> None:
    """The row's email consent into the ledger, unless it already says so."""
    event = consent_record(
        **new_consent(job, customer, consent).__dict__,
        unless_current=True,
        actor=job.created_by,
    )
    assert job.started_at is not None  # the job is running
    if event.recorded_at >= job.started_at:
        tally.consents += 1


# --- The error CSV -----------------------------------------------------------


def import_errors_csv(job: ImportJob) -> tuple[bytes, str]:
    """The refused rows as they were, with their line and reason, in the
    file's own encoding (CP932 stays CP932; UTF-8 gets a BOM, for Excel):
    fixed, it can be imported again. Returns (bytes, content type)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*job.header, _("line in the file"), _("why it was not imported")])
    for error in job.row_errors.all():
        writer.writerow([*error.row, error.line, error.reason])
    text = out.getvalue()
    if job.encoding == CP932:
        return text.encode(CP932, errors="replace"), "text/csv; charset=shift_jis"
    return text.encode(UTF8_BOM), "text/csv; charset=utf-8"
