"""CSV import jobs (crm.imports): the uploaded file, its progress and the
rows that failed."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class ImportPreset(models.TextChoices):
    """The shapes of CSV file an import reads (crm.imports.presets)."""

    CUSTOMERS = "customers", _("Customers (Madoguchi format)")
    ORDERS = "orders", _("Orders with lines (Madoguchi format)")
    RAKUTEN = "rakuten", _("Rakuten RMS order CSV")
    YAHOO = "yahoo", _("Yahoo! Shopping store order CSV")
    OWN_SITE = "own_site", _("Own site order CSV")


class ImportStatus(models.TextChoices):
    QUEUED = "queued", pgettext_lazy("an import", "Waiting")
    RUNNING = "running", _("Importing")
    DONE = "done", _("Finished")
    FAILED = "failed", _("Failed")


def import_file_path(instance, filename: str) -> str:
    return f"imports/{timezone.now():%Y/%m}/{filename}"


class ImportJob(models.Model):
    """One CSV file imported (or tried, as a dry run) by the worker in
    batches (crm.imports.runner): what it did, counted, and how far it got."""

    file = models.FileField(_("file"), upload_to=import_file_path, max_length=500)
    file_name = models.CharField(_("file name"), max_length=255)
    preset = models.CharField(_("format"), max_length=20, choices=ImportPreset.choices)
    dry_run = models.BooleanField(_("dry run"), default=False)
    status = models.CharField(
        _("status"), max_length=10, choices=ImportStatus.choices, default=ImportStatus.QUEUED
    )
    encoding = models.CharField(_("encoding"), max_length=20, blank=True)
    header = models.JSONField(_("header"), default=list, blank=True)
    rows_total = models.PositiveIntegerField(_("rows"), default=0)
    rows_done = models.PositiveIntegerField(_("rows read"), default=0)
    # What the import did (or a dry run would do): customers_created,
    # customers_updated, customers_unchanged, orders_created, ...,
    # consents_recorded, rows_rejected.
    counts = models.JSONField(_("counts"), default=dict, blank=True)
    failure = models.TextField(_("why it failed"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("imported by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("CSV import")
        verbose_name_plural = _("CSV imports")

    def __str__(self) -> str:
        return self.file_name

    @property
    def percent(self) -> int:
        if self.status == ImportStatus.DONE:
            return 100
        if not self.rows_total:
            return 0
        return min(100, self.rows_done * 100 // self.rows_total)


class ImportRowError(models.Model):
    """A row an import refused: its line in the file, the row as it was,
    and why (in Japanese), for the error CSV."""

    job = models.ForeignKey(
        ImportJob, on_delete=models.CASCADE, related_name="row_errors", verbose_name=_("import")
    )
    line = models.PositiveIntegerField(_("line"))
    row = models.JSONField(_("row"), default=list)
    reason = models.TextField(_("reason"))

    class Meta:
        ordering = ["job", "line", "id"]
        verbose_name = _("rejected row")
        verbose_name_plural = _("rejected rows")

    def __str__(self) -> str:
        return f"{self.line}: {self.reason}"
