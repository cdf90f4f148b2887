"""Postal DM (郵送DM): a campaign on the DM channel is sent by exporting its
address list for the print shop. The export is the send: there is no
worker step. The first export snapshots the segment into the ledger (the
same INSERT … SELECT and eligibility rule as any campaign: consent on the
`dm` channel, claimants, Amazon-only buyers, suppressed addresses, no or
partial address, each skipped with its reason), keeps the holdout back,
and records every other recipient sent with the label as exported. Every
later export reads those rows: nobody is added twice, and the file is the
same."""

from __future__ import annotations

import logging
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, OuterRef, Subquery, Value
from django.db.models.functions import Concat, Replace
from django.utils import timezone
from django.utils.translation import gettext as _

from core.types import Actor
from crm.models import Customer
from outreach.models import (
    CAMPAIGN_EDITABLE,
    Campaign,
    CampaignEventKind,
    CampaignStatus,
    Delivery,
    DeliveryChannel,
    DeliveryStatus,
    Purpose,
    SendKind,
    SendStatus,
)
from outreach.services.campaigns import (
    _campaign_check,
    _campaign_event,
    campaign_audience_snapshot,
)
from outreach.services.sends import send_create

logger = logging.getLogger(__name__)

# The label's parts in Delivery.address, one per line (outreach.dm reads it).
LABEL_SEPARATOR = "\n"


def _one_line(field: str) -> Replace:
    return Replace(Replace(F(field), Value("\r"), Value(" ")), Value("\n"), Value(" "))


def dm_label_expression() -> Concat:
    """A customer's DM label as one string, as an SQL expression: postal
    code, prefecture and address, family name, given name (one per line)."""
    return Concat(
        _one_line("postal_code"),
        Value(LABEL_SEPARATOR),
        _one_line("prefecture"),
        _one_line("address"),
        Value(LABEL_SEPARATOR),
        _one_line("family_name"),
        Value(LABEL_SEPARATOR),
        _one_line("given_name"),
    )


def campaign_dm_export(
    *, campaign: Campaign, actor: Actor = None, now: datetime | None = None
) -> tuple[Campaign, int]:
    """Record a postal DM campaign sent, once: returns the campaign and how
    many recipients this call recorded (0 after the first export, whose
    list every later export gives again)."""
    now = now or timezone.now()
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.channel != DeliveryChannel.DM:
            raise ValidationError(_("Only a postal DM campaign has an address list."))
        if campaign.status == CampaignStatus.COMPLETED and campaign.send_id:
            return campaign, 0
        if campaign.status not in CAMPAIGN_EDITABLE:
            raise ValidationError(
                _("A campaign that is %(status)s has no address list.")
                % {"status": campaign.get_status_display()}
            )
        _campaign_check(campaign)
        send = send_create(
            kind=SendKind.CAMPAIGN,
            channel=DeliveryChannel.DM,
            purpose=Purpose.MARKETING,
            content={"dm": campaign.name},
            respect_quiet_hours=False,
            actor=actor,
        )
        written, held_out = campaign_audience_snapshot(campaign, send=send, now=now)
        rows = Delivery.objects.filter(send=send)
        label = Customer.objects.filter(pk=OuterRef("customer_id")).values(
            label=dm_label_expression()
        )[:1]
        sent = rows.filter(status=DeliveryStatus.QUEUED).update(
            status=DeliveryStatus.SENT,
            attempts=1,
            sent_at=now,
            address=Subquery(label),
            updated_at=now,
        )
        send.status, send.completed_at = SendStatus.COMPLETED, now
        send.save(update_fields=["status", "completed_at"])
        campaign.send = send
        campaign.status = CampaignStatus.COMPLETED
        campaign.launched_at = campaign.completed_at = now
        campaign.save(update_fields=["send", "status", "launched_at", "completed_at"])
        _campaign_event(
            campaign,
            CampaignEventKind.LAUNCHED,
            actor,
            send=send.pk,
            recipients=written,
            held_out=held_out,
        )
        _campaign_event(campaign, CampaignEventKind.COMPLETED, actor, sent=sent)
    logger.info("DM campaign %s exported as send %s: %s sent", campaign.pk, send.pk, sent)
    return campaign, sent
