"""LINE texts once personalised: LINE refuses a text over 5,000 UTF-16 units.

A template is checked when it is saved (outreach.templating), but a
personal text can pass the limit once a long name is filled in. The worker
checks every rendered text before its request (`line_length_problem`, in
outreach.dispatch); the campaign page and the launch name the longest
rendering (`line_longest_rendering`), so the marketer can shorten the
template before anyone is left out.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import CharField, F, IntegerField, QuerySet, Value
from django.db.models.functions import Cast, Length
from django.utils.translation import gettext as _

from core.templating import template_variables
from crm.models import Customer
from outreach.models import Send
from outreach.templating import LINE_MAX_TEXT_UTF16, compiled, utf16_length

# How many of the customers with the longest values are rendered.
CANDIDATES = 50


def line_length_problem(texts: list[str]) -> str:
    """Why LINE would refuse these rendered texts for their length ("" if it
    would not), in words for the person reading the ledger."""
    for number, text in enumerate(texts, start=1):
        length = utf16_length(text)
        if length > LINE_MAX_TEXT_UTF16:
            return _(
                "Message %(n)d is %(length)s characters (UTF-16) once personalised; "
                "LINE allows %(max)s. It was not sent."
            ) % {"n": number, "length": f"{length:,}", "max": f"{LINE_MAX_TEXT_UTF16:,}"}
    return ""


@dataclass(frozen=True)
class LongestRendering:
    customer: Customer
    message: int  # its position, from 1
    length: int  # UTF-16 units

    @property
    def too_long(self) -> bool:
        return self.length > LINE_MAX_TEXT_UTF16


def _length_of(attribute: str):
    """The length of what {{ customer.<attribute> }} renders to, as SQL
    (None for values whose length hardly varies, e.g. dates)."""
    text = {"family_name", "given_name", "family_name_kana", "given_name_kana", "email"}
    if attribute in text | {"prefecture"}:
        return Length(attribute)
    if attribute == "name":
        return Length("family_name") + Length("given_name")
    if attribute in ("order_count", "total_spent"):
        return Length(Cast(attribute, CharField()))
    return None


def _score(messages: list[str]):
    """How long the customer's values used by `messages` are, summed: an
    SQL expression to find the customers most likely to get the longest
    rendering."""
    terms = []
    for text in messages:
        for path in sorted(template_variables(compiled(text).nodelist)):
            root, _dot, attribute = path.partition(".")
            if root == "customer":
                term = _length_of(attribute.split(".")[0])
            elif root == "unsubscribe_url":  # the signed link grows with the id
                term = Length(Cast(F("pk"), CharField()))
            else:
                term = None
            if term is not None:
                terms.append(term)
    score = Value(0, output_field=IntegerField())
    for term in terms:
        score = score + term
    return score


# Links are sent as tracked links (outreach.services.clicks), longer than
# the template's: measured with the largest delivery id, the longest token.
LONGEST_DELIVERY_ID = 2**63 - 1


def line_longest_rendering(*, send: Send, audience: QuerySet[Customer]) -> LongestRendering | None:
    """The longest text `send` (a LINE send of a template, saved or not)
    renders to for `audience`, rendered by the worker's own code: for the
    CANDIDATES customers whose values used by the template are longest
    (one query), or once for a template that is the same for everyone.
    None for an empty audience."""
    from outreach.dispatch import LineWorker

    worker = LineWorker(send)
    assert worker.template is not None  # a send of a template
    messages = list(worker.template.line_messages or [])
    candidates = audience.order_by()
    if worker.template.is_personal:
        candidates = candidates.annotate(render_score=_score(messages)).order_by(
            "-render_score", "pk"
        )
    longest = None
    for customer in candidates[: CANDIDATES if worker.template.is_personal else 1]:
        texts = worker.texts(customer, delivery_id=LONGEST_DELIVERY_ID)
        for number, text in enumerate(texts, start=1):
            length = utf16_length(text)
            if longest is None or length > longest.length:
                longest = LongestRendering(customer=customer, message=number, length=length)
    return longest
