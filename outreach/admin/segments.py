"""Segments in the admin: a rule builder, a live count and a sample.

Display only: saving calls `outreach.segments.segment_save`. The builder (a
small vanilla-JS file, outreach/static/outreach/segment_builder.js) draws
the rule as rows of field / operator / value and writes it as JSON into the
`rule` field, which stays editable as text for nested groups or when
JavaScript is off. As the marketer edits, the builder asks the preview view
(POST .../segment/preview/) for the count, the description and a sample.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.admin import ServiceFormAdmin, copy_saved, form_errors_add, staff_column
from crm.models import Customer
from outreach.models import Segment
from outreach.segments import (
    MAX_DEPTH,
    OPERATORS,
    SEGMENT_FIELDS,
    segment_describe,
    segment_error_paths,
)
from outreach.selectors import segment_counts, segment_preview
from outreach.services import segment_save, segment_values_clean


def rule_json(rule: Any) -> str:
    return json.dumps(rule, ensure_ascii=False, indent=2) if rule else ""


def builder_schema() -> dict[str, Any]:
    """What the JS builder needs to draw rows: the field registry, with
    labels and choices in the active language."""
    fields = []
    for segment_field in SEGMENT_FIELDS.values():
        fields.append(
            {
                "name": segment_field.name,
                "label": str(segment_field.label),
                "operators": [
                    {
                        "name": name,
                        "label": str(OPERATORS[name].label),
                        "value": OPERATORS[name].value,
                    }
                    for name in segment_field.operators
                ],
                "choices": [[value, str(label)] for value, label in segment_field.choices()]
                if segment_field.choices
                else None,
                "suggestions": list(segment_field.suggestions())
                if segment_field.suggestions
                else [],
                "min": segment_field.minimum,
                "max": segment_field.maximum,
            }
        )
    return {
        "fields": fields,
        "maxDepth": MAX_DEPTH,
        "text": {
            "matchAll": gettext("all of these"),
            "matchAny": gettext("any of these"),
            "customersMatching": gettext("Customers who match"),
            "addCondition": gettext("Add a condition"),
            "addGroup": gettext("Add a group"),
            "remove": gettext("Remove"),
            "yes": gettext("yes"),
            "no": gettext("no"),
            "namesHelp": gettext("Separate names with commas."),
            "suggestions": gettext("Existing:"),
            "cannotShow": gettext(
                "This rule cannot be shown in the builder; edit it as JSON below."
            ),
            "counting": gettext("Counting…"),
            "previewFailed": gettext("The count could not be loaded; try again."),
            "noOrders": gettext("no orders"),
        },
    }


def sample_row(customer: Customer) -> dict[str, Any]:
    last_order = customer.last_order_at
    return {
        "id": customer.pk,
        "name": customer.label,
        "kana": customer.display_name_kana,
        "segment": str(customer.get_lifecycle_segment_display()),
        "last_order": date_format(timezone.localtime(last_order), "SHORT_DATE_FORMAT")
        if last_order
        else "",
        "claimant": customer.is_claimant,
        "url": reverse("admin:crm_customer_change", args=[customer.pk]),
    }


def preview_errors(error: ValidationError) -> dict[str, Any]:
    """{"errors": {form field: [messages]}, "paths": [rule paths],
    "by_path": {rule path: [messages]}} (the builder leaves out the
    problems of rows nobody has touched yet)."""
    errors = error.error_dict if hasattr(error, "error_dict") else {"__all__": error.error_list}
    paths = segment_error_paths(ValidationError(errors["rule"])) if "rule" in errors else {}
    return {
        "errors": {
            name: [message for item in items for message in item.messages]
            for name, items in errors.items()
        },
        "paths": sorted(paths),
        "by_path": paths,
    }


class SegmentForm(forms.ModelForm):
    rule = forms.CharField(
        label=_("rule (JSON)"),
        required=False,
        widget=forms.Textarea(
            attrs={"rows": 6, "class": "vLargeTextField segment-rule-json", "spellcheck": "false"}
        ),
        help_text=_(
            "Written by the builder above. Edit it here for nested groups, "
            "or when the builder is not available."
        ),
    )

    class Meta:
        model = Segment
        fields = ("name", "kind", "lifecycle_segment", "description", "rule")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["rule"] = rule_json(self.instance.rule)

    def clean_rule(self) -> Any:
        text = self.cleaned_data["rule"].strip()
        if not text:
            return {}
        try:
            return json.loads(text)
        except RecursionError:
            raise ValidationError(gettext("The rule is nested too deeply.")) from None
        except ValueError as error:
            raise ValidationError(
                gettext("The rule is not valid JSON: %(error)s"), params={"error": error}
            ) from None

    def clean(self) -> dict[str, Any]:
        cleaned_data: dict[str, Any] = super().clean()  # type: ignore[assignment]  # Form.clean returns cleaned_data; the stubs allow None for overrides
        if "kind" in cleaned_data and "rule" in cleaned_data:
            # The service's own validation, so that problems show on the
            # form before saving; segment_save runs it again.
            try:
                values = segment_values_clean(
                    name=cleaned_data.get("name") or "",
                    kind=cleaned_data["kind"],
                    lifecycle_segment=cleaned_data.get("lifecycle_segment") or "",
                    rule=cleaned_data["rule"],
                )
            except ValidationError as error:
                form_errors_add(self, error)
            else:
                for name in ("kind", "lifecycle_segment", "rule"):
                    cleaned_data[name] = values[name]
        return cleaned_data


@admin.register(Segment)
class SegmentAdmin(ServiceFormAdmin):
    form = SegmentForm
    list_display = ("name", "kind", "rule_description", "live_count", "updated_at")
    list_filter = ("kind",)
    search_fields = ("name", "description")
    show_full_result_count = False
    # Every page's counts are one COUNT ... FILTER (WHERE ...) per row over
    # the customers: a shorter page keeps that scan cheap.
    list_per_page = 50
    readonly_fields = ("created_by_name", "created_at", "updated_at")
    created_by_name = staff_column(Segment, "created_by")
    main_fields = ("name", "kind", "lifecycle_segment", "description")

    class Media:
        js = ("outreach/segment_builder.js",)

    def get_fieldsets(self, request: HttpRequest, obj: Segment | None = None):
        fieldsets = [
            (None, {"fields": self.main_fields}),
            (_("Advanced: the rule as JSON"), {"fields": ("rule",)}),
        ]
        if obj is not None:
            fieldsets.append((_("Record"), {"fields": self.readonly_fields}))
        return fieldsets

    # --- Changelist: every row's count in one query ----------------------------

    def get_changelist_instance(self, request: HttpRequest):
        changelist = super().get_changelist_instance(request)
        rows = list(changelist.result_list)  # evaluates (and caches) the page once
        counts = segment_counts(rows)
        for row in rows:
            row.segment_live_count = counts.get(row.pk)
        return changelist

    @admin.display(description=_("customers now"))
    def live_count(self, obj: Segment) -> str:
        count = getattr(obj, "segment_live_count", None)
        return "—" if count is None else f"{count:,}"

    @admin.display(description=_("who"))
    def rule_description(self, obj: Segment) -> str:
        try:
            return segment_describe(obj)
        except ValidationError as error:
            return format_html(
                '<span class="errorlist">{}</span>',
                gettext("Invalid rule: %(errors)s") % {"errors": " ".join(error.messages[:3])},
            )

    # --- Change page: builder, current count and sample ------------------------

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Segment | None = None,
    ) -> HttpResponse:
        editable = self.has_change_permission(request, obj) if change else True
        context.update(
            segment_builder_schema=builder_schema(),
            segment_preview_url=reverse("admin:outreach_segment_preview"),
            segment_editable=editable,
        )
        if obj is not None and obj.pk and request.method == "GET":
            try:
                preview = segment_preview(obj)
            except ValidationError as error:
                context["segment_current_errors"] = error.messages
            else:
                context.update(
                    segment_current_count=f"{preview.count:,}",
                    segment_current_description=preview.description,
                    segment_current_sample=[sample_row(c) for c in preview.sample],
                )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        return [
            path(
                "preview/",
                self.admin_site.admin_view(self.preview_view),
                name="outreach_segment_preview",
            ),
            *super().get_urls(),
        ]

    def preview_view(self, request: HttpRequest) -> HttpResponse:
        """POST {"kind", "lifecycle_segment", "rule"} → {"count", "description",
        "sample"}, or 400 {"errors": {field: [messages]}, "paths": [...]}."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not (self.has_add_permission(request) or self.has_change_permission(request)):
            raise PermissionDenied
        try:
            payload = json.loads(request.body or b"{}")
        except (ValueError, RecursionError):
            payload = None
        if not isinstance(payload, dict):
            error = ValidationError(gettext("Send the rule as a JSON object."))
            return JsonResponse(preview_errors(error), status=400)
        try:
            values = segment_values_clean(
                name="",
                kind=payload.get("kind", "custom"),
                lifecycle_segment=payload.get("lifecycle_segment") or "",
                rule=payload.get("rule"),
            )
            preview = segment_preview(Segment(**values))
        except ValidationError as error:
            return JsonResponse(preview_errors(error), status=400)
        return JsonResponse(
            {
                "count": preview.count,
                "description": preview.description,
                "sample": [sample_row(customer) for customer in preview.sample],
            }
        )

    # --- Saving through the service --------------------------------------------

    def save_model(self, request: HttpRequest, obj: Segment, form, change: bool) -> None:
        data = form.cleaned_data
        saved = segment_save(
            segment=obj if change else None,
            name=data["name"],
            kind=data["kind"],
            lifecycle_segment=data.get("lifecycle_segment") or "",
            rule=data.get("rule"),
            description=data.get("description") or "",
            actor=request.user,
        )
        copy_saved(obj, saved)

    def save_related(self, request, form, formsets, change) -> None:
        pass  # a segment has no related rows to save
