"""The inbox's search: one box for references, customers (crm.search:
name, kana, email, phone), order numbers, subjects and the customer's
messages.

What was typed decides what is asked, and every part is a test of the
inquiry's own row, OR-ed, so that PostgreSQL can choose per search between
reading the parts' indexes (BitmapOr: a name, a number, a rare word) and
walking the inbox's order testing each row (a word in thousands of
inquiries: the first page is its first 50 hits, not all of them sorted):

- a reference (Q-2611-00032) by itself; its number part (「00032」,
  「2611-00032」) at the end of the reference (reversed, a prefix);
- the customers found (crm.search: names, kana, emails, phones, their
  order numbers), by their ids, read first in one query;
- four digits or more: the order number as the customer typed it ends
  with them;
- words: Inquiry.search_text (the subject and the customer's messages,
  folded by search_fold, kept by the services that add messages), by
  trigrams from three characters, by character pairs for two (which
  trigrams cannot narrow: core.lookups, search_contains) — unless
  PostgreSQL expects the pair in more than COMMON_PAIR_ROWS inquiries
  (「返品」: 13 %): then each row the inbox walks is tested with strpos,
  which no index serves and costs 2 µs, where computing a row's pairs
  costs 200 µs (the first page of 50 reads 400 rows, not 130,000).

The inbox counts a search up to SEARCH_COUNT_CAP (「1,000件以上」,
tickets.selectors.inbox_counts).
"""

from __future__ import annotations

import json
import re
import unicodedata

from django.db import connection
from django.db.models import Q, QuerySet, Value
from django.db.models.functions import Reverse, StrIndex

from crm.search import SearchTerm, customer_ids_matching, search_term
from tickets.models import Inquiry

REFERENCE_RE = re.compile(r"^Q-\d{4}-\d{5}$", re.IGNORECASE)
# The number part of a reference as people quote it: 00032, 32, 2611-00032.
REFERENCE_NUMBER_RE = re.compile(r"^(\d{4}-)?\d{1,5}$")
# A single character is looked for in names only (from their start).
MIN_WORD_CHARS = 2
# The inbox counts a search's inquiries up to this many (「1,000件以上」): 20
# pages of 50, which no agent reads through; they narrow the search instead.
SEARCH_COUNT_CAP = 1000
# A two-character word PostgreSQL expects in more inquiries than this is
# tested row by row on the inbox's walk, not read from its pairs' index.
COMMON_PAIR_ROWS = 20_000


def search_fold(text: str) -> str:
    """Text as Inquiry.search_text keeps it and a word is looked for in it:
    NFKC (full-width letters and digits, half-width kana), lower case."""
    return unicodedata.normalize("NFKC", text or "").lower()


def _inquiry_matches(term: SearchTerm) -> Q:
    """The test of an inquiry row for `term`: an OR of one indexed
    condition per kind (see the module)."""
    # (The union's rows are {"pk": id}: one column, whatever its part's name.)
    customer_ids = [id_ for row in customer_ids_matching(term) for id_ in row.values()]
    matches = Q(customer_id__any_of=customer_ids) if customer_ids else Q(pk__in=[])
    if REFERENCE_NUMBER_RE.match(term.text):
        month, _dash, number = term.text.rpartition("-")
        tail = f"-{month}-{number.zfill(5)}" if month else f"-{number.zfill(5)}"
        matches |= Q(reference_reversed__startswith=tail[::-1])
    if term.order_number:
        matches |= Q(order_given_reversed__startswith=term.order_number[::-1])
    if term.kind == "text" and len(term.text) >= MIN_WORD_CHARS:
        matches |= _word_matches(search_fold(term.text))
    return matches


def _word_matches(word: str) -> Q:
    """The folded `word` in Inquiry.search_text (see the module)."""
    if len(word) != 2:
        return Q(search_text__contains=word)  # LIKE: the trigram index, or a cheap row test
    pairs = Q(search_text__search_contains=word)
    if _estimated_rows(Inquiry.objects.filter(pairs)) > COMMON_PAIR_ROWS:
        return Q(word_at__gt=0)  # strpos (inquiry_search's alias)
    # The pairs' index, and strpos (cheaper than the pairs of a row, so
    # PostgreSQL tests it first) where the planner walks rows instead.
    return Q(word_at__gt=0) & pairs


def _estimated_rows(queryset: QuerySet) -> float:
    """PostgreSQL's estimate of the rows of `queryset` (EXPLAIN, not run:
    the pairs' statistics of the index's expression); 0 elsewhere."""
    if connection.vendor != "postgresql":
        return 0
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    return (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]["Plan Rows"]


def inquiry_search(queryset: QuerySet[Inquiry], raw: str) -> QuerySet[Inquiry]:
    """The inquiries of `queryset` that `raw` finds (see the module): one
    query for the customers' ids, then the inquiries' own columns."""
    term = search_term(raw)
    if term is None:
        return queryset
    if REFERENCE_RE.match(term.text):
        return queryset.filter(reference=term.text.upper())
    # The reversed columns as the `reverse(...) text_pattern_ops` indexes
    # hold them (crm.search.ends_with): their end is a prefix.
    return queryset.alias(
        reference_reversed=Reverse("reference"),
        order_given_reversed=Reverse("order_number_given"),
        word_at=StrIndex("search_text", Value(search_fold(term.text))),
    ).filter(_inquiry_matches(term))
