"""Properties of the pausing clocks (tickets.calendar, SPEC rule 13), for
calendar clocks (no calendar: every hour counts) and business clocks."""

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.tickets.test_calendar import any_calendar, jst, minute_starts
from tickets.calendar import (
    ClockPhase,
    InquiryClocks,
    PausableClock,
    business_elapsed,
    clock_at_risk,
    clock_deadline,
    clock_pause,
    clock_resume,
    clock_used,
    clocks_customer_message,
    clocks_phase,
    clocks_replied,
    clocks_reply_deadline,
    clocks_resolution_deadline,
)

HOUR = timedelta(hours=1)
clocks_of = st.one_of(st.none(), any_calendar)  # None: the calendar clock (24/7)
gaps = st.integers(0, 5 * 24 * 60).map(lambda minutes: timedelta(minutes=minutes))
targets = st.integers(1, 10 * 24 * 60).map(lambda minutes: timedelta(minutes=minutes))
phases = st.sampled_from(list(ClockPhase))


@settings(max_examples=60, deadline=None)
@given(cal=clocks_of, start=minute_starts, target=targets, before=gaps, after=gaps, later=gaps)
def test_a_paused_clock_never_advances(cal, start, target, before, after, later):
    clock = clock_pause(PausableClock(start=start, target=target), start + before)

    used = clock_used(clock, start + before, cal)

    assert clock_used(clock, start + before + after, cal) == used
    assert clock_used(clock, start + before + after + later, cal) == used
    assert clock_deadline(clock, cal) is None and clock_at_risk(clock, HOUR, cal) is None


@settings(max_examples=60, deadline=None)
@given(cal=clocks_of, start=minute_starts, target=targets, run=gaps, pause=gaps, on=gaps)
def test_resuming_continues_where_the_clock_stopped(cal, start, target, run, pause, on):
    paused_at, resumed_at = start + run, start + run + pause
    paused = clock_pause(PausableClock(start=start, target=target), paused_at)

    resumed = clock_resume(paused, resumed_at, cal)

    used_at_pause = clock_used(paused, paused_at, cal)
    assert clock_used(resumed, resumed_at, cal) == used_at_pause
    assert clock_used(resumed, resumed_at + on, cal) == used_at_pause + business_elapsed(
        resumed_at, resumed_at + on, cal
    )
    if used_at_pause < target:
        # the time left at the pause is the time left after it
        due = clock_deadline(resumed, cal)
        assert due >= resumed_at
        assert clock_used(resumed, due, cal) == target
        assert business_elapsed(resumed_at, due, cal) == target - used_at_pause


@st.composite
def histories(draw):
    """A resolution clock and the phases the inquiry went through after it
    started: [(minutes after the previous change, phase), ...]."""
    steps = draw(st.lists(st.tuples(gaps, phases), max_size=8))
    return draw(clocks_of), draw(minute_starts), draw(targets), steps, draw(gaps)


@settings(max_examples=80, deadline=None)
@given(history=histories())
def test_the_clock_counts_the_open_time_of_its_running_phases_only(history):
    cal, start, target, steps, tail = history
    clocks = InquiryClocks(
        phase=ClockPhase.RUNNING, resolution=PausableClock(start=start, target=target)
    )
    # the reference: open time summed over the running spans, by hand
    expected, at, phase = timedelta(0), start, ClockPhase.RUNNING
    for gap, next_phase in steps:
        if phase is ClockPhase.RUNNING:
            expected += business_elapsed(at, at + gap, cal)
        at, phase = at + gap, next_phase
        clocks = clocks_phase(clocks, next_phase, at, cal)
    end = at + tail
    if phase is ClockPhase.RUNNING:
        expected += business_elapsed(at, end, cal)

    assert clock_used(clocks.resolution, end, cal) == expected
    due = clocks_resolution_deadline(clocks, cal)
    if phase is ClockPhase.RUNNING:
        assert clock_used(clocks.resolution, due, cal) == target
    else:
        assert due is None


@settings(max_examples=60, deadline=None)
@given(cal=clocks_of, start=minute_starts, target=targets, gap=gaps, customer_at=gaps)
def test_resolved_or_closed_stops_every_clock(cal, start, target, gap, customer_at):
    clocks = clocks_customer_message(
        InquiryClocks(
            phase=ClockPhase.RUNNING, resolution=PausableClock(start=start, target=target)
        ),
        start,
    )

    stopped = clocks_phase(clocks, ClockPhase.STOPPED, start + gap, cal)
    # a customer writing to a resolved inquiry starts nothing until it reopens
    written = clocks_customer_message(stopped, start + gap + customer_at)

    for state in (stopped, written):
        assert clocks_reply_deadline(state, target, cal) is None
        assert clocks_resolution_deadline(state, cal) is None
        assert clock_used(state.resolution, start + gap + customer_at + HOUR * 24, cal) == (
            clock_used(clocks.resolution, start + gap, cal)
        )


@settings(max_examples=60, deadline=None)
@given(
    cal=clocks_of,
    start=minute_starts,
    target=targets,
    phase=phases,
    first=gaps,
    second=gaps,
)
def test_a_customer_message_restarts_only_the_reply_clock(cal, start, target, phase, first, second):
    clocks = clocks_phase(
        InquiryClocks(
            phase=ClockPhase.RUNNING, resolution=PausableClock(start=start, target=target)
        ),
        phase,
        start,
        cal,
    )

    written = clocks_customer_message(clocks, start + first)
    again = clocks_customer_message(written, start + first + second)

    assert written.resolution == clocks.resolution and written.phase == clocks.phase
    assert clocks_resolution_deadline(written, cal) == clocks_resolution_deadline(clocks, cal)
    assert clocks_reply_deadline(clocks, target, cal) is None
    if phase is not ClockPhase.STOPPED:
        # due from the earliest message not answered yet
        due = clocks_reply_deadline(again, target, cal)
        assert business_elapsed(start + first, due, cal) == target
    # a reply ends it; the next message starts a new one
    replied = clocks_replied(again)
    assert clocks_reply_deadline(replied, target, cal) is None
    renewed = clocks_customer_message(replied, start + first + second)
    assert renewed.reply_since == (start + first + second)


def test_a_business_clock_paused_over_the_weekend_resumes_with_the_hours_left():
    from tickets.calendar import default_calendar

    cal = default_calendar()
    # given: 8 business hours from Friday 2026-02-06 10:00, paused at 12:00
    clock = PausableClock(start=jst(2026, 2, 6, 10), target=8 * HOUR)
    clock = clock_pause(clock, jst(2026, 2, 6, 12))
    # when: it resumes on Monday at 15:00
    clock = clock_resume(clock, jst(2026, 2, 9, 15), cal)
    # then: 6 hours left: Monday 15-18 and Tuesday 9-12
    assert clock_deadline(clock, cal) == jst(2026, 2, 10, 12)
