"""The reporting funnel's follow-through figures: signals decided within the municipality's follow-up days, signals
still open, and the change against the previous period; released by the same rules as every cell, never raw."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from service.auth.access import Caller
from service.auth.models import Role
from service.guidance.models import MunicipalityGuidance
from service.periods import parse_period
from service.stats.disclosure import DisclosureRules
from service.stats.service import _follow_through
from service.stats.tallies import Query
from tests.factories import make_location
from tests.stats.factories import expected_cell, in_q2, seed
from tests.stats.test_stats_http import FUNNEL, SUPPRESSED, near, stats

pytestmark = pytest.mark.clock("2026-11-20")
Q1_START = dt.datetime(2025, 12, 31, 23, 0, tzinfo=dt.UTC)


@pytest.fixture
def analyst(token_for):  # type: ignore[no-untyped-def]
    return token_for(Role.ANALYST, municipality_codes=["GM0014"])


def test_decided_in_time_counts_reports_within_the_follow_up_days(client, session, analyst):
    location = make_location(session)
    in_time = seed(session, location, 12, reported=True, meldcode_step=5, report_delay=dt.timedelta(days=6, hours=23))
    late = seed(session, location, 12, reported=True, meldcode_step=5, report_delay=dt.timedelta(days=8),
                occurred_at=lambda i: in_q2(30 + i))

    body = stats(client, FUNNEL, analyst, period="2026-Q2", groupBy="municipality")

    total = body["total"]
    assert body["decisionDays"] == 7
    assert total["decidedInTime"] == expected_cell(in_time)
    near(total["decidedInTime"], 12)
    assert total["decidedInTimeShare"] == round(total["decidedInTime"]["value"] / total["signals"]["value"], 3)
    assert total["stillOpen"] == {"value": 0, "suppressed": False}
    assert late


def test_a_municipality_with_more_follow_up_days_counts_later_decisions_in_time(client, session, analyst):
    location = make_location(session)
    seed(session, location, 12, reported=True, meldcode_step=5, report_delay=dt.timedelta(days=6))
    late = seed(session, location, 12, reported=True, meldcode_step=5, report_delay=dt.timedelta(days=9),
                occurred_at=lambda i: in_q2(30 + i))
    session.add(MunicipalityGuidance(municipality_code="GM0014", routes=[], follow_up_days=10))
    session.flush()

    body = stats(client, FUNNEL, analyst, period="2026-Q2", groupBy="municipality")

    assert body["decisionDays"] == 10
    near(body["total"]["decidedInTime"], 24)
    assert late


def test_open_signals_below_k_are_suppressed_and_so_is_a_suppressed_units_change(client, session, analyst):
    busy, small = make_location(session), make_location(session)
    seed(session, busy, 20, reported=True, meldcode_step=5)
    seed(session, busy, 4, meldcode_step=2, occurred_at=lambda i: in_q2(40 + i))
    seed(session, small, 3, meldcode_step=1)

    body = stats(client, FUNNEL, analyst, period="2026-Q2", groupBy="institution")

    rows = {row["unit"]["id"]: row for row in body["units"]}
    busy_row, small_row = rows[str(busy.institution_id)], rows[str(small.institution_id)]
    assert busy_row["stillOpen"] == SUPPRESSED  # 4 open: below K
    near(busy_row["signals"], 24)
    assert small_row["signals"] == SUPPRESSED
    assert (small_row["stillOpen"], small_row["decidedInTime"]) == (SUPPRESSED, SUPPRESSED)
    assert small_row["change"] is None and small_row["decidedInTimeShare"] is None
    assert busy_row["change"]["stillOpen"] is None  # not released now: no change shown


def test_the_change_is_against_the_previous_periods_released_values(client, session, analyst):
    location = make_location(session)
    seed(session, location, 15, meldcode_step=1, occurred_at=lambda i: Q1_START + dt.timedelta(days=i, hours=12))
    now_open = seed(session, location, 30, meldcode_step=1)

    q2 = stats(client, FUNNEL, analyst, period="2026-Q2", groupBy="municipality")
    q1 = stats(client, FUNNEL, analyst, period="2026-Q1", groupBy="municipality")

    assert q2["previousPeriod"] == "2026-Q1"
    assert q2["total"]["stillOpen"] == expected_cell(now_open)
    assert q2["total"]["change"]["stillOpen"] == q2["total"]["stillOpen"]["value"] - q1["total"]["stillOpen"]["value"]
    assert q2["total"]["change"]["signals"] == q2["total"]["signals"]["value"] - q1["total"]["signals"]["value"]
    assert all(row["stillOpen"]["value"] % 5 == 0 for row in (q1["total"], q2["total"]))


def test_domain_open_and_decided_are_tallied_from_the_periods_own_records(session):
    location = make_location(session)
    seed(session, location, 3, meldcode_step=4)
    seed(session, location, 2, reported=True, meldcode_step=2, report_delay=dt.timedelta(days=1))
    seed(session, location, 1, meldcode_step=5)
    caller = Caller(uuid.uuid4(), Role.ANALYST, None, ("GM0014",))
    found = _follow_through(session, caller, Query("location"), parse_period("2026-Q2", dt.date(2026, 11, 20)), 7)

    tallies = found[(str(location.id),)]
    assert set(tallies) == {"open", "decided_in_time"}
    assert (tallies["open"].counts["incidents"], tallies["decided_in_time"].counts["incidents"]) == (3, 2)
    assert tallies["open"].released("incidents", DisclosureRules()).suppressed  # 3: below K, never shown raw


def test_in_a_filtered_funnel_a_zero_still_open_is_suppressed_like_every_attribute_cell(client, session, analyst):
    """Filtered by kind, the stages are attribute cells; `stillOpen` and `decidedInTime` too, so an exact zero
    cannot tell that every signal of that kind was decided."""
    location = make_location(session)
    seed(session, location, 30, kind="absence", meldcode_step=5)
    seed(session, location, 12, kind="recruitmentAttempt", meldcode_step=1)

    unfiltered = stats(client, FUNNEL, analyst, period="2026-Q2", groupBy="institution")
    filtered = stats(client, FUNNEL, analyst, period="2026-Q2", groupBy="institution", kind="absence")

    assert unfiltered["units"][0]["stillOpen"]["suppressed"] is False  # 12 open of 42: released
    for row in (filtered["units"][0], filtered["total"]):
        assert row["stillOpen"] == SUPPRESSED, row  # the true count is 0
        assert row["decidedInTime"] == SUPPRESSED, row
