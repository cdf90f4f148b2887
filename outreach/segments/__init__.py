"""Segments: who a campaign reaches (SPEC rule 7).

A lifecycle segment is a value stored on the customer; a custom segment is a
rule tree compiled to one Q of plain column comparisons and EXISTS
subqueries, so a segment is always ONE SQL query, whatever its size.

Rule format (the JSON stored in `Segment.rule`)::

    {"match": "all" | "any", "conditions": [<condition or group>, ...]}

    condition: {"field": "<name>", "op": "<operator>", "value": <value>}
    group:     {"match": "all" | "any", "conditions": [...]}

For example, "VIP-ish Tokyo or Osaka customers who bought in the last 90
days and have an email opt-in"::

    {"match": "all", "conditions": [
        {"field": "order_count", "op": "gte", "value": 3},
        {"field": "days_since_last_order", "op": "lte", "value": 90},
        {"field": "prefecture", "op": "in", "value": ["東京都", "大阪府"]},
        {"field": "consent", "op": "granted", "value": ["email"]},
        {"match": "any", "conditions": [
            {"field": "tag", "op": "has_any", "value": ["gift"]},
            {"field": "total_spent", "op": "gte", "value": 50000}]}]}

Limits: groups nest at most `MAX_DEPTH` levels (the top group is level 1),
a rule has at most `MAX_CONDITIONS` conditions, a list value at most
`MAX_LIST_ITEMS` items; a group may not be empty.

Fields and operators (the registry `SEGMENT_FIELDS`):

======================  =====================================  ==========================
field                   operators                              value
======================  =====================================  ==========================
order_count             eq ne lt lte gt gte between            whole number ([a, b])
total_spent (JPY)       eq ne lt lte gt gte between            whole number ([a, b])
days_since_last_order   eq ne lt lte gt gte between never      whole number of days
days_since_first_order  eq ne lt lte gt gte between never      whole number of days
created_days_ago        eq ne lt lte gt gte between            whole number of days
channel                 has_any has_none                       crm Channel values
lifecycle_segment       in not_in                              LifecycleSegment values
prefecture              in not_in                              Prefecture values (東京都)
tag                     has_any has_all has_none               tag names
consent                 granted not_granted                    email / line / dm
claimant                is                                     true / false
birthday_month          in                                     1..12
======================  =====================================  ==========================

List values are JSON lists with at least one item.

Semantics worth knowing:

- Numbers are whole numbers; a digit string ("3", full-width "３") is
  accepted and stored as a number. `between` is inclusive.
- "Days since" are calendar days in the shop's time zone (TIME_ZONE,
  Asia/Tokyo): an order placed today is 0 days ago, yesterday 1, whatever
  the hour. They compile to comparisons of the timestamp column with the
  start of a day computed from `now` (no annotation, so an index on the
  column can be used).
- A customer who never ordered has no "days since last/first order": no
  numeric condition on those fields matches them (not even `ne`); `never`
  matches exactly them.
- `channel` means the customer has an identity OR any order on one of the
  channels (`has_none`: neither). `consent granted` means the current
  consent state is opt-in on at least one of the channels; `not_granted` is
  its exact negation (no opt-in on any of them; never asked counts as not
  granted). `tag has_all` needs every tag. `prefecture not_in` includes
  customers whose prefecture is unknown; `birthday_month in` never matches
  a customer without a birthday.
- Merged and anonymised customers are never in a segment.

Adding a field (e.g. `inquiry_count` from the tickets app) is one call,
usually from the app's `AppConfig.ready()`::

    from outreach.segments import (
        NUMBER_OPERATORS, SegmentField, number_expression, related_count,
        segment_field_register,
    )

    segment_field_register(SegmentField(
        name="complaint_count_90d",
        label=_("complaints in the last 90 days"),
        operators=NUMBER_OPERATORS,
        build=number_expression(lambda now: related_count(
            Inquiry.objects.filter(category__is_complaint=True,
                                   created_at__gte=now - timedelta(days=90)))),
    ))

The package: `fields` (the registry, the builders, the built-in fields),
`rules` (validation), `compiler` (a rule to one Q), `describe` (a rule in
words). Counting and previewing a segment are reads, in
`outreach.selectors`; saving one is a service, in `outreach.services`.

`build(op, value, now) -> Q` receives an already validated value; the
builders `number_column`, `days_since_column`, `choice_column`,
`number_expression` and `related_count` cover the usual shapes.
"""

from outreach.segments.compiler import segment_q, segment_rule_q
from outreach.segments.describe import segment_describe, segment_rule_describe
from outreach.segments.fields import (
    BUILTIN_FIELDS,
    DAYS_OPERATORS,
    MAX_DAYS,
    NUMBER_OPERATORS,
    OPERATORS,
    SEGMENT_FIELDS,
    Build,
    Operator,
    SegmentField,
    choice_column,
    days_since_column,
    number_column,
    number_expression,
    related_count,
    segment_field_register,
    shop_day_start,
)
from outreach.segments.rules import (
    MAX_CONDITIONS,
    MAX_DEPTH,
    MAX_ERRORS,
    MAX_LIST_ITEMS,
    RULE_ERRORS,
    RULE_PART_NAMES,
    rule_place,
    segment_error_paths,
    segment_rule_clean,
    segment_rule_validate,
)

__all__ = [
    "BUILTIN_FIELDS",
    "DAYS_OPERATORS",
    "MAX_CONDITIONS",
    "MAX_DAYS",
    "MAX_DEPTH",
    "MAX_ERRORS",
    "MAX_LIST_ITEMS",
    "NUMBER_OPERATORS",
    "OPERATORS",
    "RULE_ERRORS",
    "RULE_PART_NAMES",
    "SEGMENT_FIELDS",
    "Build",
    "Operator",
    "SegmentField",
    "choice_column",
    "days_since_column",
    "number_column",
    "number_expression",
    "related_count",
    "rule_place",
    "segment_describe",
    "segment_error_paths",
    "segment_field_register",
    "segment_q",
    "segment_rule_clean",
    "segment_rule_describe",
    "segment_rule_q",
    "segment_rule_validate",
    "shop_day_start",
]
