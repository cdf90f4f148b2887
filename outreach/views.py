"""Public pages: unsubscribe (GET shows, POST does; RFC 8058 one-click) and
the tracked links' redirect."""

from __future__ import annotations

from typing import Any

from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from crm.models import Customer
from crm.services import customer_follow_merges
from outreach.models import MessageChannel
from outreach.services import (
    click_record,
    click_token_read,
    unsubscribe_apply,
    unsubscribe_token_read,
)


def _page(
    request: HttpRequest, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> HttpResponse:
    return render(request, template, context or {}, status=status)


@csrf_exempt  # the signed token is the authority; mail clients POST without cookies
@never_cache  # one person's link: no shared cache may keep or replay it
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        customer_id, channel = unsubscribe_token_read(token)
        customer = customer_follow_merges(Customer.objects.get(pk=customer_id))
    except (signing.BadSignature, Customer.DoesNotExist):
        return _page(request, "outreach/unsubscribe_invalid.html", status=400)
    context = {"channel": MessageChannel(channel).label}
    if request.method == "GET":
        return _page(request, "outreach/unsubscribe_confirm.html", context)
    unsubscribe_apply(customer=customer, channel=channel)
    if request.POST.get("List-Unsubscribe") == "One-Click":
        return HttpResponse(_("Unsubscribed."), content_type="text/plain; charset=utf-8")
    return _page(request, "outreach/unsubscribe_done.html", context)


@never_cache  # every click is counted: no cache may answer for us
@require_http_methods(["GET", "HEAD"])
def click(request: HttpRequest, token: str) -> HttpResponse:
    """A tracked link: record the click and go on to the template's own
    link. A token we did not sign, or that names no link, goes nowhere."""
    try:
        delivery_id, index = click_token_read(token)
    except signing.BadSignature:
        target = None
    else:
        target = click_record(delivery_id=delivery_id, index=index)
    if target is None:
        return _page(request, "outreach/click_invalid.html", status=400)
    return HttpResponseRedirect(target)
