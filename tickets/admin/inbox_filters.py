"""The inbox's list filters: status (open by default), assignee, SLA state of each
clock (live), triage stage, and the inquiries suggested for an incident.
"""

from __future__ import annotations

from django.contrib import admin
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.admin_filters import DefaultingFilter
from crisis.models import Incident
from crisis.selectors.incidents import incident_suggested_inquiries
from tickets.models import OPEN_STATUSES, InquiryStatus, SlaState
from tickets.presence import staff_name
from tickets.selectors import assignable_staff
from tickets.services import (
    sla_state_live_q,
    triage_late_q,
)
from tickets.services.sla import CLOCKS, FIRST_REPLY, NEXT_REPLY, PAUSED, RESOLUTION, WatchedClock


class StatusFilter(DefaultingFilter):
    """Open inquiries unless asked otherwise: the inbox is a work queue."""

    title = _("status")
    parameter_name = "status"
    default_title = _("Open (all open statuses)")

    def lookups(self, request, model_admin):
        return [*InquiryStatus.choices, ("all", _("All, including closed"))]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset.filter(status__in=OPEN_STATUSES)
        if value in InquiryStatus.values:
            return queryset.filter(status=value)
        return queryset


class AssigneeFilter(DefaultingFilter):
    title = _("assignee")
    parameter_name = "assignee"

    def lookups(self, request, model_admin):
        return [
            ("mine", _("Mine")),
            ("none", _("Unassigned")),
            *((str(user.pk), staff_name(user)) for user in assignable_staff()),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "mine":
            return queryset.filter(assignee=request.user)
        if value == "none":
            return queryset.filter(assignee__isnull=True)
        if value and value.isdigit():
            return queryset.filter(assignee_id=int(value))
        return queryset


class SlaFilter(DefaultingFilter):
    """By the state the time-left column shows (live, not only as the SLA
    watch last stored it), of the first reply (sla=at_risk), the next reply
    (sla=next_reply:at_risk) or the resolution (sla=resolution:paused)."""

    title = _("deadline")
    parameter_name = "sla"

    def lookups(self, request, model_admin):
        return [
            (SlaState.AT_RISK, _("First reply: at risk")),
            (SlaState.BREACHED, _("First reply: overdue")),
            (SlaState.ON_TRACK, _("First reply: on track")),
            (SlaState.MET, _("Replied in time")),
            (f"{NEXT_REPLY.name}:{SlaState.AT_RISK}", _("Next reply: at risk")),
            (f"{NEXT_REPLY.name}:{SlaState.BREACHED}", _("Next reply: overdue")),
            (f"{NEXT_REPLY.name}:{SlaState.ON_TRACK}", _("Next reply: on track")),
            (f"{RESOLUTION.name}:{SlaState.AT_RISK}", _("Resolution: at risk")),
            (f"{RESOLUTION.name}:{SlaState.BREACHED}", _("Resolution: overdue")),
            (f"{RESOLUTION.name}:{PAUSED}", _("Resolution: paused")),
        ]

    def queryset(self, request, queryset):
        clock, state = sla_filter_clock(self.value())
        if clock is not None:
            return queryset.filter(sla_state_live_q(state, timezone.now(), clock))
        return queryset


def sla_filter_clock(value: str | None) -> tuple[WatchedClock | None, str]:
    """The clock and state of an SLA filter value ("at_risk" is the first
    reply's, "next_reply:at_risk" the next reply's); (None, "") if unknown."""
    name, _sep, state = (value or "").rpartition(":")
    clock = CLOCKS.get(name or FIRST_REPLY.name)
    states = (*SlaState.values, PAUSED) if clock is RESOLUTION else SlaState.values
    if clock is None or state not in states:
        return None, ""
    return clock, state


class TriageFilter(DefaultingFilter):
    """By the triage stage (状況確認: category and assignee set), live: past
    its target now, not yet triaged, triaged."""

    title = _("triage")
    parameter_name = "triage"

    def lookups(self, request, model_admin):
        return [
            ("late", _("Over the target")),
            ("pending", _("Not yet triaged")),
            ("done", _("Triaged")),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "late":
            return queryset.filter(triage_late_q(timezone.now()))
        if value == "pending":
            return queryset.filter(triaged_at__isnull=True)
        if value == "done":
            return queryset.filter(triaged_at__isnull=False)
        return queryset


class IncidentSuggestFilter(admin.SimpleListFilter):
    """The inquiries suggested for linking to an ongoing incident (the
    banner links here): new, open, from its channel, not linked yet. Shown
    only when asked for, so the inbox spends no query on it otherwise."""

    title = _("incident")
    parameter_name = "incident_suggest"

    def lookups(self, request, model_admin):
        value = self.value()
        return [(value, _("To link to the incident"))] if value and value.isdigit() else []

    def queryset(self, request, queryset):
        value = self.value()
        if not (value and value.isdigit()):
            return queryset
        incident = Incident.objects.filter(pk=int(value)).first()
        if incident is None:
            return queryset.none()
        return queryset.filter(pk__in=incident_suggested_inquiries(incident).values("pk"))
