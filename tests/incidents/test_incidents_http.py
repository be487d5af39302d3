"""Incidents over HTTP: create, batch, validation, idempotency, list, search, corrections, retraction, tenancy."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service import clock
from service.auth.models import ApiClient, Role
from service.incidents.idempotency import key_hash
from service.incidents.models import IdempotencyKey, Incident, Revision
from service.registry.models import Institution, Location
from service.taxonomy.service import load_taxonomy
from tests.factories import make_client, make_institution, make_location
from tests.incidents.factories import OMIT, incident_body, recent, wire_time

PROBLEM_JSON = "application/problem+json"
PLUS_ONE = dt.timezone(dt.timedelta(hours=1))
REASON = "Verkeerd type gekozen bij invoer."


# --- helpers -----------------------------------------------------------------------------------------------------


def count(session: Session, model: type = Incident) -> int:
    return session.scalar(select(func.count()).select_from(model))


def invalid_input(body: dict[str, Any], errors: list[dict[str, str]]) -> dict[str, Any]:
    """The problem document for invalid input, with the instance taken from the response."""
    return {
        "type": "about:blank",
        "title": "Invalid input",
        "status": 400,
        "detail": f"{len(errors)} invalid field(s); see errors.",
        "instance": body["instance"],
        "errors": errors,
    }


def pointers(response: Any) -> list[str]:
    return sorted(error["pointer"] for error in response.json.get("errors", []))


def without_guidance(body: dict[str, Any]) -> dict[str, Any]:
    """A create or correction answer as a read shows it: reads carry no guidance (tests/guidance hold its content)."""
    assert set(body["guidance"]) == {"version", "nextMeldcodeStep", "routes", "rules", "reasonEn", "reasonNl"}
    return {k: v for k, v in body.items() if k != "guidance"}


def without_instance(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "instance"}


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_JSON
    assert response.json["status"] == status
    return response.json


def utc(wire: str) -> str:
    """A wire date-time as the service returns it: the same instant in UTC."""
    return dt.datetime.fromisoformat(wire).astimezone(dt.UTC).isoformat()


def next_link(response: Any) -> str | None:
    link = response.headers.get("Link")
    if link is None:
        return None
    match = re.fullmatch(r'<([^>]+)>; rel="next"', link)
    assert match, link
    parts = urlsplit(match.group(1))
    return f"{parts.path}?{parts.query}"


# --- fixtures ----------------------------------------------------------------------------------------------------


@pytest.fixture
def institution(session: Session) -> Institution:
    return make_institution(session)


@pytest.fixture
def location(session: Session, institution: Institution) -> Location:
    return make_location(session, institution)


@pytest.fixture
def api_client(session: Session, institution: Institution) -> ApiClient:
    return make_client(session, role=Role.INSTITUTION, institution_id=institution.id)[0]


@pytest.fixture
def headers(token_for, api_client: ApiClient) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return token_for(Role.INSTITUTION, client=api_client)


class Tenant:
    def __init__(self, institution: Institution, location: Location, headers: dict[str, str]) -> None:
        self.institution, self.location, self.headers = institution, location, headers


@pytest.fixture
def other(session: Session, token_for) -> Tenant:  # type: ignore[no-untyped-def]
    """A second institution with a location and a client of its own."""
    institution = make_institution(session)
    return Tenant(institution, make_location(session, institution),
                  token_for(Role.INSTITUTION, institution_id=institution.id))


@pytest.fixture
def create(client, headers, location):  # type: ignore[no-untyped-def]
    """create(**overrides) -> the created incident's JSON (asserting 201)."""

    def post(**overrides: Any) -> dict[str, Any]:
        response = client.post("/v1/incidents", json=incident_body(location.id, **overrides), headers=headers)
        assert response.status_code == 201, response.get_data(as_text=True)
        return without_guidance(response.json)

    return post


def if_match(headers: dict[str, str], version: int | str) -> dict[str, str]:
    return {**headers, "If-Match": f'"{version}"'}


# --- create ------------------------------------------------------------------------------------------------------


BLOCKS_OUT = {
    "recruitmentAttempt": {"absence": None, "visitor": None},
    "suspiciousVisitor": {"absence": None, "visitor": {"estimatedAgeBand": "23plus", "relationClaimed": "friend",
                                                       "vehiclePlateRecorded": True, "phoneNumberRecorded": True}},
    "absence": {"visitor": None},  # absence filled in from what was sent (its endedAt in UTC)
}


@pytest.mark.parametrize("kind", ["recruitmentAttempt", "suspiciousVisitor", "absence"])
def test_create_each_kind_returns_the_whole_incident(client, session, headers, institution, location, kind):
    occurred = recent(5)
    sent = incident_body(location.id, kind=kind, occurredAt=wire_time(occurred.astimezone(PLUS_ONE)))
    assert sent["occurredAt"].endswith("+01:00")

    response = client.post("/v1/incidents", json=sent, headers=headers)

    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.json
    incident = session.get(Incident, uuid.UUID(body["id"]))
    assert incident is not None
    assert response.headers["Location"] == f"/v1/incidents/{incident.id}"
    assert response.headers["ETag"] == '"1"'
    expected = {
        "id": str(incident.id),
        "institutionId": str(institution.id),
        "clientReference": sent["clientReference"],
        "locationId": str(location.id),
        "kind": kind,
        "exploitationType": "criminal",
        "occurredAt": occurred.isoformat(),
        "recordedAt": incident.recorded_at.isoformat(),
        "residentRecorded": True,
        "residentAgeBand": "16to17",
        "indicators": sent["indicators"],
        "note": sent["note"],
        "followUp": {"meldcodeStep": 2, "reportedTo": ["veiligThuis"],
                     "reportedAt": utc(sent["followUp"]["reportedAt"])},
        "status": "active",
        "version": 1,
        "taxonomyVersion": load_taxonomy().version,
        "retractedAt": None,
        **BLOCKS_OUT[kind],
    }
    if kind == "absence":
        expected["absence"] = {"endedAt": utc(sent["absence"]["endedAt"]), "whereaboutsKnown": True,
                               "riskLevel": "orange", "reportedMissingToPolice": False}
    guidance = body["guidance"]
    assert without_guidance(body) == expected
    # Reported already: no next step; only a visitor's vehicle fires a rule (tests/guidance hold every rule).
    assert guidance["nextMeldcodeStep"] is None
    assert guidance["rules"] == (["recruitersVehicle"] if kind == "suspiciousVisitor" else [])
    assert body["occurredAt"].endswith("+00:00")
    text = response.get_data(as_text=True)
    for secret in ('"residentRef"', '"vehiclePlate"', '"phoneNumber"', "CL-0042", "12-ABC-3", "12ABC3", "12345678"):
        assert secret not in text
    assert incident.resident_pseudonym is not None and incident.resident_pseudonym != "CL-0042"


def test_create_without_optional_fields_records_defaults(client, session, headers, location):
    sent = incident_body(location.id, residentRef=OMIT, note=OMIT, followUp=OMIT, indicators=OMIT,
                         residentAgeBand=OMIT)
    response = client.post("/v1/incidents", json=sent, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.json
    assert (body["residentRecorded"], body["residentAgeBand"], body["indicators"], body["note"],
            body["followUp"]) == (False, "unknown", [], None, None)


# --- validation --------------------------------------------------------------------------------------------------

FUTURE = wire_time(clock.now() + dt.timedelta(days=1))
ELEVEN_YEARS_AGO = wire_time(clock.now() - dt.timedelta(days=11 * 366))
ABSENCE_BLOCK = {"endedAt": None, "whereaboutsKnown": False, "riskLevel": "red", "reportedMissingToPolice": True}
VISITOR_BLOCK = {"estimatedAgeBand": "18to22", "relationClaimed": "unknown"}
MISSING = "Missing data for required field."
UNKNOWN = "Unknown field."

INVALID_BODIES = {
    "absence block missing": (
        {"kind": "absence", "absence": OMIT}, [("/absence", "Required when kind is absence.")]),
    "absence block on a recruitment attempt": (
        {"kind": "recruitmentAttempt", "absence": ABSENCE_BLOCK}, [("/absence", "Only for kind absence.")]),
    "absence block on a visitor": (
        {"kind": "suspiciousVisitor", "absence": ABSENCE_BLOCK}, [("/absence", "Only for kind absence.")]),
    "visitor block missing": (
        {"kind": "suspiciousVisitor", "visitor": OMIT}, [("/visitor", "Required when kind is suspiciousVisitor.")]),
    "visitor block on an absence": (
        {"kind": "absence", "visitor": VISITOR_BLOCK}, [("/visitor", "Only for kind suspiciousVisitor.")]),
    "visitor block on a recruitment attempt": (
        {"kind": "recruitmentAttempt", "visitor": VISITOR_BLOCK}, [("/visitor", "Only for kind suspiciousVisitor.")]),
    "absence indicator on a visitor": (
        {"kind": "suspiciousVisitor", "indicators": ["unknownAdultWaiting", "lateReturn"]},
        [("/indicators", "Not an indicator of kind suspiciousVisitor: lateReturn.")]),
    "visitor indicator on a recruitment attempt": (
        {"kind": "recruitmentAttempt", "indicators": ["staffApproached"]},
        [("/indicators", "Not an indicator of kind recruitmentAttempt: staffApproached.")]),
    "occurredAt without offset": (
        {"occurredAt": "2026-01-10T10:00:00"}, [("/occurredAt", "Not a valid aware datetime.")]),
    "occurredAt in the future": (
        {"occurredAt": FUTURE, "followUp": OMIT}, [("/occurredAt", "Must not be in the future.")]),
    "occurredAt 11 years ago": (
        {"occurredAt": ELEVEN_YEARS_AGO}, [("/occurredAt", "Must not be more than 10 years ago.")]),
    "endedAt before occurredAt": (
        {"kind": "absence", "occurredAt": wire_time(recent(3)),
         "absence": {**ABSENCE_BLOCK, "endedAt": wire_time(recent(4))}},
        [("/absence/endedAt", "Must be after occurredAt.")]),
    "reportedTo without reportedAt": (
        {"followUp": {"meldcodeStep": 5, "reportedTo": ["police"]}},
        [("/followUp/reportedAt", "Required when reportedTo is given.")]),
    "reportedAt before occurredAt": (
        {"occurredAt": wire_time(recent(3)),
         "followUp": {"reportedTo": ["police"], "reportedAt": wire_time(recent(4))}},
        [("/followUp/reportedAt", "Must not be before occurredAt.")]),
    "meldcode step 6": (
        {"followUp": {"meldcodeStep": 6}},
        [("/followUp/meldcodeStep", "Must be greater than or equal to 1 and less than or equal to 5.")]),
    "server-owned fields (mass assignment)": (
        {"id": str(uuid.uuid4()), "version": 7, "status": "retracted", "institutionId": str(uuid.uuid4())},
        [("/id", UNKNOWN), ("/institutionId", UNKNOWN), ("/status", UNKNOWN), ("/version", UNKNOWN)]),
    "note longer than 500 characters": ({"note": "x" * 501}, [("/note", "Longer than maximum length 500.")]),
    "blank residentRef": ({"residentRef": "   "}, [("/residentRef", "Must not be blank.")]),
    "invalid plate and phone": (
        {"kind": "suspiciousVisitor",
         "visitor": {**VISITOR_BLOCK, "vehiclePlate": "-!-", "phoneNumber": "12"}},
        [("/visitor/phoneNumber", "Not a valid phone number."), ("/visitor/vehiclePlate", "Not a valid plate.")]),
    "many problems at once": (
        {"kind": "absence", "absence": OMIT, "occurredAt": FUTURE, "followUp": {"meldcodeStep": 6},  # no reportedAt
         "status": "active", "exploitationType": "trafficking"},
        [("/absence", "Required when kind is absence."),
         ("/exploitationType", "Must be one of: sexual, criminal, labour, other, unknown."),
         ("/followUp/meldcodeStep", "Must be greater than or equal to 1 and less than or equal to 5."),
         ("/occurredAt", "Must not be in the future."), ("/status", UNKNOWN)]),
}


@pytest.mark.parametrize("overrides, expected", INVALID_BODIES.values(), ids=INVALID_BODIES.keys())
def test_invalid_body_names_every_bad_field_and_records_nothing(client, session, headers, location, overrides,
                                                                 expected):
    response = client.post("/v1/incidents", json=incident_body(location.id, **overrides), headers=headers)

    body = assert_problem(response, 400)
    errors = sorted(body["errors"], key=lambda e: e["pointer"])
    assert {**body, "errors": errors} == invalid_input(body, [{"pointer": p, "detail": d}
                                                              for p, d in sorted(expected)])
    assert count(session) == 0


def test_refused_absence_block_with_a_bad_ended_at_is_a_400(client, session, headers, location):
    """Regression: this used to be a 500 (rules.py indexed the refused block's message list)."""
    sent = incident_body(location.id, kind="recruitmentAttempt", occurredAt=wire_time(recent(3)),
                         absence={**ABSENCE_BLOCK, "endedAt": wire_time(recent(4))})
    response = client.post("/v1/incidents", json=sent, headers=headers)
    body = assert_problem(response, 400)
    assert body["errors"] == [{"pointer": "/absence", "detail": "Only for kind absence."}]
    assert count(session) == 0


def test_missing_required_fields_are_each_named(client, session, headers):
    response = client.post("/v1/incidents", json={}, headers=headers)

    body = assert_problem(response, 400)
    assert sorted(body["errors"], key=lambda e: e["pointer"]) == [
        {"pointer": f"/{field}", "detail": MISSING}
        for field in ("clientReference", "exploitationType", "kind", "locationId", "occurredAt")]
    assert body["detail"] == "5 invalid field(s); see errors."
    assert count(session) == 0


NOTES = {
    "bsn": ("Jongere gaf BSN 111222333 door aan de bezoeker", "citizen service number (BSN)", "111222333"),
    "phone": ("Belde met 06-12345678 vanaf de poort", "phone number", "06-12345678"),
    "email": ("Contact via jan.jansen@example.nl gezocht", "e-mail address", "jan.jansen@example.nl"),
    "iban": ("Moest rekening NL91ABNA0417164300 uitlenen", "IBAN", "NL91ABNA0417164300"),
    "address": ("Wordt opgehaald bij 9712 AB 12 door een man", "postcode with house number", "9712 AB 12"),
    "birth date": ("Jongen, geboren 12-03-2010, werd aangesproken", "date of birth", "12-03-2010"),
}


@pytest.mark.parametrize("note, kind, offending", NOTES.values(), ids=NOTES.keys())
def test_note_with_identifying_data_is_refused_without_echoing_it(client, session, headers, location, note, kind,
                                                                  offending):
    response = client.post("/v1/incidents", json=incident_body(location.id, note=note), headers=headers)

    body = assert_problem(response, 400)
    assert [e["pointer"] for e in body["errors"]] == ["/note"]
    detail = body["errors"][0]["detail"]
    assert kind in detail
    assert offending not in response.get_data(as_text=True)
    assert note not in response.get_data(as_text=True)
    assert count(session) == 0


def test_resident_ref_that_is_a_bsn_is_refused_without_echoing_it(client, session, headers, location):
    response = client.post("/v1/incidents", json=incident_body(location.id, residentRef="111222333"),
                           headers=headers)

    body = assert_problem(response, 400)
    assert body == invalid_input(body, [{
        "pointer": "/residentRef",
        "detail": "Contains identifying data (citizen service number (BSN)); the register must not identify anyone."}])
    assert "111222333" not in response.get_data(as_text=True)
    assert count(session) == 0


def test_foreign_and_unknown_locations_get_the_same_answer(client, session, headers, other):
    foreign = client.post("/v1/incidents", json=incident_body(other.location.id, clientReference="X-1"),
                          headers=headers)
    unknown_id = uuid.uuid4()
    unknown = client.post("/v1/incidents", json=incident_body(unknown_id, clientReference="X-1"), headers=headers)

    body = assert_problem(foreign, 400)
    assert body == {"type": "about:blank", "title": "Invalid input", "status": 400,
                    "detail": "Some locations are not this institution's.", "instance": body["instance"],
                    "errors": [{"pointer": "/locationId", "detail": "Not a location of this institution."}]}
    assert without_instance(assert_problem(unknown, 400)) == without_instance(body)
    assert str(other.location.id) not in foreign.get_data(as_text=True)
    assert count(session) == 0


def test_foreign_location_is_named_together_with_other_bad_fields(client, session, headers, other):
    sent = incident_body(other.location.id, occurredAt=FUTURE, followUp=OMIT)
    response = client.post("/v1/incidents", json=sent, headers=headers)
    assert_problem(response, 400)
    assert pointers(response) == ["/locationId", "/occurredAt"]
    assert str(other.location.id) not in response.get_data(as_text=True)
    assert count(session) == 0


def test_a_location_id_that_is_no_uuid_is_named_once_by_the_schema(client, session, headers):
    response = client.post("/v1/incidents", json=incident_body("not-a-uuid", occurredAt=FUTURE, followUp=OMIT),
                           headers=headers)
    body = assert_problem(response, 400)
    assert pointers(response) == ["/locationId", "/occurredAt"]
    assert [e["detail"] for e in body["errors"] if e["pointer"] == "/locationId"] == ["Not a valid UUID."]


def test_duplicate_client_reference_is_a_conflict_naming_the_existing_incident(client, session, headers, location,
                                                                              create):
    first = create(clientReference="DUP-1")

    response = client.post("/v1/incidents", json=incident_body(location.id, clientReference="DUP-1"),
                           headers=headers)

    body = assert_problem(response, 409)
    url = f"/v1/incidents/{first['id']}"
    assert body == {"type": "about:blank", "title": "Conflict", "status": 409,
                    "detail": "An incident with this clientReference is already recorded.",
                    "instance": body["instance"],
                    "errors": [{"pointer": "/clientReference", "detail": "Already recorded."}],
                    "existing": [url]}
    assert response.headers["Location"] == url
    assert count(session) == 1


def test_the_same_client_reference_may_be_used_by_another_institution(client, session, create, other):
    create(clientReference="SHARED-1")
    response = client.post("/v1/incidents", json=incident_body(other.location.id, clientReference="SHARED-1"),
                           headers=other.headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert count(session) == 2


# --- batch -------------------------------------------------------------------------------------------------------


def test_batch_records_every_item_in_order(client, session, headers, location):
    items = [incident_body(location.id, kind=kind, clientReference=f"B-{i}")
             for i, kind in enumerate(["absence", "recruitmentAttempt", "suspiciousVisitor"])]

    response = client.post("/v1/incidents/_batch", json={"items": items}, headers=headers)

    assert response.status_code == 201, response.get_data(as_text=True)
    got = response.json["items"]
    assert [(i["clientReference"], i["kind"]) for i in got] == [
        ("B-0", "absence"), ("B-1", "recruitmentAttempt"), ("B-2", "suspiciousVisitor")]
    stored = {str(i.id): i.client_reference for i in session.scalars(select(Incident))}
    assert stored == {i["id"]: i["clientReference"] for i in got}
    single = client.get(f"/v1/incidents/{got[2]['id']}", headers=headers).json
    assert without_guidance(got[2]) == single
    assert "Location" not in response.headers


def test_batch_with_one_bad_item_records_nothing(client, session, headers, location):
    items = [incident_body(location.id, followUp=OMIT) for _ in range(4)]
    items[2]["occurredAt"] = FUTURE

    response = client.post("/v1/incidents/_batch", json={"items": items}, headers=headers)

    body = assert_problem(response, 400)
    assert body == invalid_input(body, [{"pointer": "/items/2/occurredAt", "detail": "Must not be in the future."}])
    assert count(session) == 0


def test_batch_errors_point_into_every_bad_item(client, session, headers, location, other):
    items = [incident_body(location.id) for _ in range(3)]
    items[0]["kind"] = "absence"
    items[1]["indicators"] = ["lateReturn"]
    items[2]["note"] = "Bel 06-12345678"
    response = client.post("/v1/incidents/_batch", json={"items": items}, headers=headers)
    assert_problem(response, 400)
    assert pointers(response) == ["/items/0/absence", "/items/1/indicators", "/items/2/note"]

    items = [incident_body(location.id), incident_body(other.location.id), incident_body(uuid.uuid4())]
    response = client.post("/v1/incidents/_batch", json={"items": items}, headers=headers)
    assert_problem(response, 400)
    assert pointers(response) == ["/items/1/locationId", "/items/2/locationId"]
    assert count(session) == 0


def test_batch_of_501_items_is_refused(client, session, headers, location):
    item = incident_body(location.id, note=OMIT)
    items = [{**item, "clientReference": f"M-{i}"} for i in range(501)]

    response = client.post("/v1/incidents/_batch", json={"items": items}, headers=headers)

    body = assert_problem(response, 400)
    assert body == invalid_input(body, [{"pointer": "/items", "detail": "Length must be between 1 and 500."}])
    assert count(session) == 0


def test_empty_batch_is_refused(client, headers):
    response = client.post("/v1/incidents/_batch", json={"items": []}, headers=headers)
    assert_problem(response, 400)
    assert pointers(response) == ["/items"]


def test_batch_with_a_repeated_client_reference_is_refused(client, session, headers, location):
    items = [incident_body(location.id, clientReference="SAME"), incident_body(location.id, clientReference="SAME")]

    response = client.post("/v1/incidents/_batch", json={"items": items}, headers=headers)

    body = assert_problem(response, 400)
    assert body["errors"] == [{"pointer": "/items/1/clientReference", "detail": "Repeats item 0."}]
    assert count(session) == 0


def test_batch_names_foreign_locations_repeats_and_bad_fields_in_one_answer(client, session, headers, location,
                                                                             other):
    items = [incident_body(location.id, clientReference="SAME"), incident_body(other.location.id),
             incident_body(location.id, clientReference="SAME")]
    response = client.post("/v1/incidents/_batch", json={"items": items}, headers=headers)
    body = assert_problem(response, 400)
    assert pointers(response) == ["/items/1/locationId", "/items/2/clientReference"]
    assert body["detail"] == ("Some locations are not this institution's. "
                              "A clientReference appears twice in the batch.")

    items[0]["indicators"] = ["lateReturn"]  # and a field the schema refuses: still every one of them
    response = client.post("/v1/incidents/_batch", json={"items": items}, headers=headers)
    assert_problem(response, 400)
    assert pointers(response) == ["/items/0/indicators", "/items/1/locationId", "/items/2/clientReference"]
    assert str(other.location.id) not in response.get_data(as_text=True)
    assert count(session) == 0


def test_a_batch_longer_than_allowed_is_not_looked_up(client, session, headers):
    items = [{"locationId": str(uuid.uuid4())} for _ in range(501)]  # bad items, each with an unknown location
    response = client.post("/v1/incidents/_batch", json={"items": items}, headers=headers)
    assert_problem(response, 400)
    assert not [p for p in pointers(response) if p.endswith("/locationId")]


def test_an_empty_json_body_names_the_missing_fields(client, session, headers):
    response = client.post("/v1/incidents", data="", headers=headers | {"Content-Type": "application/json"})
    assert_problem(response, 400)
    assert {"/clientReference", "/locationId", "/kind"} <= set(pointers(response))


def test_batch_with_an_already_recorded_client_reference_is_a_conflict(client, session, headers, location, create):
    existing = create(clientReference="OLD-1")
    items = [incident_body(location.id), incident_body(location.id, clientReference="OLD-1")]

    response = client.post("/v1/incidents/_batch", json={"items": items}, headers=headers)

    body = assert_problem(response, 409)
    assert body["errors"] == [{"pointer": "/items/1/clientReference", "detail": "Already recorded."}]
    assert body["existing"] == [f"/v1/incidents/{existing['id']}"]
    assert count(session) == 1


# --- idempotency -------------------------------------------------------------------------------------------------


def test_same_key_and_body_replays_the_first_answer(client, session, headers, location):
    sent = incident_body(location.id)
    keyed = {**headers, "Idempotency-Key": "retry-1"}

    first = client.post("/v1/incidents", json=sent, headers=keyed)
    second = client.post("/v1/incidents", json=sent, headers=keyed)

    assert first.status_code == second.status_code == 201
    assert second.get_data() == first.get_data()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Location"] == first.headers["Location"]
    assert second.headers["ETag"] == first.headers["ETag"] == '"1"'
    assert count(session) == 1
    assert count(session, IdempotencyKey) == 1


def test_same_key_with_another_body_is_422(client, session, headers, location):
    keyed = {**headers, "Idempotency-Key": "retry-2"}
    assert client.post("/v1/incidents", json=incident_body(location.id), headers=keyed).status_code == 201

    response = client.post("/v1/incidents", json=incident_body(location.id), headers=keyed)

    body = assert_problem(response, 422)
    assert body == {"type": "about:blank", "title": "Unprocessable Content", "status": 422,
                    "detail": "This Idempotency-Key was used for a different request; use a new key.",
                    "instance": body["instance"]}
    assert count(session) == 1


def test_different_keys_record_separately(client, session, headers, location):
    for key in ("k-a", "k-b"):
        response = client.post("/v1/incidents", json=incident_body(location.id),
                               headers={**headers, "Idempotency-Key": key})
        assert response.status_code == 201
        assert "Idempotent-Replayed" not in response.headers
    assert count(session) == 2


def test_keys_are_scoped_per_client(client, session, headers, location, other):
    key = {"Idempotency-Key": "shared-key"}
    mine = client.post("/v1/incidents", json=incident_body(location.id), headers={**headers, **key})
    theirs = client.post("/v1/incidents", json=incident_body(other.location.id), headers={**other.headers, **key})

    assert mine.status_code == theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert theirs.json["id"] != mine.json["id"]
    assert count(session) == 2


def test_batch_is_idempotent_too(client, session, headers, location):
    batch = {"items": [incident_body(location.id), incident_body(location.id)]}
    keyed = {**headers, "Idempotency-Key": "batch-1"}

    first = client.post("/v1/incidents/_batch", json=batch, headers=keyed)
    second = client.post("/v1/incidents/_batch", json=batch, headers=keyed)
    other_body = client.post("/v1/incidents/_batch", json={"items": [incident_body(location.id)]}, headers=keyed)

    assert first.status_code == second.status_code == 201
    assert second.get_data() == first.get_data()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert_problem(other_body, 422)
    assert count(session) == 2


def test_the_key_is_kept_only_as_a_keyed_hash(client, session, headers, location, settings):
    key = "CL-0042-111222333"  # keys are built from anything, client numbers included
    sent = incident_body(location.id)

    first = client.post("/v1/incidents", json=sent, headers={**headers, "Idempotency-Key": key})
    again = client.post("/v1/incidents", json=sent, headers={**headers, "Idempotency-Key": key})

    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    stored = session.scalars(select(IdempotencyKey.key_hash)).all()
    assert stored == [key_hash(settings.pseudonym_master_key, key)]
    assert stored != [hashlib.sha256(key.encode()).hexdigest()]  # keyed: not to be tried against a copy
    assert key_hash(b"another master key", key) not in stored


def test_idempotency_key_longer_than_255_is_refused(client, session, headers, location):
    response = client.post("/v1/incidents", json=incident_body(location.id),
                           headers={**headers, "Idempotency-Key": "k" * 256})
    body = assert_problem(response, 400)
    assert [(e["pointer"], e.get("in")) for e in body["errors"]] == [("/Idempotency-Key", "header")]
    assert count(session) == 0


def test_a_refused_request_does_not_use_up_its_key(client, session, headers, location):
    keyed = {**headers, "Idempotency-Key": "after-error"}
    bad = client.post("/v1/incidents", json=incident_body(location.id, occurredAt=FUTURE), headers=keyed)
    assert_problem(bad, 400)
    good = client.post("/v1/incidents", json=incident_body(location.id), headers=keyed)
    assert good.status_code == 201
    assert count(session, IdempotencyKey) == 1


# --- list and search ---------------------------------------------------------------------------------------------


@pytest.fixture
def five(client, session, headers, institution, location, create):  # type: ignore[no-untyped-def]
    """Five incidents with distinct times, kinds, types and two locations; the last is retracted."""
    second_location = make_location(session, institution)
    base = recent(100)
    specs = [("recruitmentAttempt", "criminal", location), ("absence", "sexual", location),
             ("suspiciousVisitor", "criminal", second_location), ("recruitmentAttempt", "labour", second_location),
             ("absence", "criminal", location)]
    made = []
    for i, (kind, exploitation, where) in enumerate(specs):
        body = incident_body(where.id, kind=kind, exploitationType=exploitation,
                             occurredAt=wire_time(base + dt.timedelta(hours=10 * i)))
        if kind == "absence":
            body["absence"]["endedAt"] = wire_time(base + dt.timedelta(hours=10 * i + 1))
        response = client.post("/v1/incidents", json=body, headers=headers)
        assert response.status_code == 201, response.get_data(as_text=True)
        made.append(without_guidance(response.json))
    retracted = client.post(f"/v1/incidents/{made[4]['id']}/retraction", json={"reason": "Dubbel ingevoerd"},
                            headers=headers)
    assert retracted.status_code == 200
    made[4] = retracted.json
    return {"items": made, "second_location": second_location}


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [item["id"] for item in response.json["items"]]


def test_list_without_filters_returns_everything_in_recorded_order(client, headers, five):
    response = client.get("/v1/incidents", headers=headers)
    assert response.json == {"items": five["items"], "nextCursor": None}
    assert "Link" not in response.headers


def test_list_filters(client, headers, location, five):
    made = [i["id"] for i in five["items"]]
    occurred = [i["occurredAt"] for i in five["items"]]

    def listed(**query: str) -> list[str]:
        return ids(client.get("/v1/incidents", query_string=query, headers=headers))

    assert listed(locationId=str(location.id)) == [made[0], made[1], made[4]]
    assert listed(locationId=str(five["second_location"].id)) == [made[2], made[3]]
    assert listed(kind="absence") == [made[1], made[4]]
    assert listed(exploitationType="criminal") == [made[0], made[2], made[4]]
    assert listed(status="retracted") == [made[4]]
    assert listed(status="active") == made[:4]
    assert listed(occurredFrom=occurred[1]) == made[1:]  # inclusive
    assert listed(occurredTo=occurred[3]) == made[:3]  # exclusive
    assert listed(occurredFrom=occurred[1], occurredTo=occurred[3]) == made[1:3]
    plus_one = dt.datetime.fromisoformat(occurred[2]).astimezone(PLUS_ONE).isoformat()
    assert listed(occurredFrom=plus_one) == made[2:]
    assert listed(kind="absence", exploitationType="criminal", status="active") == []
    assert listed(locationId=str(uuid.uuid4())) == []


def test_list_pages_with_a_cursor_and_link_header(client, headers, five):
    made = [i["id"] for i in five["items"]]
    first = client.get("/v1/incidents?limit=2", headers=headers)
    assert ids(first) == made[:2]
    second_url = next_link(first)
    assert second_url is not None and "limit=2" in second_url
    assert f"cursor={first.json['nextCursor']}" in second_url

    second = client.get(second_url, headers=headers)
    assert ids(second) == made[2:4]
    third = client.get(next_link(second), headers=headers)
    assert ids(third) == made[4:]
    assert third.json["nextCursor"] is None
    assert "Link" not in third.headers


LIST_REFUSALS = {
    "limit over 200": ({"limit": "201"}, "/limit"),
    "limit zero": ({"limit": "0"}, "/limit"),
    "unknown parameter": ({"colour": "red"}, "/colour"),
    "residentRef in the URL": ({"residentRef": "CL-0042"}, "/residentRef"),
    "unknown kind": ({"kind": "burglary"}, "/kind"),
    "occurredFrom without offset": ({"occurredFrom": "2026-01-01T00:00:00"}, "/occurredFrom"),
    "garbage cursor": ({"cursor": "not-a-cursor"}, "/cursor"),
}


@pytest.mark.parametrize("query, pointer", LIST_REFUSALS.values(), ids=LIST_REFUSALS.keys())
def test_list_refuses_bad_query_parameters(client, headers, five, query, pointer):
    response = client.get("/v1/incidents", query_string=query, headers=headers)
    body = assert_problem(response, 400)
    assert [(e["pointer"], e.get("in")) for e in body["errors"]] == [(pointer, "query")]
    assert "CL-0042" not in response.get_data(as_text=True)


@pytest.fixture
def residents(client, headers, location, other):  # type: ignore[no-untyped-def]
    """Two residents at this institution (three incidents), one other resident at the other institution."""
    made = {}
    for name, ref in (("r1a", "RES-1"), ("r2", "RES-2"), ("r1b", "RES-1"), ("none", OMIT)):
        response = client.post("/v1/incidents", json=incident_body(location.id, residentRef=ref), headers=headers)
        assert response.status_code == 201
        made[name] = response.json["id"]
    response = client.post("/v1/incidents", json=incident_body(other.location.id, residentRef="RES-9"),
                           headers=other.headers)
    assert response.status_code == 201
    made["other"] = response.json["id"]
    return made


def test_search_by_resident_finds_exactly_that_residents_incidents(client, headers, other, residents):
    def search(hdrs: dict[str, str], **body: Any) -> list[str]:
        return ids(client.post("/v1/incidents/_search", json=body, headers=hdrs))

    assert search(headers, residentRef="RES-1") == [residents["r1a"], residents["r1b"]]
    assert search(headers, residentRef="RES-2") == [residents["r2"]]
    assert search(headers, residentRef="RES-9") == []
    assert search(headers, residentRef="RES-1", kind="absence") == []
    assert search(headers) == [residents[k] for k in ("r1a", "r2", "r1b", "none")]
    assert search(other.headers, residentRef="RES-1") == []
    assert search(other.headers, residentRef="RES-9") == [residents["other"]]


def test_search_pages_with_the_cursor_in_the_body(client, headers, residents):
    first = client.post("/v1/incidents/_search", json={"residentRef": "RES-1", "limit": 1}, headers=headers)
    assert ids(first) == [residents["r1a"]]
    cursor = first.json["nextCursor"]
    assert cursor
    second = client.post("/v1/incidents/_search", json={"residentRef": "RES-1", "limit": 1, "cursor": cursor},
                         headers=headers)
    assert ids(second) == [residents["r1b"]]
    assert second.json["nextCursor"] is None


def test_search_refuses_unknown_and_blank_fields(client, headers, residents):
    response = client.post("/v1/incidents/_search", json={"residentRef": "  ", "colour": "red", "limit": 500},
                           headers=headers)
    assert_problem(response, 400)
    assert pointers(response) == ["/colour", "/limit", "/residentRef"]


# --- get ---------------------------------------------------------------------------------------------------------


def test_get_own_incident(client, headers, create):
    created = create(kind="suspiciousVisitor")
    response = client.get(f"/v1/incidents/{created['id']}", headers=headers)
    assert response.status_code == 200
    assert response.json == created
    assert response.headers["ETag"] == '"1"'


def test_another_institutions_incident_is_not_found_like_a_missing_one(client, create, other):
    created = create()
    theirs = client.get(f"/v1/incidents/{created['id']}", headers=other.headers)
    missing = client.get(f"/v1/incidents/{uuid.uuid4()}", headers=other.headers)

    body = assert_problem(theirs, 404)
    assert body == {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "No such incident.",
                    "instance": body["instance"]}
    assert without_instance(assert_problem(missing, 404)) == without_instance(body)


# --- corrections -------------------------------------------------------------------------------------------------


def test_patch_without_if_match_is_428(client, session, headers, create):
    created = create()
    response = client.patch(f"/v1/incidents/{created['id']}", json={"exploitationType": "sexual", "reason": REASON},
                            headers=headers)
    assert_problem(response, 428)
    assert count(session, Revision) == 0


def test_patch_with_stale_if_match_is_412_naming_the_current_version(client, session, headers, create):
    created = create()
    url = f"/v1/incidents/{created['id']}"
    assert client.patch(url, json={"exploitationType": "sexual", "reason": REASON},
                        headers=if_match(headers, 1)).status_code == 200

    response = client.patch(url, json={"exploitationType": "labour", "reason": REASON}, headers=if_match(headers, 1))

    body = assert_problem(response, 412)
    assert "version 2" in body["detail"]
    assert client.get(url, headers=headers).json["exploitationType"] == "sexual"
    assert count(session, Revision) == 1


def test_correction_writes_a_new_version_and_a_revision(client, session, headers, api_client, create):
    created = create(exploitationType="criminal")
    url = f"/v1/incidents/{created['id']}"

    response = client.patch(url, json={"exploitationType": "sexual", "reason": REASON}, headers=if_match(headers, 1))

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["ETag"] == '"2"'
    assert without_guidance(response.json) == {**created, "exploitationType": "sexual", "version": 2}
    fetched = client.get(url, headers=headers)
    assert fetched.json == without_guidance(response.json) and fetched.headers["ETag"] == '"2"'

    revision = session.scalars(select(Revision).where(Revision.incident_id == uuid.UUID(created["id"]))).one()
    revisions = client.get(f"{url}/revisions", headers=headers)
    assert revisions.status_code == 200
    assert revisions.json == {"items": [{
        "version": 2, "action": "correction", "reason": REASON, "clientId": str(api_client.id),
        "changedAt": revision.changed_at.isoformat(),
        "changes": {"exploitationType": {"old": "criminal", "new": "sexual"}}}]}


def test_correcting_write_only_fields_records_only_that_they_changed(client, session, headers, create):
    created = create(kind="suspiciousVisitor")
    url = f"/v1/incidents/{created['id']}"
    patch = {"residentRef": "CL-7777", "note": "Tweede bezoek van dezelfde man.", "reason": REASON,
             "visitor": {"estimatedAgeBand": "23plus", "relationClaimed": "friend", "vehiclePlate": "99-XYZ-9",
                         "phoneNumber": "06 12345678"}}

    response = client.patch(url, json=patch, headers=if_match(headers, 1))

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json["version"] == 2
    revisions = client.get(f"{url}/revisions", headers=headers)
    assert revisions.json["items"][0]["changes"] == {
        "residentRef": {"changed": True}, "note": {"changed": True}, "visitor/vehiclePlate": {"changed": True}}
    for text in (response.get_data(as_text=True), revisions.get_data(as_text=True)):
        for secret in ("CL-7777", "CL-0042", "99-XYZ-9", "99XYZ9", "12-ABC-3", "12345678"):
            assert secret not in text
    assert "Tweede bezoek" not in revisions.get_data(as_text=True)
    found = client.post("/v1/incidents/_search", json={"residentRef": "CL-7777"}, headers=headers)
    assert ids(found) == [created["id"]]


def test_changing_kind_needs_the_old_block_cleared(client, session, headers, create):
    created = create(kind="absence", indicators=["onlineGrooming"])
    url = f"/v1/incidents/{created['id']}"

    kept_block = client.patch(url, json={"kind": "recruitmentAttempt", "reason": REASON},
                              headers=if_match(headers, 1))
    body = assert_problem(kept_block, 400)
    assert body["errors"] == [{"pointer": "/absence", "detail": "Only for kind absence."}]

    cleared = client.patch(url, json={"kind": "recruitmentAttempt", "absence": None, "reason": REASON},
                           headers=if_match(headers, 1))
    assert cleared.status_code == 200, cleared.get_data(as_text=True)
    assert (cleared.json["kind"], cleared.json["absence"], cleared.json["version"]) == (
        "recruitmentAttempt", None, 2)
    changes = client.get(f"{url}/revisions", headers=headers).json["items"][0]["changes"]
    assert changes["kind"] == {"old": "absence", "new": "recruitmentAttempt"}
    assert changes["absence/riskLevel"] == {"old": "orange", "new": None}


PATCH_REFUSALS = {
    "without reason": ({"exploitationType": "sexual"}, [("/reason", MISSING)]),
    "reason with a phone number": (
        {"exploitationType": "sexual", "reason": "Gebeld door 06-12345678"},
        [("/reason", "Contains identifying data (phone number); the register must not identify anyone.")]),
    "unknown field": ({"status": "retracted", "reason": REASON}, [("/status", UNKNOWN)]),
    "server-owned version": ({"version": 9, "reason": REASON}, [("/version", UNKNOWN)]),
    "future occurredAt": ({"occurredAt": FUTURE, "reason": REASON},
                          [("/occurredAt", "Must not be in the future."),
                           ("/followUp/reportedAt", "Must not be before occurredAt.")]),
    "note with an e-mail address": (
        {"note": "mail a@b.nl", "reason": REASON},
        [("/note", "Contains identifying data (e-mail address); the register must not identify anyone.")]),
    "resident ref that is a BSN": (
        {"residentRef": "111222333", "reason": REASON},
        [("/residentRef", "Contains identifying data (citizen service number (BSN)); the register must not identify "
                           "anyone.")]),
    "indicator of another kind": (
        {"indicators": ["lateReturn"], "reason": REASON},
        [("/indicators", "Not an indicator of kind recruitmentAttempt: lateReturn.")]),
    "kind set to null": ({"kind": None, "reason": REASON}, [("/kind", "Field may not be null.")]),
}


@pytest.mark.parametrize("patch, expected", PATCH_REFUSALS.values(), ids=PATCH_REFUSALS.keys())
def test_invalid_patch_is_refused_and_changes_nothing(client, session, headers, create, patch, expected):
    created = create()
    url = f"/v1/incidents/{created['id']}"

    response = client.patch(url, json=patch, headers=if_match(headers, 1))

    body = assert_problem(response, 400)
    assert [(e["pointer"], e["detail"]) for e in body["errors"]] == expected
    assert "06-12345678" not in response.get_data(as_text=True)
    assert "111222333" not in response.get_data(as_text=True)
    assert client.get(url, headers=headers).json == created
    assert count(session, Revision) == 0


def test_patch_to_a_foreign_location_is_refused(client, session, headers, create, other):
    created = create()
    response = client.patch(f"/v1/incidents/{created['id']}", json={"locationId": str(other.location.id),
                                                                    "reason": REASON},
                            headers=if_match(headers, 1))
    assert_problem(response, 400)
    assert response.json["errors"] == [{"pointer": "/locationId", "detail": "Not a location of this institution."}]


def test_patch_names_a_foreign_location_beside_every_other_bad_field(client, session, headers, create, other):
    created = create()
    url = f"/v1/incidents/{created['id']}"
    # The patch is well formed, the corrected whole breaks a rule (an absence block on a visitor signal) ...
    wrong_whole = {"locationId": str(other.location.id), "kind": "suspiciousVisitor", "reason": REASON}
    # ... or the schema refuses a field of the patch itself.
    wrong_field = {"locationId": str(other.location.id), "residentAgeBand": "ancient", "reason": REASON}
    for patch in (wrong_whole, wrong_field):
        response = client.patch(url, json=patch, headers=if_match(headers, 1))
        assert_problem(response, 400)
        assert "/locationId" in pointers(response) and len(pointers(response)) > 1, response.json
        assert str(other.location.id) not in response.get_data(as_text=True)
    assert client.get(url, headers=headers).json == created
    assert count(session, Revision) == 0


def test_patch_to_a_client_reference_in_use_is_a_conflict(client, session, headers, create):
    taken = create(clientReference="TAKEN")
    created = create()
    response = client.patch(f"/v1/incidents/{created['id']}", json={"clientReference": "TAKEN", "reason": REASON},
                            headers=if_match(headers, 1))
    body = assert_problem(response, 409)
    assert body["existing"] == [f"/v1/incidents/{taken['id']}"]
    assert body["errors"] == [{"pointer": "/clientReference", "detail": "Already recorded."}]
    assert response.headers["Location"] == f"/v1/incidents/{taken['id']}"
    assert count(session, Revision) == 0


def test_patch_that_changes_nothing_keeps_the_version(client, session, headers, create):
    created = create(exploitationType="criminal")
    url = f"/v1/incidents/{created['id']}"

    response = client.patch(url, json={"exploitationType": "criminal", "residentRef": "CL-0042", "reason": REASON},
                            headers=if_match(headers, 1))

    assert response.status_code == 200, response.get_data(as_text=True)
    assert without_guidance(response.json) == created
    assert response.headers["ETag"] == '"1"'
    assert count(session, Revision) == 0
    assert client.get(f"{url}/revisions", headers=headers).json == {"items": []}


def test_merge_patch_of_one_nested_field_keeps_the_others(client, session, headers, create):
    """Regression: the create schema's required fields and defaults used to apply inside a PATCH."""
    created = create(kind="absence", absence={"endedAt": wire_time(recent(2)), "whereaboutsKnown": True,
                                              "riskLevel": "orange", "reportedMissingToPolice": True})
    url = f"/v1/incidents/{created['id']}"

    response = client.patch(url, json={"absence": {"riskLevel": "red"}, "reason": REASON},
                            headers=if_match(headers, 1))

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json["absence"] == {**created["absence"], "riskLevel": "red"}
    changes = client.get(f"{url}/revisions", headers=headers).json["items"][0]["changes"]
    assert changes == {"absence/riskLevel": {"old": "orange", "new": "red"}}


def test_merge_patch_of_the_visitor_plate_keeps_the_visitor_fields(client, session, headers, create):
    created = create(kind="suspiciousVisitor")
    url = f"/v1/incidents/{created['id']}"

    response = client.patch(url, json={"visitor": {"vehiclePlate": "99-XYZ-9"}, "reason": REASON},
                            headers=if_match(headers, 1))

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json["visitor"] == created["visitor"]
    changes = client.get(f"{url}/revisions", headers=headers).json["items"][0]["changes"]
    assert changes == {"visitor/vehiclePlate": {"changed": True}}


# --- retraction --------------------------------------------------------------------------------------------------


def test_retraction_keeps_the_record_and_writes_a_revision(client, session, headers, api_client, create):
    created = create()
    url = f"/v1/incidents/{created['id']}"

    response = client.post(f"{url}/retraction", json={"reason": "Dubbel ingevoerd"}, headers=headers)

    assert response.status_code == 200, response.get_data(as_text=True)
    incident = session.get(Incident, uuid.UUID(created["id"]))
    assert response.json == {**created, "status": "retracted", "version": 2,
                             "retractedAt": incident.retracted_at.isoformat()}
    assert response.headers["ETag"] == '"2"'
    revision = session.scalars(select(Revision)).one()
    assert client.get(f"{url}/revisions", headers=headers).json == {"items": [{
        "version": 2, "action": "retraction", "reason": "Dubbel ingevoerd", "clientId": str(api_client.id),
        "changedAt": revision.changed_at.isoformat(), "changes": {"status": {"old": "active", "new": "retracted"}}}]}

    again = client.post(f"{url}/retraction", json={"reason": "Nogmaals"}, headers=headers)
    assert_problem(again, 409)
    patched = client.patch(url, json={"exploitationType": "sexual", "reason": REASON}, headers=if_match(headers, 2))
    assert_problem(patched, 409)

    fetched = client.get(url, headers=headers)
    assert fetched.status_code == 200 and fetched.json == response.json
    assert ids(client.get("/v1/incidents?status=retracted", headers=headers)) == [created["id"]]
    assert ids(client.get("/v1/incidents?status=active", headers=headers)) == []
    assert count(session, Revision) == 1


def test_retraction_needs_a_clean_reason_and_honours_if_match(client, session, headers, create):
    created = create()
    url = f"/v1/incidents/{created['id']}/retraction"
    assert pointers(client.post(url, json={}, headers=headers)) == ["/reason"]
    assert pointers(client.post(url, json={"reason": "zie jan@example.nl"}, headers=headers)) == ["/reason"]
    assert_problem(client.post(url, json={"reason": "Fout"}, headers=if_match(headers, 5)), 412)
    assert client.post(url, json={"reason": "Fout"}, headers=if_match(headers, 1)).status_code == 200


# --- tenancy and roles -------------------------------------------------------------------------------------------


def test_another_institution_cannot_reach_an_incident(client, session, headers, location, create, other):
    created = create(residentRef="RES-A")
    url = f"/v1/incidents/{created['id']}"
    missing = f"/v1/incidents/{uuid.uuid4()}"
    not_found = without_instance(assert_problem(client.get(missing, headers=other.headers), 404))

    attempts = [
        client.get(url, headers=other.headers),
        client.patch(url, json={"exploitationType": "sexual", "reason": REASON}, headers=if_match(other.headers, 1)),
        client.post(f"{url}/retraction", json={"reason": "Weg ermee"}, headers=other.headers),
        client.get(f"{url}/revisions", headers=other.headers),
    ]
    for response in attempts:
        assert without_instance(assert_problem(response, 404)) == not_found

    assert ids(client.get("/v1/incidents", headers=other.headers)) == []
    assert ids(client.get(f"/v1/incidents?locationId={location.id}", headers=other.headers)) == []
    assert ids(client.post("/v1/incidents/_search", json={"residentRef": "RES-A"}, headers=other.headers)) == []
    assert ids(client.post("/v1/incidents/_search", json={}, headers=other.headers)) == []

    posted = client.post("/v1/incidents", json=incident_body(location.id), headers=other.headers)
    assert_problem(posted, 400)
    assert pointers(posted) == ["/locationId"]
    batch = client.post("/v1/incidents/_batch", json={"items": [incident_body(location.id)]}, headers=other.headers)
    assert pointers(batch) == ["/items/0/locationId"]

    assert client.get(url, headers=headers).json == created
    assert count(session) == 1 and count(session, Revision) == 0


@pytest.mark.parametrize("role", [Role.ANALYST, Role.AUDITOR, Role.ADMIN])
def test_other_roles_are_forbidden_on_every_incident_route(client, session, token_for, create, location, role):
    created = create()
    url = f"/v1/incidents/{created['id']}"
    role_headers = token_for(role)
    routes = [("GET", "/v1/incidents", None), ("POST", "/v1/incidents", incident_body(location.id)),
              ("POST", "/v1/incidents/_batch", {"items": [incident_body(location.id)]}),
              ("POST", "/v1/incidents/_search", {}), ("GET", url, None),
              ("PATCH", url, {"exploitationType": "sexual", "reason": REASON}),
              ("POST", f"{url}/retraction", {"reason": "Fout"}), ("GET", f"{url}/revisions", None)]
    for method, path, body in routes:
        response = client.open(path, method=method, json=body, headers=if_match(role_headers, 1))
        assert_problem(response, 403)
        assert created["clientReference"] not in response.get_data(as_text=True), path
    assert count(session) == 1 and count(session, Revision) == 0


def test_no_token_is_401(client, create):
    created = create()
    assert_problem(client.get(f"/v1/incidents/{created['id']}"), 401)
    assert_problem(client.post("/v1/incidents", json={}), 401)
