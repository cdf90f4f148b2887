"""The emergency broadcast and the affected-orders notice on the incident
page: IncidentAdmin (crisis.admin.incidents) takes this mixin, calls
broadcast_context() for its change page (which includes
admin/crisis/incident/includes/broadcast.html) and serves get_urls()."""


class BroadcastAdminMixin:
    def broadcast_context(self, request, incident) -> dict:
        return {"incident": incident}
