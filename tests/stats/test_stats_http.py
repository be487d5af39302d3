"""Statistics over HTTP: hotspots, trends and the reporting funnel for analysts, under disclosure control."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import event, select
from sqlalchemy.engine import Connection

from service.auth.models import Role
from service.incidents.models import Incident
from service.periods import AMSTERDAM, DAYS_PER_MONTH
from service.registry.models import Capacity, Institution, Location
from service.stats import rollups
from service.stats.disclosure import ptable_version
from service.stats.funnel import eb_estimates, funnel_band, funnel_limits
from tests.factories import make_institution, make_location
from tests.stats.factories import expected_cell, expected_residents, in_q2, seed

# These tests build 2026 on purpose (quarter lengths, summer time): they run on 2026-11-20.
# tests/stats/test_stats_any_day.py asks the same questions relative to whatever day it is.
pytestmark = pytest.mark.clock("2026-11-20")

HOTSPOTS = "/v1/stats/hotspots"
TRENDS = "/v1/stats/trends"
FUNNEL = "/v1/stats/reporting-funnel"
PROBLEM = "application/problem+json"
NOTE = "Stond lang bij het hek te wachten en sprak twee bewoners aan."
HEX64 = re.compile(r"[0-9a-fA-F]{64}")
# Capacity of the factory location: 12 places since 2024; 2026-Q2 has 91 days, 2026-Q1 90.
EXPOSURE_Q2 = 12 * 91 / DAYS_PER_MONTH
EXPOSURE_Q1 = 12 * 90 / DAYS_PER_MONTH
DISCLOSURE = {"k": 10, "dominance": {"n": 2, "maxShare": 0.75}, "roundingBase": 5,
              "perturbationTable": ptable_version()}
ZERO = {"value": 0, "suppressed": False}
SUPPRESSED = {"value": None, "suppressed": True}


def values_under(document: Any, key: str) -> Iterator[Any]:
    """Every value stored under `key` anywhere in a JSON document."""
    if isinstance(document, dict):
        for name, value in document.items():
            if name == key:
                yield value
            yield from values_under(value, key)
    elif isinstance(document, list):
        for value in document:
            yield from values_under(value, key)


def assert_disclosed(body: Any) -> None:
    """What no statistics response may carry: a pseudonym, or a released count between 1 and K-1."""
    text = json.dumps(body)
    assert not HEX64.search(text)
    assert not [v for v in values_under(body, "value") if isinstance(v, int) and not isinstance(v, bool)
                and 1 <= v <= 9]
    for cell in [c for c in values_under(body, "incidents") if isinstance(c, dict)]:
        assert cell["suppressed"] is (cell["value"] is None)
        assert cell["value"] is None or cell["value"] % 5 == 0


def stats(client: FlaskClient, path: str, headers: dict[str, str], **params: str) -> dict[str, Any]:
    """GET a statistics route that must answer 200, checking what every statistics body must not carry."""
    response = client.get(path, query_string=params, headers=headers)
    assert response.status_code == 200, response.get_json()
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert_disclosed(body)
    return body


def hotspots(client: FlaskClient, headers: dict[str, str], **params: str) -> dict[str, Any]:
    return stats(client, HOTSPOTS, headers, **({"period": "2026-Q2"} | params))


def limits_at(expected: float) -> dict[str, float]:
    (lower95, upper95), (lower998, upper998) = funnel_limits(expected, 0.95), funnel_limits(expected, 0.998)
    return {"lower95": round(lower95, 2), "upper95": round(upper95, 2), "lower998": round(lower998, 2),
            "upper998": round(upper998, 2)}


def cell_of(body: dict[str, Any], unit_id: object, field: str = "incidents") -> dict[str, Any]:
    [row] = [row for row in body["units"] if row["unit"]["id"] == str(unit_id)]
    return row[field]


def near(cell: dict[str, Any], truth: int) -> None:
    """A released cell: a multiple of 5 within one rounding step and a third (the contributor noise) of the count."""
    assert cell["suppressed"] is False
    assert cell["value"] % 5 == 0
    assert abs(cell["value"] - truth) < 5 + truth / 3


@pytest.fixture
def analyst(token_for) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return token_for(Role.ANALYST)


# --- hotspots ----------------------------------------------------------------------------------------------------


def test_hotspots_per_location_release_rounded_cells_and_suppress_small_ones(client, session, analyst):
    large, medium, small = (make_location(session) for _ in range(3))
    recorded = {large.id: seed(session, large, 30), medium.id: seed(session, medium, 12),
                small.id: seed(session, small, 4)}

    body = hotspots(client, analyst, groupBy="location")

    total = expected_cell([i for found in recorded.values() for i in found])
    near(total, 46)
    reference = total["value"] / (3 * EXPOSURE_Q2)
    released = {location.id: expected_cell(recorded[location.id]) for location in (large, medium)}
    for location_id, truth in ((large.id, 30), (medium.id, 12)):
        near(released[location_id], truth)
    eb = dict(zip(released, eb_estimates([c["value"] for c in released.values()], [EXPOSURE_Q2] * 2), strict=True))

    def row(location: Location) -> dict[str, Any]:
        previous = {"period": "2026-Q1", "incidents": ZERO, "residents": ZERO, "places": 35.5,
                    "ratePer10Places": 0.0}
        cell = released.get(location.id)
        if cell is None:  # a suppressed unit shows no companion: no residents, rate, band, trend or previous period
            return {"unit": {"id": str(location.id), "name": location.name}, "incidents": SUPPRESSED,
                    "residents": SUPPRESSED, "places": 35.9, "ratePer10Places": None, "expected": None,
                    "ratio": None, "funnelBand": None, "limits": None, "ebRatePer10Places": None,
                    "previous": None, "trend": "unknown"}
        expected = reference * EXPOSURE_Q2
        return {"unit": {"id": str(location.id), "name": location.name}, "incidents": cell,
                "residents": expected_residents(recorded[location.id]), "places": 35.9,
                "ratePer10Places": round(cell["value"] / EXPOSURE_Q2 * 10, 3), "expected": round(expected, 2),
                "ratio": round(cell["value"] / expected, 2), "funnelBand": funnel_band(cell["value"], expected),
                "limits": limits_at(expected), "ebRatePer10Places": round(eb[location.id] * 10, 3),
                "previous": previous, "trend": "up"}

    by_eb = sorted((large, medium), key=lambda location: -eb[location.id])
    # Both released units have the same exposure: the curve runs from half of it to a quarter more, log-spaced.
    curve = [{"places": round(n, 2), "expected": round(reference * n, 2), **limits_at(reference * n)}
             for n in (EXPOSURE_Q2 / 2 * 2.5 ** (i / 24) for i in range(25))]
    assert body == {
        "period": "2026-Q2", "groupBy": "location",
        "units": [row(location) for location in by_eb] + [row(small)],
        "reference": {"incidents": total, "places": 107.6, "ratePer10Places": round(reference * 10, 3),
                      "overdispersion": 1.0, "overdispersionApplied": False,
                      "funnelCurve": curve},
        "disclosure": DISCLOSURE,
    }
    assert [r["unit"]["id"] for r in body["units"]] == [str(large.id), str(medium.id), str(small.id)]
    for row_ in body["units"][:2]:
        limits = row_["limits"]
        assert limits["lower998"] < limits["lower95"] < row_["expected"] < limits["upper95"] < limits["upper998"]


def test_places_are_capacity_times_months_from_the_capacity_history(client, session, analyst):
    # 10 places in April, 20 from 1 May: 10 * 30 + 20 * 61 place-days.
    location = make_location(session, capacities=[Capacity(valid_from=dt.date(2024, 1, 1), places=10),
                                                  Capacity(valid_from=dt.date(2026, 5, 1), places=20)])
    opened_late = make_location(session, capacities=[Capacity(valid_from=dt.date(2026, 6, 1), places=12)])

    body = hotspots(client, analyst, groupBy="location")

    assert cell_of(body, location.id, "places") == round((10 * 30 + 20 * 61) / DAYS_PER_MONTH, 1) == 49.9
    assert cell_of(body, opened_late.id, "places") == round(12 * 30 / DAYS_PER_MONTH, 1) == 11.8
    assert cell_of(body, opened_late.id, "previous")["places"] == 0.0


def test_a_cell_dominated_by_one_resident_is_suppressed_though_it_reaches_k(client, session, analyst):
    dominated, spread = make_location(session), make_location(session)
    seed(session, dominated, 12, residents=["R-1"] * 10 + ["R-2", "R-3"])
    seed(session, spread, 12, residents=["R-1"] * 4 + [f"R-{n}" for n in range(2, 10)])

    body = hotspots(client, analyst, groupBy="location")

    assert cell_of(body, dominated.id) == SUPPRESSED
    assert cell_of(body, dominated.id, "residents") == SUPPRESSED
    assert cell_of(body, dominated.id, "ratePer10Places") is None
    assert cell_of(body, dominated.id, "funnelBand") is None
    near(cell_of(body, spread.id), 12)


def test_incidents_without_a_resident_count_as_contributors_of_one(client, session, analyst):
    location = make_location(session)
    recorded = seed(session, location, 12, residents=["R-1", "R-1", "R-1", "R-2"] + [None] * 8)

    body = hotspots(client, analyst, groupBy="location")

    assert cell_of(body, location.id) == expected_cell(recorded)
    near(cell_of(body, location.id), 12)
    assert cell_of(body, location.id, "residents") == SUPPRESSED  # two distinct residents


def test_a_location_without_incidents_is_released_as_zero(client, session, analyst):
    busy, quiet = make_location(session), make_location(session)
    seed(session, busy, 15)

    body = hotspots(client, analyst, groupBy="location")

    assert cell_of(body, quiet.id) == ZERO
    assert cell_of(body, quiet.id, "residents") == ZERO
    assert cell_of(body, quiet.id, "ratePer10Places") == 0.0
    assert cell_of(body, quiet.id, "previous")["incidents"] == ZERO


def test_incidents_outside_the_period_do_not_count(client, session, analyst):
    location = make_location(session)
    in_period = seed(session, location, 11)
    # 1 July 00:30 in Amsterdam: 2026-Q3, though it is still 30 June in UTC.
    seed(session, location, 5, occurred_at=dt.datetime(2026, 6, 30, 22, 30, tzinfo=dt.UTC))
    before = seed(session, location, 12, occurred_at=dt.datetime(2026, 2, 1, 12, tzinfo=dt.UTC))

    body = hotspots(client, analyst, groupBy="location")

    assert cell_of(body, location.id) == expected_cell(in_period)
    assert cell_of(body, location.id, "previous")["incidents"] == expected_cell(before)


@pytest.fixture
def two_institutions(session) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Institution A: a location in 9712 (8 incidents) and one in 9713 (7). Institution B: one in 9712 (20)."""
    a, b = make_institution(session), make_institution(session)
    a_north = make_location(session, a, postcode4="9712")
    a_south = make_location(session, a, postcode4="9713")
    b_north = make_location(session, b, postcode4="9712")
    recorded = {
        "a_north": seed(session, a_north, 8, exploitation_type="sexual", age_band="12to15"),
        "a_south": seed(session, a_south, 7),
        "b_north": seed(session, b_north, 10) + seed(session, b_north, 10, kind="absence"),
    }
    return {"a": a, "b": b, "recorded": recorded}


def test_hotspots_group_by_institution_postcode4_and_municipality(client, analyst, two_institutions):
    a, b, recorded = two_institutions["a"], two_institutions["b"], two_institutions["recorded"]
    everything = [i for found in recorded.values() for i in found]

    by_institution = hotspots(client, analyst, groupBy="institution")
    by_postcode = hotspots(client, analyst, groupBy="postcode4")
    by_municipality = hotspots(client, analyst, groupBy="municipality")

    assert {(r["unit"]["id"], r["unit"]["name"]): r["incidents"] for r in by_institution["units"]} == {
        (str(a.id), a.name): expected_cell(recorded["a_north"] + recorded["a_south"]),
        (str(b.id), b.name): expected_cell(recorded["b_north"]),
    }
    assert cell_of(by_institution, a.id, "places") == round(2 * EXPOSURE_Q2, 1)
    assert {(r["unit"]["id"], r["unit"]["name"]): r["incidents"] for r in by_postcode["units"]} == {
        ("9712", "9712"): expected_cell(recorded["a_north"] + recorded["b_north"]),
        ("9713", "9713"): SUPPRESSED,
    }
    assert [(r["unit"], r["incidents"]) for r in by_municipality["units"]] == [
        ({"id": "GM0014", "name": "Groningen"}, expected_cell(everything))]
    for body, group in ((by_institution, "institution"), (by_postcode, "postcode4"),
                        (by_municipality, "municipality")):
        assert body["groupBy"] == group
        assert body["reference"]["incidents"] == expected_cell(everything)
        assert body["reference"]["places"] == round(3 * EXPOSURE_Q2, 1)
        assert body["disclosure"] == DISCLOSURE


def test_a_breakdown_gives_released_cells_per_unit_and_value(client, analyst, two_institutions):
    a, b, recorded = two_institutions["a"], two_institutions["b"], two_institutions["recorded"]
    b_kinds = {"recruitmentAttempt": recorded["b_north"][:10], "absence": recorded["b_north"][10:]}

    by_kind = hotspots(client, analyst, groupBy="institution", breakdown="kind")
    by_type = hotspots(client, analyst, groupBy="institution", breakdown="exploitationType")
    by_age = hotspots(client, analyst, groupBy="institution", breakdown="ageBand")

    # Every code of the dimension is listed, in taxonomy order. A breakdown is an attribute: its cells show only in a
    # unit of 2K incidents or more (B has 20, A 15), from K up; a zero is suppressed like any small count, so a table
    # never shows where among its cells a small count lies.
    assert cell_of(by_kind, b.id, "breakdown") == [
        {"value": "recruitmentAttempt", "incidents": expected_cell(b_kinds["recruitmentAttempt"])},
        {"value": "suspiciousVisitor", "incidents": SUPPRESSED},
        {"value": "absence", "incidents": expected_cell(b_kinds["absence"])},
    ]
    near(cell_of(by_kind, b.id, "breakdown")[2]["incidents"], 10)
    for body, values in ((by_kind, 3), (by_type, 5), (by_age, 6)):
        assert cell_of(body, a.id, "breakdown") == [
            {"value": v, "incidents": SUPPRESSED} for v in [b["value"] for b in cell_of(body, a.id, "breakdown")]]
        assert len(cell_of(body, a.id, "breakdown")) == values
    assert [b for b in cell_of(by_age, b.id, "breakdown") if b["incidents"] != SUPPRESSED] == [
        {"value": "16to17", "incidents": expected_cell(recorded["b_north"])}]
    # A breakdown adds cells; the unit's own figures stay what they are without it.
    without = hotspots(client, analyst, groupBy="institution")
    assert [{k: v for k, v in r.items() if k != "breakdown"} for r in by_kind["units"]] == without["units"]


def test_filters_narrow_units_and_reference_alike(client, analyst, two_institutions):
    b, recorded = two_institutions["b"], two_institutions["recorded"]

    body = hotspots(client, analyst, groupBy="institution", kind="absence")

    # A filter makes every count an attribute cell: B (20 incidents) shows its 10 absences; A (15, below 2K) shows
    # nothing of them, not even a zero.
    assert cell_of(body, b.id) == expected_cell(recorded["b_north"][10:])
    assert body["reference"]["incidents"] == expected_cell(recorded["b_north"][10:])
    assert cell_of(body, two_institutions["a"].id) == SUPPRESSED
    assert cell_of(body, two_institutions["a"].id, "residents") == SUPPRESSED


def test_the_same_records_release_the_same_value_through_every_route(client, session, analyst):
    alone = make_location(session, postcode4="1011")
    others = [make_location(session, postcode4="9712") for _ in range(2)]
    mine = seed(session, alone, 23, meldcode_step=2)
    everything = mine + seed(session, others[0], 17) + seed(session, others[1], 9)
    expected, total = expected_cell(mine), expected_cell(everything)
    near(expected, 23)

    by_location = hotspots(client, analyst, groupBy="location")
    by_institution = hotspots(client, analyst, groupBy="institution")
    by_postcode = hotspots(client, analyst, groupBy="postcode4")
    by_municipality = hotspots(client, analyst, groupBy="municipality")
    by_kind = hotspots(client, analyst, groupBy="location", breakdown="kind")
    trend = stats(client, TRENDS, analyst, periodType="quarter", groupBy="location", **{"from": "2026-Q2"},
                  to="2026-Q2")
    monthly = stats(client, TRENDS, analyst, periodType="month", groupBy="municipality", **{"from": "2026-04"},
                    to="2026-06")
    funnel = stats(client, FUNNEL, analyst, period="2026-Q2", groupBy="institution")
    funnel_total = stats(client, FUNNEL, analyst, period="2026-Q2", groupBy="municipality")

    assert cell_of(by_location, alone.id) == expected
    assert cell_of(by_institution, alone.institution_id) == expected
    assert cell_of(by_postcode, "1011") == expected
    assert cell_of(by_kind, alone.id, "breakdown") == [{"value": "recruitmentAttempt", "incidents": expected},
                                                       {"value": "suspiciousVisitor", "incidents": SUPPRESSED},
                                                       {"value": "absence", "incidents": SUPPRESSED}]
    assert cell_of(trend, alone.id, "series") == [{"period": "2026-Q2", "incidents": expected, "places": 35.9,
                                                   "ratePer10Places": round(expected["value"] / EXPOSURE_Q2 * 10, 3)}]
    assert cell_of(funnel, alone.institution_id, "signals") == expected
    assert cell_of(funnel, alone.institution_id, "reachedStep2") == expected
    # The whole scope is one cell too, whichever route asks for it.
    assert by_location["reference"]["incidents"] == total
    assert cell_of(by_municipality, "GM0014") == total
    assert trend["total"][0]["incidents"] == total
    assert funnel["total"]["signals"] == total
    assert cell_of(funnel_total, "GM0014", "signals") == total
    # Months are cells of their own: never summed into the quarter.
    by_month = {p["period"]: p["incidents"] for p in cell_of(monthly, "GM0014", "series")}
    assert list(by_month) == ["2026-04", "2026-05", "2026-06"]
    for month, point in by_month.items():
        assert point == expected_cell([i for i in everything
                                       if f"{i.occurred_at.astimezone(AMSTERDAM):%Y-%m}" == month])


def test_trends_give_a_series_per_unit_with_the_same_cell_rules(client, session, analyst):
    location = make_location(session)
    april = seed(session, location, 12, occurred_at=lambda i: dt.datetime(2026, 4, 2 + i, 12, tzinfo=dt.UTC))
    may = seed(session, location, 3, occurred_at=lambda i: dt.datetime(2026, 5, 2 + i, 12, tzinfo=dt.UTC))

    body = stats(client, TRENDS, analyst, periodType="month", groupBy="location", **{"from": "2026-03"},
                 to="2026-06")

    march, april_places = 12 * 31 / DAYS_PER_MONTH, 12 * 30 / DAYS_PER_MONTH
    april_cell = expected_cell(april)
    assert body == {
        "periodType": "month", "groupBy": "location",
        "units": [{"unit": {"id": str(location.id), "name": location.name}, "series": [
            {"period": "2026-03", "incidents": ZERO, "places": round(march, 1), "ratePer10Places": 0.0},
            {"period": "2026-04", "incidents": april_cell, "places": round(april_places, 1),
             "ratePer10Places": round(april_cell["value"] / april_places * 10, 3)},
            {"period": "2026-05", "incidents": SUPPRESSED, "places": round(march, 1), "ratePer10Places": None},
            {"period": "2026-06", "incidents": ZERO, "places": round(april_places, 1), "ratePer10Places": 0.0},
        ]}],
        "total": [
            {"period": "2026-03", "incidents": ZERO, "places": round(march, 1), "ratePer10Places": 0.0},
            {"period": "2026-04", "incidents": april_cell, "places": round(april_places, 1),
             "ratePer10Places": round(april_cell["value"] / april_places * 10, 3)},
            {"period": "2026-05", "incidents": SUPPRESSED, "places": round(march, 1), "ratePer10Places": None},
            {"period": "2026-06", "incidents": ZERO, "places": round(april_places, 1), "ratePer10Places": 0.0},
        ],
        "disclosure": DISCLOSURE,
    }
    assert len(may) == 3


def test_weekly_trends_use_week_rollups(client, session, analyst):
    location = make_location(session)
    # 2026-W19 runs from Monday 4 May 00:00 in Amsterdam (3 May 22:00 UTC).
    week = seed(session, location, 11, occurred_at=lambda i: dt.datetime(2026, 5, 3, 22, i, tzinfo=dt.UTC))
    seed(session, location, 11, occurred_at=lambda i: dt.datetime(2026, 5, 3, 21, 48 + i, tzinfo=dt.UTC))

    body = stats(client, TRENDS, analyst, periodType="week", groupBy="location", **{"from": "2026-W19"},
                 to="2026-W20")

    assert [(p["period"], p["incidents"]) for p in cell_of(body, location.id, "series")] == [
        ("2026-W19", expected_cell(week)), ("2026-W20", ZERO)]


# --- retractions and corrections ----------------------------------------------------------------------------------


def test_retracted_incidents_never_count(client, session, analyst, token_for):
    location = make_location(session)
    recorded = seed(session, location, 14)
    institution = token_for(Role.INSTITUTION, institution_id=location.institution_id)
    assert cell_of(hotspots(client, analyst, groupBy="location"), location.id) == expected_cell(recorded)

    for incident in recorded[:4]:
        response = client.post(f"/v1/incidents/{incident.id}/retraction", json={"reason": "Dubbel ingevoerd."},
                               headers=institution)
        assert response.status_code == 200, response.get_json()

    body = hotspots(client, analyst, groupBy="location")
    ten = expected_cell(recorded[4:])
    near(ten, 10)
    assert cell_of(body, location.id) == body["reference"]["incidents"] == ten
    funnel = stats(client, FUNNEL, analyst, period="2026-Q2", groupBy="institution")
    assert funnel["total"]["signals"] == ten

    response = client.post(f"/v1/incidents/{recorded[4].id}/retraction", json={"reason": "Dubbel ingevoerd."},
                           headers=institution)
    assert response.status_code == 200
    assert cell_of(hotspots(client, analyst, groupBy="location"), location.id) == SUPPRESSED


def test_a_retracted_incident_leaves_no_trace_in_a_breakdown(client, session, analyst, token_for):
    location = make_location(session)
    seed(session, location, 20)
    [visitor] = seed(session, location, 1, kind="suspiciousVisitor")
    untouched = hotspots(client, analyst, groupBy="location", breakdown="kind")
    institution = token_for(Role.INSTITUTION, institution_id=location.institution_id)
    response = client.post(f"/v1/incidents/{visitor.id}/retraction", json={"reason": "Dubbel ingevoerd."},
                           headers=institution)
    assert response.status_code == 200

    breakdown = cell_of(hotspots(client, analyst, groupBy="location", breakdown="kind"), location.id, "breakdown")

    # The retracted visitor leaves the same answer as a visitor never recorded, and as a kind never seen.
    assert [b["value"] for b in cell_of(untouched, location.id, "breakdown")] == [
        "recruitmentAttempt", "suspiciousVisitor", "absence"]
    assert breakdown == [{"value": "recruitmentAttempt", "incidents": breakdown[0]["incidents"]},
                         {"value": "suspiciousVisitor", "incidents": SUPPRESSED},
                         {"value": "absence", "incidents": SUPPRESSED}]
    near(breakdown[0]["incidents"], 20)


def test_a_correction_moves_an_incident_to_another_unit(client, session, analyst, token_for):
    institution = make_institution(session)
    first, second = make_location(session, institution), make_location(session, institution)
    recorded = seed(session, first, 11)
    seed(session, second, 9)
    headers = token_for(Role.INSTITUTION, institution_id=institution.id)

    response = client.patch(f"/v1/incidents/{recorded[0].id}", headers=headers | {"If-Match": '"1"'},
                            json={"locationId": str(second.id), "reason": "Verkeerde locatie."})
    assert response.status_code == 200, response.get_json()

    body = hotspots(client, analyst, groupBy="location")
    session.expire_all()
    moved = session.get(Incident, recorded[0].id)
    assert cell_of(body, first.id) == expected_cell(recorded[1:])
    assert cell_of(body, second.id) == expected_cell(
        session.scalars(select(Incident).where(Incident.location_id == second.id)).all())
    near(cell_of(body, first.id), 10)
    near(cell_of(body, second.id), 10)
    assert moved.location_id == second.id


# --- scope -------------------------------------------------------------------------------------------------------


@pytest.fixture
def two_municipalities(session) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    groningen = make_location(session, name="De Linde Groningen")
    amersfoort = make_location(session, make_institution(session, municipality_code="GM0307", name="Zorg Eemland"),
                               name="Huize Amersfoort", postcode4="3811")
    return {"GM0014": (groningen, seed(session, groningen, 13)),
            "GM0307": (amersfoort, seed(session, amersfoort, 11))}


def test_an_analyst_sees_only_units_in_scope(client, token_for, two_municipalities):
    amersfoort, recorded = two_municipalities["GM0307"]
    headers = token_for(Role.ANALYST, municipality_codes=["GM0307"])

    by_location = hotspots(client, headers, groupBy="location")
    by_institution = hotspots(client, headers, groupBy="institution")
    by_municipality = hotspots(client, headers, groupBy="municipality")
    funnel = stats(client, FUNNEL, headers, period="2026-Q2", groupBy="municipality")
    trend = stats(client, TRENDS, headers, periodType="quarter", groupBy="postcode4", **{"from": "2026-Q2"},
                  to="2026-Q2")

    assert [r["unit"] for r in by_location["units"]] == [{"id": str(amersfoort.id), "name": "Huize Amersfoort"}]
    assert [r["unit"]["name"] for r in by_institution["units"]] == ["Zorg Eemland"]
    assert [r["unit"]["id"] for r in by_municipality["units"]] == ["GM0307"]
    assert [r["unit"]["id"] for r in funnel["units"]] == ["GM0307"]
    assert [r["unit"]["id"] for r in trend["units"]] == ["3811"]
    for body in (by_location, by_institution, by_municipality):
        assert body["reference"]["incidents"] == expected_cell(recorded)
        assert body["reference"]["places"] == 35.9
    assert funnel["total"]["signals"] == expected_cell(recorded)
    assert "De Linde" not in json.dumps([by_location, by_institution, funnel, trend])


@pytest.mark.parametrize(("path", "params"), [
    (HOTSPOTS, {"period": "2026-Q2", "groupBy": "location"}),
    (TRENDS, {"periodType": "quarter", "from": "2026-Q2", "to": "2026-Q2", "groupBy": "location"}),
    (FUNNEL, {"period": "2026-Q2", "groupBy": "institution"}),
])
def test_an_out_of_scope_municipality_is_refused_without_revealing_anything(client, token_for, two_municipalities,
                                                                             path, params):
    groningen, _ = two_municipalities["GM0014"]
    headers = token_for(Role.ANALYST, municipality_codes=["GM0307"])

    refused = client.get(path, query_string=params | {"municipalityCode": "GM0014"}, headers=headers)
    nowhere = client.get(path, query_string=params | {"municipalityCode": "GM9999"}, headers=headers)

    assert refused.status_code == 403
    assert refused.mimetype == PROBLEM
    body = refused.get_json()
    assert set(body) == {"type", "title", "status", "detail", "instance"}
    assert body["status"] == 403
    text = json.dumps({k: v for k, v in body.items() if k != "instance"})  # the request id is random hex
    for secret in (groningen.name, str(groningen.id), str(groningen.institution_id), "13", "GM0014", "Instelling"):
        assert secret not in text
    # A municipality that does not exist is refused in the same words: nothing tells the two apart.
    assert nowhere.status_code == 403
    assert {k: v for k, v in nowhere.get_json().items() if k != "instance"} == {
        k: v for k, v in body.items() if k != "instance"}


def test_an_analyst_may_narrow_to_a_municipality_in_scope(client, token_for, two_municipalities):
    groningen, recorded = two_municipalities["GM0014"]
    headers = token_for(Role.ANALYST, municipality_codes=["GM0014", "GM0307"])

    body = hotspots(client, headers, groupBy="location", municipalityCode="GM0014")

    assert [r["unit"]["id"] for r in body["units"]] == [str(groningen.id)]
    assert body["reference"]["incidents"] == expected_cell(recorded)


def test_a_national_analyst_sees_every_municipality(client, token_for, two_municipalities):
    headers = token_for(Role.ANALYST, municipality_codes=["*"])

    body = hotspots(client, headers, groupBy="municipality")
    narrowed = hotspots(client, headers, groupBy="location", municipalityCode="GM0307")

    assert {r["unit"]["id"]: r["incidents"] for r in body["units"]} == {
        code: expected_cell(recorded) for code, (_, recorded) in two_municipalities.items()}
    assert {r["unit"]["id"]: r["unit"]["name"] for r in body["units"]} == {"GM0014": "Groningen",
                                                                          "GM0307": "Amersfoort"}
    assert body["reference"]["incidents"] == expected_cell(
        [i for _, recorded in two_municipalities.values() for i in recorded])
    assert [r["unit"]["name"] for r in narrowed["units"]] == ["Huize Amersfoort"]


def test_a_municipality_unit_carries_its_cbs_name_and_an_old_code_that_of_the_municipality_it_joined(
        client, session, token_for):
    haren = make_location(session, make_institution(session, municipality_code="GM0017"))  # Groningen since 2019
    seed(session, haren, 12)
    headers = token_for(Role.ANALYST, municipality_codes=["GM0017"])

    body = hotspots(client, headers, groupBy="municipality")

    assert [row["unit"] for row in body["units"]] == [{"id": "GM0017", "name": "Groningen"}]


# --- bad input and roles -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "params", "parameter"), [
    (HOTSPOTS, {"period": "2026-13", "groupBy": "location"}, "period"),
    (HOTSPOTS, {"period": "2027-Q1", "groupBy": "location"}, "period"),
    (HOTSPOTS, {"period": "2026-10-01", "groupBy": "location"}, "period"),
    (HOTSPOTS, {"groupBy": "location"}, "period"),
    (HOTSPOTS, {"period": "2026-Q2"}, "groupBy"),
    (HOTSPOTS, {"period": "2026-Q2", "groupBy": "street"}, "groupBy"),
    (HOTSPOTS, {"period": "2026-Q2", "groupBy": "location", "breakdown": "resident"}, "breakdown"),
    (HOTSPOTS, {"period": "2026-Q2", "groupBy": "location", "from": "2026-Q1"}, "from"),
    (HOTSPOTS, {"period": "2026-Q2", "groupBy": "location", "kind": "burglary"}, "kind"),
    (HOTSPOTS, {"period": "2026-Q2", "groupBy": "location", "municipalityCode": "Groningen"}, "municipalityCode"),
    (TRENDS, {"periodType": "month", "from": "2026-05", "to": "2026-03", "groupBy": "location"}, "to"),
    (TRENDS, {"periodType": "quarter", "from": "2026-Q1", "to": "2026-05", "groupBy": "location"}, "to"),
    (TRENDS, {"periodType": "month", "from": "2026-Q1", "to": "2026-05", "groupBy": "location"}, "from"),
    (TRENDS, {"periodType": "month", "from": "2021-11", "to": "2026-11", "groupBy": "location"}, "to"),
    (TRENDS, {"periodType": "month", "from": "2026-10", "to": "2026-12", "groupBy": "location"}, "to"),
    (TRENDS, {"periodType": "day", "from": "2026-10", "to": "2026-11", "groupBy": "location"}, "periodType"),
    (TRENDS, {"periodType": "month", "to": "2026-11", "groupBy": "location"}, "from"),
    (TRENDS, {"periodType": "month", "from": "2026-10", "to": "2026-11", "groupBy": "location",
              "period": "2026-Q2"}, "period"),
    (FUNNEL, {"period": "2026-Q2", "groupBy": "location"}, "groupBy"),
    (FUNNEL, {"period": "2026-Q2", "groupBy": "institution", "breakdown": "kind"}, "breakdown"),
    (FUNNEL, {"period": "2026-W60", "groupBy": "institution"}, "period"),
])
def test_bad_input_is_a_problem_naming_the_parameter(client, analyst, path, params, parameter):
    response = client.get(path, query_string=params, headers=analyst)

    assert response.status_code == 400
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert (body["status"], body["title"]) == (400, "Invalid input")
    assert [(e["pointer"], e["in"]) for e in body["errors"]] == [(f"/{parameter}", "query")]


def test_sixty_months_are_allowed(client, analyst):
    body = stats(client, TRENDS, analyst, periodType="month", groupBy="municipality", **{"from": "2021-12"},
                 to="2026-11")

    assert len(body["total"]) == 60
    assert (body["total"][0]["period"], body["total"][-1]["period"]) == ("2021-12", "2026-11")


@pytest.mark.parametrize("role", [Role.INSTITUTION, Role.AUDITOR, Role.ADMIN])
@pytest.mark.parametrize("path", [f"{HOTSPOTS}?period=2026-Q2&groupBy=location",
                                  f"{TRENDS}?periodType=month&from=2026-01&to=2026-02&groupBy=location",
                                  f"{FUNNEL}?period=2026-Q2&groupBy=institution"])
def test_only_analysts_may_ask_for_statistics(client, session, token_for, role, path):
    seed(session, make_location(session), 12)

    response = client.get(path, headers=token_for(role))

    assert response.status_code == 403
    assert response.mimetype == PROBLEM
    assert set(response.get_json()) == {"type", "title", "status", "detail", "instance"}


@pytest.mark.parametrize("path", [f"{HOTSPOTS}?period=2026-Q2&groupBy=location",
                                  f"{TRENDS}?periodType=month&from=2026-01&to=2026-02&groupBy=location",
                                  f"{FUNNEL}?period=2026-Q2&groupBy=institution"])
def test_statistics_need_a_token(client, path):
    response = client.get(path)

    assert response.status_code == 401
    assert response.mimetype == PROBLEM
    assert response.headers["WWW-Authenticate"] == "Bearer"


# --- privacy -----------------------------------------------------------------------------------------------------


def test_no_response_carries_a_pseudonym_an_incident_id_a_note_or_a_small_count(client, session, analyst):
    institution = make_institution(session)
    locations = [make_location(session, institution, postcode4=pc) for pc in ("9712", "9712", "9713")]
    recorded = (seed(session, locations[0], 23, residents=["R-1", "R-2", "R-3", None], note=NOTE, meldcode_step=5,
                     reported=True)
                + seed(session, locations[1], 7, kind="absence", note=NOTE, age_band="12to15")
                + seed(session, locations[2], 3, kind="suspiciousVisitor", exploitation_type="sexual", reported=True,
                       meldcode_step=2))
    bodies = []
    for group in ("institution", "location", "postcode4", "municipality"):
        for breakdown in (None, "kind", "exploitationType", "ageBand"):
            bodies.append(hotspots(client, analyst, groupBy=group, **({"breakdown": breakdown} if breakdown else {})))
        for period_type, first, last in (("week", "2026-W14", "2026-W27"), ("month", "2026-03", "2026-07"),
                                         ("quarter", "2026-Q1", "2026-Q3"), ("year", "2025", "2026")):
            bodies.append(stats(client, TRENDS, analyst, periodType=period_type, groupBy=group, to=last,
                                **{"from": first}))
    for group in ("institution", "municipality"):
        for period in ("2026-Q2", "2026-05", "2026-W16", "2026"):
            bodies.append(stats(client, FUNNEL, analyst, period=period, groupBy=group))

    text = json.dumps(bodies)
    assert not HEX64.search(text)
    assert "Stond lang" not in text and NOTE not in text
    for incident in recorded:
        assert str(incident.id) not in text and incident.client_reference not in text
    for pseudonym in {i.resident_pseudonym for i in recorded if i.resident_pseudonym}:
        assert pseudonym not in text
    counts = [v for v in values_under(bodies, "value") if isinstance(v, int) and not isinstance(v, bool)]
    assert counts and not [v for v in counts if 1 <= v <= 9]
    assert any(v >= 10 for v in counts) and SUPPRESSED in list(values_under(bodies, "incidents"))


# --- reporting funnel --------------------------------------------------------------------------------------------


def test_the_reporting_funnel_releases_each_stage_and_shares_of_released_values(client, session, analyst):
    location = make_location(session)
    reported = seed(session, location, 10, meldcode_step=5, reported=True)
    step2 = seed(session, location, 2, meldcode_step=2, occurred_at=lambda i: in_q2(40 + i))
    rest = seed(session, location, 8, meldcode_step=1, occurred_at=lambda i: in_q2(50 + i))
    quiet = make_location(session)

    body = stats(client, FUNNEL, analyst, period="2026-Q2", groupBy="institution")

    signals = expected_cell(reported + step2 + rest)
    reached2, reached5 = expected_cell(reported + step2), expected_cell(reported)
    near(signals, 20)
    near(reached2, 12)
    stages = {
        "signals": signals, "reachedStep2": reached2, "reachedStep5": reached5, "reported": reached5,
        "step2Share": round(reached2["value"] / signals["value"], 3),
        "step5Share": round(reached5["value"] / signals["value"], 3),
        "reportedShare": round(reached5["value"] / signals["value"], 3),
        "medianDaysToReport": None,  # a median needs 2K released reports
        # Reported 4 days after the signal: within Groningen's 7 follow-up days. Open: below step 5, unreported.
        "decidedInTime": reached5, "decidedInTimeShare": round(reached5["value"] / signals["value"], 3),
        "stillOpen": expected_cell(step2 + rest),
        # 2026-Q1 holds nothing: every released count changed by itself; a share against none is no change.
        "change": {"signals": signals["value"], "reported": reached5["value"],
                   "stillOpen": expected_cell(step2 + rest)["value"], "reportedShare": None,
                   "decidedInTimeShare": None},
    }
    institution, other = (session.get(Institution, i) for i in (location.institution_id, quiet.institution_id))
    assert body == {
        "period": "2026-Q2", "previousPeriod": "2026-Q1", "groupBy": "institution", "decisionDays": 7,
        "units": sorted([
            {"unit": {"id": str(location.institution_id), "name": institution.name}, **stages},
            {"unit": {"id": str(quiet.institution_id), "name": other.name}, "signals": ZERO,
             "reachedStep2": ZERO, "reachedStep5": ZERO, "reported": ZERO, "step2Share": None, "step5Share": None,
             "reportedShare": None, "medianDaysToReport": None, "decidedInTime": ZERO, "decidedInTimeShare": None,
             "stillOpen": ZERO, "change": {"signals": 0, "reported": 0, "stillOpen": 0, "reportedShare": None,
                                           "decidedInTimeShare": None}},
        ], key=lambda row: row["unit"]["name"]),
        "total": stages,
        "disclosure": DISCLOSURE,
    }


def test_a_funnel_stage_below_k_is_suppressed_and_so_is_its_share_and_median(client, session, analyst):
    location = make_location(session)
    seed(session, location, 4, meldcode_step=5, reported=True)
    seed(session, location, 11, meldcode_step=1, occurred_at=lambda i: in_q2(30 + i))

    body = stats(client, FUNNEL, analyst, period="2026-Q2", groupBy="municipality")

    [row] = body["units"]
    near(row["signals"], 15)
    assert (row["reachedStep2"], row["reachedStep5"], row["reported"]) == (SUPPRESSED, SUPPRESSED, SUPPRESSED)
    assert (row["step2Share"], row["step5Share"], row["reportedShare"], row["medianDaysToReport"]) == (
        None, None, None, None)


def test_the_median_days_to_report_take_the_period_in_amsterdam_time(client, session, analyst):
    location = make_location(session)
    seed(session, location, 30, reported=True, report_delay=dt.timedelta(days=2),
         occurred_at=lambda i: dt.datetime(2026, 6, 1 + i % 25, 12, tzinfo=dt.UTC))
    # 1 July 00:30 in Amsterdam: July's, though 30 June in UTC.
    seed(session, location, 30, reported=True, report_delay=dt.timedelta(days=6),
         occurred_at=dt.datetime(2026, 6, 30, 22, 30, tzinfo=dt.UTC))

    june = stats(client, FUNNEL, analyst, period="2026-06", groupBy="institution")
    july = stats(client, FUNNEL, analyst, period="2026-07", groupBy="institution")

    # The median is the first band (1, 3, 7, 14, ... days) within which half the released reports fall.
    near(june["total"]["reported"], 30)
    near(july["total"]["reported"], 30)
    assert (june["total"]["medianDaysToReport"], july["total"]["medianDaysToReport"]) == (3, 7)


# --- cost --------------------------------------------------------------------------------------------------------


class StatementCounter:
    def __init__(self, connection: Connection) -> None:
        self.connection, self.statements = connection, []

    def __enter__(self) -> StatementCounter:
        event.listen(self.connection, "before_cursor_execute", self.count)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.connection, "before_cursor_execute", self.count)

    def count(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.statements.append(statement)


# For the period and the previous one together: the units in scope with their capacities, and the unit summaries
# per location and for the scope. Around them: the test's savepoint and its release, the token check, and the access
# log's new event (one INSERT: no lock and no read of the chain, which the sealer links later).
# Each rollup read first looks for pending changes to fold (one indexed read when there are none, as here: what a
# backlog costs a read is measured in BENCHMARKS.md, and folding one is tested in test_folding.py).
STATISTICS_READS = 3
AROUND = 2 + 1 + 1 + 2


@pytest.mark.parametrize(("path", "params"), [
    (HOTSPOTS, {"period": "2026-Q2", "groupBy": "location"}),
    (HOTSPOTS, {"period": "2026-Q2", "groupBy": "institution", "breakdown": "kind"}),
    (FUNNEL, {"period": "2026-Q2", "groupBy": "institution"}),
])
def test_statements_per_request_do_not_grow_with_incidents(client, session, connection, analyst, path, params):
    locations = [make_location(session) for _ in range(3)]
    for location in locations:
        seed(session, location, 12, meldcode_step=5, reported=True)

    def statements() -> list[str]:
        rollups.fold(session)
        with StatementCounter(connection) as counter:
            response = client.get(path, query_string=params, headers=analyst)
        assert response.status_code == 200
        return counter.statements

    before = statements()
    for location in locations:
        seed(session, location, 200 // 3 + 1, meldcode_step=5, reported=True, kind="absence")
    after = statements()

    assert len(after) == len(before)
    if path == HOTSPOTS:
        # Hotspots read rollups, capacities and locations only: never the incidents themselves.
        assert not [s for s in before if re.search(r"\bFROM incident\b", s)]
    if path == HOTSPOTS and "breakdown" not in params:
        read = r"\b(unit_tally|incident_rollup|resident_rollup|capacity|location)\b"
        reads = [s for s in before if re.search(read, s)]
        # One row per unit: the per-resident rows are for writes only.
        assert not [s for s in before if re.search(r"\b(unit_resident|resident_rollup)\b", s)]
        assert len(reads) == STATISTICS_READS
        assert len(before) == STATISTICS_READS + AROUND


def test_incidents_without_residents_release_zero_residents_not_their_count(client, session, analyst):
    location = make_location(session)
    recorded = seed(session, location, 15, residents=[None])

    body = hotspots(client, analyst, groupBy="location")

    assert cell_of(body, location.id) == expected_cell(recorded)
    assert cell_of(body, location.id, "residents") == ZERO
