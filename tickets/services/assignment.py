"""Automatic assignment of new inquiries (round robin) and the agents'
presence.

The rule that covers a new inquiry is its category's, else its channel's,
else the rule for all inquiries (tickets.selectors.assignment_rule_for).
Under a round-robin rule the inquiry goes to the group's agent who is
present, below their limit of open inquiries, and was assigned least
recently (never first, then by id). The rule's row is locked while the
agent is picked and stamped, so that two inquiries created at once by two
workers take turns instead of both going to the same agent. Nobody
available: the inquiry stays unassigned, with an event saying why, and the
inbox says that the rule has nobody (tickets.selectors)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from core.roles import manager_required
from core.types import Actor
from tickets.models import (
    AgentAvailability,
    AssignmentMode,
    AssignmentRule,
    Inquiry,
    InquiryEventKind,
)
from tickets.selectors import assignment_candidates, assignment_rule_for
from tickets.services.inquiries import _assign, _assignee_check, event_add


def inquiry_auto_assign(*, inquiry: Inquiry) -> User | None:
    """Assign a new inquiry by the rule that covers it. Returns the agent
    chosen, or None (manual rule, no rule, already assigned, nobody
    available)."""
    if inquiry.assignee_id is not None:
        return None
    rule = assignment_rule_for(channel=inquiry.channel, category_id=inquiry.category_id)
    if rule is None or rule.mode != AssignmentMode.ROUND_ROBIN:
        return None
    with transaction.atomic():
        rule = AssignmentRule.objects.select_for_update().get(pk=rule.pk)
        agent = assignment_candidates(rule=rule).first()
        if agent is None:
            event_add(inquiry, InquiryEventKind.ASSIGN_WAITING, new=str(rule))
            return None
        now = timezone.now()
        AgentAvailability.objects.filter(pk=agent.pk).update(last_assigned_at=now)
        AssignmentRule.objects.filter(pk=rule.pk).update(last_assigned_at=now)
        _assign(inquiry, agent, None, auto=True)
    return agent


def agent_presence_set(*, user: User, is_present: bool, actor: Actor) -> AgentAvailability:
    """`user` takes new inquiries (present) or not (absent). Only they or a
    manager may say so; only assignable staff have a presence."""
    if actor is not None and actor.pk != user.pk:
        manager_required(actor, gettext("Only a manager may mark a colleague present or absent."))
    _assignee_check(user)
    availability, _created = AgentAvailability.objects.get_or_create(user=user)
    if availability.is_present != is_present:
        availability.is_present = is_present
        availability.save(update_fields=["is_present", "changed_at"])
    return availability
