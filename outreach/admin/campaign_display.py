"""What the campaign page shows besides its fields: local times, the audience estimate before
launch, the longest LINE rendering in words, and a launched campaign's progress.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext

from crm.models import Customer
from outreach import services
from outreach.admin.deliveries import progress_data
from outreach.dispatch import quiet_hours_end
from outreach.line_texts import LongestRendering, line_longest_rendering
from outreach.models import (
    Campaign,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    Purpose,
    Send,
    SendKind,
)
from outreach.selectors import (
    eligibility_reason,
    segment_customers,
    send_progress,
)
from outreach.templating import LINE_MAX_TEXT_UTF16


def local_time(moment) -> str:
    return date_format(timezone.localtime(moment), "DATETIME_FORMAT")


def audience_estimate(campaign: Campaign) -> dict[str, int]:
    """The segment's size now and how many of it could receive the campaign
    (consent, claimant, Amazon-only, address), in one query. The ledger
    snapshot at launch decides; this is what the marketer sees before."""
    return marketing_audience(campaign).aggregate(
        total=Count("pk"), reachable=Count("pk", filter=Q(skip=""))
    )


def marketing_audience(campaign: Campaign):
    """The campaign segment's customers now, each with `skip`: why a
    marketing message could not reach them on the campaign's channel ("" if
    it could)."""
    reason = eligibility_reason(channel=campaign.channel, purpose=Purpose.MARKETING)
    return segment_customers(campaign.segment).annotate(skip=reason)


def line_longest_before_launch(campaign: Campaign) -> LongestRendering | None:
    """The longest text a LINE draft renders to for the customers it could
    reach now (see outreach.line_texts)."""
    if campaign.template is None:
        return None
    send = Send(
        kind=SendKind.CAMPAIGN,
        channel=campaign.channel,
        purpose=Purpose.MARKETING,
        content={"template": services.template_snapshot(campaign.template)},
    )
    audience = marketing_audience(campaign).filter(skip="")
    return line_longest_rendering(send=send, audience=audience)


def line_longest_launched(send: Send) -> LongestRendering | None:
    """The longest text a launched LINE send renders to for its queued rows."""
    queued = Delivery.objects.filter(send=send, status=DeliveryStatus.QUEUED)
    audience = Customer.objects.filter(pk__in=queued.values("customer_id"))
    return line_longest_rendering(send=send, audience=audience)


def longest_text(longest: LongestRendering) -> str:
    """The longest rendering, in words for the marketer."""
    text = gettext(
        "The longest message once personalised is message %(n)d for %(customer)s: "
        "%(length)s of %(max)s characters (UTF-16)."
    ) % {
        "n": longest.message,
        "customer": longest.customer,
        "length": f"{longest.length:,}",
        "max": f"{LINE_MAX_TEXT_UTF16:,}",
    }
    if longest.too_long:
        text += " " + gettext(
            "LINE refuses it: recipients whose message is too long are not sent it. "
            "Shorten the template."
        )
    return text


def campaign_progress_data(campaign: Campaign) -> dict[str, Any]:
    """A launched campaign's progress (progress_data), saying when it waits
    for the quiet hours to end."""
    assert campaign.send is not None  # launched: it has its send
    quiet_until = None
    if campaign.status == CampaignStatus.SENDING and campaign.send.respect_quiet_hours:
        quiet_until = quiet_hours_end(timezone.now())
    return progress_data(
        send_progress(campaign.send),
        status=campaign.status,
        status_label=campaign.get_status_display(),
        quiet_until=quiet_until,
    )
