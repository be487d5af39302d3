"""The follow-up queue over HTTP and at domain level: which signals wait, from which day (Amsterdam days), why,
oldest first with guidance, counted per reason, paged, audited, and only the institution's own."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from service.audit.models import AccessEvent
from service.auth.access import Caller
from service.auth.models import Role
from service.incidents import follow_up
from service.incidents.models import Incident
from tests.factories import make_institution, make_location
from tests.incidents.factories import OMIT, incident_body

pytestmark = pytest.mark.clock("2026-11-20")  # noon in Amsterdam (CET, +01:00)
URL = "/v1/incidents/follow-up"


@pytest.fixture
def institution(session):  # type: ignore[no-untyped-def]
    return make_institution(session, municipality_code="GM0014")


@pytest.fixture
def location(session, institution):  # type: ignore[no-untyped-def]
    return make_location(session, institution)


@pytest.fixture
def headers(token_for, institution):  # type: ignore[no-untyped-def]
    return token_for(Role.INSTITUTION, institution_id=institution.id)


@pytest.fixture
def record(client, headers, location):  # type: ignore[no-untyped-def]
    """record(occurredAt, **overrides) -> the id of a signal without a decision unless overridden."""

    def post(occurred_at: str, **overrides: Any) -> str:
        body = incident_body(location.id, **({"occurredAt": occurred_at, "followUp": OMIT} | overrides))
        response = client.post("/v1/incidents", json=body, headers=headers)
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.json["id"]

    return post


def queue(client, headers, **query: Any) -> Any:  # type: ignore[no-untyped-def]
    response = client.get(URL, headers=headers, query_string=query)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def listed(client, headers) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    return {item["id"]: item["reasons"] for item in queue(client, headers).json["items"]}


def test_an_undecided_signal_joins_on_day_7_counted_in_amsterdam_days(client, headers, record):
    day_6 = record("2026-11-14T10:00:00+01:00")
    day_7 = record("2026-11-13T23:30:00+01:00")
    day_8 = record("2026-11-12T10:00:00+01:00")
    # The 13th in UTC, but 00:30 on the 14th in Amsterdam: day 6 still.
    day_6_in_amsterdam = record("2026-11-13T23:30:00+00:00")

    found = listed(client, headers)

    assert found == {day_8: ["undecided"], day_7: ["undecided"]}
    assert day_6 not in found and day_6_in_amsterdam not in found


@pytest.mark.clock("2026-11-20T00:10:00+01:00")
def test_just_after_midnight_in_amsterdam_the_day_has_turned(client, headers, record):
    day_7 = record("2026-11-13T00:05:00+01:00")  # 23:05 UTC on the 12th
    day_6 = record("2026-11-14T00:00:00+01:00")

    assert set(listed(client, headers)) == {day_7} and day_6


def test_a_municipality_sets_its_own_follow_up_day(client, headers, record, token_for):
    day_6 = record("2026-11-14T10:00:00+01:00")
    day_4 = record("2026-11-16T10:00:00+01:00")
    admin = token_for(Role.ADMIN)
    routes = client.get("/v1/guidance/municipalities/GM0014", headers=admin).json["routes"]
    assert client.put("/v1/guidance/municipalities/GM0014", json={"routes": routes, "followUpDays": 5},
                      headers=admin).status_code == 200

    assert set(listed(client, headers)) == {day_6}
    assert day_4


def test_a_decided_reported_or_retracted_signal_does_not_wait(client, headers, record):
    old = "2026-11-01T10:00:00+01:00"
    record(old, followUp={"meldcodeStep": 5})
    record(old, followUp={"meldcodeStep": 2, "reportedTo": ["veiligThuis"],
                                  "reportedAt": "2026-11-02T10:00:00+01:00"})
    retracted = record(old)
    assert client.post(f"/v1/incidents/{retracted}/retraction", json={"reason": "Dubbel ingevoerd."},
                       headers=headers).status_code == 200
    waiting = record(old, followUp={"meldcodeStep": 4})

    assert listed(client, headers) == {waiting: ["undecided"]}


def test_red_risk_without_a_report_and_an_absence_still_open_after_24_hours(client, headers, record):
    red = record("2026-11-20T09:00:00+01:00", kind="absence",
                 absence={"endedAt": "2026-11-20T10:00:00+01:00", "whereaboutsKnown": False, "riskLevel": "red"})
    record("2026-11-20T09:00:00+01:00", kind="absence",
           absence={"whereaboutsKnown": False, "riskLevel": "red", "reportedMissingToPolice": True})
    reported = {"reportedTo": ["police"], "reportedAt": "2026-11-20T10:00:00+01:00"}
    record("2026-11-20T09:00:00+01:00", kind="absence", followUp=reported,
           absence={"endedAt": "2026-11-20T10:00:00+01:00", "whereaboutsKnown": False, "riskLevel": "red"})
    open_25h = record("2026-11-19T11:00:00+01:00", kind="absence",
                      absence={"whereaboutsKnown": True, "riskLevel": "orange"})
    record("2026-11-19T13:00:00+01:00", kind="absence", absence={"whereaboutsKnown": True, "riskLevel": "orange"})

    response = queue(client, headers)

    assert [(item["id"], item["reasons"]) for item in response.json["items"]] == [
        (open_25h, ["openAbsence"]), (red, ["unreportedRedRisk"])]
    assert response.headers["Follow-Up-Counts"] == "undecided=0, unreportedRedRisk=1, openAbsence=1"


def test_oldest_first_with_guidance_paged_and_counted_over_every_page(client, headers, record):
    ids = [record(f"2026-11-0{day}T10:00:00+01:00", exploitationType="sexual", residentAgeBand="12to15")
           for day in (5, 3, 4)]

    first = queue(client, headers, limit=2)
    rest = client.get("/v1" + first.headers["Link"].split(">")[0].split("/v1", 1)[1], headers=headers)

    assert [item["id"] for item in first.json["items"]] == [ids[1], ids[2]]
    assert [item["id"] for item in rest.json["items"]] == [ids[0]] and rest.json["nextCursor"] is None
    assert first.headers["Follow-Up-Counts"] == "undecided=3, unreportedRedRisk=0, openAbsence=0"
    guidance = first.json["items"][0]["guidance"]
    assert guidance["rules"] == ["minorSexualExploitation"]
    assert guidance["nextMeldcodeStep"]["step"] == 1


def test_another_institutions_signals_never_appear(client, session, headers, record, token_for):
    mine = record("2026-11-01T10:00:00+01:00")
    other = make_institution(session)
    theirs = incident_body(make_location(session, other).id, occurredAt="2026-11-01T10:00:00+01:00", followUp=OMIT)
    other_headers = token_for(Role.INSTITUTION, institution_id=other.id)
    assert client.post("/v1/incidents", json=theirs, headers=other_headers).status_code == 201

    response = queue(client, headers)

    assert [item["id"] for item in response.json["items"]] == [mine]
    assert response.headers["Follow-Up-Counts"] == "undecided=1, unreportedRedRisk=0, openAbsence=0"


def test_reading_the_queue_is_an_access_event_naming_what_it_showed(client, session, headers, record):
    waiting = record("2026-11-01T10:00:00+01:00")

    queue(client, headers)

    event = session.scalars(select(AccessEvent).order_by(AccessEvent.seq.desc()).limit(1)).one()
    assert (event.event_type, event.route, event.records, event.outcome) == (
        "search", "GET /v1/incidents/follow-up", [waiting], 200)
    assert event.filters == {"queue": "followUp", "limit": "50"}


@pytest.mark.parametrize("role", [Role.ANALYST, Role.AUDITOR, Role.ADMIN])
def test_only_institutions_read_their_queue(client, token_for, role):
    assert client.get(URL, headers=token_for(role)).status_code == 403


def test_domain_the_queue_and_its_reasons_agree(session, institution, location, record):
    waiting = record("2026-11-01T10:00:00+01:00", kind="absence",
                     absence={"whereaboutsKnown": False, "riskLevel": "red"})
    caller = Caller(client_id=uuid.uuid4(), role=Role.INSTITUTION, institution_id=institution.id,
                    municipality_codes=())

    stmt, counts = follow_up.follow_up_queue(session, caller)
    incidents = list(session.scalars(stmt))
    [shown] = follow_up.with_reasons(session, caller, incidents)

    assert [str(i.id) for i in incidents] == [waiting]
    assert shown.reasons == ["undecided", "unreportedRedRisk", "openAbsence"]
    assert counts == {"undecided": 1, "unreportedRedRisk": 1, "openAbsence": 1}
    assert follow_up.undecided_before(dt.date(2026, 11, 20), 7) == dt.datetime(2026, 11, 13, 23, tzinfo=dt.UTC)
    assert session.get(Incident, incidents[0].id) is incidents[0]
