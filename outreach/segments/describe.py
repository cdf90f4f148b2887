"""A segment in words, for the marketer's screens."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext

from crm.models import LifecycleSegment
from outreach.models import Segment, SegmentKind
from outreach.segments.fields import OPERATORS, SEGMENT_FIELDS
from outreach.segments.rules import segment_rule_clean


def _describe_condition(node: dict) -> str:
    segment_field = SEGMENT_FIELDS[node["field"]]
    op = OPERATORS[node["op"]]
    params: dict[str, Any] = {"field": segment_field.label}
    value = node["value"]
    if op.value == "number":
        params["value"] = segment_field.format_number(value)
    elif op.value == "range":
        params["low"], params["high"] = map(segment_field.format_number, value)
    elif op.value == "bool":
        params["value"] = gettext("yes") if value else gettext("no")
    elif op.value == "list":
        labels = segment_field.choice_labels()
        # Translators: between the values of a list in a segment description, e.g. 東京都・大阪府
        separator = gettext(", ")
        params["values"] = separator.join(str(labels.get(str(item), item)) for item in value)
    return str(op.describe) % params


def _describe_group(node: dict, *, nested: bool) -> str:
    parts = [
        _describe_group(child, nested=True) if "conditions" in child else _describe_condition(child)
        for child in node["conditions"]
    ]
    template = (
        gettext("All of: %(conditions)s")
        if node["match"] == "all"
        else gettext("Any of: %(conditions)s")
    )
    text = template % {"conditions": " / ".join(parts)}
    return f"({text})" if nested else text


def segment_rule_describe(rule: Any) -> str:
    """The rule in words, in the active language, e.g. (ja) "すべて満たす:
    注文回数 ≥ 3 / 都道府県が 東京都・大阪府 のいずれか". ValidationError
    if the rule is invalid."""
    return _describe_group(segment_rule_clean(rule), nested=False)


def segment_describe(segment: Segment) -> str:
    if segment.kind == SegmentKind.LIFECYCLE:
        return gettext("Lifecycle segment: %(segment)s") % {
            "segment": LifecycleSegment(segment.lifecycle_segment).label
            if segment.lifecycle_segment in LifecycleSegment.values
            else segment.lifecycle_segment
        }
    return segment_rule_describe(segment.rule)
