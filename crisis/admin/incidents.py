"""The incident screens: the list (impact and checklist progress counted by
the database), the add form (managers: opening copies the playbook), and
the incident page: timeline with an update box, the checklist with tick
buttons (overdue steps in red), linked and suggested inquiries with one
「まとめて関連付ける」, impact, root cause and countermeasure (the close
page), and the broadcast panel (crisis/admin/broadcasts.py)."""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from core.admin import ServiceFormAdmin, copy_saved, staff_column
from core.roles import is_manager, staff_name
from crisis.admin.broadcasts import BroadcastAdminMixin
from crisis.models import ChecklistItem, Incident, IncidentEvent, IncidentEventKind, IncidentStatus
from crisis.selectors.incidents import (
    incident_checklist,
    incident_inquiries,
    incident_suggested_inquiries,
    incident_timeline,
    incidents_with_impact,
)
from crisis.services.incidents import (
    EDITABLE,
    incident_close,
    incident_edit,
    incident_inquiries_link,
    incident_open,
    incident_recover,
    incident_update,
)
from crisis.services.playbooks import (
    checklist_step_may_tick,
    checklist_step_tick,
    checklist_step_untick,
)
from tickets.models import Inquiry

SUGGESTIONS_SHOWN = 50
# Who may use the page's controls (the seeded roles: agents and managers;
# marketers only read): each control asks for its permission.
UPDATE_PERMISSION = "crisis.add_incidentevent"
TICK_PERMISSION = "crisis.change_checklistitem"
LINK_PERMISSION = "tickets.change_inquiry"


class IncidentAddForm(forms.ModelForm):
    class Meta:
        model = Incident
        fields = (
            "kind",
            "title",
            "channel",
            "system",
            "started_at",
            "expected_recovery_at",
            "is_malicious",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "started_at" in self.fields:  # the add form
            self.fields["started_at"].initial = timezone.now


class IncidentUpdateForm(forms.Form):
    text = forms.CharField(
        label=_("what is known now"),
        widget=forms.Textarea(attrs={"rows": 3, "class": "vLargeTextField"}),
    )
    expected_recovery_at = forms.DateTimeField(
        label=_("new expected recovery"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text=_("Managers only: it goes on every agent's banner."),
    )


class IncidentCloseForm(forms.Form):
    root_cause = forms.CharField(
        label=_("root cause"), widget=forms.Textarea(attrs={"rows": 4, "cols": 60})
    )
    countermeasure = forms.CharField(
        label=_("countermeasure"),
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        help_text=_("What the shop does so that it does not happen again."),
    )


# What the timeline says for each kind of event besides the text written.
TIMELINE_TEXT: dict[str, Callable[[IncidentEvent], str]] = {
    IncidentEventKind.INQUIRIES_LINKED: lambda event: (
        ngettext(
            "%(count)d inquiry linked", "%(count)d inquiries linked", event.data.get("count", 0)
        )
        % {"count": event.data.get("count", 0)}
    ),
}


@admin.register(Incident)
class IncidentAdmin(BroadcastAdminMixin, ServiceFormAdmin):
    change_form_template = "admin/crisis/incident/change_form.html"
    form = IncidentAddForm
    list_display = (
        "title",
        "kind",
        "channel",
        "status",
        "started_at",
        "expected_recovery_at",
        "impact_inquiries_column",
        "impact_customers_column",
        "impact_orders_column",
        "progress",
    )
    list_filter = ("status", "kind", "channel")
    ordering = ("-started_at", "-id")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    readonly_fields = (
        "kind",
        "status",
        "started_at",
        "recovered_at",
        "closed_at",
        "is_malicious",
        "opened_by_name",
        "root_cause",
        "countermeasure",
    )
    opened_by_name = staff_column(Incident, "opened_by")

    class Media:
        css = {"all": ("crisis/incident.css",)}

    def get_queryset(self, request):
        return incidents_with_impact(super().get_queryset(request))

    def get_fields(self, request, obj=None):
        if obj is None:
            return IncidentAddForm.Meta.fields
        # The editable ones (incident_edit's) first, then what the services set.
        return (*EDITABLE, *self.readonly_fields)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.status == IncidentStatus.CLOSED:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # an incident is closed, never deleted: reports count it

    # --- Columns -------------------------------------------------------------

    @admin.display(description=_("inquiries"), ordering="impact_inquiries")
    def impact_inquiries_column(self, obj: Incident) -> int:
        return obj.impact_inquiries  # type: ignore[attr-defined]  # annotated by incidents_with_impact

    @admin.display(description=_("customers"), ordering="impact_customers")
    def impact_customers_column(self, obj: Incident) -> int:
        return obj.impact_customers  # type: ignore[attr-defined]  # annotated by incidents_with_impact

    @admin.display(description=_("orders"), ordering="impact_orders")
    def impact_orders_column(self, obj: Incident) -> int:
        return obj.impact_orders  # type: ignore[attr-defined]  # annotated by incidents_with_impact

    @admin.display(description=_("checklist"))
    def progress(self, obj: Incident) -> str:
        return f"{obj.steps_done}/{obj.steps_total}"  # type: ignore[attr-defined]  # annotated by incidents_with_impact

    # --- Saving through the services -------------------------------------------

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            saved = incident_edit(
                incident=obj,
                actor=request.user,
                **{name: data[name] for name in form.changed_data if name in data},
            )
        else:
            saved = incident_open(
                kind=data["kind"],
                title=data["title"],
                channel=data.get("channel") or "",
                system=data.get("system") or "",
                started_at=data["started_at"],
                expected_recovery_at=data.get("expected_recovery_at"),
                is_malicious=data.get("is_malicious", False),
                actor=request.user,
            )
        copy_saved(obj, saved)

    def save_related(self, request, form, formsets, change):
        pass  # the services wrote everything

    # --- The page ----------------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/update/", view(self.update_view), name="crisis_incident_update"),
            path(
                "<path:object_id>/step/<int:step_id>/<slug:action>/",
                view(self.step_view),
                name="crisis_incident_step",
            ),
            path("<path:object_id>/link/", view(self.link_view), name="crisis_incident_link"),
            path(
                "<path:object_id>/recover/", view(self.recover_view), name="crisis_incident_recover"
            ),
            path("<path:object_id>/close/", view(self.close_view), name="crisis_incident_close"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        incident = self.get_object(request, unquote(object_id))
        extra_context = dict(extra_context or {})
        if incident is not None and self.has_view_or_change_permission(request, incident):
            extra_context.update(self.broadcast_context(request, incident))
            extra_context.update(self.page_context(request, incident))
        return super().change_view(request, object_id, form_url, extra_context)

    def page_context(self, request: HttpRequest, incident: Incident) -> dict:
        now = timezone.now()
        manager = is_manager(request.user)
        steps = list(incident_checklist(incident))
        for step in steps:
            step.overdue = step.done_at is None and step.due_at is not None and step.due_at <= now  # type: ignore[attr-defined]  # set here for the template
            step.done_by_name = staff_name(step.done_by)  # type: ignore[attr-defined]  # set here for the template
            step.may_tick = (  # type: ignore[attr-defined]  # set here for the template
                incident.status != IncidentStatus.CLOSED
                and request.user.has_perm(TICK_PERMISSION)
                and checklist_step_may_tick(step, request.user)
            )
        timeline = []
        for event in incident_timeline(incident):
            describe = TIMELINE_TEXT.get(event.kind)
            timeline.append(
                {
                    "at": event.created_at,
                    "kind": event.get_kind_display(),
                    "who": staff_name(event.actor),
                    "text": describe(event) if describe else event.text,
                    "is_update": event.kind == IncidentEventKind.UPDATE,
                }
            )
        suggested = list(incident_suggested_inquiries(incident)[:SUGGESTIONS_SHOWN])
        return {
            "incident": incident,
            "is_manager": manager,
            "checklist": steps,
            "timeline": timeline,
            "linked_inquiries": list(incident_inquiries(incident)),
            "suggested_inquiries": suggested,
            "update_form": IncidentUpdateForm(),
            "can_act": incident.status != IncidentStatus.CLOSED,
            "can_update": request.user.has_perm(UPDATE_PERMISSION),
            "can_link": request.user.has_perm(LINK_PERMISSION),
        }

    def _incident(self, request: HttpRequest, object_id: str, permission: str = "") -> Incident:
        if request.method != "POST" or (permission and not request.user.has_perm(permission)):
            raise PermissionDenied
        incident = self.get_object(request, unquote(object_id))
        if incident is None:
            raise Http404
        if not self.has_view_permission(request, incident):
            raise PermissionDenied
        return incident

    def _back(self, request, incident: Incident, anchor: str = "") -> HttpResponseRedirect:
        url = request.POST.get("next") or ""
        if not url or not url_has_allowed_host_and_scheme(
            url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            url = reverse("admin:crisis_incident_change", args=[incident.pk])
            url = f"{url}#{anchor}" if anchor else url
        return HttpResponseRedirect(url)

    def _refused(self, request, error: PermissionDenied | ValidationError) -> None:
        if isinstance(error, PermissionDenied):
            text = str(error) or gettext("You may not do this.")
        else:
            text = " ".join(error.messages)
        self.message_user(request, text, messages.ERROR)

    def update_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        incident = self._incident(request, object_id, UPDATE_PERMISSION)
        form = IncidentUpdateForm(request.POST)
        if not form.is_valid():
            self.message_user(request, gettext("Write what is known now."), messages.ERROR)
            return self._back(request, incident, "timeline")
        try:
            incident_update(
                incident=incident,
                text=form.cleaned_data["text"],
                expected_recovery_at=form.cleaned_data["expected_recovery_at"],
                actor=request.user,
            )
        except (ValidationError, PermissionDenied) as error:
            self._refused(request, error)
        else:
            self.message_user(request, gettext("Update added to the timeline."), messages.SUCCESS)
        return self._back(request, incident, "timeline")

    def step_view(self, request, object_id, step_id: int, action: str):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        incident = self._incident(request, object_id, TICK_PERMISSION)
        if action not in ("tick", "untick"):
            raise Http404
        step = ChecklistItem.objects.filter(incident=incident, pk=step_id).first()
        if step is None:
            raise Http404
        service = checklist_step_tick if action == "tick" else checklist_step_untick
        try:
            service(item=step, actor=request.user)
        except (ValidationError, PermissionDenied) as error:
            self._refused(request, error)
        return self._back(request, incident, "checklist")

    def link_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        incident = self._incident(request, object_id, LINK_PERMISSION)
        ids = [int(pk) for pk in request.POST.getlist("inquiry") if pk.isdigit()]
        if not ids:
            self.message_user(request, gettext("Choose the inquiries to link."), messages.ERROR)
            return self._back(request, incident, "inquiries")
        inquiries = Inquiry.objects.filter(pk__in=ids).only("pk")
        try:
            count = incident_inquiries_link(
                incident=incident, inquiries=inquiries, actor=request.user
            )
        except (ValidationError, PermissionDenied) as error:
            self._refused(request, error)
        else:
            self.message_user(request, link_message(count, incident), messages.SUCCESS)
        return self._back(request, incident, "inquiries")

    def recover_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        incident = self._incident(request, object_id)
        try:
            incident_recover(incident=incident, actor=request.user)
        except (ValidationError, PermissionDenied) as error:
            self._refused(request, error)
        else:
            self.message_user(request, gettext("Recorded as recovered."), messages.SUCCESS)
        return self._back(request, incident)

    def close_view(self, request, object_id):
        if not is_manager(request.user):
            raise PermissionDenied

        def done(incident, data):
            incident_close(
                incident=incident,
                root_cause=data["root_cause"],
                countermeasure=data["countermeasure"],
                actor=request.user,
            )
            self.message_user(request, gettext("The incident is closed."), messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:crisis_incident_change", args=[incident.pk]))

        return self.object_form_view(
            request,
            object_id,
            form_class=IncidentCloseForm,
            title=gettext("Close the incident"),
            template="admin/crisis/incident/close_form.html",
            done=done,
        )


def link_message(count: int, incident: Incident) -> str:
    return ngettext(
        "%(count)d inquiry linked to %(title)s.",
        "%(count)d inquiries linked to %(title)s.",
        count,
    ) % {"count": count, "title": incident.title}
