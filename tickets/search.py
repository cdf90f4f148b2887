"""The inbox's search: one box for references, customers (crm.search:
name, kana, email, phone), order numbers, subjects and the customer's
messages.

As in crm.search, what was typed decides what is asked, and the matching
inquiries are a union of one query per index (tickets migration
0017_search), never an OR of subqueries over every inquiry:

- a reference (Q-2611-00032) by itself; its number part (「00032」,
  「2611-00032」) at the end of the reference (reversed, a prefix);
- four digits or more: the inquiries of the customers whose phone or
  order number it is (crm.search), and those whose order number as the
  customer typed it ends with it;
- an address, a name: the inquiries of the customers found;
- words: the subject and the text of the customer's messages, by
  trigrams from three characters, by character pairs for two (which
  trigrams cannot narrow: core.lookups, search_contains).
"""

from __future__ import annotations

import re
from typing import Any

from django.db.models import QuerySet

from crm.search import SearchTerm, customer_ids_matching, ends_with, search_term
from tickets.models import Inquiry, InquiryMessage, MessageKind

REFERENCE_RE = re.compile(r"^Q-\d{4}-\d{5}$", re.IGNORECASE)
# The number part of a reference as people quote it: 00032, 32, 2611-00032.
REFERENCE_NUMBER_RE = re.compile(r"^(\d{4}-)?\d{1,5}$")
# A single character is looked for in names only (from their start).
MIN_WORD_CHARS = 2


def _inquiry_ids_matching(term: SearchTerm) -> QuerySet:
    """The union of the indexed queries for `term` (ids of inquiries)."""
    inquiries = Inquiry.objects.order_by()
    parts: list[QuerySet[Any, Any]] = [
        inquiries.filter(customer_id__in=customer_ids_matching(term)).values("pk")
    ]
    if REFERENCE_NUMBER_RE.match(term.text):
        month, _dash, number = term.text.rpartition("-")
        tail = f"-{month}-{number.zfill(5)}" if month else f"-{number.zfill(5)}"
        parts.append(ends_with(inquiries, "reference", tail).values("pk"))
    if term.order_number:
        parts.append(ends_with(inquiries, "order_number_given", term.order_number).values("pk"))
    if term.kind == "text" and len(term.text) >= MIN_WORD_CHARS:
        parts.append(inquiries.filter(subject__search_contains=term.text).values("pk"))
        parts.append(
            InquiryMessage.objects.order_by()
            .filter(kind=MessageKind.INBOUND, body_text__search_contains=term.text)
            .values("inquiry_id")
        )
    return parts[0].union(*parts[1:])


def inquiry_search(queryset: QuerySet[Inquiry], raw: str) -> QuerySet[Inquiry]:
    """The inquiries of `queryset` that `raw` finds (see the module)."""
    term = search_term(raw)
    if term is None:
        return queryset
    if REFERENCE_RE.match(term.text):
        return queryset.filter(reference=term.text.upper())
    return queryset.filter(pk__in=_inquiry_ids_matching(term))
