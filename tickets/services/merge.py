"""Merging inquiries of one customer into one, and splitting a message out
into a new inquiry (SPEC rule 13).

A merge keeps one inquiry (the survivor) and closes the others (absorbed):
their messages (with attachments), timeline events, staff notices and links
to incidents and suspensions move to the survivor, the absorbed ones point
to it (`merged_into`), and the survivor's clocks are recomputed through
the SLA service as if every message had arrived on it: first reply and
resolution from the earliest customer message, the next reply from the
earliest message no reply has answered since. Every row of the
group is locked first (in id order), so two agents merging at once cannot
lose a message: the second sees the first's merge and is refused.

A split moves a customer's message (and, if asked, every message after it)
into a new inquiry of the same customer, linked to the original
(`split_from`), with its own first-reply clock from that message's time.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, Max, Min, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from core.types import Actor
from crisis.models import IncidentInquiry, SuspensionInquiry
from tickets.models import (
    Inquiry,
    InquiryEvent,
    InquiryEventKind,
    InquiryMessage,
    InquiryStatus,
    MessageKind,
    SlaState,
    StaffNotification,
)
from tickets.services.inquiries import event_add, inquiry_status_set, reference_next
from tickets.services.intake import inquiry_clock_fields
from tickets.services.reading import last_message_refresh
from tickets.services.reply_outcomes import first_reply_recount, live_reply_at
from tickets.services.sla import (
    next_reply_answered,
    next_reply_owed,
    policy_clock_minutes,
    resolution_clock_reset,
    sla_policy_for,
    sla_times,
)
from tickets.services.triage import triage_due

# The first-reply fields that travel together: the clock of one inquiry.
_CLOCK_FIELDS = (
    "sla_policy",
    "first_reply_due_at",
    "at_risk_at",
    "first_replied_at",
    "first_reply_minutes",
    "sla_state",
)


def merge_survivor_default(inquiries: Sequence[Inquiry]) -> Inquiry:
    """The inquiry a merge keeps unless the agent chooses: the earliest
    received among those still open (among all of them when none is)."""
    still_open = [inquiry for inquiry in inquiries if inquiry.is_open]
    return min(still_open or inquiries, key=lambda inquiry: (inquiry.created_at, inquiry.pk))


def merge_refusal(inquiries: Sequence[Inquiry], survivor: Inquiry) -> str:
    """Why these inquiries cannot be merged into `survivor` ("" when they
    can): the confirmation page says it before the agent confirms, and
    inquiries_merge checks it again under the row locks."""
    if len({inquiry.pk for inquiry in inquiries}) < 2:
        return _("Choose at least two inquiries to merge.")
    if survivor.pk not in {inquiry.pk for inquiry in inquiries}:
        return _("The inquiry to keep must be one of those merged.")
    if len({inquiry.customer_id for inquiry in inquiries}) > 1:
        return _(
            "These inquiries are from different customers: only inquiries of the same "
            "customer can be merged."
        )
    for inquiry in inquiries:
        if inquiry.merged_into_id is not None:
            return _(
                "%(reference)s has already been merged into another inquiry: open that one."
            ) % {"reference": inquiry.reference}
    if not survivor.is_open and any(inquiry.is_open for inquiry in inquiries):
        return _(
            "%(reference)s is already resolved or closed: keep one of the inquiries still in "
            "progress, so that the work goes on there."
        ) % {"reference": survivor.reference}
    return ""


def inquiries_merge(
    *, inquiries: Sequence[Inquiry], survivor: Inquiry | None = None, actor: Actor
) -> Inquiry:
    """Merge `inquiries` (two or more, of one customer) into `survivor`
    (merge_survivor_default when None). Returns the survivor."""
    ids = sorted({inquiry.pk for inquiry in inquiries})
    with transaction.atomic():
        # Locked in id order: concurrent merges queue instead of deadlocking,
        # and the checks below read the rows as they are now.
        group = list(Inquiry.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
        kept = (
            merge_survivor_default(group)
            if survivor is None
            else next((i for i in group if i.pk == survivor.pk), survivor)
        )
        refusal = merge_refusal(group, kept)
        if refusal:
            raise ValidationError(refusal)
        absorbed = [inquiry for inquiry in group if inquiry.pk != kept.pk]
        moved = {
            inquiry.pk: {
                "messages": InquiryMessage.objects.filter(inquiry=inquiry).update(inquiry=kept),
                "events": InquiryEvent.objects.filter(inquiry=inquiry).update(inquiry=kept),
            }
            for inquiry in absorbed
        }
        for inquiry in absorbed:
            _links_carry_over(inquiry, kept)
        old_state, waited_since = kept.sla_state, kept.last_inbound_at or kept.created_at
        fields = _survivor_fill(kept, group)
        fields += _clock_from_earliest(kept, group)
        fields += _next_reply_from_thread(kept)
        if "created_at" in fields:  # received earlier: the resolution clock counts from then
            fields += resolution_clock_reset(kept)
        kept.save(update_fields=sorted({*fields, "updated_at"}))
        if kept.sla_state != old_state:
            event_add(kept, InquiryEventKind.SLA, old=old_state, new=kept.sla_state)
        for inquiry in absorbed:
            event_add(
                kept,
                InquiryEventKind.MERGED,
                actor,
                new=inquiry.reference,
                inquiry_id=inquiry.pk,
                **moved[inquiry.pk],
            )
            Inquiry.objects.filter(pk=inquiry.pk).update(merged_into=kept)
            inquiry_status_set(inquiry=inquiry, status=InquiryStatus.CLOSED, actor=actor)
            event_add(
                inquiry, InquiryEventKind.MERGED_INTO, actor, new=kept.reference, inquiry_id=kept.pk
            )
        if kept.status == InquiryStatus.WAITING_CUSTOMER and any(
            i.is_open and i.last_inbound_at and i.last_inbound_at > waited_since for i in absorbed
        ):
            # The customer wrote again on an absorbed inquiry: the turn is ours.
            inquiry_status_set(inquiry=kept, status=InquiryStatus.OPEN, actor=actor)
        last_message_refresh(inquiry_ids=[kept.pk, *(i.pk for i in absorbed)])
    kept.refresh_from_db()
    return kept


def _survivor_fill(kept: Inquiry, group: list[Inquiry]) -> list[str]:
    """The survivor keeps its own order, category and assignee, taking the
    absorbed ones' where it has none; its customer's latest message and its
    received time span the whole group."""
    fields = []
    for name in ("order_id", "order_number_given", "category_id", "assignee_id"):
        if not getattr(kept, name):
            value = next((getattr(i, name) for i in group if getattr(i, name)), None)
            if value:
                setattr(kept, name, value)
                fields.append(name.removesuffix("_id"))
    latest = max((i.last_inbound_at for i in group if i.last_inbound_at), default=None)
    if latest != kept.last_inbound_at:
        kept.last_inbound_at = latest
        fields.append("last_inbound_at")
    earliest = min(i.created_at for i in group)
    if earliest != kept.created_at:
        kept.created_at = earliest  # received when the customer first wrote
        fields.append("created_at")
    return fields


def _clock_from_earliest(kept: Inquiry, group: list[Inquiry]) -> list[str]:
    """The survivor's first-reply clock. When a person already answered in
    any of the merged inquiries, the clock of the earliest answer stays as
    it was (met stays met); otherwise it is due from the earliest customer
    message, in the policy's clock, and the SLA watch moves it on from there
    (at risk, breached) with its notices. The triage target follows when
    the inquiry is not triaged yet."""
    replied = [inquiry for inquiry in group if inquiry.first_replied_at is not None]
    if replied:
        first = min(replied, key=lambda inquiry: inquiry.first_replied_at)  # type: ignore[arg-type, return-value]  # replied: first_replied_at is set
        for name in _CLOCK_FIELDS:
            setattr(kept, name, getattr(first, name))
        return list(_CLOCK_FIELDS)
    start = (
        InquiryMessage.objects.filter(inquiry=kept, kind=MessageKind.INBOUND).aggregate(
            at=Min("created_at")
        )["at"]
        or kept.created_at
    )
    policy = kept.sla_policy or sla_policy_for(channel=kept.channel, priority=kept.priority)
    due, at_risk = sla_times(policy, start) if policy is not None else (None, None)
    if due != kept.first_reply_due_at:
        # A new deadline: the watch moves it on (notices once per deadline).
        kept.sla_state = SlaState.ON_TRACK
    kept.sla_policy, kept.first_reply_due_at, kept.at_risk_at = policy, due, at_risk
    fields = ["sla_policy", "first_reply_due_at", "at_risk_at", "sla_state"]
    if kept.triaged_at is None:
        kept.triage_due_at = triage_due(policy, start)
        fields.append("triage_due_at")
    return fields


def _next_reply_from_thread(kept: Inquiry) -> list[str]:
    """The survivor's next-reply clock, as if every merged message had
    arrived on it: after the first reply, the customer's earliest message
    no person's reply has answered since owes the next reply from its
    time (met or breached when a later reply answered it). Unchanged
    when the thread owes nothing after the first reply."""
    if kept.sla_policy is None or kept.first_replied_at is None:
        return []
    inbound = InquiryMessage.objects.filter(inquiry=kept, kind=MessageKind.INBOUND)
    since = answered = None
    cursor = kept.first_replied_at
    while True:
        written = inbound.filter(created_at__gt=cursor).aggregate(at=Min("created_at"))["at"]
        if written is None:
            break
        since, answered = written, live_reply_at(kept.pk, since=written)
        if answered is None:
            break
        cursor = answered
    if since is None or (since, answered) == (kept.next_reply_since, kept.next_replied_at):
        return []
    kept.next_reply_since = None  # owed afresh from the thread's message
    fields = next_reply_owed(kept, at=since)
    if answered is not None:
        fields += next_reply_answered(kept, at=answered)
    return fields


def _links_carry_over(inquiry: Inquiry, kept: Inquiry) -> None:
    """The absorbed inquiry's incident and suspension links, and its staff
    notices, move to the survivor, except those the survivor already has
    (those stay behind with the closed inquiry, so nothing is counted or
    sent twice)."""
    for model, field in ((IncidentInquiry, "incident"), (SuspensionInquiry, "suspension")):
        already = model.objects.filter(inquiry=kept, **{field: OuterRef(field)})
        links = model.objects.filter(inquiry=inquiry)
        links.filter(Exists(already)).delete()
        links.update(inquiry=kept)
    twin = StaffNotification.objects.filter(
        inquiry=kept, user=OuterRef("user"), kind=OuterRef("kind"), key=OuterRef("key")
    )
    StaffNotification.objects.filter(inquiry=inquiry).exclude(Exists(twin)).update(inquiry=kept)


def inquiry_split(
    *, message: InquiryMessage, with_later: bool = False, subject: str = "", actor: Actor
) -> Inquiry:
    """A new inquiry of the same customer from the customer's `message`
    (and every message after it when `with_later`), linked to the original.
    Its first-reply clock runs from that message's time; a reply that moved
    with it stops that clock, and the original's clock re-opens if the
    reply that stopped it moved away."""
    with transaction.atomic():
        original = Inquiry.objects.select_for_update().get(pk=message.inquiry_id)
        message = InquiryMessage.objects.get(pk=message.pk)
        if message.inquiry_id != original.pk:
            raise ValidationError(_("This message has moved to another inquiry meanwhile."))
        if original.merged_into_id is not None:
            raise ValidationError(
                _("This inquiry was merged into another: split the message out there.")
            )
        if message.kind != MessageKind.INBOUND:
            raise ValidationError(_("Only a message from the customer can start a new inquiry."))
        thread = InquiryMessage.objects.filter(inquiry=original)
        moving = thread.filter(pk=message.pk)
        if with_later:
            moving = thread.filter(
                Q(created_at__gt=message.created_at)
                | Q(created_at=message.created_at, pk__gte=message.pk)
            )
        moving_ids = list(moving.values_list("pk", flat=True))
        if not thread.filter(kind=MessageKind.INBOUND).exclude(pk__in=moving_ids).exists():
            raise ValidationError(
                _(
                    "The inquiry would keep none of the customer's messages: choose a later "
                    "message, or move fewer."
                )
            )
        received = message.created_at
        policy = sla_policy_for(channel=message.channel, priority=original.priority)
        new = Inquiry(
            reference=reference_next(received),
            customer_id=original.customer_id,
            channel=message.channel,
            subject=(subject or message.subject or original.subject).strip()[:255],
            priority=original.priority,
            last_inbound_at=received,
            **inquiry_clock_fields(policy, received),
            split_from=original,
        )
        new.full_clean()
        new.save()
        Inquiry.objects.filter(pk=new.pk).update(created_at=received)
        new.created_at = received
        InquiryMessage.objects.filter(pk__in=moving_ids).update(inquiry=new)
        _split_clocks(new, original)
        event_add(
            new,
            InquiryEventKind.CREATED,
            actor,
            new=new.channel,
            policy=getattr(policy, "name", ""),
        )
        event_add(
            new, InquiryEventKind.SPLIT_FROM, actor, new=original.reference, inquiry_id=original.pk
        )
        event_add(
            original,
            InquiryEventKind.SPLIT_OUT,
            actor,
            new=new.reference,
            inquiry_id=new.pk,
            messages=len(moving_ids),
        )
        last_message_refresh(inquiry_ids=[new.pk, original.pk])
    new.refresh_from_db()
    return new


def _split_clocks(new: Inquiry, original: Inquiry) -> None:
    """After the messages moved: the new inquiry's clock stops at the first
    person's reply that moved with it (still delivered or on its way), and
    the original's is recounted by the reply-outcome rule (re-opened when
    the reply that stopped it left)."""
    stopper = live_reply_at(new.pk)
    inbound = InquiryMessage.objects.filter(kind=MessageKind.INBOUND)
    new.last_inbound_at = inbound.filter(inquiry=new).aggregate(at=Max("created_at"))["at"]
    fields = ["last_inbound_at"]
    if stopper is not None:
        new.first_replied_at = stopper
        new.first_reply_minutes = policy_clock_minutes(new, stopper)
        late = new.first_reply_due_at is not None and stopper > new.first_reply_due_at
        new.sla_state = SlaState.BREACHED if late else SlaState.MET
        new.status = InquiryStatus.OPEN
        fields += ["first_replied_at", "first_reply_minutes", "sla_state", "status"]
    new.save(update_fields=fields)
    Inquiry.objects.filter(pk=original.pk).update(
        last_inbound_at=inbound.filter(inquiry=original).aggregate(at=Max("created_at"))["at"],
        updated_at=timezone.now(),
    )
    if original.first_replied_at is not None:
        first_reply_recount(original.pk)
