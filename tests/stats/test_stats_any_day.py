"""Statistics asked relative to the service's clock, whatever day it is.

CI runs this module again as on 2027-12-31, 2028-02-29 and 2030-06-15 (TEST_TODAY): year ends, ISO week 53, leap
days and summer time move under the same questions. tests/stats/test_stats_http.py asks them of a fixed 2026.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from service import clock
from service.auth.models import Role
from service.periods import AMSTERDAM, DAYS_PER_MONTH, Period, labels_of, parse_period
from service.registry.models import Capacity, Location
from tests.factories import make_location
from tests.stats.factories import seed

HOTSPOTS, TRENDS, FUNNEL = "/v1/stats/hotspots", "/v1/stats/trends", "/v1/stats/reporting-funnel"
PLACES = 12


def current(period_type: str) -> Period:
    """The period of this type that holds today."""
    return parse_period(labels_of(clock.now())[period_type], clock.today())


def back(period: Period, steps: int) -> Period:
    for _ in range(steps):
        period = period.previous()
    return period


def days(period: Period) -> int:
    return (period.end - period.start).days


def spread_over(period: Period) -> Any:
    """The index-th moment of a period: noon on one of its local days, in turn."""
    def moment(index: int) -> dt.datetime:
        day = period.start + dt.timedelta(days=index % days(period))
        return dt.datetime.combine(day, dt.time(12), AMSTERDAM).astimezone(dt.UTC)
    return moment


@pytest.fixture
def analyst(token_for) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return token_for(Role.ANALYST)


@pytest.fixture
def location(session) -> Location:  # type: ignore[no-untyped-def]
    """12 places since three years before today."""
    return make_location(session, capacities=[Capacity(valid_from=clock.today() - dt.timedelta(days=3 * 366),
                                                       places=PLACES)])


def get(client, path: str, headers: dict[str, str], **params: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = client.get(path, query_string=params, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def near(value: int, truth: int) -> bool:
    """A released count is within one rounding step and a third (the contributor noise) of the true count."""
    return value % 5 == 0 and abs(value - truth) < 5 + truth / 3


def row_of(body: dict[str, Any], location: Location) -> dict[str, Any]:
    [row] = [row for row in body["units"] if row["unit"]["id"] == str(location.id)]
    return row


@pytest.mark.parametrize("period_type", ["month", "quarter", "year"])
def test_hotspots_of_the_last_full_period_release_what_happened_in_it(client, session, analyst, location,
                                                                      period_type):
    last = back(current(period_type), 1)
    seed(session, location, 30, occurred_at=spread_over(last))
    seed(session, location, 3, occurred_at=spread_over(back(last, 1)))

    row = row_of(get(client, HOTSPOTS, analyst, period=last.label, groupBy="location"), location)

    assert row["incidents"]["suppressed"] is False
    assert near(row["incidents"]["value"], 30)
    assert row["places"] == round(PLACES * days(last) / DAYS_PER_MONTH, 1)
    assert row["previous"]["period"] == back(last, 1).label
    assert row["previous"]["places"] == round(PLACES * days(back(last, 1)) / DAYS_PER_MONTH, 1)


def test_the_current_period_counts_only_the_days_that_have_begun(client, session, analyst, location):
    month = current("month")
    begun = (clock.today() - month.start).days + 1

    row = row_of(get(client, HOTSPOTS, analyst, period=month.label, groupBy="location"), location)

    assert row["places"] == round(PLACES * begun / DAYS_PER_MONTH, 1)


@pytest.mark.parametrize("period_type", ["week", "month", "quarter", "year"])
def test_the_next_period_is_refused_and_todays_is_answered(client, analyst, period_type):
    now, following = current(period_type), current(period_type).next()

    assert client.get(HOTSPOTS, query_string={"period": now.label, "groupBy": "location"},
                      headers=analyst).status_code == 200
    refused = client.get(HOTSPOTS, query_string={"period": following.label, "groupBy": "location"},
                         headers=analyst)
    assert refused.status_code == 400
    assert refused.get_json()["errors"] == [{"pointer": "/period", "detail": "The period has not started yet.",
                                             "in": "query"}]


def test_a_year_of_months_ends_with_this_month_and_puts_each_signal_in_its_own(client, session, analyst, location):
    this_month = current("month")
    a_year_ago = back(this_month, 12)
    seed(session, location, 25, occurred_at=spread_over(a_year_ago))

    body = get(client, TRENDS, analyst, periodType="month", groupBy="location", to=this_month.label,
               **{"from": a_year_ago.label})

    series = row_of(body, location)["series"]
    assert [point["period"] for point in series] == [back(this_month, n).label for n in range(12, -1, -1)]
    assert near(series[0]["incidents"]["value"], 25)
    assert [point["incidents"]["value"] for point in series[1:]] == [0] * 12


def test_the_last_full_iso_week_is_a_period_of_its_own(client, session, analyst, location):
    week = back(current("week"), 1)
    monday = dt.datetime.combine(week.start, dt.time(0, 5), AMSTERDAM).astimezone(dt.UTC)
    inside = seed(session, location, 12, occurred_at=lambda i: monday + dt.timedelta(hours=13 * i))
    seed(session, location, 12, occurred_at=lambda i: monday - dt.timedelta(minutes=10 + i))  # the Sunday before

    body = get(client, TRENDS, analyst, periodType="week", groupBy="location", to=week.label,
               **{"from": week.previous().label})

    [before, during] = row_of(body, location)["series"]
    assert [before["period"], during["period"]] == [week.previous().label, week.label]
    assert near(during["incidents"]["value"], len(inside))
    assert near(before["incidents"]["value"], 12)


def test_the_reporting_funnel_of_the_last_full_quarter(client, session, analyst, location):
    quarter = back(current("quarter"), 1)
    seed(session, location, 20, occurred_at=spread_over(quarter), meldcode_step=5, reported=True,
         report_delay=dt.timedelta(hours=1))

    body = get(client, FUNNEL, analyst, period=quarter.label, groupBy="institution")

    [row] = [row for row in body["units"] if row["unit"]["id"] == str(location.institution_id)]
    assert near(row["signals"]["value"], 20)
    assert row["reported"] == row["signals"]
    assert row["reportedShare"] == 1.0
