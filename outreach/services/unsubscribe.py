"""Unsubscribe links and opt-outs: the signed token, the link in every
marketing message, and what an opt-out does to queued deliveries."""

from __future__ import annotations

import functools

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import QuerySet
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone

from crm.models import ConsentSource, Customer
from crm.services import consent_withdraw
from outreach import ledger
from outreach.models import Delivery, DeliveryStatus, MessageChannel, Purpose, Send, SkipReason


def unsubscribe_token(*, customer_id: int, channel: str) -> str:
    return signing.dumps(
        {"c": customer_id, "ch": channel}, salt=settings.UNSUBSCRIBE_SALT, compress=True
    )


def unsubscribe_token_read(token: str) -> tuple[int, str]:
    """(customer id, channel) of a link; raises signing.BadSignature."""
    data = signing.loads(token, salt=settings.UNSUBSCRIBE_SALT)
    if not isinstance(data, dict) or "c" not in data or data.get("ch") not in MessageChannel.values:
        raise signing.BadSignature("malformed unsubscribe token")
    return int(data["c"]), data["ch"]


@functools.lru_cache(maxsize=8)
def _unsubscribe_path(
    script_prefix: str, urlconf: str | None, root_urlconf: str
) -> tuple[str, str]:
    """The unsubscribe path before and after its token, resolved once per
    URLconf: `reverse()` for every mail was the email worker's largest cost
    after rendering. A token (URL-safe base64, ':' and '.') is a path
    segment reverse() leaves as it is."""
    before, _token, after = reverse("outreach:unsubscribe", args=["TOKEN"]).partition("TOKEN")
    return before, after


def unsubscribe_url(*, customer_id: int, channel: str) -> str:
    token = unsubscribe_token(customer_id=customer_id, channel=channel)
    before, after = _unsubscribe_path(get_script_prefix(), get_urlconf(), settings.ROOT_URLCONF)
    return settings.SITE_URL + before + token + after


def unsubscribe_apply(*, customer: Customer, channel: str) -> None:
    """The unsubscribe link and its one-click POST: opt out once. A second
    click (or a mail client's one-click after the page's button) writes no
    second event, but anything still queued is skipped either way."""
    consent_withdraw(
        customer=customer, channel=channel, source=ConsentSource.UNSUBSCRIBE, unless_current=True
    )


def deliveries_skip_for_opt_out(*, customer_id: int, channel: str) -> int:
    """Skip queued marketing rows at once. `crm.services.consent_record`
    calls it for every opt-out, whatever its door: nothing else should. A
    row of a LINE request (a retry key on the row, or named by an open
    multicast request) may already have gone out; it is settled by
    re-sending that request as it was, so it is left alone."""
    queued = Delivery.objects.filter(
        customer_id=customer_id, channel=channel, send__purpose=Purpose.MARKETING
    )
    return queued_skip(queued, reason=SkipReason.UNSUBSCRIBED)


def deliveries_skip_for_opt_outs(*, customer_ids: list[int], channel: str) -> int:
    """`deliveries_skip_for_opt_out` for many customers at once
    (`crm.services.consents_record_bulk`)."""
    queued = Delivery.objects.filter(
        customer_id__in=customer_ids, channel=channel, send__purpose=Purpose.MARKETING
    )
    return queued_skip(queued, reason=SkipReason.UNSUBSCRIBED)


def deliveries_skip_for_erasure(*, customer_ids: list[int]) -> int:
    """Skip everything still queued to customers whose personal data is
    being erased (crm.services.privacy), marketing or not: nothing more
    goes to them. A LINE request's rows are left as in an opt-out."""
    return queued_skip(
        Delivery.objects.filter(customer_id__in=customer_ids), reason=SkipReason.GONE
    )


def queued_skip(deliveries: QuerySet[Delivery], *, reason: str) -> int:
    """Skip the queued rows of `deliveries` with `reason`, leaving alone a
    LINE request's rows (they may already have gone out)."""
    queued = deliveries.filter(status=DeliveryStatus.QUEUED, retry_key__isnull=True)
    with transaction.atomic():
        sends = Send.objects.filter(pk__in=queued.values("send_id"))
        ledger.sends_lock(sends)
        return queued.exclude(pk__any_of=ledger.multicast_open_ids(sends)).update(
            status=DeliveryStatus.SKIPPED, skip_reason=reason, updated_at=timezone.now()
        )
