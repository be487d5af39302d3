"""Fixed statistical periods: parsing, previous and next, buckets in Amsterdam time, and ranges."""

from __future__ import annotations

import datetime as dt

import pytest

from service import clock
from service.periods import Period, labels_of, parse_period, period_range

# The parser takes "today" as an argument: these name their day; the tests at the end use the service's clock.
TODAY = dt.date(2026, 11, 28)


def parsed(text: str) -> Period:
    return parse_period(text, TODAY)


def test_an_iso_week_starts_on_its_monday_and_lasts_seven_days():
    week = parsed("2026-W41")

    assert week == Period("2026-W41", "week", dt.date(2026, 10, 5), dt.date(2026, 10, 12))
    assert (week.grain, week.buckets) == ("week", ("2026-W41",))


def test_a_month_is_its_own_bucket():
    month = parsed("2026-10")

    assert month == Period("2026-10", "month", dt.date(2026, 10, 1), dt.date(2026, 11, 1))
    assert (month.grain, month.buckets) == ("month", ("2026-10",))


def test_a_quarter_is_the_union_of_its_three_months():
    quarter = parsed("2026-Q3")

    assert quarter == Period("2026-Q3", "quarter", dt.date(2026, 7, 1), dt.date(2026, 10, 1))
    assert (quarter.grain, quarter.buckets) == ("month", ("2026-07", "2026-08", "2026-09"))


def test_a_year_is_the_union_of_its_twelve_months():
    year = parsed("2026")

    assert year == Period("2026", "year", dt.date(2026, 1, 1), dt.date(2027, 1, 1))
    assert year.buckets == tuple(f"2026-{m:02d}" for m in range(1, 13))


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "2026-Q5", "2026-Q0", "2026-W54", "2026-W00", "2021-W53",
                                  "26-10", "2026-10-01", "2026-1", "2026-q3", "2026W41", "", "1999", "2026-Q3 "])
def test_malformed_periods_are_refused(text):
    with pytest.raises(ValueError):
        parsed(text)


@pytest.mark.parametrize("text", ["2026-10\n", "\uff12\uff10\uff12\uff16-10"])
def test_periods_with_a_trailing_newline_or_non_ascii_digits_are_refused(text):
    with pytest.raises(ValueError):
        parsed(text)


@pytest.mark.parametrize("text", ["2027-Q1", "2027", "2026-12", "2026-W49", "2026-W53"])
def test_periods_that_have_not_started_are_refused(text):
    with pytest.raises(ValueError, match="not started"):
        parsed(text)


@pytest.mark.parametrize("text", ["2026-11", "2026-Q4", "2026", "2026-W48"])
def test_the_current_period_may_be_asked_for(text):
    assert parsed(text).start <= TODAY < parsed(text).end


@pytest.mark.parametrize(("text", "previous", "following"), [
    ("2026-Q1", "2025-Q4", "2026-Q2"),
    ("2026-W01", "2025-W52", "2026-W02"),
    ("2021-W01", "2020-W53", "2021-W02"),
    ("2020-W53", "2020-W52", "2021-W01"),
    ("2026-01", "2025-12", "2026-02"),
    ("2025-12", "2025-11", "2026-01"),
    ("2026", "2025", "2027"),
])
def test_previous_and_next_follow_the_calendar(text, previous, following):
    period = parsed(text)

    assert period.previous().label == previous
    assert period.next().label == following
    assert period.previous().end == period.start
    assert period.next().start == period.end


def test_iso_week_one_of_2026_begins_in_2025():
    week = parsed("2026-W01")

    assert (week.start, week.end) == (dt.date(2025, 12, 29), dt.date(2026, 1, 5))
    assert week.previous().start == dt.date(2025, 12, 22)
    assert dt.date(2025, 12, 22).isocalendar()[:2] == (2025, 52)


def test_a_year_with_53_iso_weeks_has_week_53():
    week = parsed("2020-W53")

    assert (week.start, week.end) == (dt.date(2020, 12, 28), dt.date(2021, 1, 4))


@pytest.mark.parametrize(("moment", "week", "month"), [
    # 00:30 on 1 July in Amsterdam (CEST) is still 30 June in UTC.
    (dt.datetime(2026, 6, 30, 22, 30, tzinfo=dt.UTC), "2026-W27", "2026-07"),
    (dt.datetime(2026, 6, 30, 21, 30, tzinfo=dt.UTC), "2026-W27", "2026-06"),
    # Sunday 23:59 and Monday 00:00 local time on either side of a week boundary.
    (dt.datetime(2026, 5, 3, 21, 59, tzinfo=dt.UTC), "2026-W18", "2026-05"),
    (dt.datetime(2026, 5, 3, 22, 0, tzinfo=dt.UTC), "2026-W19", "2026-05"),
    # Winter time (CET, UTC+1): New Year's Eve 23:30 UTC is 1 January locally, in ISO week 2026-W01.
    (dt.datetime(2025, 12, 31, 23, 30, tzinfo=dt.UTC), "2026-W01", "2026-01"),
    (dt.datetime(2025, 12, 31, 22, 30, tzinfo=dt.UTC), "2026-W01", "2025-12"),
    # The night the clocks go back (25 October 2026): Sunday 23:30 CET is 22:30 UTC.
    (dt.datetime(2026, 10, 25, 22, 30, tzinfo=dt.UTC), "2026-W43", "2026-10"),
    (dt.datetime(2026, 10, 25, 23, 30, tzinfo=dt.UTC), "2026-W44", "2026-10"),
    # A week 53: Thursday 31 December 2020.
    (dt.datetime(2020, 12, 31, 12, 0, tzinfo=dt.UTC), "2020-W53", "2020-12"),
    # An offset other than UTC is converted, not taken at face value.
    (dt.datetime(2026, 7, 1, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=5))), "2026-W27", "2026-06"),
])
def test_labels_are_taken_in_amsterdam_time(moment, week, month):
    labels = labels_of(moment)

    assert (labels["week"], labels["month"]) == (week, month)
    assert labels["quarter"] == f"{month[:4]}-Q{(int(month[5:]) + 2) // 3}"
    assert labels["year"] == month[:4]


def test_a_moment_falls_in_the_period_whose_buckets_hold_it():
    moment = dt.datetime(2026, 6, 30, 22, 30, tzinfo=dt.UTC)

    assert labels_of(moment)["month"] in parsed("2026-Q3").buckets
    assert labels_of(moment)["month"] not in parsed("2026-Q2").buckets
    assert labels_of(moment)["quarter"] == "2026-Q3"


def test_a_range_holds_every_period_from_first_to_last():
    periods = period_range(parsed("2025-11"), parsed("2026-02"), limit=60)

    assert [p.label for p in periods] == ["2025-11", "2025-12", "2026-01", "2026-02"]


def test_a_range_of_weeks_crosses_week_53():
    periods = period_range(parsed("2020-W52"), parsed("2021-W02"), limit=60)

    assert [p.label for p in periods] == ["2020-W52", "2020-W53", "2021-W01", "2021-W02"]


def test_a_range_of_one_period_is_that_period():
    assert period_range(parsed("2026-Q2"), parsed("2026-Q2"), limit=60) == [parsed("2026-Q2")]


def test_a_range_may_hold_60_periods_but_not_61():
    assert len(period_range(parsed("2021-12"), parsed("2026-11"), limit=60)) == 60

    with pytest.raises(ValueError, match="At most 60"):
        period_range(parsed("2021-11"), parsed("2026-11"), limit=60)


def test_a_range_must_run_forwards_within_one_period_type():
    with pytest.raises(ValueError, match="before"):
        period_range(parsed("2026-05"), parsed("2026-03"), limit=60)
    with pytest.raises(ValueError, match="same type"):
        period_range(parsed("2026-Q1"), parsed("2026-05"), limit=60)


# --- relative to the service's clock: these run again on other days in CI (TEST_TODAY) --------------------------


@pytest.mark.parametrize("period_type", ["week", "month", "quarter", "year"])
def test_the_period_of_today_is_open_and_the_next_has_not_started(period_type):
    today = clock.today()
    current = parse_period(labels_of(clock.now())[period_type], today)

    assert current.start <= today < current.end
    assert current.type == period_type
    with pytest.raises(ValueError, match="not started"):
        parse_period(current.next().label, today)
    assert parse_period(current.previous().label, today).next() == current


@pytest.mark.parametrize("period_type", ["week", "month", "quarter", "year"])
def test_the_periods_up_to_today_tile_the_last_two_years_without_gaps(period_type):
    today = clock.today()
    last = parse_period(labels_of(clock.now())[period_type], today)
    first = parse_period(labels_of(clock.now() - dt.timedelta(days=730))[period_type], today)

    periods = period_range(first, last, 200)

    assert [b.start for b in periods[1:]] == [a.end for a in periods[:-1]]
    assert periods[0].start <= today - dt.timedelta(days=730) and today < periods[-1].end
    assert len({p.label for p in periods}) == len(periods)
