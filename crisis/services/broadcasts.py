"""The emergency broadcast (緊急一斉送信) and the notice to customers whose
orders an incident holds up — both sent only through the outreach ledger.

The broadcast invites purchases elsewhere, so it is marketing in law (SPEC
rules 8 and 14): consent on the channel used, the sender block, the
unsubscribe link, no claimants, no Amazon-only buyers — the ledger skips
them with the reason per person — and quiet hours, unless a manager says
why it cannot wait. The notice tells of a delay: transactional.

Each goes out once per (incident, kind, channel): the IncidentSend row's
unique constraint, taken under a lock of the incident, makes a second click,
a double submit or a retry find the first; a manager's deliberate update is
the next round.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from core.roles import manager_required
from core.timeline import actor_or_none
from core.types import Actor
from crisis.models import (
    Incident,
    IncidentEvent,
    IncidentEventKind,
    IncidentKind,
    IncidentSend,
    IncidentSendKind,
)
from crisis.selectors.broadcasts import broadcast_audience, notice_audience
from crm.models import Customer
from outreach import services as outreach
from outreach.dispatch import quiet_hours_end
from outreach.models import MessageChannel, MessageTemplate, Purpose, SendKind
from outreach.selectors import send_progress
from outreach.templating import links_context
from tickets.reply_templates import japanese_eta

logger = logging.getLogger(__name__)


def incident_context(incident: Incident) -> dict[str, str]:
    """What templates read as `incident.*`: the same for every recipient."""
    with translation.override(settings.LANGUAGE_CODE):  # customers read the shop's language
        where = incident.get_channel_display() if incident.channel else incident.system
        return {
            "title": incident.title,
            "channel_name": str(where),
            "started_at": japanese_eta(timezone.localtime(incident.started_at)),
            "expected_recovery": japanese_eta(timezone.localtime(incident.expected_recovery_at))
            if incident.expected_recovery_at
            else "",
        }


def _manager_only(actor: Actor) -> None:
    manager_required(
        actor, _("Only a manager can send, pause or cancel an emergency broadcast or notice.")
    )


def _template_check(template: MessageTemplate, *, channel: str, purpose: str) -> None:
    if channel not in MessageChannel.values:
        raise ValidationError({"channel": [_("Choose email or LINE.")]})
    if template.channel != channel:
        raise ValidationError({"template": [_("The template is for another channel.")]})
    if template.purpose != purpose:
        if purpose == Purpose.MARKETING:
            message = _(
                "The broadcast invites customers to buy elsewhere, which is marketing in law: "
                "choose a marketing template (it carries the sender block and an unsubscribe "
                "link)."
            )
        else:
            message = _("A notice about orders needs a transactional template.")
        raise ValidationError({"template": [message]})


def _event(incident: Incident, kind: str, actor: Actor, text: str, **data: Any) -> IncidentEvent:
    return IncidentEvent.objects.create(
        incident=incident, kind=kind, actor=actor_or_none(actor), text=text, data=data
    )


def _incident_send(
    *,
    incident: Incident,
    kind: str,
    channel: str,
    template: MessageTemplate,
    purpose: str,
    audience_of: Callable[..., QuerySet[Customer]],
    actor: Actor,
    update: bool,
    after_round: int | None,
    quiet_hours_override_reason: str,
    now: datetime,
) -> IncidentSend:
    """The IncidentSend of (incident, kind, channel), made and started (with
    its event on the timeline) if there is none, or, with `update`, as the
    next round. Under a lock of the incident: a concurrent request waits and
    then finds the row this one wrote."""
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident.pk)
        earlier = IncidentSend.objects.filter(incident=incident, kind=kind, channel=channel)
        latest = earlier.order_by("-round").select_related("send").first()
        if latest is not None and not (update and after_round in (None, latest.round)):
            # A second click, a double submit, a retry — or a second
            # "send an update" for the round someone else already updated.
            return latest
        send = outreach.send_create(
            kind=SendKind.BROADCAST if kind == IncidentSendKind.BROADCAST else SendKind.NOTICE,
            channel=channel,
            purpose=purpose,
            template=template,
            content={
                "incident": incident_context(incident),
                "links": links_context(exclude=incident.channel),
            },
            respect_quiet_hours=purpose == Purpose.MARKETING and not quiet_hours_override_reason,
            actor=actor,
        )
        written = outreach.deliveries_snapshot(
            send=send, audience=audience_of(incident), now=now, new_send=True
        )
        incident_send = IncidentSend(
            incident=incident,
            kind=kind,
            channel=channel,
            round=(earlier.aggregate(last=Max("round"))["last"] or 0) + 1,
            send=send,
            quiet_hours_override_reason=quiet_hours_override_reason,
            created_by=actor_or_none(actor),
        )
        incident_send.full_clean(exclude=["send"])
        incident_send.save()
        _sent_event(incident_send, actor, now=now)
        outreach.send_enqueue(send)  # at once: no launch delay
    logger.info(
        "incident %s: %s on %s, round %s, send %s, %s rows",
        incident.pk,
        kind,
        channel,
        incident_send.round,
        send.pk,
        written,
    )
    return incident_send


def broadcast_send(
    *,
    incident: Incident,
    channel: str,
    template: MessageTemplate,
    actor: Actor,
    quiet_hours_override_reason: str = "",
    update: bool = False,
    after_round: int | None = None,
    now: datetime | None = None,
) -> IncidentSend:
    """Send the emergency broadcast of `incident` on `channel` (email or
    LINE) to the customers of its affected channel (crisis.selectors.
    broadcast_audience), as marketing: the ledger queues those who opted in
    on `channel` and skips the others with the reason.

    Once per incident and channel: if it was sent, the existing IncidentSend
    is returned and nothing is sent. `update=True` (a manager's deliberate
    update) sends the next round; `after_round`, the round the manager saw,
    keeps a double submit of an update to one new round.

    Quiet hours hold the sending until they end, unless the manager gives a
    reason (`quiet_hours_override_reason`, recorded); a reason of blanks is
    refused."""
    _manager_only(actor)
    if not incident.channel:
        raise ValidationError(
            _(
                "This incident has no affected sales channel, so there are no customers to "
                "point elsewhere. Set the channel on the incident first."
            )
        )
    if quiet_hours_override_reason and not quiet_hours_override_reason.strip():
        raise ValidationError(
            {"quiet_hours_override_reason": [_("Say why the broadcast cannot wait.")]}
        )
    reason = quiet_hours_override_reason.strip()
    _template_check(template, channel=channel, purpose=Purpose.MARKETING)
    now = now or timezone.now()
    return _incident_send(
        incident=incident,
        kind=IncidentSendKind.BROADCAST,
        channel=channel,
        template=template,
        purpose=Purpose.MARKETING,
        audience_of=broadcast_audience,
        actor=actor,
        update=update,
        after_round=after_round,
        quiet_hours_override_reason=reason,
        now=now,
    )


def incident_notice_send(
    *,
    incident: Incident,
    channel: str,
    template: MessageTemplate,
    actor: Actor,
    now: datetime | None = None,
) -> IncidentSend:
    """Tell the customers whose open orders the incident holds up (crisis.
    selectors.notice_orders), with the recovery estimate (`incident.
    expected_recovery`), by a transactional message on `channel`. Once per
    incident and channel: a second call returns the first."""
    _manager_only(actor)
    if incident.kind == IncidentKind.DATA_BREACH:
        raise ValidationError(
            _(
                "A personal-data breach is told to the people concerned with its own wording "
                "and legal review, not through this notice."
            )
        )
    if incident.kind != IncidentKind.CARRIER_DELAY and not incident.channel:
        raise ValidationError(
            _("Set the incident's affected sales channel first: its open orders are told.")
        )
    _template_check(template, channel=channel, purpose=Purpose.TRANSACTIONAL)
    now = now or timezone.now()
    return _incident_send(
        incident=incident,
        kind=IncidentSendKind.NOTICE,
        channel=channel,
        template=template,
        purpose=Purpose.TRANSACTIONAL,
        audience_of=notice_audience,
        actor=actor,
        update=False,
        after_round=None,
        quiet_hours_override_reason="",
        now=now,
    )


def _sent_event(incident_send: IncidentSend, actor: Actor, *, now: datetime) -> IncidentEvent:
    progress = send_progress(incident_send.send)
    queued = progress.pending
    skipped = progress.by_status.get("skipped", 0)
    kind_label = incident_send.get_kind_display()
    data: dict[str, Any] = {
        "send": incident_send.send_id,
        "channel": incident_send.channel,
        "round": incident_send.round,
        "queued": queued,
        "skipped": skipped,
    }
    text = _("%(kind)s by %(channel)s: %(queued)s to send, %(skipped)s not sent.") % {
        "kind": kind_label,
        "channel": incident_send.get_channel_display(),
        "queued": f"{queued:,}",
        "skipped": f"{skipped:,}",
    }
    if incident_send.round > 1:
        text += " " + _("Update no. %(round)s.") % {"round": incident_send.round - 1}
    if incident_send.quiet_hours_override_reason:
        data["quiet_hours_override_reason"] = incident_send.quiet_hours_override_reason
        text += " " + _("Sent during quiet hours because: %(reason)s") % {
            "reason": incident_send.quiet_hours_override_reason
        }
    elif incident_send.send.respect_quiet_hours and quiet_hours_end(now) is not None:
        text += " " + _("It is quiet hours: sending starts when they end.")
    kind = (
        IncidentEventKind.BROADCAST
        if incident_send.kind == IncidentSendKind.BROADCAST
        else IncidentEventKind.NOTICE
    )
    return _event(incident_send.incident, kind, actor, text, **data)


# --- Pause, resume, cancel ----------------------------------------------------------------


def _change(
    incident_send: IncidentSend,
    *,
    actor: Actor,
    change: Callable[..., bool],
    refused: str,
    done: str,
) -> IncidentSend:
    _manager_only(actor)
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident_send.incident_id)
        if not change(send=incident_send.send, actor=actor):
            raise ValidationError(refused)
        kind = (
            IncidentEventKind.BROADCAST
            if incident_send.kind == IncidentSendKind.BROADCAST
            else IncidentEventKind.NOTICE
        )
        text = done % {
            "kind": incident_send.get_kind_display(),
            "channel": incident_send.get_channel_display(),
        }
        _event(incident, kind, actor, text, send=incident_send.send_id, action=change.__name__)
    incident_send.send.refresh_from_db(fields=["status"])
    return incident_send


def broadcast_pause(*, incident_send: IncidentSend, actor: Actor) -> IncidentSend:
    """Stop sending (a broadcast or a notice); messages a worker already
    holds still go out."""
    return _change(
        incident_send,
        actor=actor,
        change=outreach.send_pause,
        refused=_("Only a send in progress can be paused."),
        done=_("%(kind)s by %(channel)s paused."),
    )


def broadcast_resume(*, incident_send: IncidentSend, actor: Actor) -> IncidentSend:
    return _change(
        incident_send,
        actor=actor,
        change=outreach.send_resume,
        refused=_("Only a paused send can be resumed."),
        done=_("%(kind)s by %(channel)s resumed."),
    )


def broadcast_cancel(*, incident_send: IncidentSend, actor: Actor) -> IncidentSend:
    """Cancel: what is not sent yet does not go out (see outreach.services.
    send_settle_cancelled). It cannot be undone."""
    return _change(
        incident_send,
        actor=actor,
        change=outreach.send_cancel,
        refused=_("This send has already finished."),
        done=_("%(kind)s by %(channel)s cancelled."),
    )
