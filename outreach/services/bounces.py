"""Bounce and complaint reports applied to the ledger's addresses: which
delivery a report is about, and what it does to the address
(crm.services.bounce_record)."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from crm.models import BounceKind, MailBounce
from crm.normalize import email_normalize
from crm.services import bounce_record
from outreach.channels.email import bounce_address_delivery, message_id_delivery
from outreach.models import Delivery, MessageChannel
from tickets.mailparse.reports import COMPLAINT, HARD, MailReport

_KINDS = {HARD: BounceKind.HARD, COMPLAINT: BounceKind.COMPLAINT}


def report_delivery(report: MailReport) -> Delivery | None:
    """The email delivery a report is about: named by our bounce address
    (VERP) or the returned message's Message-ID (both keyed, so they cannot
    be forged), else by its X-Madoguchi-Delivery header when that
    delivery's address is one the report says failed."""
    for address in report.envelope_addresses:
        if (found := _delivery(bounce_address_delivery(address))) is not None:
            return found
    for message_id in report.original_message_ids:
        if (found := _delivery(message_id_delivery(message_id))) is not None:
            return found
    failed = {email_normalize(r.address) for r in report.recipients}
    for value in report.original_delivery_ids:
        found = _delivery(int(value) if value.isdigit() else None)
        if found is not None and _delivery_address(found) in failed:
            return found
    return None


def _delivery(delivery_id: int | None) -> Delivery | None:
    if delivery_id is None:
        return None
    return (
        Delivery.objects.filter(pk=delivery_id, channel=MessageChannel.EMAIL)
        .select_related("customer")
        .first()
    )


def _delivery_address(delivery: Delivery) -> str:
    """Where the delivery went: its address snapshot, else its customer's."""
    return email_normalize(delivery.address or delivery.customer.email)


def mail_report_apply(*, report: MailReport, received_at: datetime) -> list[MailBounce]:
    """Record what a bounce or complaint report says about each address in
    it. A report that names one of our deliveries is about the address that
    delivery went to (a forwarder may have reported another)."""
    delivery = report_delivery(report)
    recipients = list(report.recipients)
    if delivery is not None and _delivery_address(delivery) and len(recipients) == 1:
        [only] = recipients
        recipients = [dataclasses.replace(only, address=_delivery_address(delivery))]
    return [
        bounce_record(
            address=recipient.address,
            kind=_KINDS.get(recipient.kind, BounceKind.SOFT),
            status=recipient.status,
            diagnostic=recipient.diagnostic,
            delivery_id=delivery.pk if delivery is not None else None,
            received_at=received_at,
        )
        for recipient in recipients
        if email_normalize(recipient.address)
    ]
