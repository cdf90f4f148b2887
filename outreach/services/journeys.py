"""Journeys (ステップ配信): saving them with their steps (the marketplace
rules and the review wording checked first), giving each step its open
Send, and turning them on and off. Entering people and the steps' due
times are in outreach.services.journey_entry; the worker sends due rows
(outreach.dispatch) when the tick (outreach.tasks.journeys_tick) finds
them.

Every step of a journey has one Send (kind journey, kept open while the
journey exists): its ledger rows are the step's people, one per (step,
order or customer occasion).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils.translation import gettext as _

from core.choices import Channel
from core.timeline import actor_or_none
from core.types import Actor
from outreach.models import (
    ORDER_TRIGGERS,
    Delivery,
    Journey,
    JourneyEvent,
    JourneyEventKind,
    JourneyStep,
    JourneyTrigger,
    MessageChannel,
    MessageTemplate,
    Purpose,
    Send,
    SendKind,
    SendStatus,
    SkipReason,
)
from outreach.services.review_requests import (
    REVIEW_MAX_DAYS,
    REVIEW_MIN_DAYS,
    review_wording_problems,
    template_texts,
)
from outreach.services.sends import send_create, template_snapshot
from outreach.services.unsubscribe import queued_skip


def _total_delay(steps: Sequence[JourneyStep], upto: JourneyStep) -> tuple[timedelta, bool]:
    """The delay from the trigger to `upto` (calendar time), and whether a
    step up to it counts business days."""
    total, business = timedelta(), False
    for step in steps:
        total += timedelta(days=step.delay_days, hours=step.delay_hours)
        business = business or step.business_days
        if step is upto:
            break
    return total, business


def journey_problems(journey: Journey, steps: Sequence[JourneyStep]) -> dict[str, list[str]]:
    """What keeps a journey from being saved, by field ("__all__", "steps")."""
    problems: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        problems.setdefault(field, []).append(message)

    if journey.order_channels and journey.trigger not in ORDER_TRIGGERS:
        add("order_channels", _("Order channels apply only to journeys started by an order."))
    if Channel.AMAZON in (journey.order_channels or []) and not journey.is_transactional:
        add(
            "order_channels",
            _(
                "Amazon orders may only enter transactional journeys: Amazon's buyer-seller "
                "messaging allows no marketing."
            ),
        )
    if not steps:
        add("steps", _("A journey needs at least one step."))
    reviews = [step for step in steps if step.is_review_request]
    if len(reviews) > 1:
        add("steps", _("A journey may have one review request step."))
    if journey.next_channel and journey.next_channel == journey.channel:
        add("next_channel", _("The next channel must be another channel than the first."))
    for step in steps:
        for channel, template in step_templates(journey, step):
            names = {"step": step.name, "channel": MessageChannel(channel).label}
            if template is None:
                add(
                    "steps",
                    _(
                        "Step 「%(step)s」 has no template for %(channel)s: the journey may send "
                        "it on %(channel)s, so it needs one."
                    )
                    % names,
                )
                continue
            if template.channel != channel:
                add(
                    "steps",
                    _(
                        "Step 「%(step)s」: the template for %(channel)s is not a "
                        "%(channel)s template."
                    )
                    % names,
                )
            if journey.is_transactional and template.purpose != Purpose.TRANSACTIONAL:
                add(
                    "steps",
                    _(
                        "Step 「%(step)s」: a transactional journey sends transactional templates "
                        "only (no step that sells)."
                    )
                    % {"step": step.name},
                )
    for step in reviews:
        delay, business = _total_delay(steps, step)
        if journey.trigger != JourneyTrigger.ORDER_DELIVERED:
            add(
                "steps",
                _("A review request follows the delivery: use the trigger 「Order delivered」."),
            )
        elif business or not (
            timedelta(days=REVIEW_MIN_DAYS) <= delay <= timedelta(days=REVIEW_MAX_DAYS)
        ):
            add(
                "steps",
                _(
                    "A review request goes %(min)d to %(max)d days after delivery "
                    "(counted in calendar days)."
                )
                % {"min": REVIEW_MIN_DAYS, "max": REVIEW_MAX_DAYS},
            )
        for _channel, template in step_templates(journey, step):
            for problem in review_wording_problems(template_texts(template) if template else []):
                add("steps", problem)
    return problems


def step_templates(journey: Journey, step: JourneyStep) -> list[tuple[str, MessageTemplate | None]]:
    """(channel, template) of each channel the journey sends `step` on, in
    order of preference; None where the step has no template for it."""
    pairs = [(journey.channel, step.template if step.template_id else None)]
    if journey.next_channel:
        pairs.append((journey.next_channel, step.next_template if step.next_template_id else None))
    return pairs


def journey_save(
    *,
    journey: Journey,
    steps: Sequence[JourneyStep],
    actor: Actor = None,
    deleted: Sequence[JourneyStep] = (),
) -> Journey:
    """Validate (the marketplace rules, the review wording), save the journey
    and its steps in the order given, give each step its open Send, and
    record the change."""
    problems = journey_problems(journey, steps)
    if problems:
        raise ValidationError(problems)
    created = journey.pk is None
    with transaction.atomic():
        if created:
            journey.created_by = actor_or_none(actor)
        journey.full_clean()
        journey.save()
        for step in deleted:
            if step.pk and not Delivery.objects.filter(send_id__in=step.send_ids()).exists():
                sends = [send for send in (step.send, step.next_send) if send is not None]
                step.delete()
                for send in sends:
                    send.delete()
            elif step.pk:
                raise ValidationError(
                    {"steps": [_("A step that has sent messages cannot be deleted.")]}
                )
        # Positions first moved out of the way (they are unique per journey).
        JourneyStep.objects.filter(journey=journey).update(position=F("position") + 1000)
        for position, step in enumerate(steps, start=1):
            step.journey = journey
            step.position = position
            step.save()
            step_send_ensure(step, journey=journey, actor=actor)
        JourneyEvent.objects.create(
            journey=journey,
            kind=JourneyEventKind.CREATED if created else JourneyEventKind.EDITED,
            actor=actor_or_none(actor),
        )
    return journey


def step_send_ensure(step: JourneyStep, *, journey: Journey, actor: Actor = None) -> Send:
    """The step's open Send on the journey's channel (and on its next
    channel, if it has one), with the journey's purpose and the step's
    template for that channel as it now is."""
    assert step.template is not None  # every step has its first channel's template
    step.send = _send_ensure(
        step.send_id, channel=journey.channel, template=step.template, journey=journey, actor=actor
    )
    if journey.next_channel and step.next_template is not None:
        step.next_send = _send_ensure(
            step.next_send_id,
            channel=journey.next_channel,
            template=step.next_template,
            journey=journey,
            actor=actor,
        )
    JourneyStep.objects.filter(pk=step.pk).update(send=step.send, next_send=step.next_send)
    return step.send


def _send_ensure(
    send_id: int | None,
    *,
    channel: str,
    template: MessageTemplate,
    journey: Journey,
    actor: Actor = None,
) -> Send:
    purpose = journey.purpose
    if send_id is None:
        return send_create(
            kind=SendKind.JOURNEY, channel=channel, purpose=purpose, template=template, actor=actor
        )
    Send.objects.filter(pk=send_id).update(
        channel=channel,
        purpose=purpose,
        template=template,
        respect_quiet_hours=purpose == Purpose.MARKETING,
        content={"template": template_snapshot(template)},
    )
    return Send.objects.get(pk=send_id)


def journey_sends(journey: Journey) -> QuerySet[Send]:
    """The sends of a journey's steps, on all its channels."""
    return Send.objects.filter(
        Q(journey_step__journey=journey) | Q(journey_next_step__journey=journey)
    )


def journey_activate(*, journey: Journey, actor: Actor = None) -> bool:
    """Turn a journey on: from now on its trigger enters people. False if
    it was on."""
    with transaction.atomic():
        changed = Journey.objects.filter(pk=journey.pk, active=False).update(active=True)
        if changed:
            Send.objects.filter(pk__in=journey_sends(journey).values("pk")).update(
                status=SendStatus.SENDING
            )
            JourneyEvent.objects.create(
                journey=journey, kind=JourneyEventKind.ACTIVATED, actor=actor_or_none(actor)
            )
    journey.active = True
    return bool(changed)


def journey_deactivate(*, journey: Journey, actor: Actor = None) -> bool:
    """Turn a journey off: nobody enters any more, and the steps still
    waiting are withdrawn (reason: the journey was turned off). False if it
    was off."""
    with transaction.atomic():
        changed = Journey.objects.filter(pk=journey.pk, active=True).update(active=False)
        withdrawn = 0
        if changed:
            withdrawn = queued_skip(
                Delivery.objects.filter(send__in=journey_sends(journey).values("pk")),
                reason=SkipReason.JOURNEY_OFF,
            )
            JourneyEvent.objects.create(
                journey=journey,
                kind=JourneyEventKind.DEACTIVATED,
                actor=actor_or_none(actor),
                data={"withdrawn": withdrawn},
            )
    journey.active = False
    return bool(changed)
