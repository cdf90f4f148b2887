"""CSV imports in the admin (顧客・注文の取り込み): the list, the upload
form, and one import's page with its progress bar (polling
`<id>/progress/`, JSON), counts, refused rows and the error CSV. Managers and
marketers only (the add and view permissions of ImportJob)."""

from __future__ import annotations

from urllib.parse import quote

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.admin import form_errors_add, staff_column
from core.audit import audit_csv_record
from crm.imports.presets import PRESET_CHOICES
from crm.imports.runner import import_errors_csv, import_job_create
from crm.models import ImportJob, ImportStatus

ERRORS_SHOWN = 100
_COUNT_LABELS = (
    ("customers_created", _("customers created")),
    ("customers_updated", _("customers updated")),
    ("customers_unchanged", _("customers unchanged")),
    ("orders_created", _("orders created")),
    ("orders_updated", _("orders updated")),
    ("orders_unchanged", _("orders unchanged")),
    ("consents_recorded", _("consents recorded")),
    ("rows_rejected", _("rows refused")),
)


class ImportForm(forms.Form):
    file = forms.FileField(label=_("CSV file"), help_text=_("UTF-8 or Shift_JIS (CP932)."))
    preset = forms.ChoiceField(label=_("format"), choices=PRESET_CHOICES)
    dry_run = forms.BooleanField(
        label=_("dry run"),
        required=False,
        help_text=_("Count what the import would do without writing anything."),
    )


def import_progress(job: ImportJob) -> dict:
    """What the progress bar shows (the page and its JSON)."""
    return {
        "status": job.status,
        "status_label": job.get_status_display(),
        "finished": job.status in (ImportStatus.DONE, ImportStatus.FAILED),
        "percent": job.percent,
        "done": job.rows_done,
        "total": job.rows_total,
        "counts": [
            {"key": key, "label": str(label), "count": job.counts.get(key, 0)}
            for key, label in _COUNT_LABELS
        ],
    }


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = (
        "file_name",
        "preset",
        "dry_run",
        "status",
        "progress",
        "created_by_name",
        "created_at",
    )
    list_filter = ("status", "preset", "dry_run")
    list_select_related = ("created_by",)
    created_by_name = staff_column(ImportJob, "created_by")

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("progress"))
    def progress(self, obj: ImportJob) -> str:
        return format_html(
            '<progress max="100" value="{}" style="width:6em"></progress> {}%',
            obj.percent,
            obj.percent,
        )

    def get_urls(self):
        return [
            path(
                "<path:object_id>/progress/",
                self.admin_site.admin_view(self.progress_view),
                name="crm_importjob_progress",
            ),
            path(
                "<path:object_id>/errors.csv",
                self.admin_site.admin_view(self.errors_view),
                name="crm_importjob_errors",
            ),
            *super().get_urls(),
        ]

    def _job(self, request, object_id) -> ImportJob:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return get_object_or_404(
            ImportJob.objects.select_related("created_by"), pk=unquote(object_id)
        )

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                job = import_job_create(
                    content=upload.read(),
                    file_name=upload.name,
                    preset=form.cleaned_data["preset"],
                    dry_run=form.cleaned_data["dry_run"],
                    actor=request.user,
                    request=request,
                )
            except ValidationError as error:
                form_errors_add(form, error)
            else:
                return HttpResponseRedirect(reverse("admin:crm_importjob_change", args=[job.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("Import customers and orders from CSV"),
            "form": form,
        }
        return TemplateResponse(request, "admin/crm/importjob/add.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self._job(request, object_id)
        errors = list(job.row_errors.all()[:ERRORS_SHOWN])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": job.file_name,
            "job": job,
            "progress": import_progress(job),
            "progress_url": reverse("admin:crm_importjob_progress", args=[job.pk]),
            "errors": errors,
            "errors_more": job.counts.get("rows_rejected", 0) > len(errors),
            "errors_url": reverse("admin:crm_importjob_errors", args=[job.pk]),
        }
        return TemplateResponse(request, "admin/crm/importjob/detail.html", context)

    def progress_view(self, request, object_id):
        return JsonResponse(import_progress(self._job(request, object_id)))

    def errors_view(self, request, object_id):
        job = self._job(request, object_id)
        content, content_type = import_errors_csv(job)
        audit_csv_record(
            request=request,
            rows=job.counts.get("rows_rejected", 0),
            held=gettext("rows refused by the import of %(file)s") % {"file": job.file_name},
        )
        response = HttpResponse(content, content_type=content_type)
        name = gettext("errors-%(file)s") % {"file": job.file_name}
        response["Content-Disposition"] = (
            f"attachment; filename=\"import-errors.csv\"; filename*=UTF-8''{quote(name)}"
        )
        return response
