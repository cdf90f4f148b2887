"""The incident screens. The broadcast panel on the incident page comes
from BroadcastAdminMixin (crisis.admin.broadcasts): the page includes
admin/crisis/incident/includes/broadcast.html with broadcast_context()."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import unquote

from crisis.admin.broadcasts import BroadcastAdminMixin
from crisis.models import Incident


@admin.register(Incident)
class IncidentAdmin(BroadcastAdminMixin, admin.ModelAdmin):
    change_form_template = "admin/crisis/incident/change_form.html"
    list_display = ("title", "kind", "channel", "status", "started_at", "expected_recovery_at")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        incident = self.get_object(request, unquote(object_id))
        extra_context = dict(extra_context or {})
        if incident is not None:
            extra_context.update(self.broadcast_context(request, incident))
        return super().change_view(request, object_id, form_url, extra_context)
