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

`build(op, value, now) -> Q` receives an already validated value; the
builders `number_column`, `days_since_column`, `choice_column`,
`number_expression` and `related_count` cover the usual shapes.
"""

from __future__ import annotations

import functools
import math
import operator as operators
import re
import reprlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models import lookups as db_lookups
from django.db.models.expressions import Expression
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dates import MONTHS
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.timeline import actor_or_none
from crm.models import (
    Channel,
    ChannelIdentity,
    ConsentChannel,
    ConsentState,
    Customer,
    LifecycleSegment,
    Order,
    Prefecture,
    Tag,
)
from outreach.models import Segment, SegmentKind

MAX_DEPTH = 4
MAX_CONDITIONS = 50
MAX_LIST_ITEMS = 100
MAX_ERRORS = 20
MAX_DAYS = 36_500  # a hundred years: keeps date arithmetic far from overflow

# --- Operators ----------------------------------------------------------------


@dataclass(frozen=True)
class Operator:
    """`value` says what the operator takes: "number", "range" ([low, high]),
    "none" (no value), "bool" or "list"."""

    name: str
    label: Any
    value: str
    describe: Any  # %(field)s, and %(value)s / %(low)s %(high)s / %(values)s


OPERATORS: dict[str, Operator] = {
    op.name: op
    for op in (
        Operator("eq", "=", "number", _("%(field)s = %(value)s")),
        Operator("ne", "≠", "number", _("%(field)s ≠ %(value)s")),
        Operator("lt", "<", "number", _("%(field)s < %(value)s")),
        Operator("lte", "≤", "number", _("%(field)s ≤ %(value)s")),
        Operator("gt", ">", "number", _("%(field)s > %(value)s")),
        Operator("gte", "≥", "number", _("%(field)s ≥ %(value)s")),
        Operator("between", _("between"), "range", _("%(field)s between %(low)s and %(high)s")),
        Operator("never", _("never ordered"), "none", _("%(field)s: never ordered")),
        Operator("in", _("is one of"), "list", _("%(field)s is one of %(values)s")),
        Operator("not_in", _("is none of"), "list", _("%(field)s is none of %(values)s")),
        Operator("has_any", _("has any of"), "list", _("%(field)s: any of %(values)s")),
        Operator("has_all", _("has all of"), "list", _("%(field)s: all of %(values)s")),
        Operator("has_none", _("has none of"), "list", _("%(field)s: none of %(values)s")),
        Operator(
            "granted", _("granted on any of"), "list", _("%(field)s granted on any of %(values)s")
        ),
        Operator(
            "not_granted",
            _("granted on none of"),
            "list",
            _("%(field)s granted on none of %(values)s"),
        ),
        Operator("is", _("is"), "bool", _("%(field)s: %(value)s")),
    )
}

NUMBER_OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "between")
DAYS_OPERATORS = (*NUMBER_OPERATORS, "never")

# --- The field registry -------------------------------------------------------

Build = Callable[[str, Any, datetime], Q]


@dataclass(frozen=True)
class SegmentField:
    """One field a rule may test. `build(op, value, now)` returns the Q for
    a validated value. `choices` (a callable, so labels stay lazy and lists
    may come from the database) restricts the items of list values; without
    it list items are free names (tags). `minimum`/`maximum` bound numbers."""

    name: str
    label: Any
    operators: tuple[str, ...]
    build: Build
    choices: Callable[[], Sequence[tuple[Any, Any]]] | None = None
    minimum: int = 0
    maximum: int = 1_000_000_000
    format_number: Callable[[int], str] = field(default=lambda n: f"{n:,}")
    # For free names (tags): known values the admin offers as suggestions.
    suggestions: Callable[[], Sequence[str]] | None = None

    def choice_labels(self) -> dict[str, Any]:
        return {str(value): label for value, label in (self.choices() if self.choices else ())}


SEGMENT_FIELDS: dict[str, SegmentField] = {}


def segment_field_register(segment_field: SegmentField) -> SegmentField:
    """The extension point: make a field available to segment rules."""
    if segment_field.name in SEGMENT_FIELDS:
        raise ImproperlyConfigured(f"segment field {segment_field.name!r} is already registered")
    unknown = set(segment_field.operators) - set(OPERATORS)
    if unknown or not segment_field.operators:
        raise ImproperlyConfigured(f"segment field {segment_field.name!r}: bad operators {unknown}")
    SEGMENT_FIELDS[segment_field.name] = segment_field
    return segment_field


# --- Builders: the usual shapes of a field -----------------------------------


def number_column(column: str) -> Build:
    """Comparisons of a number column of the customer."""

    def build(op: str, value: Any, now: datetime) -> Q:
        if op == "between":
            return Q(**{f"{column}__range": tuple(value)})
        if op == "ne":  # written out so that NULL never matches
            return Q(**{f"{column}__lt": value}) | Q(**{f"{column}__gt": value})
        if op == "eq":
            return Q(**{column: value})
        return Q(**{f"{column}__{op}": value})

    return build


_LOOKUPS = {
    "eq": db_lookups.Exact,
    "lt": db_lookups.LessThan,
    "lte": db_lookups.LessThanOrEqual,
    "gt": db_lookups.GreaterThan,
    "gte": db_lookups.GreaterThanOrEqual,
}


def number_expression(expression: Callable[[datetime], Expression]) -> Build:
    """Comparisons of a number computed per customer, e.g. `related_count`."""

    def build(op: str, value: Any, now: datetime) -> Q:
        lhs = expression(now)
        if op == "between":
            return Q(db_lookups.Range(lhs, tuple(value)))
        if op == "ne":
            return Q(db_lookups.LessThan(lhs, value)) | Q(db_lookups.GreaterThan(lhs, value))
        return Q(_LOOKUPS[op](lhs, value))

    return build


def related_count(queryset: QuerySet, *, customer_field: str = "customer") -> Expression:
    """How many rows of `queryset` belong to the customer (0 when none), as
    a correlated subquery."""
    counted = (
        queryset.filter(**{customer_field: OuterRef("pk")})
        .order_by()
        .values(customer_field)
        .annotate(n=Count("pk"))
        .values("n")[:1]
    )
    return Coalesce(Subquery(counted), Value(0))


def shop_day_start(now: datetime, days_ago: int) -> datetime:
    """The start of the calendar day `days_ago` days before `now`'s day, in
    the shop's time zone (negative: days after)."""
    zone = timezone.get_default_timezone()
    day = timezone.localtime(now, zone).date() - timedelta(days=days_ago)
    return datetime.combine(day, time.min, tzinfo=zone)


def days_since_column(column: str) -> Build:
    """Calendar days since a timestamp column, compiled to comparisons of the
    column itself. `never` is "the column is empty"."""

    def build(op: str, value: Any, now: datetime) -> Q:
        def since(days: int) -> Q:  # at least `days` days ago
            return Q(**{f"{column}__lt": shop_day_start(now, days - 1)})

        def within(days: int) -> Q:  # at most `days` days ago
            return Q(**{f"{column}__gte": shop_day_start(now, days)})

        if op == "never":
            return Q(**{f"{column}__isnull": True})
        if op == "between":
            low, high = value
            return since(low) & within(high)
        return {
            "eq": lambda n: since(n) & within(n),
            "ne": lambda n: since(n + 1) | within(n - 1),
            "lt": lambda n: within(n - 1),
            "lte": within,
            "gt": lambda n: since(n + 1),
            "gte": since,
        }[op](value)

    return build


def choice_column(column: str) -> Build:
    """`in` / `not_in` over a column of the customer."""

    def build(op: str, value: Any, now: datetime) -> Q:
        q = Q(**{f"{column}__in": list(value)})
        return ~q if op == "not_in" else q

    return build


def _channel_build(op: str, value: Any, now: datetime) -> Q:
    known = Q(
        Exists(ChannelIdentity.objects.filter(customer=OuterRef("pk"), channel__in=value))
    ) | Q(Exists(Order.objects.filter(customer=OuterRef("pk"), channel__in=value)))
    return ~known if op == "has_none" else known


def _tagged(names: Iterable[str]) -> Exists:
    return Exists(
        Customer.tags.through.objects.filter(customer_id=OuterRef("pk"), tag__name__in=names)
    )


def _tag_build(op: str, value: Any, now: datetime) -> Q:
    if op == "has_all":
        return Q(*(_tagged([name]) for name in value))
    q = Q(_tagged(value))
    return ~q if op == "has_none" else q


def _consent_build(op: str, value: Any, now: datetime) -> Q:
    q = Q(
        Exists(
            ConsentState.objects.filter(customer=OuterRef("pk"), channel__in=value, granted=True)
        )
    )
    return ~q if op == "not_granted" else q


def _yen(amount: int) -> str:
    return f"¥{amount:,}"


for _field in (
    SegmentField(
        "order_count", _("number of orders"), NUMBER_OPERATORS, number_column("order_count")
    ),
    SegmentField(
        "total_spent",
        _("total spent (JPY)"),
        NUMBER_OPERATORS,
        number_column("total_spent"),
        maximum=1_000_000_000_000,
        format_number=_yen,
    ),
    SegmentField(
        "days_since_last_order",
        _("days since last order"),
        DAYS_OPERATORS,
        days_since_column("last_order_at"),
        maximum=MAX_DAYS,
    ),
    SegmentField(
        "days_since_first_order",
        _("days since first order"),
        DAYS_OPERATORS,
        days_since_column("first_order_at"),
        maximum=MAX_DAYS,
    ),
    SegmentField(
        "channel",
        _("channel"),
        ("has_any", "has_none"),
        _channel_build,
        choices=lambda: Channel.choices,
    ),
    SegmentField(
        "lifecycle_segment",
        _("lifecycle segment"),
        ("in", "not_in"),
        choice_column("lifecycle_segment"),
        choices=lambda: LifecycleSegment.choices,
    ),
    SegmentField(
        "prefecture",
        _("prefecture"),
        ("in", "not_in"),
        choice_column("prefecture"),
        # The values are the Japanese names themselves: shown as they are.
        choices=lambda: [(value, value) for value in Prefecture.values],
    ),
    SegmentField(
        "tag",
        _("tags"),
        ("has_any", "has_all", "has_none"),
        _tag_build,
        suggestions=lambda: list(Tag.objects.order_by("name").values_list("name", flat=True)[:200]),
    ),
    SegmentField(
        "consent",
        _("marketing consent"),
        ("granted", "not_granted"),
        _consent_build,
        choices=lambda: ConsentChannel.choices,
    ),
    SegmentField("claimant", _("claimant"), ("is",), lambda op, value, now: Q(is_claimant=value)),
    SegmentField(
        "birthday_month",
        _("birthday month"),
        ("in",),
        choice_column("birthday__month"),
        choices=lambda: [(month, MONTHS[month]) for month in range(1, 13)],
    ),
    SegmentField(
        "created_days_ago",
        _("days since registration"),
        NUMBER_OPERATORS,
        days_since_column("created_at"),
        maximum=MAX_DAYS,
    ),
):
    segment_field_register(_field)

BUILTIN_FIELDS = tuple(SEGMENT_FIELDS)

# --- Validation -------------------------------------------------------------

_GROUP_KEYS = frozenset({"match", "conditions"})
_CONDITION_KEYS = frozenset({"field", "op", "value"})
_MISSING = object()
_INVALID = object()
_WHOLE_NUMBER = re.compile(r"\s*[+-]?\d{1,19}\s*")
_shortener = reprlib.Repr()
_shortener.maxlevel = 2
_shortener.maxstring = 40
_shortener.maxother = 40


def _show(value: Any) -> str:
    """A short, safe rendering of a user's value for an error message."""
    if value is _MISSING:
        return gettext("nothing")
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"“{value[:40]}{'…' if len(value) > 40 else ''}”"
    return _shortener.repr(value)


def _whole_number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value):
        return int(value)
    return None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# Where a problem is, as the builder shows the rule: a condition by its
# number, its parts by name (rule_place), never the JSON path.
_PATH_PART = re.compile(r"(conditions|match|field|op|value)(?:\[(\d+)\])?")
RULE_PART_NAMES = {
    "match": _("all / any"),
    "conditions": _("conditions"),
    "field": _("item"),
    "op": _("comparison"),
    "value": _("value"),
}


def rule_place(path: str) -> str:
    """The bad part of a rule as people find it in the builder: 「条件 2 ›
    条件 1 の値」 for conditions[1].conditions[0].value, 「ルール全体」 for
    the rule itself."""
    if path in ("", "rule"):
        return gettext("the whole rule")
    conditions, part = [], ""
    for key, index in _PATH_PART.findall(path):
        if key == "conditions" and index:
            conditions.append(gettext("condition %(number)d") % {"number": int(index) + 1})
        elif key == "value" and index:
            part = gettext("value %(number)d") % {"number": int(index) + 1}
        else:
            part = str(RULE_PART_NAMES[key])
    where = " › ".join(conditions)
    if where and part:
        return gettext("%(where)s, %(part)s") % {"where": where, "part": part}
    return where or part


# Every problem a rule can have. Each message is shown after the place of the
# bad part (rule_place): "condition 3, value: “abc” is not a whole number."
RULE_ERRORS = {
    "not_group": _("must be a group: an object with “match” and “conditions”, not %(value)s."),
    "not_condition": _(
        "must be a condition: an object with “field”, “op” and “value”, not %(value)s."
    ),
    "unexpected_key": _("unexpected key(s): %(value)s."),
    "bad_match": _("must be “all” or “any”, not %(value)s."),
    "not_list": _("must be a list of conditions, not %(value)s."),
    "empty_group": _("the group is empty: add a condition."),
    "too_deep": _("groups are nested too deeply (at most %(max)d levels)."),
    "too_many": _("a rule may have at most %(max)d conditions."),
    "unknown_field": _("unknown field %(value)s."),
    "bad_operator": _(
        "the operator %(value)s cannot be used with “%(field)s”; use one of: %(allowed)s."
    ),
    "no_number": _("enter a whole number."),
    "not_number": _("%(value)s is not a whole number."),
    "out_of_range": _("%(value)s is out of range: use %(min)s to %(max)s."),
    "not_range": _("must be a pair of whole numbers [low, high], not %(value)s."),
    "bad_range": _("the low end %(low)s is greater than the high end %(high)s."),
    "no_value": _("this operator takes no value."),
    "not_bool": _("must be true or false, not %(value)s."),
    "not_items": _("choose at least one value (a list), not %(value)s."),
    "too_many_items": _("at most %(max)d values may be listed."),
    "bad_choice": _("%(value)s is not one of the choices of “%(field)s”."),
    "bad_name": _("%(value)s is not a name (1 to 50 characters)."),
}


class _RuleCleaner:
    """Walks a rule once, depth-first, never deeper than MAX_DEPTH, and
    collects errors that name the path of the bad part."""

    def __init__(self) -> None:
        self.errors: list[ValidationError] = []
        self.conditions = 0
        self.stopped = False

    def error(self, path: str, code: str, **params: Any) -> Any:
        if len(self.errors) >= MAX_ERRORS:
            self.stopped = True
        else:
            # `path` stays in the params: the builder marks the row it names.
            message = "%(place)s: " + str(RULE_ERRORS[code])
            path = path or "rule"
            self.errors.append(
                ValidationError(
                    message, code=code, params={"path": path, "place": rule_place(path), **params}
                )
            )
        return _INVALID

    def unexpected_keys(self, node: dict, allowed: frozenset, path: str) -> None:
        unexpected = sorted(str(key)[:30] for key in set(node) - allowed)
        if unexpected:
            self.error(path, "unexpected_key", value=", ".join(unexpected))

    def group(self, node: Any, path: str, depth: int) -> Any:
        if not isinstance(node, dict):
            return self.error(path, "not_group", value=_show(node))
        self.unexpected_keys(node, _GROUP_KEYS, path)
        match = node.get("match", _MISSING)
        if match not in ("all", "any"):
            self.error(_join(path, "match"), "bad_match", value=_show(match))
        conditions = node.get("conditions", _MISSING)
        conditions_path = _join(path, "conditions")
        if not isinstance(conditions, list):
            return self.error(conditions_path, "not_list", value=_show(conditions))
        if not conditions:
            self.error(conditions_path, "empty_group")
        cleaned = []
        for index, child in enumerate(conditions):
            if self.stopped:
                break
            child_path = f"{conditions_path}[{index}]"
            if isinstance(child, dict) and ("conditions" in child or "match" in child):
                if depth >= MAX_DEPTH:
                    self.error(child_path, "too_deep", max=MAX_DEPTH)
                else:
                    cleaned.append(self.group(child, child_path, depth + 1))
                continue
            self.conditions += 1
            if self.conditions > MAX_CONDITIONS:
                self.error(child_path, "too_many", max=MAX_CONDITIONS)
                self.stopped = True
                break
            cleaned.append(self.condition(child, child_path))
        return {"match": match, "conditions": cleaned}

    def condition(self, node: Any, path: str) -> Any:
        if not isinstance(node, dict):
            return self.error(path, "not_condition", value=_show(node))
        self.unexpected_keys(node, _CONDITION_KEYS, path)
        name = node.get("field", _MISSING)
        segment_field = SEGMENT_FIELDS.get(name) if isinstance(name, str) else None
        if segment_field is None:
            return self.error(_join(path, "field"), "unknown_field", value=_show(name))
        op = node.get("op", _MISSING)
        if not isinstance(op, str) or op not in segment_field.operators:
            return self.error(
                _join(path, "op"),
                "bad_operator",
                value=_show(op),
                field=segment_field.label,
                allowed=", ".join(str(OPERATORS[name].label) for name in segment_field.operators),
            )
        value = self.value(segment_field, OPERATORS[op], node.get("value", _MISSING), path)
        return {"field": name, "op": op, "value": value}

    def value(self, segment_field: SegmentField, op: Operator, value: Any, path: str) -> Any:
        path = _join(path, "value")
        if op.value == "number":
            return self.number(segment_field, value, path)
        if op.value == "range":
            if not isinstance(value, list) or len(value) != 2:
                return self.error(path, "not_range", value=_show(value))
            low = self.number(segment_field, value[0], f"{path}[0]")
            high = self.number(segment_field, value[1], f"{path}[1]")
            if _INVALID in (low, high):
                return _INVALID
            if low > high:
                return self.error(path, "bad_range", low=low, high=high)
            return [low, high]
        if op.value == "none":
            return None if value in (_MISSING, None) else self.error(path, "no_value")
        if op.value == "bool":
            return (
                value
                if isinstance(value, bool)
                else self.error(path, "not_bool", value=_show(value))
            )
        return self.items(segment_field, value, path)

    def number(self, segment_field: SegmentField, value: Any, path: str) -> Any:
        if value is None or value is _MISSING:
            return self.error(path, "no_number")
        number = _whole_number(value)
        if number is None:
            return self.error(path, "not_number", value=_show(value))
        if not segment_field.minimum <= number <= segment_field.maximum:
            return self.error(
                path,
                "out_of_range",
                value=number,
                min=f"{segment_field.minimum:,}",
                max=f"{segment_field.maximum:,}",
            )
        return number

    def items(self, segment_field: SegmentField, value: Any, path: str) -> Any:
        if not isinstance(value, list) or not value:
            return self.error(path, "not_items", value=_show(value))
        if len(value) > MAX_LIST_ITEMS:
            return self.error(path, "too_many_items", max=MAX_LIST_ITEMS)
        choices = segment_field.choices() if segment_field.choices else None
        canonical = {str(choice): choice for choice, _label in choices or ()}
        cleaned: list[Any] = []
        for index, item in enumerate(value):
            if choices is not None:
                key = str(item).strip() if isinstance(item, (str, int)) else None
                if isinstance(item, bool) or key not in canonical:
                    cleaned.append(
                        self.error(
                            f"{path}[{index}]",
                            "bad_choice",
                            value=_show(item),
                            field=segment_field.label,
                        )
                    )
                    continue
                item = canonical[key]
            elif not isinstance(item, str) or not 0 < len(item.strip()) <= 50:
                cleaned.append(self.error(f"{path}[{index}]", "bad_name", value=_show(item)))
                continue
            else:
                item = item.strip()
            if item not in cleaned:
                cleaned.append(item)
        return cleaned


def segment_rule_clean(rule: Any) -> dict:
    """A validated, normalised copy of `rule` (numbers as int, choices in
    their canonical form, duplicates dropped). Raises ValidationError with
    one message per problem, each naming the bad part as the builder shows
    it (rule_place), e.g. "condition 3, value: “abc” is not a whole number.";
    the JSON `path` of each is in its params. Never raises anything else, whatever `rule` is."""
    cleaner = _RuleCleaner()
    cleaned = cleaner.group(rule, "", 1)
    if cleaner.errors:
        raise ValidationError(cleaner.errors)
    return cleaned


def segment_rule_validate(rule: Any) -> None:
    segment_rule_clean(rule)


def segment_error_paths(error: ValidationError) -> dict[str, list[str]]:
    """The messages of a rule ValidationError, keyed by the path they name."""
    found: dict[str, list[str]] = {}
    for item in error.error_list if hasattr(error, "error_list") else []:
        path = (item.params or {}).get("path", "rule")
        found.setdefault(path, []).extend(item.messages)
    return found


# --- Compiling ----------------------------------------------------------------


def _compile(node: dict, now: datetime) -> Q:
    if "conditions" in node:
        combine = operators.and_ if node["match"] == "all" else operators.or_
        return functools.reduce(combine, (_compile(child, now) for child in node["conditions"]))
    segment_field = SEGMENT_FIELDS[node["field"]]
    return segment_field.build(node["op"], node["value"], now)


def segment_rule_q(rule: Any, *, now: datetime) -> Q:
    """The rule as one Q over Customer (validated first: ValidationError)."""
    return _compile(segment_rule_clean(rule), now)


def _customers_live() -> QuerySet[Customer]:
    return Customer.objects.filter(merged_into__isnull=True, anonymized_at__isnull=True)


def segment_q(segment: Segment | dict, *, now: datetime) -> Q:
    """Who is in a segment (or a bare rule), as a Q over live customers."""
    if isinstance(segment, Segment):
        if segment.kind == SegmentKind.LIFECYCLE:
            return Q(lifecycle_segment=segment.lifecycle_segment)
        segment = segment.rule
    return segment_rule_q(segment, now=now)


def segment_customers(segment: Segment, *, now: datetime | None = None) -> QuerySet[Customer]:
    """The live (not merged, not anonymised) customers of a segment, as one query."""
    return _customers_live().filter(segment_q(segment, now=now or timezone.now()))


def segment_count(segment: Segment | dict, *, now: datetime | None = None) -> int:
    """How many live customers a segment (or a bare rule) holds: one COUNT."""
    return _customers_live().filter(segment_q(segment, now=now or timezone.now())).count()


def segment_counts(
    segments: Iterable[Segment], *, now: datetime | None = None
) -> dict[int, int | None]:
    """The sizes of several segments in ONE query (conditional aggregation
    over the customers). A segment whose rule is invalid counts as None."""
    now = now or timezone.now()
    counts: dict[int, int | None] = {}
    aggregates = {}
    for segment in segments:
        try:
            aggregates[f"segment_{segment.pk}"] = Count("pk", filter=segment_q(segment, now=now))
        except ValidationError:
            counts[segment.pk] = None
    if aggregates:
        for key, value in _customers_live().aggregate(**aggregates).items():
            counts[int(key.removeprefix("segment_"))] = value
    return counts


@dataclass(frozen=True)
class SegmentPreview:
    count: int
    description: str
    sample: list[Customer]


def segment_preview(
    segment: Segment, *, now: datetime | None = None, sample_size: int = 10
) -> SegmentPreview:
    """Size, description and a sample of the most recent buyers: two queries."""
    customers = segment_customers(segment, now=now)
    sample = list(
        customers.order_by("-last_order_at", "-id").only(
            "family_name",
            "given_name",
            "family_name_kana",
            "given_name_kana",
            "lifecycle_segment",
            "last_order_at",
            "is_claimant",
        )[:sample_size]
    )
    count = len(sample) if len(sample) < sample_size else customers.count()
    return SegmentPreview(count=count, description=segment_describe(segment), sample=sample)


# --- Describing ---------------------------------------------------------------


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


# --- Services -----------------------------------------------------------------


def segment_values_clean(
    *,
    name: str,
    kind: str,
    lifecycle_segment: str = "",
    rule: Any = None,
    description: str = "",
) -> dict[str, Any]:
    """The values of a segment as they will be stored: a lifecycle segment
    keeps no rule, a custom segment no lifecycle value; the rule validated
    and normalised. Raises ValidationError keyed by field name."""
    values: dict[str, Any] = {
        "name": (name or "").strip(),
        "kind": kind,
        "description": (description or "").strip(),
    }
    if kind == SegmentKind.LIFECYCLE:
        if lifecycle_segment not in LifecycleSegment.values:
            raise ValidationError({"lifecycle_segment": [gettext("Choose the lifecycle segment.")]})
        values.update(lifecycle_segment=lifecycle_segment, rule={})
    elif kind == SegmentKind.CUSTOM:
        try:
            values.update(lifecycle_segment="", rule=segment_rule_clean(rule))
        except ValidationError as error:
            raise ValidationError({"rule": error.error_list}) from None
    else:
        raise ValidationError({"kind": [gettext("Choose custom rule or lifecycle segment.")]})
    return values


def segment_save(
    *,
    segment: Segment | None,
    name: str,
    kind: str,
    lifecycle_segment: str = "",
    rule: Any = None,
    description: str = "",
    actor: Any,
) -> Segment:
    """Create (segment=None) or change a segment. Raises ValidationError
    keyed by field ("rule" for the rule's problems, each naming its path)."""
    values = segment_values_clean(
        name=name,
        kind=kind,
        lifecycle_segment=lifecycle_segment,
        rule=rule,
        description=description,
    )
    with transaction.atomic():
        if segment is None:
            segment = Segment(created_by=actor_or_none(actor))
        else:
            segment = Segment.objects.select_for_update().get(pk=segment.pk)
        for key, value in values.items():
            setattr(segment, key, value)
        segment.full_clean()
        try:
            with transaction.atomic():
                segment.save()
        except IntegrityError:
            # Another request took the name between full_clean and save.
            raise ValidationError(
                {"name": [gettext("A segment with this name already exists.")]}
            ) from None
    return segment


# Japanese data, not UI text: the names the built-in segments are created with.
BUILTIN_SEGMENTS: dict[str, tuple[str, str]] = {
    LifecycleSegment.SLEEPING: (
        "休眠顧客 (スリーピング)",
        "最終注文から一定期間 (既定 180 日) 注文のない顧客",
    ),
    LifecycleSegment.REGULAR: ("一般", "2 回以上注文のある顧客"),
    LifecycleSegment.VIP: ("優良 (VIP)", "注文回数・購入額が基準以上の最優良顧客"),
    LifecycleSegment.NEW: ("新規", "初めて注文した顧客"),
    LifecycleSegment.PROSPECT: ("見込み客", "まだ注文のない顧客"),
    LifecycleSegment.CLAIMANT: (
        "クレーマー",
        "担当者がクレーマーとして登録した顧客 (自動配信の対象外)",
    ),
}


def segments_builtin_ensure(*, segment_model: Any = None) -> list[Any]:
    """One lifecycle segment per LifecycleSegment value, created when
    missing (idempotent: an existing one, even renamed, is left alone).
    A data migration passes `segment_model=apps.get_model("outreach",
    "Segment")`. Returns the segments created."""
    model = segment_model or Segment
    existing = set(
        model.objects.filter(kind=SegmentKind.LIFECYCLE.value).values_list(
            "lifecycle_segment", flat=True
        )
    )
    created = []
    for value in LifecycleSegment.values:
        if value in existing:
            continue
        name, description = BUILTIN_SEGMENTS[value]
        if model.objects.filter(name=name).exists():
            name = f"{name} (ライフサイクル)"
        created.append(
            model.objects.create(
                name=name,
                kind=SegmentKind.LIFECYCLE.value,
                lifecycle_segment=value,
                rule={},
                description=description,
            )
        )
    return created
