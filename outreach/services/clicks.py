"""Tracked links: the signed redirect address of each of a template's own
links in one delivery, and what a click on it records.

The token names the delivery and the link's index among the template's
own links (outreach.templating.template_links), never the address: the
target is read from the send's stored template, so a forged or altered
token cannot send anyone elsewhere (no open redirect)."""

from __future__ import annotations

import functools
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.core import signing
from django.db.models import F
from django.db.models.functions import Coalesce
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone
from django.utils.text import slugify

from outreach.models import Delivery, Send
from outreach.templating import template_links


def click_token(*, delivery_id: int, index: int) -> str:
    return signing.dumps([delivery_id, index], salt=settings.CLICK_SALT)


def click_token_read(token: str) -> tuple[int, int]:
    """(delivery id, link index) of a tracked link; raises
    signing.BadSignature for a token we did not sign."""
    data = signing.loads(token, salt=settings.CLICK_SALT)
    if (
        not isinstance(data, list)
        or len(data) != 2
        or not all(isinstance(value, int) and value >= 0 for value in data)
    ):
        raise signing.BadSignature("malformed click token")
    return data[0], data[1]


@functools.lru_cache(maxsize=8)
def _click_path(script_prefix: str, urlconf: str | None, root_urlconf: str) -> tuple[str, str]:
    """The redirect's path before and after its token, resolved once per
    URLconf (as the unsubscribe link's)."""
    before, _token, after = reverse("outreach:click", args=["TOKEN"]).partition("TOKEN")
    return before, after


def click_url(*, delivery_id: int, index: int) -> str:
    before, after = _click_path(get_script_prefix(), get_urlconf(), settings.ROOT_URLCONF)
    return settings.SITE_URL + before + click_token(delivery_id=delivery_id, index=index) + after


def utm_campaign(send: Send) -> str:
    """The campaign's name in analytics: its id and, if its name has
    latin letters, their slug ("12-summer-sale"); other sends by kind."""
    campaign = getattr(send, "campaign", None) if send.kind == "campaign" else None
    if campaign is None:
        return f"{send.kind}-{send.pk}"
    slug = slugify(campaign.name)
    return f"{campaign.pk}-{slug}" if slug else str(campaign.pk)


def link_with_utm(link: str, *, send: Send) -> str:
    """`link` with utm_source, utm_medium (the channel) and utm_campaign
    added; a parameter the template's link already sets is kept."""
    parts = urlsplit(link)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {name for name, _value in query}
    utm = {
        "utm_source": "madoguchi",
        "utm_medium": send.channel,
        "utm_campaign": utm_campaign(send),
    }
    query += [(name, value) for name, value in utm.items() if name not in present]
    return urlunsplit(parts._replace(query=urlencode(query)))


def click_record(*, delivery_id: int, index: int) -> str | None:
    """Record a click on link `index` of a delivery (the first click's time
    and the count, one UPDATE) and return where it goes: the template's
    link, with UTM parameters. None if there is no such delivery or link
    (nothing is recorded)."""
    delivery = (
        Delivery.objects.select_related("send", "send__campaign")
        .only(
            "pk",
            "send__kind",
            "send__channel",
            "send__content",
            "send__campaign__id",
            "send__campaign__name",
        )
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None:
        return None
    send = delivery.send
    links = template_links((send.content or {}).get("template"))
    if index >= len(links):
        return None
    now = timezone.now()
    Delivery.objects.filter(pk=delivery_id).update(
        click_count=F("click_count") + 1, first_clicked_at=Coalesce(F("first_clicked_at"), now)
    )
    return link_with_utm(links[index], send=send)
