"""Automatic assignment and the satisfaction survey, as managers keep them:
assignment rules per channel or category, each agent's limit of open
inquiries and presence, and which channels ask for satisfaction. An agent
marks themselves present or absent with one click in the inbox
(`presence_view`)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from core.roles import staff_name
from tickets.models import AgentAvailability, AssignmentRule, CsatSetting
from tickets.selectors import assignable_staff
from tickets.services import agent_presence_set


@admin.register(AssignmentRule)
class AssignmentRuleAdmin(admin.ModelAdmin):
    list_display = ("applies_to", "mode", "group", "is_active", "last_assigned_at")
    list_filter = ("mode", "is_active")
    list_select_related = ("category", "group")
    fields = ("channel", "category", "mode", "group", "is_active")

    @admin.display(description=_("applies to"))
    def applies_to(self, obj: AssignmentRule) -> str:
        return str(obj)


@admin.register(AgentAvailability)
class AgentAvailabilityAdmin(admin.ModelAdmin):
    list_display = ("agent_name", "is_present", "open_limit", "last_assigned_at")
    list_editable = ("open_limit",)
    list_select_related = ("user",)
    fields = ("user", "is_present", "open_limit")
    ordering = ("user__last_name", "user__first_name", "user__username")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            kwargs["queryset"] = assignable_staff()  # who can be given inquiries
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description=_("agent"), ordering="user__last_name")
    def agent_name(self, obj: AgentAvailability) -> str:
        return staff_name(obj.user)

    def get_urls(self):
        return [
            path(
                "presence/",
                self.admin_site.admin_view(self.presence_view),
                name="tickets_agentavailability_presence",
            ),
            *super().get_urls(),
        ]

    @staticmethod
    def _back(request: HttpRequest) -> str:
        target = request.POST.get("next", "")
        if url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return target
        return reverse("admin:tickets_inquiry_changelist")

    def presence_view(self, request: HttpRequest) -> HttpResponse:
        """The signed-in agent marks themselves present or absent."""
        return require_POST(self._presence)(request)

    def _presence(self, request: HttpRequest) -> HttpResponse:
        present = request.POST.get("present") == "1"
        try:
            agent_presence_set(user=request.user, is_present=present, actor=request.user)  # type: ignore[arg-type]  # admin_view: signed-in staff only
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(
                request,
                gettext("You are now present: new inquiries may be assigned to you.")
                if present
                else gettext("You are now absent: no new inquiries are assigned to you."),
            )
        return HttpResponseRedirect(self._back(request))


@admin.register(CsatSetting)
class CsatSettingAdmin(admin.ModelAdmin):
    list_display = ("__str__", "is_active")
    fields = ("channel", "is_active")
