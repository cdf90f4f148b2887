"""The inquiry page's merge panel: where a merged inquiry went, where a split
one came from, the merge suggestion, and the links to the merge and split
pages (tickets/admin/merge_pages.py)."""

from __future__ import annotations

from django import template
from django.urls import reverse
from django.utils.http import urlencode

from tickets.selectors import MERGE_SUGGEST_DAYS, merge_panel_inquiries

register = template.Library()


@register.inclusion_tag("admin/tickets/inquiry/includes/merge_panel.html", takes_context=True)
def inquiry_merge_panel(context, inquiry) -> dict:
    named = {row.pk: row for row in merge_panel_inquiries(inquiry)}
    for row in named.values():
        row.url = reverse("admin:tickets_inquiry_change", args=[row.pk])  # type: ignore[attr-defined]  # set here for the template
    suggestions = [
        row
        for pk, row in named.items()
        if pk not in (inquiry.merged_into_id, inquiry.split_from_id)
    ]
    named_pks = [row.pk for row in suggestions]
    can_change = bool(context.get("can_change")) and inquiry.merged_into_id is None
    merge_url = reverse("admin:tickets_inquiry_merge", args=[inquiry.pk])
    return {
        "inquiry": inquiry,
        "merged_into": named.get(inquiry.merged_into_id),
        "split_from": named.get(inquiry.split_from_id),
        "suggestions": suggestions,
        "suggest_days": MERGE_SUGGEST_DAYS,
        "suggest_url": f"{merge_url}?{urlencode({'with': ','.join(map(str, named_pks))})}",
        "can_change": can_change,
        "merge_url": merge_url,
        "split_url": reverse("admin:tickets_inquiry_split", args=[inquiry.pk]),
    }
