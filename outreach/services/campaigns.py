"""Writes for campaigns: save, schedule, launch, pause, resume, cancel, and
the test send to staff."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.choices import Channel
from core.timeline import actor_or_none
from core.types import Actor
from crm.models import Customer
from crm.services import customer_test_recipient_set, customer_upsert
from outreach.holdout import holdout_pick
from outreach.models import (
    CAMPAIGN_EDITABLE,
    Campaign,
    CampaignEvent,
    CampaignEventKind,
    CampaignStatus,
    Delivery,
    DeliveryChannel,
    MessageTemplate,
    Purpose,
    Segment,
    Send,
    SendKind,
)
from outreach.selectors import segment_customers, test_recipients
from outreach.services.sends import (
    deliveries_snapshot,
    send_cancel,
    send_create,
    send_enqueue,
    send_pause,
    send_resume,
)

logger = logging.getLogger(__name__)


def _campaign_event(campaign: Campaign, kind: str, actor: Actor = None, **data: Any) -> None:
    CampaignEvent.objects.create(
        campaign=campaign, kind=kind, actor=actor_or_none(actor), data=data
    )


def _campaign_check(campaign: Campaign) -> None:
    errors = {}
    if campaign.channel == DeliveryChannel.DM:
        if campaign.template_id is not None:
            errors["template"] = [
                _("A postal DM campaign has no message template: the print shop prints it.")
            ]
    elif campaign.template is None:
        errors["template"] = [_("Choose the message template.")]
    elif campaign.template.channel != campaign.channel:
        errors["template"] = [_("The template is for another channel.")]
    elif campaign.template.purpose != Purpose.MARKETING:
        errors["template"] = [
            _("A campaign needs a marketing template (with an unsubscribe link).")
        ]
    if errors:
        raise ValidationError(errors)


def campaign_save(
    *,
    campaign: Campaign | None,
    name: str,
    channel: str,
    template: MessageTemplate | None,
    segment: Segment | None,
    holdout_percent: int = 0,
    attribution_days: int = 7,
    actor: Actor = None,
) -> Campaign:
    """Create a draft, or edit one that has not been launched."""
    with transaction.atomic():
        if campaign is not None and campaign.pk:
            campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
            if campaign.status not in CAMPAIGN_EDITABLE:
                raise ValidationError(_("A launched campaign cannot be edited."))
            created = False
        else:
            campaign = Campaign(created_by=actor_or_none(actor))
            created = True
        campaign.name, campaign.channel = name, channel
        campaign.template, campaign.segment = template, segment  # type: ignore[assignment]  # None is refused by full_clean below
        campaign.holdout_percent = holdout_percent
        campaign.attribution_days = attribution_days
        _campaign_check(campaign)
        campaign.full_clean()
        campaign.save()
        _campaign_event(
            campaign, CampaignEventKind.CREATED if created else CampaignEventKind.EDITED, actor
        )
    return campaign


def _not_dm(campaign: Campaign) -> None:
    """A postal DM campaign is sent by exporting its address list
    (outreach.services.dm), never by the worker."""
    if campaign.channel == DeliveryChannel.DM:
        raise ValidationError(
            _("A postal DM campaign is sent by downloading its address list for the print shop.")
        )


def campaign_schedule(*, campaign: Campaign, at: datetime, actor: Actor = None) -> Campaign:
    _not_dm(campaign)
    if at <= timezone.now():
        raise ValidationError({"scheduled_at": [_("Choose a time in the future.")]})
    _campaign_check(campaign)
    with transaction.atomic():
        updated = Campaign.objects.filter(pk=campaign.pk, status__in=CAMPAIGN_EDITABLE).update(
            status=CampaignStatus.SCHEDULED, scheduled_at=at
        )
        if not updated:
            raise ValidationError(_("Only a draft can be scheduled."))
        _campaign_event(campaign, CampaignEventKind.SCHEDULED, actor, at=at.isoformat())
    campaign.refresh_from_db()
    return campaign


def campaign_unschedule(*, campaign: Campaign, actor: Actor = None) -> Campaign:
    """Back to a draft: it will not go out at the scheduled time."""
    with transaction.atomic():
        updated = Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.SCHEDULED).update(
            status=CampaignStatus.DRAFT, scheduled_at=None
        )
        if not updated:
            raise ValidationError(_("Only a scheduled campaign can be unscheduled."))
        _campaign_event(campaign, CampaignEventKind.UNSCHEDULED, actor)
    campaign.refresh_from_db()
    return campaign


def campaign_launch(
    *, campaign: Campaign, actor: Actor = None, now: datetime | None = None
) -> Campaign:
    """Snapshot the audience into the ledger and start sending. Runs once:
    a second launch (a double click, a second worker) changes nothing."""
    now = now or timezone.now()
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update(of=("self",))
            .select_related("template", "segment")
            .get(pk=campaign.pk)
        )
        if campaign.status not in CAMPAIGN_EDITABLE:
            return campaign
        _not_dm(campaign)
        _campaign_check(campaign)
        send = send_create(
            kind=SendKind.CAMPAIGN,
            channel=campaign.channel,
            purpose=Purpose.MARKETING,
            template=campaign.template,
            actor=actor,
        )
        written, held_out = campaign_audience_snapshot(campaign, send=send, now=now)
        campaign.send = send
        campaign.status = CampaignStatus.SENDING
        campaign.launched_at = now
        campaign.save(update_fields=["send", "status", "launched_at"])
        _campaign_event(
            campaign,
            CampaignEventKind.LAUNCHED,
            actor,
            send=send.pk,
            recipients=written,
            held_out=held_out,
        )
        send_enqueue(send)
    logger.info("campaign %s launched as send %s", campaign.pk, send.pk)
    return campaign


def campaign_audience_snapshot(campaign: Campaign, *, send: Send, now: datetime) -> tuple[int, int]:
    """Write the ledger rows of the campaign's new send (its segment now,
    each row queued or skipped with the reason) and keep its holdout back:
    (rows written, held out)."""
    written = deliveries_snapshot(
        send=send,
        audience=segment_customers(campaign.segment, now=now),
        now=now,
        new_send=True,
    )
    held_out = holdout_pick(
        deliveries=Delivery.objects.filter(send=send),
        percent=campaign.holdout_percent,
        now=now,
    )
    return written, held_out


def campaigns_launch_due(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    due = Campaign.objects.filter(status=CampaignStatus.SCHEDULED, scheduled_at__lte=now)
    launched = 0
    for campaign in due.order_by("scheduled_at")[:20]:
        campaign_launch(campaign=campaign, now=now)
        launched += 1
    return launched


def _campaign_transition(
    campaign: Campaign,
    *,
    from_: set[str],
    to: str,
    send_change: Callable[..., bool],
    event: str,
    actor: Actor,
) -> Campaign:
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update(of=("self",))
            .select_related("send")
            .get(pk=campaign.pk)
        )
        if campaign.status not in from_:
            raise ValidationError(
                _("A campaign that is %(status)s cannot be changed that way.")
                % {"status": campaign.get_status_display()}
            )
        campaign.status = to
        fields = ["status"]
        if to in (CampaignStatus.CANCELLED, CampaignStatus.COMPLETED):
            campaign.completed_at = timezone.now()
            fields.append("completed_at")
        campaign.save(update_fields=fields)
        if campaign.send_id:
            send_change(send=campaign.send, actor=actor)
        _campaign_event(campaign, event, actor)
    return campaign


def campaign_pause(*, campaign: Campaign, actor: Actor = None) -> Campaign:
    return _campaign_transition(
        campaign,
        from_={CampaignStatus.SENDING},
        to=CampaignStatus.PAUSED,
        send_change=send_pause,
        event=CampaignEventKind.PAUSED,
        actor=actor,
    )


def campaign_resume(*, campaign: Campaign, actor: Actor = None) -> Campaign:
    return _campaign_transition(
        campaign,
        from_={CampaignStatus.PAUSED},
        to=CampaignStatus.SENDING,
        send_change=send_resume,
        event=CampaignEventKind.RESUMED,
        actor=actor,
    )


def campaign_cancel(*, campaign: Campaign, actor: Actor = None) -> Campaign:
    return _campaign_transition(
        campaign,
        from_={
            CampaignStatus.DRAFT,
            CampaignStatus.SCHEDULED,
            CampaignStatus.SENDING,
            CampaignStatus.PAUSED,
        },
        to=CampaignStatus.CANCELLED,
        send_change=send_cancel,
        event=CampaignEventKind.CANCELLED,
        actor=actor,
    )


def campaign_test_send(*, campaign: Campaign, customer: Customer, actor: Actor = None) -> Send:
    """Send the campaign's message, as customers will get it (legal footer,
    unsubscribe link) but marked 【テスト】 first, to one test recipient now:
    a customer marked as one (outreach.selectors.test_recipients), e.g. a
    staff member's own address. Consent and quiet hours do not apply: only
    testers get it. The ledger records it as a test (its send's kind)."""
    _not_dm(campaign)
    if not test_recipients(channel=campaign.channel).filter(pk=customer.pk).exists():
        raise ValidationError(
            _("A test goes only to a test recipient with an address on this channel.")
        )
    with transaction.atomic():
        send = send_create(
            kind=SendKind.TEST,
            channel=campaign.channel,
            purpose=Purpose.MARKETING,
            template=campaign.template,
            respect_quiet_hours=False,
            actor=actor,
        )
        deliveries_snapshot(
            send=send, audience=Customer.objects.filter(pk=customer.pk), now=timezone.now()
        )
        _campaign_event(campaign, CampaignEventKind.TEST_SENT, actor, customer=customer.pk)
        send_enqueue(send, parallel=1)
    return send


def staff_test_recipient(*, user: User) -> Customer:
    """A staff member's own email address as a test recipient: their
    customer record by that address (made if there is none), marked as a
    test recipient."""
    if not getattr(user, "email", ""):
        raise ValidationError(_("Your staff account has no email address to send a test to."))
    customer, _created = customer_upsert(
        channel=Channel.EMAIL,
        email=user.email,
        family_name=user.last_name,
        given_name=user.first_name,
        actor=user,
    )
    return customer_test_recipient_set(customer=customer, value=True, actor=user)
