"""{% inbox_result_list cl %}: the admin's {% result_list cl %} with the
rows of tickets.admin.inbox_rows (the same HTML, rendered faster)."""

from django import template
from django.contrib.admin.templatetags.admin_list import result_headers, result_hidden_fields
from django.contrib.admin.templatetags.base import InclusionAdminNode

from tickets.admin.inbox_rows import inbox_results

register = template.Library()


def inbox_result_list(cl) -> dict:
    headers = list(result_headers(cl))
    return {
        "cl": cl,
        "result_hidden_fields": list(result_hidden_fields(cl)),
        "result_headers": headers,
        "num_sorted_fields": sum(1 for h in headers if h["sortable"] and h["sorted"]),
        "results": list(inbox_results(cl)),
    }


@register.tag(name="inbox_result_list")
def inbox_result_list_tag(parser, token):
    return InclusionAdminNode(
        parser,
        token,
        func=inbox_result_list,
        template_name="change_list_results.html",
        takes_context=False,
    )
