"""The playbooks screens of the crisis admin: each kind's playbook with its
ordered steps inline (who does it, within how long). Managers edit them;
an incident keeps the copy it opened with."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db import models
from django.db.models import Count
from django.utils.translation import gettext_lazy as _

from crisis.models import Playbook, PlaybookStep


class PlaybookStepInline(admin.TabularInline):
    model = PlaybookStep
    extra = 0
    fields = (
        "position",
        "title",
        "description",
        "role",
        "target_minutes",
        "malicious_target_minutes",
        "reply_template",
    )
    ordering = ("position", "id")
    # One row per step fits a 1366 px screen: a narrow title, a short "how".
    formfield_overrides = {
        models.CharField: {"widget": forms.TextInput(attrs={"size": 24})},
        models.TextField: {"widget": forms.Textarea(attrs={"rows": 3, "cols": 36})},
        models.PositiveIntegerField: {"widget": forms.NumberInput(attrs={"style": "width: 6em"})},
        models.PositiveSmallIntegerField: {
            "widget": forms.NumberInput(attrs={"style": "width: 4em"})
        },
    }

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "reply_template" and field is not None:
            # One query for every row's select, not one per row.
            cached = getattr(request, "_playbook_template_choices", None)
            if cached is None:
                cached = request._playbook_template_choices = list(field.choices)
            field.choices = cached
        return field


@admin.register(Playbook)
class PlaybookAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "step_count", "updated_at")
    fields = ("kind", "name", "signs", "contact_flow")
    inlines = (PlaybookStepInline,)
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(step_count=Count("steps"))

    @admin.display(description=_("steps"), ordering="step_count")
    def step_count(self, obj: Playbook) -> int:
        return obj.step_count  # type: ignore[attr-defined]  # annotated by get_queryset
