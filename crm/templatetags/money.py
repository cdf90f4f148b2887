"""Amounts as the shop reads them: `{{ order.total|yen }}` → ¥14,570."""

from django import template

from crm.admin import yen as yen_text

register = template.Library()


@register.filter
def yen(amount: int | None) -> str:
    return yen_text(amount)
