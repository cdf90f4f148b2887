"""Review requests (SPEC rule 9): the wording check of a review request's
template — no asking for good reviews only, nothing offered for a review —
applied when a journey with a review step is saved and when a template a
review step uses is saved; and the days after delivery a review request
may go (checked by outreach.services.journeys)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.translation import gettext as _

from outreach.models import JourneyStep, MessageTemplate, Send, SendKind
from outreach.services.sends import template_snapshot

# Amazon's buyer-seller messaging: a review request 5–30 days after delivery.
REVIEW_MIN_DAYS = 5
REVIEW_MAX_DAYS = 30

# --- The review request wording (SPEC rule 9) -------------------------------------------

# Wording that asks for a positive review only (compared after NFKC, so
# ★５ and ★5 are one).
POSITIVE_ONLY_PHRASES = (
    "高評価",
    "★5",
    "☆5",
    "星5つ",
    "星5",
    "5つ星",
    "良いレビュー",
    "いいレビュー",
)
_REVIEW_WORDS = re.compile(r"レビュー|口コミ|クチコミ|評価|感想")
_INCENTIVE_WORDS = re.compile(r"ポイント|クーポン|割引|値引|プレゼント|特典|キャッシュバック|謝礼")
_SENTENCE_END = re.compile(r"[。！？!?\n]")


def review_wording_problems(texts: Iterable[str]) -> list[str]:
    """Why a review request's wording may not go out (empty if it may): it
    asks for a positive review, or offers something (points, a coupon) for
    a review. Amazon forbids both, and so do the other malls."""
    problems = []
    for text in texts:
        text = unicodedata.normalize("NFKC", text or "")
        for phrase in POSITIVE_ONLY_PHRASES:
            if phrase in text:
                problem = _(
                    "A review request may not ask for a good review only (「%(phrase)s」): "
                    "ask for an honest review."
                ) % {"phrase": phrase}
                if problem not in problems:
                    problems.append(problem)
        for sentence in _SENTENCE_END.split(text):
            if _REVIEW_WORDS.search(sentence) and _INCENTIVE_WORDS.search(sentence):
                problem = _(
                    "A review request may not offer points, coupons or gifts for a review "
                    "(「%(sentence)s」)."
                ) % {"sentence": sentence.strip()[:60]}
                problems.append(problem)
    return problems


def template_texts(template: MessageTemplate) -> list[str]:
    return [
        template.subject,
        template.body_text,
        template.body_html,
        *[str(message) for message in template.line_messages or []],
    ]


def review_template_check(template: MessageTemplate) -> None:
    """Refuse a review request template whose wording breaks the rule."""
    problems = review_wording_problems(template_texts(template))
    if problems:
        raise ValidationError(problems)


def template_saved(template: MessageTemplate) -> None:
    """Called by template_save before it saves: a template used by a review
    step is checked; journey steps send the template as it now is."""
    if template.pk is None:
        return
    if (
        JourneyStep.objects.filter(is_review_request=True)
        .filter(Q(template=template) | Q(next_template=template))
        .exists()
    ):
        review_template_check(template)


def template_saved_after(template: MessageTemplate) -> None:
    Send.objects.filter(kind=SendKind.JOURNEY, template=template).update(
        content={"template": template_snapshot(template)}
    )
