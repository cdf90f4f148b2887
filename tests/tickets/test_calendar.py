"""Business-calendar arithmetic (SPEC rule 1): the issue's acceptance examples,
DST sanity checks, validation, and hypothesis properties over random
calendars, some checked against an independent wall-clock reading."""

import functools
import time as stopwatch
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickets.calendar import (
    BusinessCalendar,
    business_deadline,
    business_elapsed,
    calendar_from_spec,
    calendar_spec,
    default_calendar,
    is_business_day,
    is_open,
    next_opening,
)

JST = ZoneInfo("Asia/Tokyo")
BERLIN = ZoneInfo("Europe/Berlin")
HOUR = timedelta(hours=1)
MICROSECOND = timedelta(microseconds=1)
LUNCH_BREAK = {day: ((time(9), time(12)), (time(13), time(18))) for day in range(5)}
ALL_DAY = {day: ((time(0), time(0)),) for day in range(7)}


def jst(*args: int) -> datetime:
    return datetime(*args, tzinfo=JST)


def berlin(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=BERLIN, fold=fold)


@functools.cache
def japanese_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("JP", years=year)


def is_japanese_holiday(day: date) -> bool:
    return day in japanese_holidays(day.year)


# --- the acceptance examples ------------------------------------------


def test_friday_evening_ticket_with_one_business_hour_is_due_monday_morning():
    friday = jst(2026, 2, 6, 17, 30)
    assert friday.weekday() == 4 and not is_japanese_holiday(date(2026, 2, 9))

    # 30 minutes on Friday, 30 minutes on Monday
    assert business_deadline(friday, HOUR, default_calendar()) == jst(2026, 2, 9, 9, 30)


@pytest.mark.parametrize(
    ("friday", "holidays_after", "due"),
    [
        (date(2026, 1, 9), [date(2026, 1, 12)], jst(2026, 1, 13, 9, 30)),  # 成人の日
        (date(2026, 7, 17), [date(2026, 7, 20)], jst(2026, 7, 21, 9, 30)),  # 海の日
        (date(2026, 10, 9), [date(2026, 10, 12)], jst(2026, 10, 13, 9, 30)),  # スポーツの日
        # シルバーウィーク: 敬老の日, 国民の休日, 秋分の日
        (
            date(2026, 9, 18),
            [date(2026, 9, 21), date(2026, 9, 22), date(2026, 9, 23)],
            jst(2026, 9, 24, 9, 30),
        ),
    ],
)
def test_friday_evening_ticket_waits_past_monday_public_holidays(friday, holidays_after, due):
    assert friday.weekday() == 4 and holidays_after[0].weekday() == 0
    assert all(is_japanese_holiday(day) for day in holidays_after)
    assert not is_japanese_holiday(due.date())

    start = datetime.combine(friday, time(17, 30), tzinfo=JST)
    assert business_deadline(start, HOUR, default_calendar()) == due


def test_year_end_closure_makes_december_30_wait_for_january_4():
    assert date(2027, 1, 4).weekday() == 0 and not is_japanese_holiday(date(2027, 1, 4))

    assert business_deadline(jst(2026, 12, 30, 10), HOUR, default_calendar()) == jst(2027, 1, 4, 10)


def test_year_end_closure_waits_for_the_next_weekday_when_january_4_is_a_sunday():
    assert date(2026, 1, 4).weekday() == 6 and not is_japanese_holiday(date(2026, 1, 5))

    assert business_deadline(jst(2025, 12, 30, 10), HOUR, default_calendar()) == jst(2026, 1, 5, 10)


def test_year_end_closure_can_be_disabled():
    cal = BusinessCalendar(periods=default_calendar().periods, year_end_closure=None)

    assert business_deadline(jst(2026, 12, 30, 10), HOUR, cal) == jst(2026, 12, 30, 11)
    # 元日 is still a public holiday, and January 2-3, 2027 are a weekend
    assert business_deadline(jst(2026, 12, 31, 17, 30), HOUR, cal) == jst(2027, 1, 4, 9, 30)


def test_year_end_closure_is_configurable_within_a_year():
    obon = BusinessCalendar(periods=LUNCH_BREAK, year_end_closure=((8, 13), (8, 16)))

    assert not is_business_day(obon, date(2026, 8, 13))
    assert is_business_day(obon, date(2026, 8, 12)) and is_business_day(obon, date(2026, 12, 30))


def test_lunch_break_pauses_the_clock():
    cal = BusinessCalendar(periods=LUNCH_BREAK)

    assert business_deadline(jst(2026, 2, 10, 11, 30), HOUR, cal) == jst(2026, 2, 10, 13, 30)
    assert business_elapsed(jst(2026, 2, 10, 11, 30), jst(2026, 2, 10, 13, 30), cal) == HOUR


def test_deadline_that_uses_up_the_morning_is_noon_not_the_afternoon_opening():
    cal = BusinessCalendar(periods=LUNCH_BREAK)

    due = business_deadline(jst(2026, 2, 10, 11, 30), timedelta(minutes=30), cal)

    assert due == jst(2026, 2, 10, 12)
    assert not is_open(cal, due) and is_open(cal, due - MICROSECOND)


def test_ticket_created_during_lunch_or_at_night_counts_from_the_next_opening():
    cal = BusinessCalendar(periods=LUNCH_BREAK)

    assert business_deadline(jst(2026, 2, 10, 12, 15), HOUR, cal) == jst(2026, 2, 10, 14)
    # Saturday night → Monday 09:00 + 2 h
    assert business_deadline(jst(2026, 2, 7, 3), 2 * HOUR, cal) == jst(2026, 2, 9, 11)


def test_zero_duration_is_the_start_when_open_else_the_next_opening():
    cal = BusinessCalendar(periods=LUNCH_BREAK)

    assert business_deadline(jst(2026, 2, 10, 10), timedelta(0), cal) == jst(2026, 2, 10, 10)
    assert business_deadline(jst(2026, 2, 10, 12), timedelta(0), cal) == jst(2026, 2, 10, 13)
    assert next_opening(cal, jst(2026, 2, 10, 18)) == jst(2026, 2, 12, 9)  # 2/11 is 建国記念の日


def test_shop_closure_range_skips_its_days():
    cal = BusinessCalendar(
        periods=default_calendar().periods, closures=((date(2026, 2, 16), date(2026, 2, 18)),)
    )

    assert business_deadline(jst(2026, 2, 13, 17, 30), HOUR, cal) == jst(2026, 2, 19, 9, 30)
    assert not is_business_day(cal, date(2026, 2, 18)) and is_business_day(cal, date(2026, 2, 19))


def test_without_a_calendar_the_clock_counts_every_hour():
    # Amazon: 24 calendar hours, weekends included
    assert business_deadline(jst(2026, 2, 6, 17, 30), 24 * HOUR, None) == jst(2026, 2, 7, 17, 30)
    assert business_elapsed(jst(2026, 2, 6), jst(2026, 2, 8), None) == 48 * HOUR


def test_inputs_in_any_zone_give_the_same_instant_and_results_are_in_utc():
    start = jst(2026, 2, 6, 17, 30)

    due = business_deadline(start.astimezone(BERLIN), HOUR, default_calendar())

    assert due == jst(2026, 2, 9, 9, 30) and due.tzinfo is UTC
    assert next_opening(default_calendar(), start.astimezone(UTC)).tzinfo is UTC
    assert business_deadline(start, HOUR, None).tzinfo is UTC


# --- DST: a calendar in Europe/Berlin keeps its wall-clock hours -----------------


def test_berlin_opening_hours_stay_nine_to_six_across_the_spring_change():
    cal = BusinessCalendar(
        periods={day: ((time(9), time(18)),) for day in range(7)},
        tz="Europe/Berlin",
        japanese_holidays=False,
    )

    due = business_deadline(berlin(2026, 3, 28, 17), 2 * HOUR, cal)

    assert due == berlin(2026, 3, 29, 10) and due.astimezone(BERLIN).utcoffset() == 2 * HOUR
    assert business_elapsed(berlin(2026, 3, 28, 9), berlin(2026, 3, 30, 9), cal) == 18 * HOUR


def test_berlin_whole_days_last_23_and_25_hours_on_dst_changes():
    cal = BusinessCalendar(periods=ALL_DAY, tz="Europe/Berlin", japanese_holidays=False)

    assert business_elapsed(berlin(2026, 3, 29), berlin(2026, 3, 30), cal) == 23 * HOUR
    assert business_elapsed(berlin(2026, 10, 25), berlin(2026, 10, 26), cal) == 25 * HOUR
    assert business_deadline(berlin(2026, 3, 28, 12), 24 * HOUR, cal) == berlin(2026, 3, 29, 13)


def test_period_starting_inside_the_spring_forward_gap_opens_when_the_clocks_jump():
    cal = BusinessCalendar(
        periods={6: ((time(2, 30), time(3, 15)),)}, tz="Europe/Berlin", japanese_holidays=False
    )

    assert next_opening(cal, berlin(2026, 3, 29)) == berlin(2026, 3, 29, 3)
    assert business_elapsed(berlin(2026, 3, 29), berlin(2026, 3, 30), cal) == timedelta(minutes=15)


def test_period_inside_the_repeated_fall_back_hour_counts_once():
    cal = BusinessCalendar(
        periods={6: ((time(2), time(2, 30)),)}, tz="Europe/Berlin", japanese_holidays=False
    )

    assert is_open(cal, berlin(2026, 10, 25, 2, 15, fold=0))
    assert not is_open(cal, berlin(2026, 10, 25, 2, 15, fold=1))
    assert business_elapsed(berlin(2026, 10, 25), berlin(2026, 10, 26), cal) == timedelta(
        minutes=30
    )


# --- efficiency and safety bound ------------------------------------------------


def test_long_durations_are_counted_day_by_day_not_minute_by_minute():
    saturday_quarter_hour = BusinessCalendar(
        periods={5: ((time(10), time(10, 15)),)}, japanese_holidays=False, year_end_closure=None
    )
    begin = stopwatch.perf_counter()

    # 300 h of 15 minutes a week: the 1200th Saturday, about 23 years on
    due = business_deadline(jst(2026, 1, 3), 300 * HOUR, saturday_quarter_hour)
    long_haul = business_deadline(jst(2026, 2, 6, 17, 30), 200 * HOUR, default_calendar())

    assert due == jst(2026, 1, 3, 10, 15) + timedelta(weeks=1199)
    assert business_elapsed(jst(2026, 2, 6, 17, 30), long_haul, default_calendar()) == 200 * HOUR
    assert stopwatch.perf_counter() - begin < 2.0


def test_a_calendar_closed_for_years_raises_instead_of_scanning_forever():
    cal = BusinessCalendar(
        periods=default_calendar().periods, closures=((date(2026, 1, 1), date(2030, 12, 31)),)
    )

    with pytest.raises(ValueError, match="no opening hours"):
        business_deadline(jst(2026, 2, 6), HOUR, cal)
    with pytest.raises(ValueError, match="no opening hours"):
        next_opening(cal, jst(2026, 2, 6))
    assert business_elapsed(jst(2026, 1, 1), jst(2027, 1, 1), cal) == timedelta(0)


# --- validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"periods": {0: ((time(9), time(12)), (time(11), time(13)))}}, "overlap"),
        ({"periods": {0: ((time(18), time(9)),)}}, "ends before it starts"),
        ({"periods": {0: ((time(9), time(9)),)}}, "ends before it starts"),
        ({"periods": {7: ((time(9), time(18)),)}}, "out of range"),
        ({"periods": {}}, "at least one opening period"),
        ({"periods": {0: ()}}, "at least one opening period"),
        ({"periods": {0: ((9, 18),)}}, "naive times"),
        ({"periods": LUNCH_BREAK, "tz": "Asia/Edo"}, "unknown time zone"),
        ({"periods": LUNCH_BREAK, "year_end_closure": ((2, 30), (3, 1))}, "month, day"),
        (
            {"periods": LUNCH_BREAK, "closures": ((date(2026, 2, 3), date(2026, 2, 1)),)},
            "ends before it starts",
        ),
    ],
)
def test_invalid_calendars_are_refused_with_a_reason(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BusinessCalendar(**kwargs)


def test_naive_datetimes_and_negative_durations_are_refused():
    cal = default_calendar()

    with pytest.raises(ValueError, match="timezone-aware"):
        business_deadline(datetime(2026, 2, 6, 17, 30), HOUR, cal)
    with pytest.raises(ValueError, match="timezone-aware"):
        business_elapsed(jst(2026, 2, 6), datetime(2026, 2, 7), None)
    with pytest.raises(ValueError, match="timezone-aware"):
        is_open(cal, datetime(2026, 2, 6, 10))
    with pytest.raises(ValueError, match="negative"):
        business_deadline(jst(2026, 2, 6), -HOUR, cal)


def test_calendars_compare_and_hash_by_content():
    shuffled = BusinessCalendar(
        periods={day: ((time(13), time(18)), (time(9), time(12))) for day in range(5)}
    )

    assert shuffled == BusinessCalendar(periods=LUNCH_BREAK)
    assert hash(shuffled) == hash(BusinessCalendar(periods=LUNCH_BREAK))
    assert shuffled != BusinessCalendar(periods=LUNCH_BREAK, japanese_holidays=False)
    assert shuffled.periods[0] == ((time(9), time(12)), (time(13), time(18)))


def test_closures_given_as_lists_are_normalized_so_the_calendar_stays_hashable():
    from_json = BusinessCalendar(
        periods=LUNCH_BREAK,
        year_end_closure=[[12, 29], [1, 3]],
        closures=[[date(2026, 2, 16), date(2026, 2, 18)]],
    )

    assert from_json == BusinessCalendar(
        periods=LUNCH_BREAK, closures=((date(2026, 2, 16), date(2026, 2, 18)),)
    )
    assert hash(from_json) and not is_business_day(from_json, date(2026, 12, 30))


def test_calendar_from_spec_builds_the_calendar_and_round_trips():
    spec = {day: ["09:00-12:00", "13:00-18:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
    spec["sat"] = ["22:00-24:00"]

    cal = calendar_from_spec(spec)

    assert cal == BusinessCalendar(periods={**LUNCH_BREAK, 5: ((time(22), time(0)),)})
    assert calendar_spec(cal) == spec
    assert business_elapsed(jst(2026, 2, 7, 23), jst(2026, 2, 8, 1), cal) == HOUR


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"monday": ["09:00-18:00"]}, "unknown day 'monday'"),
        ({"mon": "09:00-18:00"}, "mon: expected a list"),
        ({"mon": ["9-18"]}, "mon: '9-18' is not of the form HH:MM-HH:MM"),
        ({"tue": ["09:00-25:00"]}, "tue: .* invalid time 25:00"),
        ({"tue": ["24:00-24:00"]}, "tue: .* invalid time 24:00"),
        ({"wed": ["18:00-09:00"]}, "wed: period 18:00-09:00 ends before it starts"),
        ({"thu": ["09:00-12:00", "11:00-13:00"]}, "thu: periods 09:00-12:00 and 11:00-13:00"),
        ({"Mon": ["09:00-12:00"], "mon": ["13:00-18:00"]}, "mon: the day is given twice"),
        ({"sun": []}, "at least one opening period"),
    ],
)
def test_calendar_from_spec_explains_what_is_wrong(spec, message):
    with pytest.raises(ValueError, match=message):
        calendar_from_spec(spec)


# --- properties -----------------------------------------------------------------


def clock(minutes: int) -> time:
    return time(minutes // 60 % 24, minutes % 60)  # 1440 → time(0), i.e. 24:00 as an end


@st.composite
def calendars(draw, zones=(JST,)) -> BusinessCalendar:
    """1-7 open weekdays, 1-3 periods a day on a 15- or 1-minute grid
    (sometimes back to back), holidays on or off, closures in 2026-2028."""
    grid = draw(st.sampled_from([15, 1]))
    periods = {}
    for weekday in draw(st.sets(st.integers(0, 6), min_size=1, max_size=7)):
        count = draw(st.integers(1, 3))
        points = draw(
            st.lists(
                st.integers(0, 1440 // grid), min_size=2 * count, max_size=2 * count, unique=True
            )
        )
        points = sorted(point * grid for point in points)
        if count > 1 and draw(st.booleans()):
            points[2] = points[1]  # the second period starts where the first ends
        periods[weekday] = tuple(
            (clock(points[2 * i]), clock(points[2 * i + 1])) for i in range(count)
        )
    closures = draw(
        st.lists(
            st.tuples(st.dates(date(2026, 1, 1), date(2028, 12, 31)), st.integers(0, 20)).map(
                lambda pair: (pair[0], pair[0] + timedelta(days=pair[1]))
            ),
            max_size=3,
        )
    )
    return BusinessCalendar(
        periods=periods,
        tz=draw(st.sampled_from(zones)).key,
        japanese_holidays=draw(st.booleans()),
        year_end_closure=draw(st.sampled_from([((12, 29), (1, 3)), None, ((8, 13), (8, 16))])),
        closures=tuple(closures),
    )


any_calendar = calendars(zones=(JST, JST, BERLIN))
minute_starts = st.datetimes(
    datetime(2026, 1, 1), datetime(2028, 12, 31, 23, 59), timezones=st.just(JST)
).map(lambda moment: moment.replace(second=0, microsecond=0))
starts = st.one_of(
    minute_starts,
    st.datetimes(datetime(2026, 1, 1), datetime(2028, 12, 31, 23, 59), timezones=st.just(JST)),
)
durations = st.one_of(
    st.integers(0, 300 * 60).map(lambda minutes: timedelta(minutes=minutes)),
    st.integers(0, 300 * 3600 * 10**6).map(lambda micros: timedelta(microseconds=micros)),
)


def open_by_wall_clock(cal: BusinessCalendar, at: datetime) -> bool:
    """Reference reading for JST calendars, written without the module's code."""
    local = at.astimezone(JST)
    day, moment = local.date(), local.time().replace(tzinfo=None)
    if cal.japanese_holidays and is_japanese_holiday(day):
        return False
    if cal.year_end_closure is not None:
        first, last = cal.year_end_closure
        month_day = (day.month, day.day)
        if (first <= month_day <= last) or (first > last and not last < month_day < first):
            return False
    if any(first <= day <= last for first, last in cal.closures):
        return False
    return any(
        opens <= moment and (closes == time(0) or moment < closes)
        for opens, closes in cal.periods.get(day.weekday(), ())
    )


@given(cal=calendars(), at=starts)
def test_is_open_matches_the_wall_clock_reading(cal, at):
    assert is_open(cal, at) == open_by_wall_clock(cal, at)


@settings(max_examples=40)
@given(cal=calendars(), start=minute_starts, minutes=st.integers(0, 3 * 24 * 60))
def test_elapsed_equals_the_count_of_open_minutes(cal, start, minutes):
    # boundaries are whole minutes, so a minute is open or closed throughout
    open_minutes = sum(
        open_by_wall_clock(cal, start + timedelta(minutes=i)) for i in range(minutes)
    )

    elapsed = business_elapsed(start, start + timedelta(minutes=minutes), cal)

    assert elapsed == timedelta(minutes=open_minutes)


@given(cal=any_calendar, start=starts, duration=durations)
def test_deadline_is_open_time_or_the_end_of_an_open_period(cal, start, duration):
    due = business_deadline(start, duration, cal)

    assert due >= start and due.tzinfo is UTC
    if duration:
        assert is_open(cal, due) or is_open(cal, due - MICROSECOND)
    else:
        assert is_open(cal, due) and due == next_opening(cal, start)
        assert business_elapsed(start, due, cal) == timedelta(0)


@given(cal=any_calendar, start=starts, duration=durations)
def test_deadline_is_the_first_instant_with_the_duration_elapsed(cal, start, duration):
    due = business_deadline(start, duration, cal)

    assert business_elapsed(start, due, cal) == duration
    if duration:
        assert business_elapsed(start, due - MICROSECOND, cal) < duration


@given(cal=any_calendar, first=starts, second=starts, duration=durations)
def test_deadline_is_monotonic_in_start(cal, first, second, duration):
    early, late = sorted([first, second])

    assert business_deadline(early, duration, cal) <= business_deadline(late, duration, cal)


@given(cal=any_calendar, start=starts, first=durations, second=durations)
def test_deadline_is_monotonic_in_duration(cal, start, first, second):
    short, long = sorted([first, second])

    assert business_deadline(start, short, cal) <= business_deadline(start, long, cal)


@given(cal=any_calendar, start=starts, first=durations, second=durations)
def test_deadlines_compose(cal, start, first, second):
    midway = business_deadline(start, first, cal)

    if second:
        assert business_deadline(midway, second, cal) == business_deadline(
            start, first + second, cal
        )
    else:
        # zero more time moves a deadline at a period's end to the next opening
        assert business_deadline(midway, second, cal) == next_opening(cal, midway)


@given(
    start=st.datetimes(
        datetime(2026, 1, 1),
        datetime(2028, 12, 31),
        timezones=st.sampled_from([JST, UTC, BERLIN, ZoneInfo("America/New_York")]),
        allow_imaginary=False,
    ),
    duration=durations,
)
def test_without_a_calendar_deadline_and_elapsed_are_plain_real_time(start, duration):
    due = business_deadline(start, duration, None)

    # real time, not wall clock: start + duration would be wrong across DST
    assert due - start == duration and due.tzinfo is UTC
    assert business_elapsed(start, due, None) == duration
    assert business_elapsed(due, start, None) == timedelta(0)


@given(
    start=st.datetimes(
        datetime(2026, 1, 1),
        datetime(2028, 12, 31),
        timezones=st.sampled_from([JST, BERLIN]),
        allow_imaginary=False,
    ),
    duration=durations,
)
def test_a_round_the_clock_calendar_is_plain_real_time(start, duration):
    cal = BusinessCalendar(
        periods=ALL_DAY, tz=start.tzinfo.key, japanese_holidays=False, year_end_closure=None
    )

    due = business_deadline(start, duration, cal)

    assert due == business_deadline(start, duration, None)
    assert business_elapsed(start, due, cal) == due - start


@given(cal=any_calendar, instants=st.lists(starts, min_size=3, max_size=3))
def test_elapsed_is_additive_over_a_split_and_never_exceeds_wall_time(cal, instants):
    start, split, end = sorted(instants)

    whole = business_elapsed(start, end, cal)

    assert whole == business_elapsed(start, split, cal) + business_elapsed(split, end, cal)
    assert timedelta(0) <= whole <= end - start
    assert business_elapsed(end, start, cal) == timedelta(0)


dst_changes = [datetime(2026, 3, 29, 1), datetime(2026, 10, 25, 1), datetime(2027, 3, 28, 1)]
starts_near_dst = st.tuples(
    st.sampled_from(dst_changes), st.integers(-3 * 24 * 60, 3 * 24 * 60)
).map(lambda pair: (pair[0] + timedelta(minutes=pair[1])).replace(tzinfo=UTC))


@given(
    cal=calendars(zones=(BERLIN,)),
    first=starts_near_dst,
    second=starts_near_dst,
    duration=st.integers(0, 48 * 60).map(lambda minutes: timedelta(minutes=minutes)),
)
def test_berlin_calendars_keep_the_deadline_rules_around_dst_changes(cal, first, second, duration):
    early, late = sorted([first, second])

    due = business_deadline(early, duration, cal)

    assert business_elapsed(early, due, cal) == duration
    assert is_open(cal, due) or (duration and is_open(cal, due - MICROSECOND))
    if duration:
        assert business_elapsed(early, due - MICROSECOND, cal) < duration
    assert due <= business_deadline(late, duration, cal)
