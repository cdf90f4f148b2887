"""The segment fields and their operators: the registry (`SEGMENT_FIELDS`,
`segment_field_register`), the builders of the usual shapes of a field, and
the built-in fields. See the package docstring for the rule format."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models import lookups as db_lookups
from django.db.models.expressions import Expression
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dates import MONTHS
from django.utils.translation import gettext_lazy as _

from core.choices import Channel
from crm.models import (
    ChannelIdentity,
    ConsentChannel,
    ConsentState,
    Customer,
    LifecycleSegment,
    Order,
    Prefecture,
    Tag,
)

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
