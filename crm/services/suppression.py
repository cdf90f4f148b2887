"""Suppressed addresses: bounces and complaints stop marketing to an
address (a hard bounce at once, BOUNCE_SOFT_LIMIT soft bounces within
BOUNCE_SOFT_DAYS, a complaint at once and as an opt-out in the consent
ledger) until staff lift the suppression with a note."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from core.timeline import actor_or_none
from core.types import Actor
from crm.models import (
    BounceKind,
    ConsentChannel,
    ConsentSource,
    Customer,
    CustomerEventKind,
    MailBounce,
    Suppression,
    SuppressionReason,
)
from crm.normalize import email_normalize
from crm.services.consent import consent_withdraw
from crm.services.customers import customer_event_add


def bounce_record(
    *,
    address: str,
    kind: str,
    status: str = "",
    diagnostic: str = "",
    delivery_id: int | None = None,
    received_at: datetime | None = None,
) -> MailBounce:
    """Record one bounce or complaint about `address` and suppress the
    address when the rule says so."""
    normalized = email_normalize(address)
    if not normalized:
        raise ValidationError({"address": [_("Not an email address.")]})
    if kind not in BounceKind.values:
        raise ValidationError({"kind": [_("Unknown kind of bounce.")]})
    received_at = received_at or timezone.now()
    detail = " ".join(part for part in (status, diagnostic) if part)[:255]
    with transaction.atomic():
        bounce = MailBounce.objects.create(
            address=normalized,
            kind=kind,
            status=status[:20],
            diagnostic=diagnostic[:500],
            delivery_id=delivery_id,
            received_at=received_at,
        )
        if kind == BounceKind.HARD:
            suppression_add(address=normalized, reason=SuppressionReason.HARD_BOUNCE, detail=detail)
        elif kind == BounceKind.SOFT and _soft_bounces_count(normalized, at=received_at) >= (
            settings.BOUNCE_SOFT_LIMIT
        ):
            suppression_add(
                address=normalized, reason=SuppressionReason.SOFT_BOUNCES, detail=detail
            )
        elif kind == BounceKind.COMPLAINT:
            for customer in _customers_with(normalized):
                consent_withdraw(
                    customer=customer,
                    channel=ConsentChannel.EMAIL,
                    source=ConsentSource.COMPLAINT,
                    occurred_at=min(received_at, timezone.now()),
                    note=_("Marked our mail as spam"),
                    unless_current=True,
                )
            suppression_add(address=normalized, reason=SuppressionReason.COMPLAINT, detail=detail)
    return bounce


def _soft_bounces_count(address: str, *, at: datetime) -> int:
    """Soft bounces of `address` in the BOUNCE_SOFT_DAYS before `at`, not
    counting those before the address's last lifted suppression."""
    since = at - timedelta(days=settings.BOUNCE_SOFT_DAYS)
    lifted = Suppression.objects.filter(
        address=address, channel=ConsentChannel.EMAIL, lifted_at__isnull=False
    ).aggregate(last=Max("lifted_at"))["last"]
    if lifted is not None and lifted > since:
        since = lifted
    return MailBounce.objects.filter(
        address=address, kind=BounceKind.SOFT, received_at__gt=since, received_at__lte=at
    ).count()


def suppression_add(
    *,
    address: str,
    reason: str,
    channel: str = ConsentChannel.EMAIL,
    detail: str = "",
    note: str = "",
    actor: Actor = None,
) -> Suppression:
    """Suppress `address` on `channel` (the open suppression if there is
    one already), with an event on each customer who has that address."""
    normalized = email_normalize(address) if channel == ConsentChannel.EMAIL else address
    if not normalized:
        raise ValidationError({"address": [_("Not an email address.")]})
    if reason not in SuppressionReason.values:
        raise ValidationError({"reason": [_("Unknown reason.")]})
    if reason == SuppressionReason.STAFF and not note.strip():
        raise ValidationError({"note": [_("Note why the address is stopped.")]})
    open_rows = Suppression.objects.filter(address=normalized, channel=channel, lifted_at=None)
    existing = open_rows.first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            suppression = Suppression.objects.create(
                address=normalized,
                channel=channel,
                reason=reason,
                since=timezone.now(),
                detail=detail[:255],
                note=note[:255],
                by=actor_or_none(actor),
            )
    except IntegrityError:  # suppressed meanwhile by another report
        return open_rows.get()
    for customer in _customers_with(normalized):
        customer_event_add(
            customer,
            CustomerEventKind.SUPPRESSED,
            actor=actor,
            suppression=suppression.pk,
            reason=reason,
        )
    return suppression


def suppression_lift(*, suppression: Suppression, note: str, actor: Actor) -> Suppression:
    """Staff lift a suppression (the customer confirmed their address, the
    complaint was a mistake...): the note says why, and is required."""
    if not note.strip():
        raise ValidationError({"note": [_("Note why the address may receive mail again.")]})
    with transaction.atomic():
        locked = Suppression.objects.select_for_update().get(pk=suppression.pk)
        if locked.lifted_at is not None:
            raise ValidationError(_("This suppression has already been lifted."))
        locked.lifted_at = timezone.now()
        locked.lifted_by = actor_or_none(actor)
        locked.note = note.strip()[:255]
        locked.full_clean()
        locked.save(update_fields=["lifted_at", "lifted_by", "note"])
        for customer in _customers_with(locked.address):
            customer_event_add(
                customer,
                CustomerEventKind.SUPPRESSION_LIFTED,
                actor=actor,
                suppression=locked.pk,
                note=locked.note,
            )
    return locked


def _customers_with(address: str) -> QuerySet[Customer]:
    return Customer.objects.filter(email_normalized=address, merged_into__isnull=True)
