"""Who an incident's broadcast and notice go to, and what it has sent.

The audiences are sets of customers, not who may receive: the ledger
(outreach.services.deliveries_snapshot) writes a row for each of them,
queued or skipped with the reason (no consent, unsubscribed, claimant,
Amazon only, merged, no address), so the incident page can say why
someone was not told.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from crisis.models import Incident, IncidentKind, IncidentSend
from crm.models import ChannelIdentity, Customer, Order, OrderStatus

# A notice goes to the customers whose orders are held up: not yet shipped
# when the shop's or a mall's system fails, shipped but not delivered when
# the carrier is late.
NOTICE_ORDER_STATUSES = {
    IncidentKind.CARRIER_DELAY: (OrderStatus.SHIPPED,),
    IncidentKind.SYSTEM_FAILURE: (OrderStatus.PENDING, OrderStatus.PAID),
    IncidentKind.MALL_OUTAGE: (OrderStatus.PENDING, OrderStatus.PAID),
    IncidentKind.OWN_SITE_OUTAGE: (OrderStatus.PENDING, OrderStatus.PAID),
}


def broadcast_audience(incident: Incident) -> QuerySet[Customer]:
    """The customers of the incident's channel: those known there (an
    identity: a mall member, a masked Amazon address, a LINE friend) or who
    ordered there. Both, because each misses people: an order imported from
    a mall's CSV may come without a member id, and a member who never
    bought still counts as that mall's customer. Each customer once (two
    IN subqueries, run once each as hashed subplans; the identity and order
    tables have an index led by the channel)."""
    known = ChannelIdentity.objects.filter(channel=incident.channel).values("customer_id")
    ordered = Order.objects.filter(channel=incident.channel).values("customer_id")
    return Customer.objects.filter(Q(pk__in=known) | Q(pk__in=ordered))


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
