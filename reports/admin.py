"""The improvement cycle's countermeasures, and the monthly trouble analysis
(月次トラブル分析) page for managers, served from the countermeasure admin."""

from __future__ import annotations

import contextlib
import json
from datetime import date, datetime
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.choices import Channel
from core.roles import is_manager, staff_name
from reports.csv import csv_response
from reports.models import Countermeasure
from reports.selectors.countermeasures import COUNTERMEASURE_SPAN, countermeasure_offset_label
from reports.selectors.figures import JST, month_default, month_label
from reports.selectors.monthly import monthly_report
from reports.services import countermeasure_save
from tickets.models import Category

MONTH_INPUT = "%Y-%m"


class MonthInput(forms.DateInput):
    input_type = "month"

    def __init__(self, attrs=None):
        super().__init__(attrs, format=MONTH_INPUT)


class MonthField(forms.DateField):
    """A month (input type="month"): the first day of it."""

    widget = MonthInput

    def __init__(self, **kwargs):
        super().__init__(input_formats=[MONTH_INPUT, "%Y-%m-%d"], **kwargs)

    def to_python(self, value):
        result = super().to_python(value)
        return result.replace(day=1) if result else result


class OwnerChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return staff_name(obj)


class CountermeasureForm(forms.ModelForm):
    month = MonthField(label=_("month"))
    owner = OwnerChoiceField(
        label=_("owner"),
        queryset=get_user_model()
        .objects.filter(is_active=True, is_staff=True)
        .order_by("last_name", "first_name", "username"),
    )

    class Meta:
        model = Countermeasure
        fields = [
            "month",
            "category",
            "channel",
            "incident",
            "cause",
            "action",
            "owner",
            "due_date",
            "status",
        ]

    def _post_clean(self):
        super()._post_clean()
        if self.instance.category_id is None and self.instance.incident_id is None:
            self.add_error(
                "category",
                gettext("Choose the category or the incident this countermeasure is for."),
            )


@admin.register(Countermeasure)
class CountermeasureAdmin(admin.ModelAdmin):
    form = CountermeasureForm
    list_display = (
        "month_shown",
        "category",
        "channel",
        "incident",
        "action_short",
        "owner_name",
        "due_date",
        "status",
    )
    list_filter = ("status", "category", "channel")
    list_select_related = ("category", "incident", "owner")
    ordering = ("-month", "due_date", "id")
    show_full_result_count = False

    @admin.display(description=_("month"), ordering="month")
    def month_shown(self, obj: Countermeasure) -> str:
        return month_label(obj.month)

    @admin.display(description=_("countermeasure"))
    def action_short(self, obj: Countermeasure) -> str:
        return obj.action if len(obj.action) <= 40 else obj.action[:40] + "…"

    @admin.display(description=_("owner"), ordering="owner__last_name")
    def owner_name(self, obj: Countermeasure) -> str:
        return staff_name(obj.owner)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict:
        initial: dict[str, Any] = super().get_changeform_initial_data(request)
        initial.setdefault("month", month_default())
        initial.setdefault("owner", request.user.pk)
        return initial

    def save_model(self, request, obj, form, change) -> None:
        countermeasure_save(countermeasure=obj, actor=request.user)

    def get_urls(self):
        return [
            path(
                "monthly/",
                self.admin_site.admin_view(self.monthly_view),
                name="reports_countermeasure_monthly",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_see_monthly": is_manager(request.user)}
        return super().changelist_view(request, extra_context)

    def monthly_view(self, request: HttpRequest) -> HttpResponse:
        """The monthly trouble analysis: managers only (agents and marketers
        are refused). ?export=<table> downloads that table as CSV."""
        if not is_manager(request.user):
            raise PermissionDenied
        month, channel, category = _report_filters(request)
        report = monthly_report(
            month=month,
            channel=channel,
            category=category,
            inquiry_list_url=reverse("admin:tickets_inquiry_changelist"),
        )
        export = request.GET.get("export")
        if export:
            try:
                table = report.table(export)
            except StopIteration:
                raise Http404 from None
            filename = f"{month:%Y-%m}_{table.title}.csv"
            return csv_response(filename=filename, columns=table.columns, rows=table.rows)
        query = request.GET.copy()
        query.pop("export", None)
        charts = {
            table.key: {
                "kind": table.chart.kind,
                "labels": [str(label) for label in table.chart.labels],
                "datasets": table.chart.datasets,
                "stacked": table.chart.stacked,
                "horizontal": table.chart.horizontal,
                "percent": table.chart.percent,
            }
            for table in report.tables
            if table.chart is not None and table.rows
        }
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Monthly trouble analysis"),
            "subtitle": month_label(month),
            "opts": self.model._meta,
            "report": report,
            "month_value": f"{month:%Y-%m}",
            "channel": channel,
            "category": category,
            "channels": Channel.choices,
            "categories": Category.objects.order_by("position", "name"),
            "query": query.urlencode(),
            "charts": json.loads(json.dumps(charts, default=str)),
            "offset_labels": [
                countermeasure_offset_label(offset)
                for offset in range(-COUNTERMEASURE_SPAN, COUNTERMEASURE_SPAN + 1)
            ],
            "generated_at": formats.date_format(
                report.now.astimezone(JST), "SHORT_DATETIME_FORMAT"
            ),
        }
        return TemplateResponse(request, "admin/reports/monthly.html", context)


def _report_filters(request: HttpRequest) -> tuple[date, str, Category | None]:
    """The month (default: the last complete one), channel and category
    asked for; anything unreadable falls back to no filter."""
    month = month_default()
    text = request.GET.get("month", "")
    if text:
        with contextlib.suppress(ValueError):
            month = datetime.strptime(text, MONTH_INPUT).date()
    channel = request.GET.get("channel", "")
    if channel not in Channel.values:
        channel = ""
    category = None
    category_id = request.GET.get("category", "")
    if category_id.isdigit():
        category = Category.objects.filter(pk=int(category_id)).first()
    return month, channel, category
