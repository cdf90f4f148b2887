"""Staff search for people: the customer list's box and the customer half
of the inbox's (tickets.search).

What was typed decides which columns are asked, so that each kind of
search reads its own index on PostgreSQL (crm migration 0017_search):

- an address (with @): the normalised email, and the identities on the
  email channel; the start of an address when it is not a whole one;
- a number (digits with dashes, spaces, +, parentheses): a whole Japanese
  phone number by its normalised form, or its last four digits or more
  (trigrams);
- anything else: a name or a reading as typed, without spaces, in any
  kana and width: the start of the folded name or kana (a B-tree prefix,
  which two characters narrow), or three characters or more anywhere in it
  (trigrams);
- and, but for an address: a channel's own id (LINE user id, mall member
  id) as typed, and, with four digits or more, the end of an order number
  (OS-2024-0001, 「1234567」 of 123-4567890-1234567: the number reversed, a
  prefix of the reversed index).

Each kind is a set of customer ids, the union of one query per index: an
OR of subqueries would make PostgreSQL read every customer. SQLite (`make
run`) asks the same columns without the indexes.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from django.db.models import QuerySet
from django.db.models.functions import Reverse

from core.choices import Channel
from crm.models import ChannelIdentity, Customer, Order
from crm.normalize import digits_only, email_normalize, name_search_key, phone_normalize

# Digits with the separators people type in a phone or order number.
NUMBER_RE = re.compile(r"^[\d\s\-+()]+$")
# Fewer digits than this match too many phone and order numbers to list.
MIN_NUMBER_DIGITS = 4
# Trigram indexes narrow words of three characters or more; shorter ones
# are searched from the start of the name (a prefix index).
TRIGRAM_MIN_CHARS = 3


@dataclass(frozen=True)
class SearchTerm:
    """What was typed, read once: `text` is it in NFKC, trimmed; `kind` is
    "email", "number" or "text"."""

    text: str
    kind: str
    email: str = ""  # a whole address, normalised
    phone: str = ""  # a whole Japanese number, normalised
    digits: str = ""  # a number's digits
    name_key: str = ""  # name_search_key of the text
    order_number: str = ""  # the end of an order number it can be (4 digits or more)

    @property
    def is_short_text(self) -> bool:
        return self.kind == "text" and len(self.name_key) < TRIGRAM_MIN_CHARS


def search_term(raw: str | None) -> SearchTerm | None:
    """The term in `raw`, or None when nothing was typed."""
    text = unicodedata.normalize("NFKC", raw or "").strip()
    if not text:
        return None
    if "@" in text:
        return SearchTerm(text=text, kind="email", email=email_normalize(text))
    digits = digits_only(text)
    # Order numbers mix letters, digits and dashes (OS-2024-0001).
    order_number = text.replace(" ", "") if len(digits) >= MIN_NUMBER_DIGITS else ""
    if NUMBER_RE.match(text) and digits:
        return SearchTerm(
            text=text,
            kind="number",
            phone=phone_normalize(text),
            digits=digits,
            order_number=order_number,
        )
    return SearchTerm(
        text=text, kind="text", name_key=name_search_key(text), order_number=order_number
    )


def ends_with(queryset: QuerySet, field: str, number: str) -> QuerySet:
    """The rows whose `field` ends with `number`: the reversed value starts
    with the reversed number, which the `reverse(field) text_pattern_ops`
    indexes find by prefix."""
    return queryset.alias(reversed_value=Reverse(field)).filter(
        reversed_value__startswith=number[::-1]
    )


def customer_ids_matching(term: SearchTerm) -> QuerySet:
    """The ids of the customers `term` finds: a union of one query per
    index, for `pk__in=` / `customer_id__in=`."""
    customers = Customer.objects.order_by()
    identities = ChannelIdentity.objects.order_by()
    parts: list[QuerySet] = []
    if term.kind == "email":
        if term.email:
            parts.append(customers.filter(email_normalized=term.email).values("pk"))
            parts.append(
                identities.filter(channel=Channel.EMAIL, external_id=term.email).values(
                    "customer_id"
                )
            )
        else:
            parts.append(
                customers.filter(email_normalized__startswith=term.text.lower()).values("pk")
            )
    elif term.kind == "number":
        if term.phone:
            parts.append(customers.filter(phone_normalized=term.phone).values("pk"))
        elif len(term.digits) >= MIN_NUMBER_DIGITS:
            parts.append(customers.filter(phone_normalized__endswith=term.digits).values("pk"))
        parts.append(identities.filter(external_id=term.text).values("customer_id"))
    else:
        key = term.name_key
        lookup = "startswith" if term.is_short_text else "contains"
        for column in ("search_name", "search_kana"):
            parts.append(customers.filter(**{f"{column}__{lookup}": key}).values("pk"))
        parts.append(identities.filter(external_id=term.text).values("customer_id"))
    if term.order_number:
        orders = ends_with(Order.objects.order_by(), "order_number", term.order_number)
        parts.append(orders.values("customer_id"))
    return parts[0].union(*parts[1:])


def customer_search(queryset: QuerySet[Customer], raw: str) -> QuerySet[Customer]:
    """The customers of `queryset` that `raw` finds (see the module)."""
    term = search_term(raw)
    if term is None:
        return queryset
    return queryset.filter(pk__in=customer_ids_matching(term))
