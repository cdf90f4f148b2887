"""`field__any_of=ids`: membership in a list of ids as one array parameter.

On PostgreSQL `field = ANY('{1,2,3}'::bigint[])`. `field__in=ids` writes
one placeholder per id: a worker's batch of 500 ids costs more to build,
send and plan than the query takes to run, and the send-time check
repeats them in each of its subqueries. The array goes as its text form,
built once (psycopg would adapt a list item by item for each place it
appears), and the planner knows its length, so it takes the primary-key
index for 500 ids instead of a hash join over the whole table (what
`IN (SELECT unnest(...))`, estimated at 200 rows whatever its length,
got). Elsewhere (SQLite) it is `field__in`.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Field, ForeignObject, Lookup
from django.db.models.lookups import In


def id_array(ids: Iterable[int]) -> str:
    """PostgreSQL's text form of an array of ids: '{1,2,3}'."""
    return "{" + ",".join(str(int(i)) for i in ids) + "}"


class AnyOf(Lookup):
    lookup_name = "any_of"
    prepare_rhs = False

    def get_prep_lookup(self):
        return [int(i) for i in self.rhs]

    def as_sql(self, compiler, connection):
        return compiler.compile(In(self.lhs, self.rhs))

    def as_postgresql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        cast = self.lhs.output_field.cast_db_type(connection)
        return f"{lhs} = ANY(%s::{cast}[])", [*lhs_params, id_array(self.rhs)]


# A relation's lookups are its own (ForeignObject leaves Field's out), so
# `customer__any_of` and `customer_id__any_of` need registering there too.
Field.register_lookup(AnyOf)
ForeignObject.register_lookup(AnyOf)


class SearchContains(Lookup):
    """`field__search_contains=word`: the word anywhere in the text, in any
    case. On PostgreSQL `field ILIKE '%word%'`, which a pg_trgm index on
    the column serves from three characters (Django's `icontains` writes
    UPPER(field) LIKE, which no index on the column serves); a word of two
    characters, which trigrams cannot narrow, is one of the column's
    character pairs, `search_bigrams(field)` (a function and GIN indexes of
    tickets migration 0017_search). Elsewhere (SQLite, whose
    LIKE ignores ASCII case) `icontains`."""

    lookup_name = "search_contains"

    def as_sql(self, compiler, connection):
        return compiler.compile(self.lhs.get_lookup("icontains")(self.lhs, self.rhs))

    def as_postgresql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        word = str(self.rhs)
        like = f"%{connection.ops.prep_for_like_query(word)}%"
        if len(word) != 2:
            return f"{lhs} ILIKE %s", [*lhs_params, like]
        # The pair as a tsquery lexeme: quoted, its quotes and backslashes
        # escaped. The text holds the pair exactly when its pairs do: no
        # ILIKE beside it, which the planner would take to the trigram
        # index, where two characters read all of it (3 s at 1,000,000).
        lexeme = "'" + word.lower().replace("\\", "\\\\").replace("'", "''") + "'"
        return f"search_bigrams({lhs}) @@ %s::tsquery", [*lhs_params, lexeme]


Field.register_lookup(SearchContains)
