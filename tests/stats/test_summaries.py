"""The unit summaries answer exactly what summing the cell rollups answers, for every grouping, scope and period;
and statistics reach the wire exactly as their schemas would dump them.

The register below is built to break a wrong merge: an institution with locations in two municipalities, residents
who move between locations (and municipalities) within a quarter, incidents without a resident, several steps.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from service.audit.keys import ChainKeys
from service.auth.access import NATIONAL, Caller
from service.auth.models import Role
from service.errors import Forbidden
from service.incidents.models import Incident, Status
from service.incidents.service import correct_incident, record_incidents, retract_incident
from service.periods import parse_period, period_range
from service.retention import purge
from service.schemas import camelised
from service.stats import rollups, service, tallies
from service.stats.disclosure import DisclosureRules
from service.stats.models import KEY_SUMS, MEASURES, NOISE_SUMS
from service.stats.schemas import FunnelOut, HotspotsOut, TrendsOut
from tests.factories import make_institution, make_location
from tests.stats.factories import KEYS, caller_of, seed
from tests.stats.test_rollups import (
    AGE_BANDS,
    EXPLOITATION_TYPES,
    KINDS,
    MOMENTS,
    REASON,
    STEPS,
    patch_of,
    recounted_units,
    rollup_rows,
    spec_values,
)

# Named periods of 2026 and 2025, read as of late 2026.
pytestmark = pytest.mark.clock("2026-11-20")

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
                                  "residents_key_sum": counts.get("residents_key_sum", 0),
                                  "residents_noise_sum": counts.get("residents_noise_sum", 0)}
        for m in MEASURES:
            values |= {m: counts.get(m, 0), KEY_SUMS[m]: counts.get(KEY_SUMS[m], 0),
                       NOISE_SUMS[m]: counts.get(NOISE_SUMS[m], 0),
                       f"{m}_of_residents": counts.get(f"{m}_of_residents", 0),
                       f"{m}_tops": [v for v in tally.tops.get(m, []) if v > 0]}
        # Each institution's part, as the release of a shared cell needs it.
        values["parts"] = sorted(tuple(part.get(c, 0) for c in sorted(part)) for part in tally.parts
                                 if part.get("incidents", 0))
        if any(v for v in values.values()):
            found[key] = values
    return found


@pytest.mark.parametrize("period", ["2026-04", "2026-Q2", "2026-Q3", "2026"])
@pytest.mark.parametrize("group_by", ["location", "institution", "municipality"])
@pytest.mark.parametrize("codes", [(NATIONAL,), ("GM0014",), ("GM0363",)])
@pytest.mark.parametrize("by_unit", [True, False])
def test_summaries_equal_the_sum_of_cells(session, register, period, group_by, codes, by_unit):
    caller, query, fixed = analyst(*codes), tallies.Query(group_by), parse_period(period, TODAY)

    summarised = tallies.from_summaries(session, caller, query, [fixed], by_unit=by_unit, breakdown=None)
    summed = tallies.from_cells(session, caller, query, fixed, MEASURES, by_unit=by_unit, breakdown=None)

    assert summarised is not None
    assert comparable(summarised[0]) == comparable(summed)
    assert comparable(summed)  # the register has incidents in every period asked


def test_the_summaries_count_a_resident_who_moved_once(session, register):
    caller, query = analyst(NATIONAL), tallies.Query("institution")

    [[whole]] = [found.values() for found in tallies.from_summaries(
        session, caller, query, [parse_period("2026-Q2", TODAY)], by_unit=False, breakdown=None) or []]

    # Residents are R-move-1 and R-move-2 at the north institution's three locations, R-stay there, and R-move-1
    # and R-south at the south one: the same reference at another institution is another resident.
    assert whole.counts["residents"] == 5


@pytest.mark.parametrize(("codes", "query", "period"), [
    (("GM0014", "GM0363"), tallies.Query("institution"), "2026-Q2"),  # several municipalities
    ((NATIONAL,), tallies.Query("postcode4"), "2026-Q2"),
    ((NATIONAL,), tallies.Query("institution", kind="absence"), "2026-Q2"),
    ((NATIONAL,), tallies.Query("institution"), "2026-W20"),
])
def test_questions_the_summaries_do_not_answer_are_summed_from_cells(session, codes, query, period):
    assert tallies.from_summaries(session, analyst(*codes), query, [parse_period(period, TODAY)], by_unit=True,
                               breakdown=None) is None


@pytest.mark.parametrize(("name", "schema"), [("hotspots", HotspotsOut), ("breakdown", HotspotsOut),
                                              ("trends", TrendsOut), ("weekly", TrendsOut), ("funnel", FunnelOut)])
@pytest.mark.parametrize("group_by", ["location", "institution", "municipality", "postcode4"])
@pytest.mark.parametrize(("codes", "k"), [((NATIONAL,), 5), (("GM0363",), 10), (("GM9999",), 5)])  # GM9999: empty
def test_statistics_go_on_the_wire_exactly_as_their_schema_dumps_them(session, register, name, schema, group_by,
                                                                       codes, k):
    caller, rules, q2 = analyst(*codes), DisclosureRules(k=k), parse_period("2026-Q2", TODAY)
    data = {
        "hotspots": lambda: service.hotspots(session, caller, tallies.Query(group_by), q2, rules),
        "breakdown": lambda: service.hotspots(session, caller, tallies.Query(group_by, breakdown="ageBand"), q2, rules),
        "trends": lambda: service.trends(session, caller, tallies.Query(group_by),
                                         period_range(parse_period("2026-03", TODAY), parse_period("2026-09", TODAY),
                                                      12), rules),
        "weekly": lambda: service.trends(session, caller, tallies.Query(group_by),
                                         period_range(parse_period("2026-W14", TODAY), parse_period("2026-W18", TODAY),
                                                      12), rules),
        "funnel": lambda: service.reporting_funnel(session, caller, tallies.Query(group_by), q2, rules),
    }[name]()

    # As JSON text: 5 and 5.0 differ there, and a key the schema does not name would show.
    assert json.dumps(camelised(data), sort_keys=True) == json.dumps(schema().dump(data), sort_keys=True)


@pytest.mark.parametrize("group_by", ["location", "institution", "municipality", "postcode4"])
def test_several_periods_read_together_equal_each_read_alone(session, register, group_by):
    caller, query = analyst(NATIONAL), tallies.Query(group_by)
    periods = period_range(parse_period("2026-03", TODAY), parse_period("2026-09", TODAY), 12)

    together = tallies.unit_tallies(session, caller, query, periods, MEASURES)
    alone = [tallies.unit_tallies(session, caller, query, [p], MEASURES)[0] for p in periods]

    assert [(comparable(u), comparable({(): w})) for u, w in together] == \
        [(comparable(u), comparable({(): w})) for u, w in alone]
    units, places = tallies.units_and_places(session, caller, query, periods)
    assert places == [tallies.units_and_places(session, caller, query, [p])[1][0] for p in periods]
    assert units == tallies.units_and_places(session, caller, query, periods[:1])[0]


# --- any history, two institutions, six residents: the summaries stay exact ----------------------------------------

RESIDENT_REFS = (None, "R-1", "R-2", "R-3", "R-4", "R-5", "R-6")  # more than the top 3, so some stay outside it
MOVES = st.integers(0, 4)
spec = st.fixed_dictionaries({
    "location": MOVES, "kind": st.sampled_from(KINDS), "exploitation_type": st.sampled_from(EXPLOITATION_TYPES),
    "occurred_at": st.sampled_from(MOMENTS), "resident": st.sampled_from(RESIDENT_REFS),
    "age_band": st.sampled_from(AGE_BANDS), "meldcode_step": st.sampled_from(STEPS), "reported": st.booleans(),
})
patch = st.fixed_dictionaries({}, optional={
    "location": MOVES, "occurred_at": st.sampled_from(MOMENTS), "resident": st.sampled_from(RESIDENT_REFS),
    "meldcode_step": st.sampled_from(STEPS), "reported": st.booleans(),
}).filter(bool)
history = st.tuples(st.lists(spec, min_size=3, max_size=12), st.lists(st.one_of(
    st.tuples(st.just("create"), st.lists(spec, min_size=1, max_size=8)),
    st.tuples(st.just("correct"), st.integers(0, 80), patch),
    st.tuples(st.just("retract"), st.integers(0, 80)),
    st.tuples(st.just("purge")),
), min_size=1, max_size=16))
CALLERS = [(NATIONAL,), ("GM0014",), ("GM0363",)]
LABELS = ("2026-03", "2026-04", "2026-Q2", "2026", "2025")


@pytest.fixture
def spread(session) -> list[Any]:  # type: ignore[no-untyped-def]
    """Five locations of two institutions, each institution with a location in the other's municipality (as plain
    values: a purge expunges the session's objects)."""
    north, south = make_institution(session, municipality_code="GM0014"), make_institution(session,
                                                                                         municipality_code="GM0363")
    made = [make_location(session, north), make_location(session, north),
            make_location(session, north, municipality_code="GM0363"), make_location(session, south),
            make_location(session, south, municipality_code="GM0014")]
    return [SimpleNamespace(id=location.id, institution_id=location.institution_id) for location in made]


def _replay(session: Any, spread: list[Any], steps: list[Any]) -> None:
    recorded: list[uuid.UUID] = []
    for step in steps:
        event(step[0])
        active = [i for i in recorded if (found := session.get(Incident, i)) is not None
                  and found.status is Status.ACTIVE]
        if step[0] == "create":
            by_institution: dict[uuid.UUID, list[Any]] = {}
            for item in step[1]:
                by_institution.setdefault(spread[item["location"]].institution_id, []).append(item)
            for institution, items in by_institution.items():
                recorded += [i.id for i in record_incidents(session, caller_of(institution),
                                                            [spec_values(s, spread) for s in items], KEYS,
                                                            batch=len(items) > 1)]
        elif step[0] == "correct" and active:
            incident = session.get(Incident, active[step[1] % len(active)])
            change = dict(step[2])
            if "location" in change:  # to one of its own institution's locations
                own = [n for n, location in enumerate(spread) if location.institution_id == incident.institution_id]
                change["location"] = own[change["location"] % len(own)]
            correct_incident(session, caller_of(incident.institution_id), incident.id,
                             patch_of(change, incident, spread), KEYS, if_match=f'"{incident.version}"')
        elif step[0] == "retract" and active:
            incident = session.get(Incident, active[step[1] % len(active)])
            retract_incident(session, caller_of(incident.institution_id), incident.id, REASON)
        elif step[0] == "purge":
            purge(session, ChainKeys({1: b"a" * 32}), years=1, now=dt.datetime(2027, 1, 1, 0, 30, tzinfo=dt.UTC))
            recorded = [i for i in recorded if session.get(Incident, i) is not None]


@settings(max_examples=40, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@pytest.mark.slow
@given(steps=history)
def test_after_any_history_summaries_equal_a_recount_the_cells_and_a_rebuild(session, spread, steps):
    savepoint = session.begin_nested()  # each example starts from no incidents
    try:
        first, rest = steps
        _replay(session, spread, [("create", first), *rest])

        written = rollup_rows(session)
        assert written["unit_tally"] == recounted_units(session)
        for codes in CALLERS:
            for group_by in ("location", "institution", "municipality"):
                for label in LABELS:
                    period, query = parse_period(label, TODAY), tallies.Query(group_by)
                    for by_unit in (True, False):
                        [summaries] = tallies.from_summaries(session, analyst(*codes), query, [period],
                                                             by_unit=by_unit, breakdown=None) or [{}]
                        cells = tallies.from_cells(session, analyst(*codes), query, period, MEASURES,
                                                   by_unit=by_unit, breakdown=None)
                        assert comparable(summaries) == comparable(cells), (codes, group_by, label, by_unit)
                        for n in (1, 2, 3):  # the dominance rule with every number of top contributors it allows
                            rules = DisclosureRules(k=5, dominance_n=n, dominance_share=0.5)
                            for key in summaries.keys() & cells.keys():
                                assert [summaries[key].released(m, rules) for m in MEASURES] == \
                                    [cells[key].released(m, rules) for m in MEASURES]
        rollups.rebuild(session, chunk=5)
        assert rollup_rows(session) == written
    finally:
        savepoint.rollback()
        session.expire_all()


@pytest.mark.parametrize("by_unit", [True, False])
def test_a_municipality_outside_the_scope_is_refused_by_the_summaries_too(session, register, by_unit):
    query, q2 = tallies.Query("location", municipality_code="GM0363"), parse_period("2026-Q2", TODAY)

    with pytest.raises(Forbidden):
        tallies.tallies(session, analyst("GM0014"), query, q2, by_unit=by_unit)
