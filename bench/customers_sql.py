"""INSERT … SELECT for the benches' bulk data, its column list read from the model.

The benches build millions of rows with one INSERT … SELECT each. Django sets
most defaults in Python, not in the database, so a raw INSERT that names only
the columns it cares about stops at the next NOT NULL column a migration
adds. `insert_select` names every concrete column of the model that is NOT
NULL and has no database default: the caller's expression where it gives
one, else the field's own constant default, else a zero value of its type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# The names the benches give their customers, picked in turn with `pick`.
FAMILY = ["佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村"]
FAMILY_KANA = [
    "サトウ",
    "スズキ",
    "タカハシ",
    "タナカ",
    "イトウ",
    "ワタナベ",
    "ヤマモト",
    "ナカムラ",
]
GIVEN = ["花子", "太郎", "美咲", "翔太", "陽菜", "大翔", "結衣", "蓮"]
GIVEN_KANA = ["ハナコ", "タロウ", "ミサキ", "ショウタ", "ヒナ", "ヒロト", "ユイ", "レン"]

ZERO = {
    "BooleanField": "false",
    "JSONField": "'{}'::jsonb",
    "DateTimeField": "now()",
    "DateField": "current_date",
    "BinaryField": "''::bytea",
    "DurationField": "interval '0'",
    "UUIDField": "gen_random_uuid()",
}
NUMERIC = (
    "IntegerField",
    "BigIntegerField",
    "SmallIntegerField",
    "PositiveIntegerField",
    "PositiveBigIntegerField",
    "PositiveSmallIntegerField",
    "FloatField",
    "DecimalField",
)


def pick(values: Sequence[str], key: str = "g") -> str:
    """SQL choosing one of `values` by `key` in turn: (ARRAY['a','b'])[1 + g %% 2]."""
    items = ",".join("'" + value.replace("'", "''") + "'" for value in values)
    return f"(ARRAY[{items}])[1 + {key} %% {len(values)}]"


def required_columns(model: Any) -> dict[str, Any]:
    """column name → field, for every NOT NULL column without a database default."""
    from django.db.models import NOT_PROVIDED

    return {
        field.column: field
        for field in model._meta.concrete_fields
        if not field.primary_key and not field.null and field.db_default is NOT_PROVIDED
    }


def fill_value(field: Any) -> str:
    """SQL for a column the caller left out: its constant default, else a zero."""
    default = field.default
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, int | float):
        return str(default)
    if isinstance(default, str):
        return "'" + default.replace("'", "''").replace("%", "%%") + "'"
    kind = field.get_internal_type()
    if kind in NUMERIC:
        return "0"
    return ZERO.get(kind, "''")


def insert_select(model: Any, values: dict[str, str], source: str) -> str:
    """`INSERT INTO <table> (<every required column and values' keys>) SELECT … <source>`.

    `values` maps a column to its SQL expression; `source` is the rest of the
    SELECT (`FROM generate_series(1, %(n)s) AS g`). Parameters stay the
    caller's (a literal % in a default is doubled)."""
    exprs = dict(values)
    for column, field in required_columns(model).items():
        exprs.setdefault(column, fill_value(field))
    names = ", ".join(f'"{name}"' for name in exprs)
    select = ",\n    ".join(exprs.values())
    return f'INSERT INTO "{model._meta.db_table}" ({names})\nSELECT {select}\n{source}'
