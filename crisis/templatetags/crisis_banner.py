"""The banner of ongoing incidents on every admin page
(templates/admin/base_site.html): one query, and only where a signed-in
staff member's page is drawn."""

from __future__ import annotations

from django import template

from crisis.selectors.incidents import incident_banner

register = template.Library()


@register.inclusion_tag("admin/crisis/incident/banner.html", takes_context=True)
def incident_banner_show(context) -> dict:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not (user.is_active and user.is_staff) or context.get("is_popup"):
        return {"incidents": []}
    return {"incidents": incident_banner()}
