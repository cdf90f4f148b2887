"""Validating a segment rule: its shape, its limits, each condition's field,
operator and value, with errors that name the condition as a marketer
numbers them."""

from __future__ import annotations

import math
import re
import reprlib
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from outreach.segments.fields import OPERATORS, SEGMENT_FIELDS, Operator, SegmentField

MAX_DEPTH = 4
MAX_CONDITIONS = 50
MAX_LIST_ITEMS = 100
MAX_ERRORS = 20


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
