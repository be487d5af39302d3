"""The unit summaries answer exactly what summing the cell rollups answers, for every grouping, scope and period;
and statistics reach the wire exactly as their schemas would dump them.

The register below is built to break a wrong merge: an institution with locations in two municipalities, residents
who move between locations (and municipalities) within a quarter, incidents without a resident, several steps.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest

from service.auth.access import NATIONAL, Caller
from service.auth.models import Role
from service.schemas import camelised
from service.stats import service
from service.stats.disclosure import DisclosureRules
from service.stats.models import KEY_SUMS, MEASURES
from service.stats.periods import parse_period, period_range
from service.stats.schemas import FunnelOut, HotspotsOut, TrendsOut
from tests.factories import make_institution, make_location
from tests.stats.factories import seed

TODAY = dt.date(2026, 11, 28)


def analyst(*codes: str) -> Caller:
    return Caller(uuid.uuid4(), Role.ANALYST, None, codes)


@pytest.fixture
def register(session) -> None:  # type: ignore[no-untyped-def]
    north, south = make_institution(session, municipality_code="GM0014"), make_institution(session)
    spread = [make_location(session, north), make_location(session, north, municipality_code="GM0363"),
              make_location(session, north, municipality_code="GM0363", postcode4="1012")]
    single = make_location(session, south)
    movers = ["R-move-1", "R-move-2", None, "R-stay"]
    for i, location in enumerate(spread):
        seed(session, location, 9 + i, residents=movers, meldcode_step=(2, 5, None)[i], reported=i == 1)
        seed(session, location, 4, occurred_at=dt.datetime(2026, 8, 3, 12, tzinfo=dt.UTC), residents=movers[:2])
    seed(session, single, 14, residents=["R-move-1", "R-south", None], meldcode_step=5, reported=True)


def comparable(tallies: dict[tuple[str, ...], Any]) -> dict[tuple[str, ...], dict[str, Any]]:
    """What a tally releases from: per measure its count, key sum, resident part and top contributions."""
    found = {}
    for key, tally in tallies.items():
        counts = tally.counts
        values: dict[str, Any] = {"residents": counts.get("residents", 0),
                                  "residents_key_sum": counts.get("residents_key_sum", 0)}
        for m in MEASURES:
            values |= {m: counts.get(m, 0), KEY_SUMS[m]: counts.get(KEY_SUMS[m], 0),
                       f"{m}_of_residents": counts.get(f"{m}_of_residents", 0),
                       f"{m}_tops": [v for v in tally.tops.get(m, []) if v > 0]}
        if any(v for v in values.values()):
            found[key] = values
    return found


@pytest.mark.parametrize("period", ["2026-04", "2026-Q2", "2026-Q3", "2026"])
@pytest.mark.parametrize("group_by", ["location", "institution", "municipality"])
@pytest.mark.parametrize("codes", [(NATIONAL,), ("GM0014",), ("GM0363",)])
@pytest.mark.parametrize("by_unit", [True, False])
def test_summaries_equal_the_sum_of_cells(session, register, period, group_by, codes, by_unit):
    caller, query, fixed = analyst(*codes), service.Query(group_by), parse_period(period, TODAY)

    summarised = service._summarised(session, caller, query, [fixed], by_unit=by_unit, breakdown=None)
    summed = service._summed(session, caller, query, fixed, MEASURES, by_unit=by_unit, breakdown=None)

    assert summarised is not None
    assert comparable(summarised[0]) == comparable(summed)
    assert comparable(summed)  # the register has incidents in every period asked


def test_the_summaries_count_a_resident_who_moved_once(session, register):
    caller, query = analyst(NATIONAL), service.Query("institution")

    [[whole]] = [found.values() for found in service._summarised(
        session, caller, query, [parse_period("2026-Q2", TODAY)], by_unit=False, breakdown=None) or []]

    # Residents are R-move-1 and R-move-2 at the north institution's three locations, R-stay there, and R-move-1
    # and R-south at the south one: the same reference at another institution is another resident.
    assert whole.counts["residents"] == 5


@pytest.mark.parametrize(("codes", "query", "period"), [
    (("GM0014", "GM0363"), service.Query("institution"), "2026-Q2"),  # several municipalities
    ((NATIONAL,), service.Query("postcode4"), "2026-Q2"),
    ((NATIONAL,), service.Query("institution", kind="absence"), "2026-Q2"),
    ((NATIONAL,), service.Query("institution"), "2026-W20"),
])
def test_questions_the_summaries_do_not_answer_are_summed_from_cells(session, codes, query, period):
    assert service._summarised(session, analyst(*codes), query, [parse_period(period, TODAY)], by_unit=True,
                               breakdown=None) is None


@pytest.mark.parametrize(("name", "schema"), [("hotspots", HotspotsOut), ("breakdown", HotspotsOut),
                                              ("trends", TrendsOut), ("funnel", FunnelOut)])
@pytest.mark.parametrize("group_by", ["location", "institution", "municipality", "postcode4"])
def test_statistics_go_on_the_wire_exactly_as_their_schema_dumps_them(session, register, name, schema, group_by):
    caller, rules, q2 = analyst(NATIONAL), DisclosureRules(k=5), parse_period("2026-Q2", TODAY)
    data = {
        "hotspots": lambda: service.hotspots(session, caller, service.Query(group_by), q2, rules),
        "breakdown": lambda: service.hotspots(session, caller, service.Query(group_by, breakdown="ageBand"), q2, rules),
        "trends": lambda: service.trends(session, caller, service.Query(group_by),
                                         period_range(parse_period("2026-03", TODAY), parse_period("2026-09", TODAY),
                                                      12), rules),
        "funnel": lambda: service.reporting_funnel(session, caller, service.Query(group_by), q2, rules),
    }[name]()

    # As JSON text: 5 and 5.0 differ there, and a key the schema does not name would show.
    assert json.dumps(camelised(data), sort_keys=True) == json.dumps(schema().dump(data), sort_keys=True)


@pytest.mark.parametrize("group_by", ["location", "institution", "municipality", "postcode4"])
def test_several_periods_read_together_equal_each_read_alone(session, register, group_by):
    caller, query = analyst(NATIONAL), service.Query(group_by)
    periods = period_range(parse_period("2026-03", TODAY), parse_period("2026-09", TODAY), 12)

    together = service.unit_tallies(session, caller, query, periods, MEASURES)
    alone = [service.unit_tallies(session, caller, query, [p], MEASURES)[0] for p in periods]

    assert [(comparable(u), comparable({(): w})) for u, w in together] == \
        [(comparable(u), comparable({(): w})) for u, w in alone]
    units, places = service.units_and_places(session, caller, query, periods)
    assert places == [service.units_and_places(session, caller, query, [p])[1][0] for p in periods]
    assert units == service.units_and_places(session, caller, query, periods[:1])[0]
