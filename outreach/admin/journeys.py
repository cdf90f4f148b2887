"""Journeys (ステップ配信) in the admin, for marketers: the list, a journey's
page with its steps inline, turning it on and off (through the services,
with events), and its funnel (outreach.selectors.journey_funnel).

Saving calls `outreach.services.journey_save` with the journey and its
steps together: the marketplace rules and the review wording are checked
there, and a refusal is shown on the form (core.admin.ServiceFormAdmin)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.admin import ServiceFormAdmin
from core.choices import Channel
from crm.models import LifecycleSegment
from outreach import services
from outreach.admin.results import lift_text
from outreach.models import Delivery, Journey, JourneyStep, MessageChannel
from outreach.selectors import journey_funnel

ORDER_CHANNELS = [
    (value, label) for value, label in Channel.choices if value not in ("line", "email", "phone")
]


class JourneyForm(forms.ModelForm):
    order_channels = forms.MultipleChoiceField(
        label=_("order channels"),
        choices=ORDER_CHANNELS,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Only orders from these channels enter (none ticked: every channel)."),
    )
    lifecycle_segments = forms.MultipleChoiceField(
        label=_("lifecycle segments"),
        choices=[
            (value, label)
            for value, label in LifecycleSegment.choices
            if value != LifecycleSegment.CLAIMANT
        ],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Only customers in these segments enter (none ticked: everyone)."),
    )

    class Meta:
        model = Journey
        fields = (
            "name",
            "description",
            "trigger",
            "channel",
            "next_channel",
            "is_transactional",
            "order_channels",
            "lifecycle_segments",
            "segment",
            "conversion_window_days",
        )


class JourneyStepInline(admin.TabularInline):
    model = JourneyStep
    extra = 0
    fields = (
        "name",
        "delay_days",
        "delay_hours",
        "business_days",
        "calendar",
        "template",
        "next_template",
        "condition",
        "is_review_request",
        "holdout_percent",
    )
    ordering = ("position",)
    autocomplete_fields = ()

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("template", "next_template", "calendar")


@admin.register(Journey)
class JourneyAdmin(ServiceFormAdmin):
    form = JourneyForm
    inlines = (JourneyStepInline,)
    list_display = ("name", "trigger", "channels", "is_transactional", "active", "entered")
    list_filter = ("active", "trigger", "is_transactional")
    search_fields = ("name",)
    ordering = ("name",)
    show_full_result_count = False

    def get_changelist_instance(self, request: HttpRequest):
        """Every row's number of entries, in one query for the page."""
        changelist = super().get_changelist_instance(request)
        rows = list(changelist.result_list)
        counts = dict(
            Delivery.objects.filter(
                send__journey_step__journey__in=rows, send__journey_step__position=1
            )
            .values("send__journey_step__journey")
            .annotate(n=Count("id"))
            .values_list("send__journey_step__journey", "n")
            .order_by()
        )
        for row in rows:
            row.entered_count = counts.get(row.pk, 0)
        return changelist

    @admin.display(description=_("channels"))
    def channels(self, obj: Journey) -> str:
        """In order of preference: 「LINE → メール」."""
        return " → ".join(str(MessageChannel(channel).label) for channel in obj.channels)

    @admin.display(description=_("entered (first step)"))
    def entered(self, obj: Journey) -> str:
        return f"{getattr(obj, 'entered_count', 0):,}"

    def has_delete_permission(self, request: HttpRequest, obj: Journey | None = None) -> bool:
        return False  # a journey is turned off, never deleted: its ledger stays

    # --- Saving: the journey and its steps through the service ------------------------

    def save_model(self, request: HttpRequest, obj: Journey, form, change: bool) -> None:
        """Saved with its steps in save_related (one service call)."""

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        steps, deleted = [], []
        for formset in formsets:
            # What the admin's change message reads of a saved formset.
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
            for step_form in formset.forms:
                if step_form in formset.deleted_forms:
                    deleted.append(step_form.instance)
                elif step_form.instance.pk or step_form.has_changed():
                    steps.append(step_form.instance)
        services.journey_save(
            journey=form.instance, steps=steps, deleted=deleted, actor=request.user
        )

    # --- The page: funnel and the on/off button -------------------------------------

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Journey | None = None,
    ) -> HttpResponse:
        if obj is not None and obj.pk:
            context["journey"] = obj
            funnel = journey_funnel(obj)
            context["funnel"] = funnel
            context["funnel_rows"] = [
                (
                    row,
                    lift_text(row.results, holdout_set=bool(row.step.holdout_percent))
                    if row.results
                    else "",
                    [
                        (MessageChannel(channel).label, row.sent_by_channel.get(channel, 0))
                        for channel in obj.channels
                    ]
                    if obj.next_channel
                    else [],
                )
                for row in funnel.steps
            ]
            context["can_act"] = self.has_change_permission(request, obj)
            context["toggle_url"] = reverse("admin:outreach_journey_toggle", args=[obj.pk])
            context["deliveries_url"] = reverse("admin:outreach_delivery_changelist")
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/toggle/",
                self.admin_site.admin_view(self.toggle_view),
                name="outreach_journey_toggle",
            ),
            *super().get_urls(),
        ]

    def toggle_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        journey = self.get_object(request, unquote(object_id))
        if journey is None:
            raise Http404
        if not self.has_change_permission(request, journey):
            raise PermissionDenied
        if request.POST.get("active") == "1":
            services.journey_activate(journey=journey, actor=request.user)
            text = gettext("“%(name)s” is on: new orders and customers enter it from now on.")
        else:
            services.journey_deactivate(journey=journey, actor=request.user)
            text = gettext("“%(name)s” is off: nobody enters it and waiting steps are withdrawn.")
        self.message_user(request, text % {"name": journey.name}, messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:outreach_journey_change", args=[journey.pk]))
