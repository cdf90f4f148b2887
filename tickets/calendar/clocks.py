"""Clocks that pause (SPEC rule 13): PausableClock (the resolution clock) and
InquiryClocks (with the reply clock and the inquiry's phase), pure functions
over a BusinessCalendar or real elapsed time.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from tickets.calendar.business import (
    BusinessCalendar,
    _aware_utc,
    business_deadline,
    business_elapsed,
)


@dataclass(frozen=True)
class PausableClock:
    """``target`` of open time counted from ``start``, less the open time it
    spent paused: ``paused`` is the open time of the pauses that ended,
    ``paused_at`` the start of the pause under way (``None`` while it runs).
    A paused clock never advances; resuming continues where it stopped."""

    start: datetime
    target: timedelta
    paused: timedelta = timedelta(0)
    paused_at: datetime | None = None


def clock_pause(clock: PausableClock, at: datetime) -> PausableClock:
    """The clock paused at ``at`` (unchanged when it is paused already)."""
    if clock.paused_at is not None:
        return clock
    return replace(clock, paused_at=max(_aware_utc("at", at), _aware_utc("start", clock.start)))


def clock_resume(clock: PausableClock, at: datetime, cal: BusinessCalendar | None) -> PausableClock:
    """The clock running again from ``at``: the open time of the pause joins
    ``paused`` (unchanged when it runs already)."""
    if clock.paused_at is None:
        return clock
    pause = business_elapsed(clock.paused_at, at, cal)
    return replace(clock, paused=clock.paused + pause, paused_at=None)


def clock_used(clock: PausableClock, at: datetime, cal: BusinessCalendar | None) -> timedelta:
    """The open time the clock has counted by ``at`` (pauses left out)."""
    end = _aware_utc("at", at)
    if clock.paused_at is not None:
        end = min(end, clock.paused_at)
    return max(business_elapsed(clock.start, end, cal) - clock.paused, timedelta(0))


def clock_deadline(clock: PausableClock, cal: BusinessCalendar | None) -> datetime | None:
    """When the clock reaches its target if it runs on; ``None`` while paused."""
    if clock.paused_at is not None:
        return None
    return business_deadline(clock.start, clock.target + clock.paused, cal)


def clock_at_risk(
    clock: PausableClock, left: timedelta, cal: BusinessCalendar | None
) -> datetime | None:
    """When only ``left`` of the target remains if it runs on; ``None`` while
    paused (the whole target is "at risk" when ``left`` exceeds it)."""
    if clock.paused_at is not None:
        return None
    warn = max(clock.target - left, timedelta(0))
    return business_deadline(clock.start, warn + clock.paused, cal)


class ClockPhase(enum.Enum):
    RUNNING = "running"  # new, open
    PAUSED = "paused"  # waiting on the customer or a third party
    STOPPED = "stopped"  # resolved, closed


@dataclass(frozen=True)
class InquiryClocks:
    """An inquiry's reply and resolution clocks.

    ``reply_since`` is the customer's earliest message not answered yet
    (``None``: no reply is owed); only a customer message starts the reply
    clock and only a reply ends it. ``resolution`` (``None``: no target)
    runs only in the running phase. The stopped phase stops both."""

    phase: ClockPhase
    resolution: PausableClock | None = None
    reply_since: datetime | None = None


def clocks_phase(
    clocks: InquiryClocks, phase: ClockPhase, at: datetime, cal: BusinessCalendar | None
) -> InquiryClocks:
    """The clocks after the inquiry entered ``phase`` at ``at``."""
    resolution = clocks.resolution
    if resolution is not None:
        if phase is ClockPhase.RUNNING:
            resolution = clock_resume(resolution, at, cal)
        else:
            resolution = clock_pause(resolution, at)
    return replace(clocks, phase=phase, resolution=resolution)


def clocks_customer_message(clocks: InquiryClocks, at: datetime) -> InquiryClocks:
    """A customer's message at ``at`` owes them a reply (from their earliest
    message not answered yet). It restarts the reply clock only."""
    if clocks.reply_since is not None:
        return clocks
    return replace(clocks, reply_since=_aware_utc("at", at))


def clocks_replied(clocks: InquiryClocks) -> InquiryClocks:
    """A reply reached the customer: no reply is owed."""
    return replace(clocks, reply_since=None)


def clocks_reply_deadline(
    clocks: InquiryClocks, target: timedelta, cal: BusinessCalendar | None
) -> datetime | None:
    """When the owed reply is due; ``None`` when none is owed or stopped."""
    if clocks.reply_since is None or clocks.phase is ClockPhase.STOPPED:
        return None
    return business_deadline(clocks.reply_since, target, cal)


def clocks_resolution_deadline(
    clocks: InquiryClocks, cal: BusinessCalendar | None
) -> datetime | None:
    """When the resolution is due if the inquiry stays running; ``None`` when
    paused, stopped or without a target."""
    if clocks.resolution is None or clocks.phase is not ClockPhase.RUNNING:
        return None
    return clock_deadline(clocks.resolution, cal)
