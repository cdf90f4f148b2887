"""The address list of a postal DM send: its recipients as exported."""

from __future__ import annotations

from django.db.models import QuerySet

from outreach.models import Delivery, DeliveryStatus, Send


def dm_labels(*, send: Send) -> QuerySet[Delivery]:
    """The rows recorded sent, each with its label as exported (`address`),
    by postal code (the order a print shop sorts mail in), one query."""
    return (
        Delivery.objects.filter(send=send, status=DeliveryStatus.SENT)
        .order_by("address", "id")
        .only("id", "customer_id", "address")
    )
