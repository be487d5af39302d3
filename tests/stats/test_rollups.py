"""Rollups kept on the write path agree with a rebuild from the incidents, whatever happened to them."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter, defaultdict
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.incidents import service as incidents
from service.incidents.models import Incident, Status
from service.periods import AMSTERDAM
from service.registry.models import Location
from service.stats import rollups
from service.stats.disclosure import contributor_noise, resident_key
from service.stats.models import ResidentRollup, Rollup, UnitResident, UnitTally
from tests.factories import make_institution, make_location
from tests.stats.factories import KEYS, caller_of, incident_values, seed

# Bucketing at named calendar moments (DST, ISO weeks across a year end) is the point here.
pytestmark = pytest.mark.clock("2026-11-20")

REASON = "Verkeerd ingevoerd."
KINDS = ("recruitmentAttempt", "suspiciousVisitor", "absence")
EXPLOITATION_TYPES = ("criminal", "sexual", "unknown")
AGE_BANDS = ("12to15", "16to17", "unknown")
RESIDENTS = (None, "R-1", "R-2", "R-3")
# Moments on either side of local month, week and year boundaries (Amsterdam), in summer and winter time.
MOMENTS = (
    dt.datetime(2026, 3, 31, 21, 59, tzinfo=dt.UTC),  # Tuesday 31 March 23:59 CEST
    dt.datetime(2026, 3, 31, 22, 0, tzinfo=dt.UTC),  # Wednesday 1 April 00:00 CEST
    dt.datetime(2026, 5, 3, 21, 59, tzinfo=dt.UTC),  # Sunday 23:59, 2026-W18
    dt.datetime(2026, 5, 3, 22, 0, tzinfo=dt.UTC),  # Monday 00:00, 2026-W19
    dt.datetime(2026, 6, 30, 22, 30, tzinfo=dt.UTC),  # 1 July 00:30 CEST
    dt.datetime(2025, 12, 31, 22, 30, tzinfo=dt.UTC),  # 31 December 23:30 CET, 2026-W01
    dt.datetime(2025, 12, 31, 23, 30, tzinfo=dt.UTC),  # 1 January 00:30 CET, 2026-W01
)
STEPS = (None, 1, 2, 3, 4, 5)  # 4 too: the boundary between step2 and step5

specs = st.fixed_dictionaries({
    "location": st.integers(0, 2), "kind": st.sampled_from(KINDS),
    "exploitation_type": st.sampled_from(EXPLOITATION_TYPES), "occurred_at": st.sampled_from(MOMENTS),
    "resident": st.sampled_from(RESIDENTS), "age_band": st.sampled_from(AGE_BANDS),
    "meldcode_step": st.sampled_from(STEPS), "reported": st.booleans(),
})
patches = st.fixed_dictionaries({}, optional={
    "location": st.integers(0, 2), "kind": st.sampled_from(KINDS),
    "exploitation_type": st.sampled_from(EXPLOITATION_TYPES), "occurred_at": st.sampled_from(MOMENTS),
    "resident": st.sampled_from(RESIDENTS), "age_band": st.sampled_from(AGE_BANDS),
    "meldcode_step": st.sampled_from(STEPS), "reported": st.booleans(),
}).filter(bool)
changes = st.lists(st.one_of(
    st.tuples(st.just("create"), st.lists(specs, min_size=1, max_size=4)),
    st.tuples(st.just("correct"), st.integers(0, 50), patches),
    st.tuples(st.just("retract"), st.integers(0, 50)),
), min_size=1, max_size=12)
# A first batch, so there is always something to correct or retract.
histories = st.tuples(st.lists(specs, min_size=1, max_size=6), changes)


def rollup_rows(session: Session) -> dict[str, dict[tuple[Any, ...], tuple[int, ...]]]:
    """The rollup tables as {primary key: values}, leaving out rows whose every value is zero; what is pending is
    folded first, as a statistics read does."""
    rollups.fold(session)
    found = {}
    for table in (Rollup, ResidentRollup, UnitTally, UnitResident):
        keys = [c.name for c in table.__table__.primary_key.columns]
        values = [c.name for c in table.__table__.columns if c.name not in keys]
        rows = session.execute(select(*table.__table__.columns)).mappings()
        found[table.__tablename__] = {tuple(str(row[k]) for k in keys): tuple(row[v] for v in values)
                                      for row in rows if any(row[v] for v in values)}
    return found


def noise_of(incident: Incident) -> int:
    """The incident's contributor noise: its resident's, or its own when it names none."""
    return contributor_noise(incident.resident_pseudonym or str(incident.id))


def recounted(session: Session) -> dict[tuple[Any, ...], Counter[str]]:
    """incident_rollup as computed here from the active incidents, independently of the service's rollup code."""
    cells: dict[tuple[Any, ...], Counter[str]] = defaultdict(Counter)
    for incident in session.scalars(select(Incident).where(Incident.status == Status.ACTIVE)):
        day = incident.occurred_at.astimezone(AMSTERDAM).date()
        year, week, _ = day.isocalendar()
        step = incident.meldcode_step or 0
        for grain, period in (("week", f"{year}-W{week:02d}"), ("month", f"{day.year}-{day.month:02d}")):
            cell = cells[(grain, period, str(incident.location_id), incident.kind, incident.exploitation_type,
                          incident.resident_age_band)]
            for measure, counted in (("incidents", True), ("step2", step >= 2), ("step5", step >= 5),
                                     ("reported", bool(incident.reported_to))):
                if counted:
                    cell[measure] += 1
                    cell["key_sum" if measure == "incidents" else f"{measure}_key_sum"] += incident.record_key
                    cell["noise_sum" if measure == "incidents" else f"{measure}_noise_sum"] += noise_of(incident)
    return cells


def recounted_units(session: Session) -> dict[tuple[Any, ...], tuple[int, ...]]:
    """unit_tally as computed here from the active incidents, independently of the service's rollup code."""
    municipality = dict(session.execute(select(Location.id, Location.municipality_code)).all())
    counts: dict[tuple[Any, ...], Counter[str]] = defaultdict(Counter)
    residents: dict[tuple[Any, ...], dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for incident in session.scalars(select(Incident).where(Incident.status == Status.ACTIVE)):
        day = incident.occurred_at.astimezone(AMSTERDAM).date()
        code, step = municipality[incident.location_id], incident.meldcode_step or 0
        for period in (("month", f"{day.year}-{day.month:02d}"), ("quarter", f"{day.year}-Q{(day.month + 2) // 3}"),
                       ("year", str(day.year))):
            for unit in (("location", str(incident.location_id), code),
                         ("institution", str(incident.institution_id), ""),
                         ("institution", str(incident.institution_id), code)):
                key = (*period, *unit)
                for measure, counted in (("incidents", True), ("step2", step >= 2), ("step5", step >= 5),
                                         ("reported", bool(incident.reported_to))):
                    if counted:
                        counts[key][measure] += 1
                        counts[key]["key_sum" if measure == "incidents" else f"{measure}_key_sum"] += \
                            incident.record_key
                        counts[key]["noise_sum" if measure == "incidents" else f"{measure}_noise_sum"] += \
                            noise_of(incident)
                        if incident.resident_pseudonym:
                            counts[key][f"{measure}_of_residents"] += 1
                            residents[key][incident.resident_pseudonym][measure] += 1
    for key, by_resident in residents.items():
        counts[key]["residents"] = len(by_resident)
        counts[key]["residents_key_sum"] = sum(resident_key(p) for p in by_resident)
        counts[key]["residents_noise_sum"] = sum(contributor_noise(p) for p in by_resident)
        for measure in ("incidents", "step2", "step5", "reported"):
            largest = [*sorted((c[measure] for c in by_resident.values() if c[measure]), reverse=True), 0, 0, 0]
            for i in range(3):
                counts[key][f"{measure}_top{i + 1}"] = largest[i]
    values = [c.name for c in UnitTally.__table__.columns if not c.primary_key]
    return {key: tuple(c[v] for v in values) for key, c in counts.items()}


def active_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Incident).where(Incident.status == Status.ACTIVE)) or 0


def as_rows(cells: dict[tuple[Any, ...], Counter[str]]) -> dict[tuple[Any, ...], tuple[int, ...]]:
    values = [c.name for c in Rollup.__table__.columns if c.name not in Rollup.__table__.primary_key.columns]
    return {cell: tuple(counts[v] for v in values) for cell, counts in cells.items()}


def patch_of(change: dict[str, Any], incident: Incident, locations: list[Location]) -> dict[str, Any]:
    """A validated-shape correction that keeps the incident valid as a whole."""
    patch: dict[str, Any] = {"reason": REASON}
    if "location" in change:
        patch["location_id"] = locations[change["location"]].id
    if "kind" in change:
        shape = incident_values(incident.location_id, kind=change["kind"])
        patch |= {"kind": change["kind"], "indicators": shape["indicators"], "absence": shape["absence"],
                  "visitor": shape["visitor"]}
    if "exploitation_type" in change:
        patch["exploitation_type"] = change["exploitation_type"]
    if "occurred_at" in change:
        patch["occurred_at"] = change["occurred_at"]
    if "resident" in change:
        patch["resident_ref"] = change["resident"]
    if "age_band" in change:
        patch["resident_age_band"] = change["age_band"]
    follow_up: dict[str, Any] = {}
    if "meldcode_step" in change:
        follow_up["meldcode_step"] = change["meldcode_step"]
    if "reported" in change:
        # Reported after every moment above, and before today: valid whatever occurredAt becomes.
        reported = change["reported"]
        follow_up |= {"reported_to": ["police"] if reported else [],
                      "reported_at": dt.datetime(2026, 8, 1, tzinfo=dt.UTC) if reported else None}
    if follow_up:
        patch["follow_up"] = follow_up
    return patch


def spec_values(spec: dict[str, Any], locations: list[Location]) -> dict[str, Any]:
    values = incident_values(locations[spec["location"]], **{k: v for k, v in spec.items() if k != "location"})
    if spec["reported"]:
        values["follow_up"]["reported_at"] = dt.datetime(2026, 8, 1, tzinfo=dt.UTC)
    return values


@pytest.fixture
def locations(session) -> list[Location]:  # type: ignore[no-untyped-def]
    """Three locations of one institution, the third in another municipality than the institution's."""
    institution = make_institution(session)
    return [make_location(session, institution), make_location(session, institution),
            make_location(session, institution, municipality_code="GM0363")]


@settings(max_examples=25, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories)
def test_incremental_rollups_equal_a_rebuild_after_any_sequence_of_changes(session, locations, history):
    caller = caller_of(locations[0].institution_id)
    savepoint = session.begin_nested()  # each example starts from no incidents
    try:
        first, steps = history
        recorded: list[uuid.UUID] = []
        for step in [("create", first), *steps]:
            event(step[0])
            active = [i for i in recorded if session.get(Incident, i).status is Status.ACTIVE]
            if step[0] == "create":
                items = [spec_values(spec, locations) for spec in step[1]]
                created = incidents.record_incidents(session, caller, items, KEYS, batch=len(items) > 1)
                recorded += [incident.id for incident in created]
            elif step[0] == "correct" and active:
                incident = session.get(Incident, active[step[1] % len(active)])
                incidents.correct_incident(session, caller, incident.id, patch_of(step[2], incident, locations),
                                           KEYS, if_match=f'"{incident.version}"')
            elif step[0] == "retract" and active:
                incidents.retract_incident(session, caller, active[step[1] % len(active)], REASON)

        incremental = rollup_rows(session)
        assert incremental["incident_rollup"] == as_rows(recounted(session))
        assert incremental["unit_tally"] == recounted_units(session)
        rebuilt_count = rollups.rebuild(session, chunk=3)
        assert rollup_rows(session) == incremental
        assert rebuilt_count == active_count(session)
    finally:
        savepoint.rollback()
        session.expire_all()



def cells_of(session: Session, location: Location) -> dict[tuple[str, ...], tuple[int, ...]]:
    """incident_rollup rows of one location, without the location and without all-zero rows."""
    rows = rollup_rows(session)["incident_rollup"]
    return {(grain, period, kind, etype, band): values
            for (grain, period, location_id, kind, etype, band), values in rows.items()
            if location_id == str(location.id)}


def test_a_new_incident_counts_once_in_its_week_and_its_month(session, locations):
    [incident] = seed(session, locations[0], 1, occurred_at=dt.datetime(2026, 6, 30, 22, 30, tzinfo=dt.UTC),
                      meldcode_step=5, reported=True, residents=["R-9"])
    key, noise = incident.record_key, noise_of(incident)

    assert cells_of(session, locations[0]) == {
        ("week", "2026-W27", "recruitmentAttempt", "criminal", "16to17"): (1, key, noise) * 4,
        ("month", "2026-07", "recruitmentAttempt", "criminal", "16to17"): (1, key, noise) * 4,
    }
    residents = rollup_rows(session)["resident_rollup"]
    assert sorted(k[:2] + k[3:] for k in residents) == [
        ("month", "2026-07", "recruitmentAttempt", "criminal", "16to17", incident.resident_pseudonym),
        ("week", "2026-W27", "recruitmentAttempt", "criminal", "16to17", incident.resident_pseudonym),
    ]
    assert set(residents.values()) == {(1, 1, 1, 1)}


def test_a_retracted_incident_leaves_every_rollup(session, locations):
    kept, retracted = seed(session, locations[0], 2, residents=["R-1", "R-2"], meldcode_step=5, reported=True)
    with_both = rollup_rows(session)

    incidents.retract_incident(session, caller_of(locations[0].institution_id), retracted.id, REASON)

    after = rollup_rows(session)
    assert after != with_both
    assert set(after["incident_rollup"].values()) == {(1, kept.record_key, noise_of(kept)) * 4}
    assert {k[-1] for k in after["resident_rollup"]} == {kept.resident_pseudonym}
    incidents.retract_incident(session, caller_of(locations[0].institution_id), kept.id, REASON)
    assert rollup_rows(session) == {"incident_rollup": {}, "resident_rollup": {}, "unit_tally": {}, "unit_resident": {}}


def test_a_correction_moves_an_incident_between_cells(session, locations):
    [incident] = seed(session, locations[0], 1, occurred_at=dt.datetime(2026, 3, 31, 21, 59, tzinfo=dt.UTC))
    key, noise = incident.record_key, noise_of(incident)
    assert cells_of(session, locations[0]) == {
        ("week", "2026-W14", "recruitmentAttempt", "criminal", "16to17"): (1, key, noise) + (0,) * 9,
        ("month", "2026-03", "recruitmentAttempt", "criminal", "16to17"): (1, key, noise) + (0,) * 9,
    }

    # One minute later in UTC is 1 April in Amsterdam; the location, kind and age band change too.
    patch = patch_of({"occurred_at": dt.datetime(2026, 3, 31, 22, 0, tzinfo=dt.UTC), "location": 1,
                      "kind": "absence", "age_band": "12to15", "meldcode_step": 2}, incident, locations)
    incidents.correct_incident(session, caller_of(locations[0].institution_id), incident.id, patch, KEYS,
                               if_match='"1"')

    assert cells_of(session, locations[0]) == {}
    assert cells_of(session, locations[1]) == {
        ("week", "2026-W14", "absence", "criminal", "12to15"): (1, key, noise) * 2 + (0,) * 6,
        ("month", "2026-04", "absence", "criminal", "12to15"): (1, key, noise) * 2 + (0,) * 6,
    }


def test_a_correction_of_the_resident_moves_its_resident_rollup(session, locations):
    [incident] = seed(session, locations[0], 1, residents=["R-1"])
    before = {k[-1] for k in rollup_rows(session)["resident_rollup"]}

    patch = patch_of({"resident": "R-2"}, incident, locations)
    incidents.correct_incident(session, caller_of(locations[0].institution_id), incident.id, patch, KEYS,
                               if_match='"1"')

    after = {k[-1] for k in rollup_rows(session)["resident_rollup"]}
    assert before == {KEYS.resident(locations[0].institution_id, "R-1")}
    assert after == {KEYS.resident(locations[0].institution_id, "R-2")}
    incidents.correct_incident(session, caller_of(locations[0].institution_id), incident.id,
                               patch_of({"resident": None}, incident, locations), KEYS, if_match='"2"')
    assert rollup_rows(session)["resident_rollup"] == {}
    assert len(rollup_rows(session)["incident_rollup"]) == 2


@pytest.mark.parametrize("change", ["correct the resident", "retract"])
def test_no_row_of_a_resident_stays_once_its_incidents_are_gone(session, locations, change):
    """Not even a row of zeros: a pseudonym entered by mistake must leave the rollups with the mistake."""
    [incident] = seed(session, locations[0], 1, residents=["R-wrong"])
    wrong = KEYS.resident(locations[0].institution_id, "R-wrong")
    caller = caller_of(locations[0].institution_id)

    if change == "retract":
        incidents.retract_incident(session, caller, incident.id, REASON)
    else:
        incidents.correct_incident(session, caller, incident.id, patch_of({"resident": "R-right"}, incident, locations),
                                   KEYS, if_match='"1"')

    for table in (ResidentRollup, UnitResident):
        assert session.scalar(select(func.count()).select_from(table).where(table.resident_pseudonym == wrong)) == 0


def test_rebuild_returns_the_number_of_active_incidents_and_reproduces_the_rollups(session, locations):
    recorded = seed(session, locations[0], 7, residents=["R-1", "R-2", None]) + seed(
        session, locations[1], 4, kind="absence", meldcode_step=2)
    incidents.retract_incident(session, caller_of(locations[0].institution_id), recorded[0].id, REASON)
    incremental = rollup_rows(session)

    assert rollups.rebuild(session) == 10
    assert rollup_rows(session) == incremental
    assert rollups.rebuild(session, chunk=4) == 10
    assert rollup_rows(session) == incremental


def test_rebuild_of_nothing_empties_the_rollups(session, locations):
    assert rollups.rebuild(session) == 0
    assert rollup_rows(session) == {"incident_rollup": {}, "resident_rollup": {}, "unit_tally": {}, "unit_resident": {}}
