"""Who an incident's broadcast and notice go to, and what it has sent.

The audiences are sets of customers, not who may receive: the ledger
(outreach.services.deliveries_snapshot) writes a row for each of them,
queued or skipped with the reason (no consent, unsubscribed, claimant,
Amazon only, merged, no address), so the incident page can say why
someone was not told.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from crisis.models import Incident, IncidentKind, IncidentSend
from crm.models import UNSHIPPED_ORDER_STATUSES, ChannelIdentity, Customer, Order, OrderStatus
from outreach.templating import links_context
from tickets.reply_templates import japanese_eta

# A notice goes to the customers whose orders are held up: not yet shipped
# when the shop's or a mall's system fails, shipped but not delivered when
# the carrier is late.
NOTICE_ORDER_STATUSES: dict[str, tuple[str, ...]] = {
    IncidentKind.CARRIER_DELAY: (OrderStatus.SHIPPED,),
    IncidentKind.SYSTEM_FAILURE: UNSHIPPED_ORDER_STATUSES,
    IncidentKind.MALL_OUTAGE: UNSHIPPED_ORDER_STATUSES,
    IncidentKind.OWN_SITE_OUTAGE: UNSHIPPED_ORDER_STATUSES,
}


def broadcast_audience(incident: Incident) -> QuerySet[Customer]:
    """The customers of the incident's channel: those known there (an
    identity: a mall member, a masked Amazon address, a LINE friend) or who
    ordered there. Both, because each misses people: an order imported from
    a mall's CSV may come without a member id, and a member who never
    bought still counts as that mall's customer. Each customer once: their
    ids as one UNION, read by the identity and order indexes led by the
    channel and joined to the customers by primary key."""
    known = ChannelIdentity.objects.filter(channel=incident.channel).values("customer_id")
    ordered = Order.objects.filter(channel=incident.channel).values("customer_id")
    return Customer.objects.filter(pk__in=known.union(ordered))


def notice_orders(incident: Incident) -> QuerySet[Order]:
    """The open orders the incident holds up (see NOTICE_ORDER_STATUSES), on
    its channel when it has one (a carrier delay may concern every channel)."""
    orders = Order.objects.filter(status__in=NOTICE_ORDER_STATUSES.get(incident.kind, ()))
    if incident.channel:
        orders = orders.filter(channel=incident.channel)
    return orders


def notice_audience(incident: Incident) -> QuerySet[Customer]:
    """The customers with an order the incident holds up, each once."""
    return Customer.objects.filter(pk__in=notice_orders(incident).values("customer_id"))


def incident_sends(incident: Incident) -> QuerySet[IncidentSend]:
    """What the incident has sent, oldest first, with its send and sender."""
    return (
        IncidentSend.objects.filter(incident=incident)
        .select_related("send", "send__template", "created_by")
        .order_by("created_at", "id")
    )


# --- The announcement for channels we do not post to (X, Instagram) ----------------------

# X counts most CJK characters twice (a post may weigh 280: 140 full-width
# characters) and every link as 23, whatever its length.
X_MAX_WEIGHT = 280
X_LINK_WEIGHT = 23
_X_LIGHT = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))
_LINK = re.compile(r"https?://\S+")


def x_weight(text: str) -> int:
    """A post's length as X counts it (twitter-text's weighted length)."""
    weight = 0
    for part_index, part in enumerate(_LINK.split(text)):
        if part_index:
            weight += X_LINK_WEIGHT
        weight += sum(
            1 if any(low <= ord(char) <= high for low, high in _X_LIGHT) else 2 for char in part
        )
    return weight


@dataclass(frozen=True)
class Announcement:
    network: str  # "x", "instagram"
    label: str
    text: str
    weight: int | None = None  # X: its weighted length


def incident_announcements(incident: Incident) -> list[Announcement]:
    """The text of the announcement, ready to copy, for X (at most 140
    full-width characters: the links to the other channels are dropped from
    the last until it fits) and Instagram (every link; they are not
    clickable in a caption, so the profile link is named too)."""
    with translation.override(settings.LANGUAGE_CODE):  # customers read the shop's language
        links = links_context(exclude=incident.channel)["others"]
        if incident.expected_recovery_at:
            recovery = _("Expected recovery: %(eta)s.") % {
                "eta": japanese_eta(timezone.localtime(incident.expected_recovery_at))
            }
        else:
            recovery = _("We will tell you when recovery is expected.")
        head = _("[%(shop)s] %(what)s: we apologise for the inconvenience.") % {
            "shop": settings.SHOP_NAME,
            "what": incident.title,
        }
        meanwhile = _("Meanwhile, please use:")
        x_text = ""
        for count in range(len(links), -1, -1):
            lines = [f"{link['name']} {link['url']}" for link in links[:count]]
            x_text = "\n".join([f"{head}{recovery}", *([meanwhile, *lines] if lines else [])])
            if x_weight(x_text) <= X_MAX_WEIGHT:
                break
        else:
            x_text = _x_truncate(x_text)
        instagram = "\n".join(
            [
                head,
                recovery,
                "",
                meanwhile,
                *(f"▶ {link['name']}\n{link['url']}" for link in links),
                "",
                _("(The links are also in our profile.)"),
            ]
        )
        return [
            Announcement("x", str(_("X (Twitter)")), x_text, x_weight(x_text)),
            Announcement("instagram", str(_("Instagram")), instagram),
        ]


def _x_truncate(text: str) -> str:
    while x_weight(text + "…") > X_MAX_WEIGHT:
        text = text[:-1]
    return text + "…"
