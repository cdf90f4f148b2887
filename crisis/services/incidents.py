"""Incidents: opening one (its playbook becomes its checklist), the
timeline of what is known, recovery and closing (root cause and
countermeasure), and linking inquiries to it.

Who may do what: a manager opens, edits, recovers and closes an incident
and changes its expected recovery (it goes on every agent's banner and
into replies to customers); every staff member with the incident in view
adds what they learn to the timeline and links inquiries to it (the agents
are the ones who see them come in). Every change writes an IncidentEvent.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.choices import Channel
from core.roles import manager_required
from core.timeline import actor_or_none
from core.types import Actor
from crisis.models import (
    Incident,
    IncidentEvent,
    IncidentEventKind,
    IncidentInquiry,
    IncidentKind,
    IncidentStatus,
)
from crisis.services.playbooks import checklist_copy
from tickets.models import Inquiry, InquiryEvent, InquiryEventKind

# The channels a mall outage can be on.
MALLS = (Channel.RAKUTEN, Channel.AMAZON, Channel.YAHOO)


def _event(
    incident: Incident, kind: str, actor: Actor, text: str = "", **data: Any
) -> IncidentEvent:
    return IncidentEvent.objects.create(
        incident=incident, kind=kind, actor=actor_or_none(actor), text=text, data=data
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _incident_check(incident: Incident) -> None:
    errors: dict[str, list[str]] = {}
    if incident.kind == IncidentKind.MALL_OUTAGE and incident.channel not in MALLS:
        errors["channel"] = [_("Choose the mall that is down.")]
    if incident.kind != IncidentKind.MALL_OUTAGE and not (incident.channel or incident.system):
        errors["system"] = [_("Say which channel, system or carrier is affected.")]
    if incident.expected_recovery_at and incident.expected_recovery_at < incident.started_at:
        errors["expected_recovery_at"] = [_("The expected recovery is before the start.")]
    if errors:
        raise ValidationError(errors)


def incident_open(
    *,
    kind: str,
    title: str,
    channel: str = "",
    system: str = "",
    started_at: datetime,
    expected_recovery_at: datetime | None = None,
    is_malicious: bool = False,
    actor: User,
) -> Incident:
    """Open an incident (managers): its kind's playbook is copied into its
    checklist, each step due its target after `started_at` (the malicious
    target for a malicious breach), and the timeline starts with OPENED.
    An own-site outage is on the own site unless said otherwise."""
    manager_required(actor)
    if kind == IncidentKind.OWN_SITE_OUTAGE and not channel:
        channel = Channel.OWN_SITE
    incident = Incident(
        kind=kind,
        title=title.strip(),
        channel=channel,
        system=system.strip(),
        started_at=started_at,
        expected_recovery_at=expected_recovery_at,
        is_malicious=is_malicious and kind == IncidentKind.DATA_BREACH,
        opened_by=actor,
    )
    incident.full_clean()
    _incident_check(incident)
    with transaction.atomic():
        incident.save()
        steps = checklist_copy(incident=incident)
        _event(
            incident,
            IncidentEventKind.OPENED,
            actor,
            expected_recovery_at=_iso(expected_recovery_at),
            steps=len(steps),
        )
    return incident


def _locked(incident: Incident) -> Incident:
    return Incident.objects.select_for_update().get(pk=incident.pk)


def incident_update(
    *, incident: Incident, text: str, expected_recovery_at: datetime | None = None, actor: Actor
) -> IncidentEvent:
    """Add what is known now to the timeline (anyone on the incident); a new
    expected recovery with it is a manager's call."""
    text = (text or "").strip()
    if not text:
        raise ValidationError({"text": [_("Write what is known now.")]})
    if expected_recovery_at is not None:
        manager_required(actor)
    with transaction.atomic():
        incident = _locked(incident)
        if incident.status == IncidentStatus.CLOSED:
            raise ValidationError(_("The incident is closed."))
        data = {}
        if (
            expected_recovery_at is not None
            and expected_recovery_at != incident.expected_recovery_at
        ):
            if expected_recovery_at < incident.started_at:
                raise ValidationError(
                    {"expected_recovery_at": [_("The expected recovery is before the start.")]}
                )
            data = {
                "expected_recovery_at": [
                    _iso(incident.expected_recovery_at),
                    _iso(expected_recovery_at),
                ]
            }
            incident.expected_recovery_at = expected_recovery_at
            incident.save(update_fields=["expected_recovery_at", "updated_at"])
        return _event(incident, IncidentEventKind.UPDATE, actor, text, **data)


EDITABLE = ("title", "channel", "system", "expected_recovery_at")


def incident_edit(*, incident: Incident, actor: Actor, **changes: Any) -> Incident:
    """Correct an incident's title, channel, system or expected recovery
    (managers); the EDITED event keeps each old and new value."""
    manager_required(actor)
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise TypeError(f"incident_edit cannot change {sorted(unknown)}")
    with transaction.atomic():
        incident = _locked(incident)
        if incident.status == IncidentStatus.CLOSED:
            raise ValidationError(_("The incident is closed."))
        changed: dict[str, Any] = {}
        for name, value in changes.items():
            old = getattr(incident, name)
            if old != value:
                setattr(incident, name, value)
                changed[name] = [
                    _iso(old) if isinstance(old, datetime) else old,
                    _iso(value) if isinstance(value, datetime) else value,
                ]
        if not changed:
            return incident
        incident.full_clean()
        _incident_check(incident)
        incident.save(update_fields=[*changed, "updated_at"])
        _event(incident, IncidentEventKind.EDITED, actor, **changed)
    return incident


def incident_recover(
    *, incident: Incident, recovered_at: datetime | None = None, text: str = "", actor: Actor
) -> Incident:
    """The trouble is over (managers): the banner goes away."""
    manager_required(actor)
    recovered_at = recovered_at or timezone.now()
    with transaction.atomic():
        incident = _locked(incident)
        if incident.status != IncidentStatus.OPEN:
            raise ValidationError(_("The incident is not ongoing."))
        if recovered_at < incident.started_at:
            raise ValidationError({"recovered_at": [_("The recovery is before the start.")]})
        incident.status = IncidentStatus.RECOVERED
        incident.recovered_at = recovered_at
        incident.save(update_fields=["status", "recovered_at", "updated_at"])
        _event(incident, IncidentEventKind.RECOVERED, actor, text.strip(), at=_iso(recovered_at))
    return incident


def incident_close(
    *, incident: Incident, root_cause: str, countermeasure: str, actor: Actor
) -> Incident:
    """Close an incident (managers) with what caused it and what the shop
    does so that it does not happen again. An ongoing one is recovered now."""
    manager_required(actor)
    root_cause, countermeasure = root_cause.strip(), countermeasure.strip()
    errors = {}
    if not root_cause:
        errors["root_cause"] = [_("Write the root cause before closing.")]
    if not countermeasure:
        errors["countermeasure"] = [_("Write the countermeasure before closing.")]
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    with transaction.atomic():
        incident = _locked(incident)
        if incident.status == IncidentStatus.CLOSED:
            raise ValidationError(_("The incident is already closed."))
        if incident.recovered_at is None:
            incident.recovered_at = now
        incident.status = IncidentStatus.CLOSED
        incident.closed_at = now
        incident.root_cause = root_cause
        incident.countermeasure = countermeasure
        incident.save(
            update_fields=[
                "status",
                "recovered_at",
                "closed_at",
                "root_cause",
                "countermeasure",
                "updated_at",
            ]
        )
        _event(incident, IncidentEventKind.CLOSED, actor, root_cause, countermeasure=countermeasure)
    return incident


def incident_inquiries_link(
    *, incident: Incident, inquiries: Iterable[Inquiry], actor: Actor
) -> int:
    """Link many inquiries to an incident in one action: the links, one
    INQUIRIES_LINKED event on the incident, and a LINKED event on each
    newly linked inquiry's timeline (naming the incident). Inquiries
    already linked are left as they are. Returns how many were linked.
    A fixed number of queries whatever the number of inquiries."""
    ids = sorted({inquiry.pk for inquiry in inquiries})
    if not ids:
        return 0
    with transaction.atomic():
        incident = _locked(incident)  # two link actions at once: one after the other
        if incident.status == IncidentStatus.CLOSED:
            raise ValidationError(_("The incident is closed."))
        already = set(
            IncidentInquiry.objects.filter(incident=incident, inquiry_id__in=ids).values_list(
                "inquiry_id", flat=True
            )
        )
        new = [pk for pk in ids if pk not in already]
        if not new:
            return 0
        who = actor_or_none(actor)
        IncidentInquiry.objects.bulk_create(
            IncidentInquiry(incident=incident, inquiry_id=pk, linked_by=who) for pk in new
        )
        _event(incident, IncidentEventKind.INQUIRIES_LINKED, actor, inquiries=new, count=len(new))
        InquiryEvent.objects.bulk_create(
            InquiryEvent(
                inquiry_id=pk,
                kind=InquiryEventKind.LINKED,
                actor=who,
                new=incident.title[:100],
                data={"incident": incident.pk},
            )
            for pk in new
        )
    return len(new)
