"""The emergency broadcast and the affected-orders notice on the incident
page: IncidentAdmin (crisis.admin.incidents) takes this mixin, and its page
includes admin/crisis/incident/includes/broadcast.html."""


class BroadcastAdminMixin:
    def broadcast_context(self, request, incident) -> dict:
        return {}
