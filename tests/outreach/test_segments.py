"""The segment rule compiler (outreach.segments): validation, one-query
compilation, agreement with a Python evaluator written here independently
of the compiler, the write service and the built-in lifecycle segments."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.utils import timezone, translation
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from core.choices import Channel
from crm import services
from crm.models import ConsentChannel, Customer, LifecycleSegment, Order
from outreach import segments
from outreach.models import Segment, SegmentKind
from outreach.segments import (
    BUILTIN_FIELDS,
    MAX_CONDITIONS,
    MAX_DEPTH,
    NUMBER_OPERATORS,
    SEGMENT_FIELDS,
    SegmentField,
    number_expression,
    related_count,
    segment_error_paths,
    segment_field_register,
    segment_rule_clean,
    segment_rule_describe,
    segment_rule_q,
    segment_rule_validate,
)
from outreach.selectors import segment_count, segment_counts, segment_customers
from outreach.services import segment_save, segments_builtin_ensure
from tests.crm import factories

pytestmark = pytest.mark.django_db

SHOP_TZ = ZoneInfo("Asia/Tokyo")
TAGS = ("gift", "newsletter", "vip候補")
PREFECTURES = ("東京都", "大阪府", "北海道")
_serial = itertools.count(1)


def rule_of(*conditions: dict, match: str = "all") -> dict:
    return {"match": match, "conditions": list(conditions)}


def cond(field: str, op: str, value=None) -> dict:
    return {"field": field, "op": op, "value": value}


def custom(rule: dict) -> Segment:
    return Segment(kind=SegmentKind.CUSTOM, rule=rule)


def selected(rule: dict, now: datetime) -> set[int]:
    return set(segment_customers(custom(rule), now=now).values_list("pk", flat=True))


# --- The Python oracle: SPEC rule 7 read literally, no ORM, no Q --------------


@dataclass(frozen=True)
class Facts:
    """What the rules talk about, read row by row from the database."""

    pk: int
    live: bool
    order_count: int
    total_spent: int
    first_order_at: datetime | None
    last_order_at: datetime | None
    created_at: datetime
    lifecycle_segment: str
    prefecture: str
    is_claimant: bool
    birthday: date | None
    tags: frozenset[str]
    channels: frozenset[str]  # identities and orders of any status
    consents: frozenset[str]  # channels whose current state is granted


def facts_load() -> list[Facts]:
    found = []
    customers = Customer.objects.prefetch_related("tags", "identities", "orders", "consent_states")
    for customer in customers:
        found.append(
            Facts(
                pk=customer.pk,
                live=customer.merged_into_id is None and customer.anonymized_at is None,
                order_count=customer.order_count,
                total_spent=customer.total_spent,
                first_order_at=customer.first_order_at,
                last_order_at=customer.last_order_at,
                created_at=customer.created_at,
                lifecycle_segment=customer.lifecycle_segment,
                prefecture=customer.prefecture,
                is_claimant=customer.is_claimant,
                birthday=customer.birthday,
                tags=frozenset(tag.name for tag in customer.tags.all()),
                channels=frozenset(
                    [i.channel for i in customer.identities.all()]
                    + [o.channel for o in customer.orders.all()]
                ),
                consents=frozenset(s.channel for s in customer.consent_states.all() if s.granted),
            )
        )
    return found


def calendar_days_between(moment: datetime, now: datetime) -> int:
    """Whole calendar days in Tokyo from `moment`'s date to `now`'s date."""
    return (now.astimezone(SHOP_TZ).date() - moment.astimezone(SHOP_TZ).date()).days


def compare(number: int, op: str, value) -> bool:
    if op == "between":
        return value[0] <= number <= value[1]
    return {
        "eq": number == value,
        "ne": number != value,
        "lt": number < value,
        "lte": number <= value,
        "gt": number > value,
        "gte": number >= value,
    }[op]


MOMENTS = {
    "days_since_last_order": "last_order_at",
    "days_since_first_order": "first_order_at",
    "created_days_ago": "created_at",
}


def oracle_condition(facts: Facts, condition: dict, now: datetime) -> bool:
    field, op, value = condition["field"], condition["op"], condition["value"]
    if field in ("order_count", "total_spent"):
        return compare(getattr(facts, field), op, value)
    if field in MOMENTS:
        moment = getattr(facts, MOMENTS[field])
        if op == "never":
            return moment is None
        return moment is not None and compare(calendar_days_between(moment, now), op, value)
    if field in ("channel", "tag", "consent"):
        have = {"channel": facts.channels, "tag": facts.tags, "consent": facts.consents}[field]
        wanted = set(value)
        return {
            "has_any": bool(have & wanted),
            "granted": bool(have & wanted),
            "has_all": wanted <= have,
            "has_none": not have & wanted,
            "not_granted": not have & wanted,
        }[op]
    if field in ("lifecycle_segment", "prefecture"):
        inside = getattr(facts, field) in value
        return inside if op == "in" else not inside
    if field == "claimant":
        return facts.is_claimant is value
    if field == "birthday_month":
        return facts.birthday is not None and facts.birthday.month in value
    raise AssertionError(f"the oracle does not know {field}")


def oracle(rule: dict, facts: Facts, now: datetime) -> bool:
    if "conditions" in rule:
        results = [oracle(child, facts, now) for child in rule["conditions"]]
        return all(results) if rule["match"] == "all" else any(results)
    return oracle_condition(facts, rule, now)


def oracle_select(rule: dict, facts: list[Facts], now: datetime) -> set[int]:
    return {f.pk for f in facts if f.live and oracle(rule, f, now)}


# --- Populations, built through the crm services ------------------------------


@dataclass
class Population:
    now: datetime
    by_name: dict[str, Customer]

    def pks(self, *names: str) -> set[int]:
        return {self.by_name[name].pk for name in names}


def person(name: str, *, channel: str = "own_site", **profile) -> Customer:
    n = next(_serial)
    return factories.customer(
        channel=channel,
        external_id=f"seg-{n}",
        family_name=name,
        email=f"seg{n}@example.jp",
        **profile,
    )


def buy(customer: Customer, *, at: datetime, channel: str = "own_site", total: int = 3000, **kw):
    factories.order(customer=customer, channel=channel, total=total, ordered_at=at, **kw)


@pytest.fixture
def population() -> Population:
    """Ten customers covering every field: both sides of each condition.
    `now` is noon in Tokyo today, so day boundaries fall at known hours."""
    now = timezone.localtime(timezone.now(), SHOP_TZ).replace(hour=12, minute=0, second=0)
    ago = lambda days, hours=0: now - timedelta(days=days, hours=hours)  # noqa: E731
    people = {}

    people["見込"] = person(
        "見込", prefecture="東京都", birthday=date(1990, 3, 5), tags=["newsletter"]
    )
    services.consent_record(customer=people["見込"], channel="email", action="opt_in", source="api")

    people["新規"] = person("新規", channel="rakuten", prefecture="大阪府")
    buy(people["新規"], at=ago(0, 1), channel="rakuten")

    people["常連"] = person("常連", prefecture="東京都", tags=["gift", "newsletter"])
    for days, hours in ((1, 0), (30, 9), (31, 0)):
        buy(people["常連"], at=ago(days, hours), channel="rakuten")
    for channel in ("email", "line"):
        services.consent_record(
            customer=people["常連"], channel=channel, action="opt_in", source="api"
        )

    people["休眠"] = person("休眠", channel="amazon", birthday=date(1985, 12, 24))
    buy(people["休眠"], at=ago(200, 7), channel="amazon", total=5000)
    services.consent_record(customer=people["休眠"], channel="email", action="opt_in", source="api")
    services.consent_record(
        customer=people["休眠"], channel="email", action="opt_out", source="unsubscribe"
    )

    people["優良"] = person("優良", channel="store", prefecture="北海道", tags=["gift", "vip候補"])
    for days in range(6):
        buy(people["優良"], at=ago(days * 20 + 2, days * 4), channel="store", total=20_000)
    services.consent_record(customer=people["優良"], channel="dm", action="opt_in", source="store")

    people["苦情"] = person("苦情", channel="line", birthday=date(1979, 3, 1))
    buy(people["苦情"], at=ago(10, 20), channel="yahoo", total=3000)
    buy(people["苦情"], at=ago(12, 3), channel="yahoo", total=3001)
    services.customer_claimant_set(customer=people["苦情"], reason="返品の強要が三回", actor=None)

    people["取消"] = person("取消", channel="yahoo", prefecture="大阪府")
    buy(people["取消"], at=ago(5), channel="yahoo", status="cancelled")

    people["統合元"] = person("統合元", channel="rakuten", tags=["vip候補"])
    buy(people["統合元"], at=ago(3, 15), channel="rakuten")
    services.customer_merge(winner=people["常連"], loser=people["統合元"], actor=None)

    people["無名"] = person("無名", channel="line")

    people["境界"] = person("境界", prefecture="東京都", tags=["gift"])
    buy(people["境界"], at=ago(180, 2), channel="amazon", total=2999)  # no Amazon identity
    buy(people["境界"], at=ago(181, 12), total=3000)

    for customer in people.values():
        customer.refresh_from_db()
    return Population(now=now, by_name=people)


# --- Every field and operator against the oracle --------------------------------

EXAMPLES = [
    cond("order_count", "eq", 1),
    cond("order_count", "ne", 1),
    cond("order_count", "lt", 2),
    cond("order_count", "lte", 2),
    cond("order_count", "gt", 2),
    cond("order_count", "gte", 3),
    cond("order_count", "between", [1, 3]),
    cond("total_spent", "eq", 3000),
    cond("total_spent", "ne", 0),
    cond("total_spent", "lt", 6000),
    cond("total_spent", "lte", 6001),
    cond("total_spent", "gt", 5000),
    cond("total_spent", "gte", 120_000),
    cond("total_spent", "between", [3000, 9000]),
    cond("days_since_last_order", "eq", 1),
    cond("days_since_last_order", "ne", 0),
    cond("days_since_last_order", "lt", 10),
    cond("days_since_last_order", "lte", 1),
    cond("days_since_last_order", "gt", 180),
    cond("days_since_last_order", "gte", 180),
    cond("days_since_last_order", "between", [0, 2]),
    cond("days_since_last_order", "never"),
    cond("days_since_first_order", "eq", 31),
    cond("days_since_first_order", "ne", 31),
    cond("days_since_first_order", "lt", 12),
    cond("days_since_first_order", "lte", 12),
    cond("days_since_first_order", "gt", 100),
    cond("days_since_first_order", "gte", 102),
    cond("days_since_first_order", "between", [10, 200]),
    cond("days_since_first_order", "never"),
    cond("created_days_ago", "eq", 0),
    cond("created_days_ago", "ne", 0),
    cond("created_days_ago", "lt", 1),
    cond("created_days_ago", "lte", 0),
    cond("created_days_ago", "gt", 0),
    cond("created_days_ago", "gte", 0),
    cond("created_days_ago", "between", [0, 3]),
    cond("channel", "has_any", ["yahoo"]),
    cond("channel", "has_none", ["rakuten", "amazon"]),
    cond("lifecycle_segment", "in", ["vip", "sleeping"]),
    cond("lifecycle_segment", "not_in", ["prospect"]),
    cond("prefecture", "in", ["東京都", "大阪府"]),
    cond("prefecture", "not_in", ["東京都"]),
    cond("tag", "has_any", ["gift", "vip候補"]),
    cond("tag", "has_all", ["gift", "newsletter"]),
    cond("tag", "has_none", ["gift"]),
    cond("consent", "granted", ["email", "dm"]),
    cond("consent", "not_granted", ["email"]),
    cond("claimant", "is", True),
    cond("claimant", "is", False),
    cond("birthday_month", "in", [3, 12]),
]


def test_the_examples_cover_every_builtin_field_and_operator():
    covered = {(example["field"], example["op"]) for example in EXAMPLES}
    every = {(name, op) for name in BUILTIN_FIELDS for op in SEGMENT_FIELDS[name].operators}
    assert covered == every


def test_each_field_and_operator_selects_what_the_python_oracle_selects(population):
    facts = facts_load()
    live = {f.pk for f in facts if f.live}
    wrong, blunt = [], []
    for condition in EXAMPLES:
        rule = rule_of(condition)
        # Later moments move "now" across Tokyo midnights: every day boundary shifts.
        for hours in (0, 0.1, 3, 5, 7, 9, 11.9, 12.1, 15, 18, 21, 23, 26, 30, 36.5, 47, 73):
            now = population.now + timedelta(hours=hours)
            if selected(rule, now) != oracle_select(rule, facts, now):
                wrong.append((condition, hours))
        got = selected(rule, population.now)
        # The fixture is made so that every example splits the population
        # (except registration age: everyone was created just now).
        if condition["field"] != "created_days_ago" and (not got or got == live):
            blunt.append(condition)
    assert not wrong
    assert not blunt


def test_created_days_ago_counts_calendar_days_since_registration(population):
    everyone = selected(rule_of(cond("order_count", "gte", 0)), population.now)
    assert selected(rule_of(cond("created_days_ago", "lte", 0)), population.now) == everyone
    three_days_later = population.now + timedelta(days=3)
    assert selected(rule_of(cond("created_days_ago", "eq", 3)), three_days_later) == everyone
    assert selected(rule_of(cond("created_days_ago", "lt", 3)), three_days_later) == set()


# --- The semantics, spelt out ----------------------------------------------------


def test_days_since_are_calendar_days_in_tokyo_not_24_hour_periods():
    late = person("昨夜")
    early = person("今朝")
    # given two orders 20 minutes apart, either side of midnight in Tokyo
    buy(late, at=datetime(2025, 6, 9, 23, 50, tzinfo=SHOP_TZ))
    buy(early, at=datetime(2025, 6, 10, 0, 10, tzinfo=SHOP_TZ))
    now = datetime(2025, 6, 10, 0, 30, tzinfo=SHOP_TZ)

    assert selected(rule_of(cond("days_since_last_order", "eq", 0)), now) == {early.pk}
    assert selected(rule_of(cond("days_since_last_order", "eq", 1)), now) == {late.pk}
    assert selected(rule_of(cond("days_since_last_order", "gte", 1)), now) == {late.pk}
    # a whole day later both moved on by exactly one
    later = now + timedelta(days=1)
    assert selected(rule_of(cond("days_since_last_order", "between", [1, 1])), later) == {early.pk}


def test_never_ordered_customers_match_only_never(population):
    never = population.pks("見込", "取消", "無名")  # 取消's only order was cancelled
    rule = rule_of(cond("days_since_last_order", "never"))
    assert selected(rule, population.now) == never
    for op, value in (("ne", 5), ("lt", 10_000), ("gte", 0), ("between", [0, 36_500])):
        got = selected(rule_of(cond("days_since_last_order", op, value)), population.now)
        assert not got & never, op


def test_channel_counts_identities_and_orders_of_any_status(population):
    yahoo = selected(rule_of(cond("channel", "has_any", ["yahoo"])), population.now)
    # 苦情 is a LINE member who ordered on Yahoo; 取消's Yahoo order was cancelled
    assert yahoo == population.pks("苦情", "取消")
    no_yahoo = selected(rule_of(cond("channel", "has_none", ["yahoo"])), population.now)
    assert not yahoo & no_yahoo and len(yahoo | no_yahoo) == 9  # 統合元 is merged


def test_consent_follows_the_current_state_not_the_history(population):
    email = selected(rule_of(cond("consent", "granted", ["email"])), population.now)
    assert email == population.pks("見込", "常連")  # 休眠 opted out again


def test_tag_has_all_needs_every_tag_and_merges_bring_tags_along(population):
    both = selected(rule_of(cond("tag", "has_all", ["gift", "vip候補"])), population.now)
    # 常連 received vip候補 from the customer merged into it
    assert both == population.pks("優良", "常連")


def test_prefecture_not_in_includes_customers_without_a_prefecture(population):
    got = selected(rule_of(cond("prefecture", "not_in", ["東京都", "大阪府"])), population.now)
    assert got == population.pks("休眠", "優良", "苦情", "無名")


def test_between_is_inclusive_at_both_ends(population):
    got = selected(rule_of(cond("total_spent", "between", [5999, 6001])), population.now)
    assert got == population.pks("境界", "苦情")  # 5999 and 6001


def test_merged_customers_are_in_no_segment(population):
    merged = population.by_name["統合元"]
    everything = rule_of(cond("order_count", "gte", 0))
    assert merged.pk not in selected(everything, population.now)
    assert segment_count(everything, now=population.now) == 9


def test_nested_groups_combine_all_and_any(population):
    rule = rule_of(
        cond("tag", "has_any", ["gift"]),
        rule_of(
            cond("prefecture", "in", ["北海道"]),
            cond("days_since_last_order", "lte", 1),
            match="any",
        ),
    )
    assert selected(rule, population.now) == population.pks("優良", "常連")


def test_lifecycle_segments_select_by_the_stored_segment(population):
    vip = Segment(kind=SegmentKind.LIFECYCLE, lifecycle_segment=LifecycleSegment.VIP)
    assert set(segment_customers(vip).values_list("pk", flat=True)) == population.pks("優良")


# --- Property: random rule trees agree with the oracle ---------------------------

NUMBERS = {
    "order_count": st.integers(0, 7),
    "total_spent": st.sampled_from([0, 2999, 3000, 3001, 5999, 6001, 9000, 120_000, 200_000]),
}
DAY_VALUES = st.integers(0, 4) | st.sampled_from([10, 11, 12, 29, 30, 31, 32, 180, 181, 182, 200])
CHOICES = {
    "channel": Channel.values,
    "lifecycle_segment": LifecycleSegment.values,
    "prefecture": [*PREFECTURES, "沖縄県"],
    "tag": [*TAGS, "存在しないタグ"],
    "consent": ConsentChannel.values,
    "birthday_month": list(range(1, 13)),
}


def value_strategy(field: str, op: str):
    kind = segments.OPERATORS[op].value
    number = NUMBERS.get(field, DAY_VALUES)
    if kind == "number":
        return number
    if kind == "range":
        return st.tuples(number, number).map(sorted)
    if kind == "none":
        return st.none()
    if kind == "bool":
        return st.booleans()
    return st.lists(st.sampled_from(CHOICES[field]), min_size=1, max_size=4, unique=True)


conditions = st.sampled_from(
    [(name, op) for name in BUILTIN_FIELDS for op in SEGMENT_FIELDS[name].operators]
).flatmap(lambda pair: value_strategy(*pair).map(lambda value: cond(pair[0], pair[1], value)))


def groups(depth: int = 1):
    child = (
        conditions
        if depth >= MAX_DEPTH
        else st.one_of(conditions, conditions, conditions, st.deferred(lambda: groups(depth + 1)))
    )
    # Small groups: big ones are nearly always empty (all) or everyone (any).
    return st.builds(
        rule_of_list, st.sampled_from(["all", "any"]), st.lists(child, min_size=1, max_size=3)
    )


def rule_of_list(match: str, children: list) -> dict:
    return {"match": match, "conditions": children}


rules = groups()
# Up to three days after the population was made: moves every day boundary.
moments = st.integers(min_value=0, max_value=3 * 86_400)


def test_random_rules_select_exactly_what_the_oracle_selects(population):
    facts = facts_load()

    @settings(max_examples=600)
    @given(rule=rules, seconds=moments)
    def check(rule, seconds):
        now = population.now + timedelta(seconds=seconds)
        assert selected(rule, now) == oracle_select(rule, facts, now), rule

    check()


customer_specs = st.fixed_dictionaries(
    {
        "channel": st.sampled_from(["rakuten", "amazon", "yahoo", "own_site", "line", "store"]),
        "extra_channel": st.none() | st.sampled_from(["line", "rakuten", "store"]),
        "prefecture": st.sampled_from(["", *PREFECTURES]),
        "birthday_month": st.none() | st.integers(1, 12),
        "tags": st.lists(st.sampled_from(TAGS), unique=True, max_size=2),
        "orders": st.lists(
            st.tuples(
                st.sampled_from(["rakuten", "amazon", "yahoo", "own_site"]),
                st.sampled_from([0, 1, 2, 30, 31, 180, 200]),  # days ago
                st.integers(0, 86_399),  # and seconds: crosses midnight
                st.sampled_from([0, 3000, 60_000]),
                st.sampled_from(["delivered", "delivered", "cancelled"]),
            ),
            max_size=3,
        ),
        "consents": st.lists(
            st.tuples(
                st.sampled_from(ConsentChannel.values), st.sampled_from(["opt_in", "opt_out"])
            ),
            max_size=3,
        ),
        "claimant": st.sampled_from([False, False, False, True]),
        "merge": st.sampled_from([False, False, False, False, True]),
    }
)


def population_build(specs: list[dict], base: datetime) -> None:
    live: list[Customer] = []
    for spec in specs:
        profile = {}
        if spec["prefecture"]:
            profile["prefecture"] = spec["prefecture"]
        if spec["birthday_month"]:
            profile["birthday"] = date(1990, spec["birthday_month"], 28)
        customer = person("生成", channel=spec["channel"], tags=spec["tags"], **profile)
        if spec["extra_channel"]:
            services.customer_upsert(
                channel=spec["extra_channel"],
                external_id=f"extra-{next(_serial)}",
                email=customer.email,
            )
        for channel, days, seconds, total, status in spec["orders"]:
            buy(
                customer,
                at=base - timedelta(days=days, seconds=seconds),
                channel=channel,
                total=total,
                status=status,
            )
        for channel, action in spec["consents"]:
            services.consent_record(customer=customer, channel=channel, action=action, source="api")
        if spec["claimant"]:
            services.customer_claimant_set(customer=customer, reason="苦情多数", actor=None)
        if spec["merge"] and live:
            services.customer_merge(winner=live[-1], loser=customer, actor=None)
        else:
            live.append(customer)


class GeneratedPopulationProperties(TestCase):
    """Each example builds its own population (rolled back afterwards)."""

    @settings(max_examples=30)
    @given(
        specs=st.lists(customer_specs, min_size=1, max_size=5),
        rule_list=st.lists(rules, min_size=1, max_size=5),
        seconds=moments,
    )
    def test_random_rules_over_random_customers_match_the_oracle(self, specs, rule_list, seconds):
        base = timezone.now()
        population_build(specs, base)
        facts = facts_load()
        now = base + timedelta(seconds=seconds)
        for rule in rule_list:
            assert selected(rule, now) == oracle_select(rule, facts, now), rule


# --- Property: garbage never becomes anything but a ValidationError --------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["match", "conditions", "field", "op", "value"]) | st.text(max_size=4),
            children,
            max_size=4,
        )
    ),
    max_leaves=25,
)
keys_of_a_rule = st.sampled_from(["match", "conditions", "field", "op", "value"])


def mutate(rule: dict, path: list[int], key: str, junk) -> dict:
    """Replace one key of one node of a valid rule with junk."""
    node = rule
    for index in path:
        children = node.get("conditions") if isinstance(node, dict) else None
        if not children:
            break
        node = children[index % len(children)]
    node[key] = junk
    return rule


broken_rules = st.builds(
    mutate, rules, st.lists(st.integers(0, 5), max_size=4), keys_of_a_rule, json_values
)
field_names = st.sampled_from(list(BUILTIN_FIELDS))
ops = st.sampled_from(list(segments.OPERATORS))
loose_conditions = st.builds(cond, field_names, ops, json_values)


@settings(max_examples=300)
@given(
    rule=json_values
    | broken_rules
    | st.builds(
        rule_of_list,
        st.sampled_from(["all", "any"]),
        st.lists(loose_conditions, min_size=1, max_size=3),
    )
)
def test_any_json_is_either_a_valid_rule_or_a_validation_error(rule):
    now = timezone.now()
    try:
        cleaned = segment_rule_clean(rule)
    except ValidationError as error:
        paths = segment_error_paths(error)
        assert paths and all(paths.values())
        with pytest.raises(ValidationError):
            segment_count(rule, now=now)
        with pytest.raises(ValidationError):
            segment_rule_describe(rule)
        return
    # Whatever passed validation runs, and describes itself.
    assert segment_count(rule, now=now) >= 0
    assert segment_rule_describe(rule)
    assert segment_rule_clean(cleaned) == cleaned


def test_absurd_inputs_are_validation_errors_not_crashes():
    deep: dict = {"field": "claimant", "op": "is", "value": True}
    for _ in range(10_000):
        deep = {"match": "all", "conditions": [deep]}
    absurd = [
        deep,
        rule_of(cond("total_spent", "gt", 10**40)),
        rule_of(cond("days_since_last_order", "gt", 10**12)),
        rule_of(cond("order_count", "gt", float("nan"))),
        rule_of(cond("order_count", "gt", float("inf"))),
        rule_of(cond("order_count", "gt", "9" * 200)),
        rule_of(cond("prefecture", "in", [["東京都"]])),
        rule_of(cond("tag", "has_any", [{"name": "gift"}])),
        rule_of(cond(["order_count"], "eq", 1)),
        rule_of(cond("order_count", {"op": "eq"}, 1)),
        rule_of(*[cond("claimant", "is", True)] * (MAX_CONDITIONS + 1)),
        rule_of(cond("tag", "has_any", ["x"] * 1000)),
        {"match": "all", "conditions": "everyone"},
        {object(): 1},
        object(),
    ]
    for rule in absurd:
        with pytest.raises(ValidationError):
            segment_count(rule, now=timezone.now())


# --- Validation messages name the bad part -----------------------------------------

nested_too_deep = rule_of(
    rule_of(rule_of(rule_of(rule_of(cond("claimant", "is", True), match="any"))))
)


@pytest.mark.parametrize(
    ("rule", "path", "words"),
    [
        (
            rule_of(
                cond("claimant", "is", True),
                cond("order_count", "gte", 1),
                cond("order_count", "gte", "abc"),
            ),
            "conditions[2].value",
            "“abc” is not a whole number",
        ),
        (rule_of(cond("shoe_size", "eq", 1)), "conditions[0].field", "unknown field “shoe_size”"),
        (rule_of(cond("tag", "gte", 1)), "conditions[0].op", "cannot be used with"),
        (rule_of(cond("order_count", "gte", [1])), "conditions[0].value", "not a whole number"),
        (rule_of(cond("order_count", "gte", None)), "conditions[0].value", "enter a whole number"),
        (rule_of(cond("order_count", "gte", -1)), "conditions[0].value", "out of range"),
        (rule_of(cond("order_count", "between", [5, 1])), "conditions[0].value", "greater than"),
        (
            rule_of(cond("order_count", "between", 5)),
            "conditions[0].value",
            "pair of whole numbers",
        ),
        (
            rule_of(cond("prefecture", "in", ["東京都", "Tokyo"])),
            "conditions[0].value[1]",
            "not one of the choices",
        ),
        (rule_of(cond("prefecture", "in", [])), "conditions[0].value", "at least one"),
        (rule_of(cond("claimant", "is", "yes")), "conditions[0].value", "true or false"),
        (rule_of(cond("days_since_last_order", "never", 3)), "conditions[0].value", "no value"),
        (rule_of(rule_of(match="any")), "conditions[0].conditions", "group is empty"),
        (rule_of(), "conditions", "group is empty"),
        (
            {"match": "most", "conditions": [cond("claimant", "is", True)]},
            "match",
            "“all” or “any”",
        ),
        ([], "rule", "must be a group"),
        (
            nested_too_deep,
            "conditions[0].conditions[0].conditions[0].conditions[0]",
            "nested too deeply",
        ),
        (
            rule_of(*[cond("claimant", "is", True)] * (MAX_CONDITIONS + 1)),
            f"conditions[{MAX_CONDITIONS}]",
            "at most 50 conditions",
        ),
        (rule_of({**cond("claimant", "is", True), "note": 1}), "conditions[0]", "unexpected key"),
    ],
)
def test_validation_errors_name_the_path_of_the_bad_part(rule, path, words):
    with translation.override("en"), pytest.raises(ValidationError) as caught:
        segment_rule_validate(rule)
    messages = segment_error_paths(caught.value)
    assert path in messages, messages
    assert words in " ".join(messages[path])
    with translation.override("en"):
        place = segments.rule_place(path)
    assert all(message.startswith(f"{place}: ") for message in messages[path])
    assert not any(path in message for message in messages[path] if "[" in path)


@pytest.mark.parametrize(
    ("path", "place"),
    [
        ("conditions[0].value", "条件 1 の値"),
        ("conditions[2].field", "条件 3 の項目"),
        ("conditions[0].op", "条件 1 の比較"),
        ("conditions[0].value[1]", "条件 1 の値 2"),
        ("conditions[1].conditions[0].value", "条件 2 › 条件 1 の値"),
        ("conditions[0]", "条件 1"),
        ("conditions", "条件"),
        ("match", "すべて／いずれか"),
        ("rule", "ルール全体"),
    ],
)
def test_rule_errors_name_the_place_as_the_builder_shows_it(path, place):
    with translation.override("ja"):
        assert segments.rule_place(path) == place


def test_a_rule_error_reads_in_words_not_as_a_json_path():
    with translation.override("ja"), pytest.raises(ValidationError) as caught:
        segment_rule_validate(rule_of(cond("claimant", "is", True), cond("tag", "gte", 1)))
    (message,) = caught.value.messages
    assert message.startswith("条件 2 の比較: ")
    assert "conditions[" not in message
    # the operators it suggests are named as the builder names them
    assert "gte" not in message.split("“gte”")[-1] and "has_any" not in message


def test_all_problems_are_reported_at_once():
    rule = rule_of(cond("order_count", "gte", "x"), cond("nope", "eq", 1), cond("tag", "is", 1))
    with pytest.raises(ValidationError) as caught:
        segment_rule_validate(rule)
    assert set(segment_error_paths(caught.value)) == {
        "conditions[0].value",
        "conditions[1].field",
        "conditions[2].op",
    }


def test_cleaning_normalises_numbers_and_choices():
    rule = rule_of(
        cond("order_count", "gte", "３"),
        cond("total_spent", "between", ["1000", 2000.0]),
        cond("birthday_month", "in", ["3", 3, 12]),
        cond("tag", "has_any", [" gift ", "gift"]),
    )
    assert segment_rule_clean(rule) == rule_of(
        cond("order_count", "gte", 3),
        cond("total_spent", "between", [1000, 2000]),
        cond("birthday_month", "in", [3, 12]),
        cond("tag", "has_any", ["gift"]),
    )


def test_the_depth_limit_allows_exactly_max_depth_levels():
    ok = rule_of(rule_of(rule_of(rule_of(cond("claimant", "is", True)))))
    segment_rule_validate(ok)
    with pytest.raises(ValidationError):
        segment_rule_validate(nested_too_deep)


# --- One query ---------------------------------------------------------------------

EVERY_FIELD = rule_of(
    *[
        example
        for example in EXAMPLES
        if example["op"] in ("gte", "has_any", "in", "granted", "is")
    ],
    match="any",
)


def test_a_segment_is_one_query_whatever_its_rule(population, django_assert_num_queries):
    assert {c["field"] for c in EVERY_FIELD["conditions"]} == set(BUILTIN_FIELDS)
    rule = rule_of(
        EVERY_FIELD, rule_of(cond("tag", "has_all", list(TAGS)), match="any"), match="any"
    )
    with django_assert_num_queries(1):
        pks = list(segment_customers(custom(rule), now=population.now).values_list("pk", flat=True))
    assert set(pks) == oracle_select(rule, facts_load(), population.now)
    assert len(pks) == len(set(pks)), "no row may be duplicated"
    with django_assert_num_queries(1):
        assert segment_count(rule, now=population.now) == len(pks)


def test_counts_of_many_segments_are_one_query(population, django_assert_num_queries):
    many = [
        segment_save(
            segment=None, name=f"例{index}", kind="custom", rule=rule_of(example), actor=None
        )
        for index, example in enumerate(EXAMPLES[:12])
    ]
    many.append(
        segment_save(
            segment=None, name="VIP", kind="lifecycle", lifecycle_segment="vip", actor=None
        )
    )
    with django_assert_num_queries(1):
        counts = segment_counts(many, now=population.now)
    assert counts == {s.pk: segment_count(s, now=population.now) for s in many}


def test_days_conditions_compare_the_column_itself():
    """No annotation around last_order_at: an index on it stays usable."""
    q = segment_rule_q(rule_of(cond("days_since_last_order", "gte", 30)), now=timezone.now())
    sql = str(Customer.objects.filter(q).query)
    assert '"crm_customer"."last_order_at" <' in sql


# --- Describing --------------------------------------------------------------------


def test_a_rule_describes_itself():
    rule = rule_of(
        cond("order_count", "gte", 3),
        cond("prefecture", "in", ["東京都", "大阪府"]),
        rule_of(
            cond("total_spent", "between", [1000, 50000]),
            cond("claimant", "is", False),
            match="any",
        ),
    )
    with translation.override("en"):
        assert segment_rule_describe(rule) == (
            "All of: number of orders ≥ 3 / prefecture is one of 東京都, 大阪府 / "
            "(Any of: total spent (JPY) between ¥1,000 and ¥50,000 / claimant: no)"
        )


def test_descriptions_use_japanese_labels_where_a_catalogue_has_them():
    with translation.override("ja"):
        text = segment_rule_describe(rule_of(cond("birthday_month", "in", [3, 12])))
    assert "3月" in text and "12月" in text


# --- The registry is open for other apps ----------------------------------------


def test_another_app_adds_a_field_with_one_registration(population):
    field = SegmentField(
        "rakuten_order_count",
        "Rakuten orders",
        NUMBER_OPERATORS,
        number_expression(lambda now: related_count(Order.objects.filter(channel="rakuten"))),
    )
    segment_field_register(field)
    try:
        with pytest.raises(ImproperlyConfigured):
            segment_field_register(field)
        rule = rule_of(cond("rakuten_order_count", "gte", 2))
        assert selected(rule, population.now) == population.pks("常連")
        none = rule_of(cond("rakuten_order_count", "eq", 0), cond("channel", "has_any", ["store"]))
        assert selected(none, population.now) == population.pks("優良")
        between = rule_of(cond("rakuten_order_count", "between", [1, 1]))
        assert selected(between, population.now) == population.pks("新規")
    finally:
        del SEGMENT_FIELDS["rakuten_order_count"]


def test_a_field_with_unknown_operators_is_refused():
    with pytest.raises(ImproperlyConfigured):
        segment_field_register(SegmentField("x", "x", ("approximately",), lambda *a: None))
    assert "x" not in SEGMENT_FIELDS


# --- segment_save -------------------------------------------------------------------


def test_segment_save_stores_a_clean_rule_and_who_made_it(owner):
    segment = segment_save(
        segment=None,
        name=" 東京の常連 ",
        kind="custom",
        lifecycle_segment="vip",
        rule=rule_of(cond("order_count", "gte", "3")),
        description="説明",
        actor=owner,
    )
    segment.refresh_from_db()
    assert segment.name == "東京の常連"
    assert segment.rule == rule_of(cond("order_count", "gte", 3))
    assert segment.lifecycle_segment == ""  # a custom segment has no lifecycle value
    assert segment.created_by == owner


def test_segment_save_refuses_a_bad_rule_and_writes_nothing(owner):
    with pytest.raises(ValidationError) as caught:
        segment_save(
            segment=None,
            name="壊れた",
            kind="custom",
            rule=rule_of(cond("order_count", "gte", "abc")),
            actor=owner,
        )
    assert "条件 1 の値" in " ".join(caught.value.message_dict["rule"])
    assert not Segment.objects.exists()


def test_segment_save_changes_a_segment_and_keeps_names_unique(owner):
    first = segment_save(
        segment=None,
        name="A",
        kind="custom",
        rule=rule_of(cond("claimant", "is", True)),
        actor=owner,
    )
    segment_save(
        segment=None,
        name="B",
        kind="lifecycle",
        lifecycle_segment="vip",
        rule={"x": 1},
        actor=owner,
    )
    with pytest.raises(ValidationError) as caught:
        segment_save(segment=first, name="B", kind="custom", rule=first.rule, actor=owner)
    assert "name" in caught.value.message_dict
    changed = segment_save(
        segment=first, name="A2", kind="lifecycle", lifecycle_segment="new", actor=owner
    )
    changed.refresh_from_db()
    assert (changed.name, changed.kind, changed.lifecycle_segment, changed.rule) == (
        "A2",
        "lifecycle",
        "new",
        {},
    )
    assert Segment.objects.get(name="B").rule == {}


def test_a_lifecycle_segment_needs_its_value(owner):
    with pytest.raises(ValidationError) as caught:
        segment_save(segment=None, name="L", kind="lifecycle", actor=owner)
    assert "lifecycle_segment" in caught.value.message_dict


# --- Built-in lifecycle segments -----------------------------------------------------


def test_builtin_segments_are_created_once_each(population):
    segment_save(
        segment=None,
        name="新規",
        kind="custom",
        rule=rule_of(cond("order_count", "eq", 1)),
        actor=None,
    )
    created = segments_builtin_ensure()
    assert sorted(s.lifecycle_segment for s in created) == sorted(LifecycleSegment.values)
    assert segments_builtin_ensure() == []
    names = dict(Segment.objects.filter(kind="lifecycle").values_list("lifecycle_segment", "name"))
    assert names == {
        "sleeping": "休眠顧客 (スリーピング)",
        "regular": "一般",
        "vip": "優良 (VIP)",
        "new": "新規 (ライフサイクル)",  # the name was taken by a custom segment
        "prospect": "見込み客",
        "claimant": "クレーマー",
    }
    vip = Segment.objects.get(kind="lifecycle", lifecycle_segment="vip")
    assert segment_count(vip) == 1
