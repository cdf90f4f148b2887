"""Public pages: the satisfaction survey (CSAT). The signed link is the
authority (no login). GET shows the answer the link carries and asks to
confirm it (mail scanners open links: a GET records nothing, as the
unsubscribe page does); POST records it once, then a comment once."""

from __future__ import annotations

from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from tickets.models import CsatSurvey
from tickets.services.csat import (
    COMMENT_MAX_CHARS,
    csat_answer,
    csat_comment,
    csat_question,
    csat_score_label,
    csat_token_read,
)


@csrf_exempt  # the signed token is the authority; the customer has no session
@never_cache  # one person's link: no shared cache may keep or replay it
@require_http_methods(["GET", "POST"])
def csat_page(request: HttpRequest, token: str) -> HttpResponse:
    try:
        inquiry_id, score = csat_token_read(token)
    except signing.SignatureExpired:
        return render(request, "tickets/csat_invalid.html", {"expired": True}, status=400)
    except signing.BadSignature:
        return render(request, "tickets/csat_invalid.html", status=400)
    survey = CsatSurvey.objects.filter(inquiry_id=inquiry_id).first()
    if survey is None:
        return render(request, "tickets/csat_invalid.html", status=400)
    state, status = "confirm", 200
    if request.method == "POST" and "comment" in request.POST:
        if csat_comment(inquiry_id=inquiry_id, comment=request.POST["comment"]):
            state = "commented"
        elif survey.commented_at is not None:
            state, status = "comment_again", 409
        elif survey.score is None:
            state, status = "confirm", 409  # a comment comes after an answer
        else:
            state = "answered"  # an empty comment: the box again
    elif request.method == "POST":
        survey, recorded = csat_answer(inquiry_id=inquiry_id, score=score)
        assert survey is not None  # found above
        state, status = ("answered", 200) if recorded else ("again", 409)
    elif survey.score is not None:
        state = "again"
    if state in ("again", "comment_again", "answered"):
        survey.refresh_from_db(fields=["score", "commented_at"])
    context = {
        "state": state,
        "question": csat_question(),
        "score": score,
        "score_label": csat_score_label(score),
        "answered_label": csat_score_label(survey.score) if survey.score else "",
        "can_comment": survey.score is not None and survey.commented_at is None,
        "comment_max": COMMENT_MAX_CHARS,
    }
    return render(request, "tickets/csat_page.html", context, status=status)
