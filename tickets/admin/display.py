"""What the inbox and the inquiry page both show: time left to the
first-reply deadline, coloured by SLA state, the triage badge and the
claimant badge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.types import StrOrPromise
from crm.models import Customer
from outreach.models import DeliveryStatus
from tickets import calendar as cal
from tickets.models import UNDELIVERED_STATUSES, Inquiry, OutboundState, SlaState
from tickets.services import sla_state_live
from tickets.services.sla import (
    NEXT_REPLY,
    PAUSED,
    RESOLUTION,
    WatchedClock,
    policy_calendar,
    resolution_clock,
)


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
    """The first-reply clock as the agent should see it now."""
    state = sla_state_live(inquiry, now)
    due = inquiry.first_reply_due_at
    if inquiry.first_replied_at is not None:
        text = gettext("Replied late") if state == SlaState.BREACHED else gettext("Replied")
    elif not state:
        text = "—"
    elif state == SlaState.BREACHED:
        assert due is not None  # a running clock has its deadline
        text = gettext("%(time)s overdue") % {"time": duration_text(now - due)}
    else:
        assert due is not None
        text = gettext("%(time)s left") % {"time": duration_text(due - now)}
    return SlaView(state, text)


def sla_badge(inquiry: Inquiry, now: datetime) -> str:
    view = sla_view(inquiry, now)
    return format_html('<span class="{}" data-sla="{}">{}</span>', view.css, view.state, view.text)


# The next-reply and resolution clocks, in words (SPEC rule 13).
CLOCK_DEADLINES = {
    NEXT_REPLY.name: _("Next reply due"),
    RESOLUTION.name: _("Resolution due"),
}


RESOLVED_IN_TIME = _("Resolved in time")
# What a stopped clock says: (met, late), by clock.
_STOPPED_TEXTS = {
    NEXT_REPLY.name: (_("Replied in time"), _("Replied late")),
    RESOLUTION.name: (RESOLVED_IN_TIME, _("Resolved late")),
}


def clock_view(inquiry: Inquiry, now: datetime, clock: WatchedClock) -> SlaView:
    """The next-reply or resolution clock as the agent should see it now:
    time left, overdue, paused, met or late."""
    state = sla_state_live(inquiry, now, clock)
    due = getattr(inquiry, clock.due)
    met, late = _STOPPED_TEXTS[clock.name]
    if not state:
        text = "—"
    elif state == PAUSED:
        text = gettext("Clock paused")
    elif state == SlaState.MET:
        text = str(met)
    elif clock is RESOLUTION and inquiry.is_open and due is None:
        text = gettext("Overdue, clock paused")
    elif getattr(inquiry, clock.stopped) is not None or due is None:
        text = str(late)
    elif state == SlaState.BREACHED:
        text = gettext("%(time)s overdue") % {"time": duration_text(now - due)}
    else:
        text = gettext("%(time)s left") % {"time": duration_text(due - now)}
    return SlaView(state, text)


def clock_badges(inquiry: Inquiry, now: datetime) -> str:
    """The inbox's word on the other clocks: the next reply while one is
    owed, the resolution when at risk, overdue or paused."""
    badges = []
    for clock, shown in (
        (NEXT_REPLY, (SlaState.ON_TRACK, SlaState.AT_RISK, SlaState.BREACHED)),
        (RESOLUTION, (SlaState.AT_RISK, SlaState.BREACHED, PAUSED)),
    ):
        view = clock_view(inquiry, now, clock)
        if view.state in shown and (clock is RESOLUTION or inquiry.next_replied_at is None):
            badges.append(
                format_html(
                    ' <span class="{}" data-clock="{}" data-sla="{}">{}: {}</span>',
                    view.css,
                    clock.name,
                    view.state,
                    CLOCK_DEADLINES[clock.name],
                    view.text,
                )
            )
    return format_html_join("", "{}", ((badge,) for badge in badges))


@dataclass(frozen=True)
class ClockRow:
    name: str
    label: StrOrPromise
    view: SlaView
    due: datetime | None
    note: str = ""


def inquiry_clocks(inquiry: Inquiry, now: datetime) -> list[ClockRow]:
    """The inquiry page's next-reply and resolution clocks, in words: the
    next reply once the customer wrote after a reply, the resolution when
    its policy sets a target; a paused resolution says how long it will
    have left when it resumes."""
    rows = []
    if inquiry.next_reply_state:
        owed = inquiry.next_replied_at is None
        rows.append(
            ClockRow(
                NEXT_REPLY.name,
                CLOCK_DEADLINES[NEXT_REPLY.name],
                clock_view(inquiry, now, NEXT_REPLY),
                inquiry.next_reply_due_at if owed else None,
            )
        )
    clock = resolution_clock(inquiry)
    if clock is not None:
        view = clock_view(inquiry, now, RESOLUTION)
        note = ""
        if view.state == PAUSED:
            used = cal.clock_used(clock, now, policy_calendar(inquiry.sla_policy))
            note = gettext("%(time)s left when it resumes") % {
                "time": duration_text(clock.target - used)
            }
        rows.append(
            ClockRow(
                RESOLUTION.name,
                CLOCK_DEADLINES[RESOLUTION.name],
                view,
                inquiry.resolution_due_at,
                note,
            )
        )
    return rows


CLAIMANT_LABEL = _("⚠ Claimant")


def claimant_badge(customer: Customer) -> str:
    if not customer.is_claimant:
        return ""
    return format_html(
        '<span class="claimant-badge" title="{}">{}</span>',
        customer.claimant_reason,
        CLAIMANT_LABEL,
    )


REPLY_FAILED_LABEL = _("Not delivered")
REPLY_FAILED_HELP = _("The latest reply did not reach the customer.")
REPLY_UNKNOWN_LABEL = _("Outcome unknown")
REPLY_UNKNOWN_HELP = _("It is unknown whether the latest reply reached the customer.")


def reply_failed_badge(inquiry: Inquiry) -> str:
    """送信失敗 when the inquiry's latest reply did not reach the customer,
    送信結果不明 when that is unknown (the inbox's `last_reply_status`,
    tickets.selectors.inbox)."""
    status = getattr(inquiry, "last_reply_status", None)
    if status not in UNDELIVERED_STATUSES:
        return ""
    unknown = status == DeliveryStatus.UNKNOWN
    return format_html(
        '<span class="reply-failed-badge" title="{}">{}</span> ',
        REPLY_UNKNOWN_HELP if unknown else REPLY_FAILED_HELP,
        REPLY_UNKNOWN_LABEL if unknown else REPLY_FAILED_LABEL,
    )


REPLY_HELD_LABELS: dict[str | None, tuple[StrOrPromise, StrOrPromise]] = {
    OutboundState.AWAITING_APPROVAL: (
        _("Awaiting approval"),
        _("The latest reply is waiting for a manager's approval."),
    ),
    OutboundState.RETURNED: (
        _("Returned for changes"),
        _("A manager returned the latest reply for changes."),
    ),
}


def reply_held_badge(inquiry: Inquiry) -> str:
    """承認待ち / 差し戻し when the inquiry's latest reply is held for
    approval or was returned (the inbox's `last_reply_status`)."""
    held = REPLY_HELD_LABELS.get(getattr(inquiry, "last_reply_status", None))
    if held is None:
        return ""
    label, help_text = held
    return format_html('<span class="reply-held-badge" title="{}">{}</span> ', help_text, label)


def triage_badge(inquiry: Inquiry, now: datetime) -> str:
    """状況確認 N分超過 on an open inquiry whose category and assignee were
    not both set by its triage target (Inquiry.triage_late)."""
    if not inquiry.triage_late(now):
        return ""
    minutes = {"minutes": settings.TRIAGE_TARGET_MINUTES}
    return format_html(
        '<span class="triage-late-badge" title="{}">{}</span> ',
        gettext("Category and assignee were not both set within the %(minutes)d-minute target.")
        % minutes,
        gettext("Triage over %(minutes)d min") % minutes,
    )
