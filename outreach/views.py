"""Public pages: unsubscribe (GET shows, POST does; RFC 8058 one-click)."""

from __future__ import annotations

from typing import Any

from django.core import signing
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from crm.models import ConsentSource, ConsentState, Customer
from crm.services import customer_follow_merges
from outreach.models import MessageChannel
from outreach.services import (
    consent_withdraw,
    deliveries_skip_for_opt_out,
    unsubscribe_token_read,
)


def _page(
    request: HttpRequest, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> HttpResponse:
    # base_public.html reads LANGUAGE_CODE, which no context processor sets.
    return render(
        request, template, {"LANGUAGE_CODE": get_language(), **(context or {})}, status=status
    )


def _unsubscribe(customer: Customer, channel: str) -> None:
    """Opt out once: a second click (or a mail client's one-click after the
    page's button) writes no second event, but queued marketing rows are
    skipped either way. The customer row lock serialises double clicks."""
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        already_out = ConsentState.objects.filter(
            customer=customer, channel=channel, granted=False
        ).exists()
        if already_out:
            deliveries_skip_for_opt_out(customer_id=customer.pk, channel=channel)
        else:
            consent_withdraw(customer=customer, channel=channel, source=ConsentSource.UNSUBSCRIBE)


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
    _unsubscribe(customer, channel)
    if request.POST.get("List-Unsubscribe") == "One-Click":
        return HttpResponse(_("Unsubscribed."), content_type="text/plain; charset=utf-8")
    return _page(request, "outreach/unsubscribe_done.html", context)
