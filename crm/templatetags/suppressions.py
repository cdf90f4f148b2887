"""The customer page's suppressed addresses: {% customer_suppressions customer %}."""

from __future__ import annotations

from django import template

from crm.models import Customer, Suppression

register = template.Library()


@register.inclusion_tag("admin/crm/customer/suppressions.html", takes_context=True)
def customer_suppressions(context, customer: Customer) -> dict:
    """The open suppressions of the customer's email address (one query)."""
    rows = []
    if customer is not None and customer.email_normalized:
        rows = list(
            Suppression.objects.filter(
                address=customer.email_normalized, lifted_at__isnull=True
            ).order_by("-since")
        )
    request = context.get("request")
    can_lift = bool(request and request.user.has_perm("crm.change_suppression"))
    return {"suppressions": rows, "can_lift": can_lift}
