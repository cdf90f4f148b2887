"""What the inbox and the inquiry page both show: time left to the
first-reply deadline, coloured by SLA state, and the claimant badge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.models import Customer
from tickets.models import OPEN_STATUSES, Inquiry, SlaState


def duration_text(span: timedelta) -> str:
    """3 h 12 min (ja: 3時間12分); whole minutes, rounded down."""
    minutes = max(int(span.total_seconds() // 60), 0)
    hours, minutes = divmod(minutes, 60)
    if hours >= 48:
        days, hours = divmod(hours, 24)
        return gettext("%(days)d d %(hours)d h") % {"days": days, "hours": hours}
    if not hours:
        return gettext("%(minutes)d min") % {"minutes": minutes}
    if not minutes:
        return gettext("%(hours)d h") % {"hours": hours}
    return gettext("%(hours)d h %(minutes)d min") % {"hours": hours, "minutes": minutes}


@dataclass(frozen=True)
class SlaView:
    state: str  # an SlaState value, or "" when no deadline applies
    text: str

    @property
    def css(self) -> str:
        return f"sla sla-{self.state or 'none'}"


def sla_view(inquiry: Inquiry, now: datetime) -> SlaView:
    """The first-reply clock as the agent should see it now. The stored
    sla_state moves only when the SLA watch runs; the deadline itself is
    exact, so the live state is the later of the two."""
    if inquiry.first_replied_at is not None:
        if inquiry.sla_state == SlaState.BREACHED:
            return SlaView(SlaState.BREACHED, gettext("Replied late"))
        return SlaView(SlaState.MET, gettext("Replied"))
    due = inquiry.first_reply_due_at
    if inquiry.status not in OPEN_STATUSES or due is None:
        return SlaView("", "—")
    if now >= due or inquiry.sla_state == SlaState.BREACHED:
        return SlaView(
            SlaState.BREACHED, gettext("%(time)s overdue") % {"time": duration_text(now - due)}
        )
    at_risk = inquiry.sla_state == SlaState.AT_RISK or (
        inquiry.at_risk_at is not None and now >= inquiry.at_risk_at
    )
    return SlaView(
        SlaState.AT_RISK if at_risk else SlaState.ON_TRACK,
        gettext("%(time)s left") % {"time": duration_text(due - now)},
    )


def sla_badge(inquiry: Inquiry, now: datetime) -> str:
    view = sla_view(inquiry, now)
    return format_html('<span class="{}" data-sla="{}">{}</span>', view.css, view.state, view.text)


def sla_state_q(state: str, now: datetime) -> Q:
    """The inquiries sla_view shows in `state` (for the inbox filter)."""
    unreplied = Q(first_replied_at__isnull=True, status__in=OPEN_STATUSES)
    overdue = unreplied & (Q(first_reply_due_at__lte=now) | Q(sla_state=SlaState.BREACHED))
    if state == SlaState.BREACHED:
        return overdue | Q(first_replied_at__isnull=False, sla_state=SlaState.BREACHED)
    if state == SlaState.AT_RISK:
        return (
            unreplied
            & Q(first_reply_due_at__gt=now)
            & Q(sla_state__in=[SlaState.ON_TRACK, SlaState.AT_RISK])
            & (Q(sla_state=SlaState.AT_RISK) | Q(at_risk_at__lte=now))
        )
    if state == SlaState.ON_TRACK:
        return (
            unreplied
            & Q(first_reply_due_at__gt=now, sla_state=SlaState.ON_TRACK)
            & (Q(at_risk_at__isnull=True) | Q(at_risk_at__gt=now))
        )
    if state == SlaState.MET:
        return Q(first_replied_at__isnull=False) & ~Q(sla_state=SlaState.BREACHED)
    return Q()


CLAIMANT_LABEL = _("⚠ Claimant")


def claimant_badge(customer: Customer) -> str:
    if not customer.is_claimant:
        return ""
    return format_html(
        '<span class="claimant-badge" title="{}">{}</span>',
        customer.claimant_reason,
        CLAIMANT_LABEL,
    )
