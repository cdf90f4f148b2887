"""Compiling a segment to one Q: a rule tree of plain column comparisons and
EXISTS subqueries, so a segment is always ONE SQL query."""

from __future__ import annotations

import functools
import operator as operators
from datetime import datetime
from typing import Any

from django.db.models import Q

from outreach.models import Segment, SegmentKind
from outreach.segments.fields import SEGMENT_FIELDS
from outreach.segments.rules import segment_rule_clean


def _compile(node: dict, now: datetime) -> Q:
    if "conditions" in node:
        combine = operators.and_ if node["match"] == "all" else operators.or_
        return functools.reduce(combine, (_compile(child, now) for child in node["conditions"]))
    segment_field = SEGMENT_FIELDS[node["field"]]
    return segment_field.build(node["op"], node["value"], now)


def segment_rule_q(rule: Any, *, now: datetime) -> Q:
    """The rule as one Q over Customer (validated first: ValidationError)."""
    return _compile(segment_rule_clean(rule), now)


def segment_q(segment: Segment | dict, *, now: datetime) -> Q:
    """Who is in a segment (or a bare rule), as a Q over live customers."""
    if isinstance(segment, Segment):
        if segment.kind == SegmentKind.LIFECYCLE:
            return Q(lifecycle_segment=segment.lifecycle_segment)
        segment = segment.rule
    return segment_rule_q(segment, now=now)
