"""Inquiries built through the services."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime

from crm import services as crm
from tests.crm import factories as crm_factories
from tickets.models import Inquiry
from tickets.services import InboundMessage, inquiry_create

MESSAGE_FIELDS = {field.name for field in fields(InboundMessage)}


def inquiry(
    *,
    channel: str = "email",
    subject: str = "注文した商品が届きません",
    body: str = "11月20日に注文した商品がまだ届いていません。",
    received_at: datetime | None = None,
    customer=None,
    **kwargs,
) -> Inquiry:
    if customer is None:
        customer = crm_factories.customer(channel="own_site")
        if channel == "line":
            crm.customer_upsert(
                channel="line", external_id=f"U{customer.pk:032x}", email=customer.email
            )
    # the message's other fields (message_id, attachments...) by name too
    message = {name: kwargs.pop(name) for name in MESSAGE_FIELDS if name in kwargs}
    return inquiry_create(
        customer=customer,
        channel=channel,
        message=InboundMessage(subject=subject, body_text=body, received_at=received_at, **message),
        **kwargs,
    )
