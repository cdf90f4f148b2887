"""The inbox's rows, the same HTML as the admin's own, in a fraction of
its time.

The admin renders every cell of every row from scratch: it looks the column
up again on the model and the ModelAdmin, builds the choices dictionary of
a choices field, re-derives the CSS classes, reverses the row's URL and
parses the filters into it. On a 50-row inbox page that is most of the
page's Python. Here each column is worked out once a page and a row only
fetches its values. Only the kinds of column the inbox shows are handled
(ModelAdmin methods, plain and choices fields, date-times, foreign keys);
with any other kind, a list_editable formset or a popup, the admin's own
code renders the page. tests/tickets/test_admin_inbox.py compares both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from django.contrib.admin.templatetags.admin_list import ResultList, items_for_result
from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist
from django.db import models
from django.utils import formats, timezone
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

Cell = Callable[[models.Model], SafeString]


def inbox_results(cl) -> Iterator[ResultList]:
    """What admin_list.results(cl) yields, one ResultList of cells a row."""
    cells = _cells(cl)
    if cells is None:
        for result in cl.result_list:
            yield ResultList(None, items_for_result(cl, result, None))
        return
    for result in cl.result_list:
        yield ResultList(None, [cell(result) for cell in cells])


def _cells(cl) -> list[Cell] | None:
    if getattr(cl, "formset", None) or cl.is_popup or cl.to_field or cl.list_display_links is None:
        return None
    cells = []
    first_link = True
    for name in cl.list_display:
        if not isinstance(name, str):
            return None
        is_link = name in cl.list_display_links or (first_link and not cl.list_display_links)
        cell = _cell(cl, name, link_tag=("th" if first_link else "td") if is_link else None)
        if cell is None:
            return None
        first_link = first_link and not is_link
        cells.append(cell)
    return cells


def _cell(cl, name: str, *, link_tag: str | None) -> Cell | None:
    """One column's cell renderer, or None for a kind of column this module
    does not render."""
    model_admin = cl.model_admin
    empty = model_admin.get_empty_value_display()
    classes = [f"field-{name}"]
    try:
        field = cl.lookup_opts.get_field(name)
    except FieldDoesNotExist:
        field = None
    if field is None:
        method = getattr(model_admin, name, None) if name != "__str__" else None
        if not callable(method) or getattr(method, "boolean", False):
            return None
        empty = getattr(method, "empty_value_display", empty)
        if name == "action_checkbox":
            classes = ["action-checkbox"]

        def value_of(obj):
            value = method(obj)
            if isinstance(value, str) and value.strip() == "":
                value = ""
            if value is None or value == "":
                return empty
            if not isinstance(value, str):
                return None  # numbers, dates, lists: the admin formats them
            return str(value)

    elif field.name != name or field.auto_created or not field.concrete:
        return None  # a column name (customer_id), the primary key, a reverse relation
    elif isinstance(field, models.ForeignKey):
        classes.append("nowrap")

        def value_of(obj):
            related = getattr(obj, field.name)
            return empty if related is None else related

    elif field.is_relation:
        return None
    elif field.flatchoices:
        labels = dict(field.flatchoices)

        def value_of(obj):
            value = getattr(obj, field.attname)
            if isinstance(value, str) and value.strip() == "":
                value = ""
            return labels.get(value, empty)

    elif isinstance(field, models.DateTimeField):
        classes.append("nowrap")

        def value_of(obj):
            value = getattr(obj, field.attname)
            if value in field.empty_values:
                return empty
            return formats.localize(timezone.template_localtime(value))

    elif type(field) in (models.CharField, models.TextField, models.SlugField):

        def value_of(obj):
            value = getattr(obj, field.attname)
            if isinstance(value, str) and value.strip() == "":
                value = ""
            if value in field.empty_values:
                return empty
            return str(value)

    else:
        return None
    opening = mark_safe(f'<{link_tag or "td"} class="{" ".join(classes)}">')
    closing = f"</{link_tag or 'td'}>"

    def cell(obj) -> SafeString:
        try:
            shown = value_of(obj)
        except ObjectDoesNotExist:
            shown = None
        if shown is None:  # the admin's own code renders this cell
            return _fallback(cl, obj, name)
        shown = conditional_escape(shown)
        if link_tag:
            url = conditional_escape(cl.url_for_result(obj))
            shown = f'<a href="{url}">{shown}</a>'
        return mark_safe(f"{opening}{shown}{closing}")

    return cell


def _fallback(cl, obj, name: str) -> SafeString:
    """One cell as the admin renders it (a value this module does not format)."""
    display = cl.list_display
    index = display.index(name)
    return list(items_for_result(cl, obj, None))[index]
