"""The store site's contact form: the web's counterpart of `mail_ingest`
(tickets/services/inbound.py). The customer is found or made from what
they typed, the inquiry opened and acknowledged."""

from __future__ import annotations

from collections.abc import Iterable

from core.choices import Channel
from crm.services import customer_upsert
from tickets.models import Category, Inquiry
from tickets.services.intake import InboundMessage, inquiry_create
from tickets.services.replies import inquiry_auto_acknowledge


def _name_split(name: str) -> tuple[str, str]:
    """ "山田 太郎" → ("山田", "太郎"): family name first, split at the first
    space (full-width ones too)."""
    parts = name.replace("\u3000", " ").split(None, 1)
    return (parts[0] if parts else "", parts[1] if len(parts) > 1 else "")


def inquiry_submit(
    *,
    channel: str,
    name: str,
    email: str,
    text: str,
    name_kana: str = "",
    phone: str = "",
    external_id: str = "",
    order_number: str = "",
    category: Category | None = None,
    subject: str = "",
    order_channels: Iterable[str] | None = None,
) -> Inquiry:
    """A contact-form inquiry on `channel`. The customer is the store
    site's member `external_id` when they were logged in, else whoever has
    the email address; `order_number` links one of their orders (on
    `order_channels`, those the form's API key may see). Without a subject,
    the text's first line (60 characters) is one."""
    family, given = _name_split(name)
    family_kana, given_kana = _name_split(name_kana)
    customer, _created = customer_upsert(
        channel=channel if external_id else Channel.EMAIL,
        external_id=external_id,
        email=email,
        phone=phone,
        family_name=family,
        given_name=given,
        family_name_kana=family_kana,
        given_name_kana=given_kana,
    )
    inquiry = inquiry_create(
        customer=customer,
        channel=channel,
        message=InboundMessage(
            subject=subject or text.strip().splitlines()[0][:60], body_text=text
        ),
        order_number=order_number,
        order_channels=order_channels,
        category=category,
    )
    inquiry_auto_acknowledge(inquiry=inquiry)
    return inquiry
