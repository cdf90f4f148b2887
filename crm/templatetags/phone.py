"""Phone numbers as people read them: `{{ customer.phone|phone }}` →
090-1234-5678 (crm.normalize.phone_display)."""

from django import template

from crm.normalize import phone_display

register = template.Library()


@register.filter
def phone(raw: str | None) -> str:
    return phone_display(raw)
