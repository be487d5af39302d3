"""Privacy canary (DESIGN §4): identities sent to the register never come back out of it.

Distinctive values are sent through every write path (single create with an Idempotency-Key, batch, correction,
retraction, search) and through requests that fail. Then every column of every table, every captured log record
and every response the test saw are scanned. A resident reference, a plate or a phone number may appear nowhere;
the note only where the design puts it: the incident row, the institution's own stored idempotent response, and
the institution's own successful reads and writes. A second test plants identifiers where an integrator might
put them (client references, names of institutions, locations and clients, X-Request-ID, Idempotency-Key) and
reads what other parties see (exports, the access log, statistics). The tests follow TEST_DATABASE_URL (SQLite or
PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from service import clock
from service.auth.models import Role
from service.incidents.idempotency import key_hash
from service.incidents.identities import pseudonymise_resident
from service.screening import screen_text
from tests.factories import make_institution, make_location

RESIDENT_1, RESIDENT_2 = "CANARY-RES-7731", "CANARY-RES-9902"
PLATE_1, PLATE_2 = "CN-77-XQ", "CN-99-ZZ"
PHONE_1, PHONE_2 = "+31 6 7731 0042", "+31 6 9902 0077"
NOTE_1 = "CANARYNOTE zag man bij ingang"
NOTE_2 = "CANARYNOTE2 auto reed weg na tien minuten"
# A mobile number in an issued range (06-1): the note screen must refuse it.
NOTE_WITH_PHONE = "CANARYNOTE belde vanaf 06 1277 9999"

# What may never appear anywhere, in every written form the service could produce (compared case-insensitively).
IDENTITY_CANARIES = {
    "residentRef": (RESIDENT_1, RESIDENT_2),
    "vehiclePlate": (PLATE_1, "CN77XQ", PLATE_2, "CN99ZZ"),
    # E.164, national and as typed; the national significant number covers every other spelling.
    "phoneNumber": (PHONE_1, "+31677310042", "0677310042", "677310042", PHONE_2, "+31699020077", "0699020077",
                    "699020077", "1277 9999", "12779999"),
}
NOTE_CANARY = "CANARYNOTE"
# The only columns the note may be stored in (the incident, and the institution's own response kept for replays).
NOTE_COLUMNS = {("incident", "note"), ("idempotency_key", "response_body")}
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _hits(text_value: str, canaries: Mapping[str, Iterable[str]]) -> list[str]:
    folded = text_value.casefold()
    return [f"{name} {value!r}" for name, values in canaries.items() for value in values
            if value.casefold() in folded]


def _as_text(value: Any) -> str:
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, ensure_ascii=False) + " " + str(value)
    return str(value)


def database_leaks(connection: Connection, identities: Mapping[str, Iterable[str]] = IDENTITY_CANARIES) -> list[str]:
    """Every table and column holding a canary where it may not be, as 'table.column (row n): canary'."""
    leaks = []
    quote = connection.dialect.identifier_preparer.quote
    for table in inspect(connection).get_table_names():
        result = connection.execute(text(f"SELECT * FROM {quote(table)}"))  # noqa: S608 (names from the catalogue)
        columns = list(result.keys())
        for n, row in enumerate(result):
            for column, value in zip(columns, row, strict=True):
                if value is None:
                    continue
                stored = _as_text(value)
                canaries: dict[str, Iterable[str]] = dict(identities)
                if (table, column) not in NOTE_COLUMNS:
                    canaries["note"] = (NOTE_CANARY,)
                leaks += [f"{table}.{column} (row {n}): {hit}" for hit in _hits(stored, canaries)]
    return leaks


def log_leaks(records: Iterable[logging.LogRecord],
              identities: Mapping[str, Iterable[str]] = IDENTITY_CANARIES) -> list[str]:
    """Every log record whose message, arguments or exception text holds any canary, the note included."""
    canaries = {**identities, "note": (NOTE_CANARY,)}
    leaks = []
    for record in records:
        parts = [record.getMessage(), repr(record.args), str(record.msg), record.exc_text or ""]
        if record.exc_info and record.exc_info[1] is not None:
            parts.append(repr(record.exc_info[1]))
        leaks += [f"{record.name} {record.levelname} {record.getMessage()[:200]!r}: {hit}"
                  for hit in _hits("\n".join(parts), canaries)]
    return leaks


@dataclass
class Seen:
    """Every response the test received, and whether it may show the note (the writer's own successful calls)."""

    responses: list[tuple[str, TestResponse, bool]] = field(default_factory=list)

    def add(self, label: str, response: TestResponse, *, may_show_note: bool = False) -> TestResponse:
        self.responses.append((label, response, may_show_note and response.status_code < 400))
        return response

    def leaks(self, identities: Mapping[str, Iterable[str]] = IDENTITY_CANARIES) -> list[str]:
        leaks = []
        for label, response, may_show_note in self.responses:
            canaries: dict[str, Iterable[str]] = dict(identities)
            if not may_show_note:
                canaries["note"] = (NOTE_CANARY,)
            body = response.get_data(as_text=True)
            headers = "\n".join(f"{name}: {value}" for name, value in response.headers.items())
            leaks += [f"{label} ({response.status_code}) body: {hit}" for hit in _hits(body, canaries)]
            leaks += [f"{label} ({response.status_code}) headers: {hit}" for hit in _hits(headers, canaries)]
        return leaks


def _when(hours_ago: float) -> str:
    return (clock.now() - dt.timedelta(hours=hours_ago)).astimezone(
        dt.timezone(dt.timedelta(hours=1))).isoformat(timespec="seconds")


def visitor_incident(location_id: str, reference: str, **overrides: Any) -> dict[str, Any]:
    return {
        "clientReference": reference, "locationId": location_id, "kind": "suspiciousVisitor",
        "exploitationType": "criminal", "occurredAt": _when(3), "residentRef": RESIDENT_1,
        "residentAgeBand": "16to17", "indicators": ["unknownAdultWaiting", "vehicleSeenRepeatedly"], "note": NOTE_1,
        "visitor": {"estimatedAgeBand": "23plus", "vehiclePlate": PLATE_1, "phoneNumber": PHONE_1,
                    "relationClaimed": "friend"},
    } | overrides


def absence_incident(location_id: str, reference: str) -> dict[str, Any]:
    return {
        "clientReference": reference, "locationId": location_id, "kind": "absence", "exploitationType": "sexual",
        "occurredAt": _when(30), "residentRef": RESIDENT_1, "residentAgeBand": "16to17",
        "indicators": ["awayWithoutPermission", "inHotelsOrOthersHomes"], "note": NOTE_1,
        "absence": {"endedAt": _when(5), "whereaboutsKnown": False, "riskLevel": "orange",
                    "reportedMissingToPolice": True},
    }


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Everything logged at DEBUG and above, plus SQLAlchemy's statement log (which it keeps at WARNING unless told).

    Set before the test's connection opens, since a connection decides at checkout whether it logs statements.
    The statement log is INFO, not DEBUG: at DEBUG SQLAlchemy logs every fetched row, notes included, which no
    deployment does (LOG_LEVEL configures the root logger; the sqlalchemy logger stays at WARNING).
    """
    # In this order: set_level also sets the capture handler's level, and the last call must leave it at DEBUG.
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    caplog.set_level(logging.DEBUG)
    assert caplog.handler.level == logging.DEBUG
    return caplog


def test_no_identity_leaves_the_register_and_the_note_stays_where_it_belongs(
        debug_logs: pytest.LogCaptureFixture, app: Flask, client: FlaskClient, session: Session,
        connection: Connection, token_for: Any) -> None:
    institution = make_institution(session)
    location_id = str(make_location(session, institution).id)
    own = token_for(Role.INSTITUTION, institution_id=institution.id)
    other = token_for(Role.INSTITUTION)
    seen = Seen()

    # Single create, with a key, and its replay.
    single_body = visitor_incident(location_id, "canary-single")
    created = seen.add("create", client.post("/v1/incidents", json=single_body,
                                             headers=own | {"Idempotency-Key": "canary-key-1"}), may_show_note=True)
    assert created.status_code == 201, created.json
    assert NOTE_1 in created.get_data(as_text=True)  # the writer sees its own note (positive control)
    incident_id = created.json["id"]
    replay = seen.add("create replay", client.post("/v1/incidents", json=single_body,
                                                   headers=own | {"Idempotency-Key": "canary-key-1"}),
                      may_show_note=True)
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"

    # Batch of two, with the plate and phone spelled differently.
    batch = seen.add("batch", client.post("/v1/incidents/_batch", headers=own | {"Idempotency-Key": "canary-key-2"},
                                          json={"items": [
                                              visitor_incident(location_id, "canary-batch-1", visitor={
                                                  "vehiclePlate": "cn77xq", "phoneNumber": "0677310042",
                                                  "relationClaimed": "unknown"}),
                                              absence_incident(location_id, "canary-batch-2"),
                                          ]}), may_show_note=True)
    assert batch.status_code == 201, batch.json
    batch_ids = [item["id"] for item in batch.json["items"]]

    # Correction with new identities and a new note, then retraction.
    corrected = seen.add("patch", client.patch(f"/v1/incidents/{incident_id}", headers=own | {"If-Match": '"1"'},
                                               json={"reason": "Correctie na overleg met het team",
                                                     "residentRef": RESIDENT_2, "note": NOTE_2,
                                                     "visitor": {"vehiclePlate": PLATE_2, "phoneNumber": PHONE_2}}),
                         may_show_note=True)
    assert corrected.status_code == 200, corrected.json
    assert corrected.json["version"] == 2
    retracted = seen.add("retraction", client.post(f"/v1/incidents/{incident_id}/retraction",
                                                   headers=own | {"If-Match": '"2"'},
                                                   json={"reason": "Dubbel gemeld"}), may_show_note=True)
    assert retracted.status_code == 200, retracted.json

    # Reads: search by each resident, list, get, revisions.
    found_2 = seen.add("search new resident", client.post("/v1/incidents/_search", headers=own,
                                                          json={"residentRef": RESIDENT_2}), may_show_note=True)
    assert found_2.status_code == 200, found_2.json
    assert [item["id"] for item in found_2.json["items"]] == [incident_id]
    found_1 = seen.add("search old resident", client.post("/v1/incidents/_search", headers=own,
                                                          json={"residentRef": RESIDENT_1}), may_show_note=True)
    assert sorted(item["id"] for item in found_1.json["items"]) == sorted(batch_ids)
    listed = seen.add("list", client.get("/v1/incidents", headers=own), may_show_note=True)
    assert listed.status_code == 200
    got = seen.add("get", client.get(f"/v1/incidents/{incident_id}", headers=own), may_show_note=True)
    assert got.status_code == 200
    assert got.json["residentRecorded"] is True
    assert got.json["visitor"]["vehiclePlateRecorded"] is True
    assert got.json["visitor"]["phoneNumberRecorded"] is True
    revisions = seen.add("revisions", client.get(f"/v1/incidents/{incident_id}/revisions", headers=own))
    assert revisions.status_code == 200
    assert revisions.json["items"][0]["changes"]["note"] == {"changed": True}
    assert revisions.json["items"][0]["changes"]["residentRef"] == {"changed": True}

    # Requests that fail, each carrying the canaries.
    invalid = visitor_incident(location_id, "canary-invalid", occurredAt="2024-05-01T10:00:00",
                               exploitationType="nonsense")
    response = seen.add("400 invalid fields", client.post("/v1/incidents", json=invalid, headers=own))
    assert response.status_code == 400
    assert {e["pointer"] for e in response.json["errors"]} >= {"/occurredAt", "/exploitationType"}
    response = seen.add("400 note with phone", client.post("/v1/incidents", headers=own, json=visitor_incident(
        location_id, "canary-note-phone", note=NOTE_WITH_PHONE)))
    assert response.status_code == 400
    assert [e["pointer"] for e in response.json["errors"]] == ["/note"]
    response = seen.add("400 unknown field", client.post("/v1/incidents", headers=own, json=visitor_incident(
        location_id, "canary-unknown", residentName=RESIDENT_1)))
    assert response.status_code == 400
    response = seen.add("400 batch", client.post("/v1/incidents/_batch", headers=own, json={"items": [
        visitor_incident(location_id, "canary-batch-3"),
        visitor_incident(location_id, "canary-batch-4", occurredAt="gisteren")]}))
    assert response.status_code == 400
    response = seen.add("400 residentRef in URL", client.get(f"/v1/incidents?residentRef={RESIDENT_1}", headers=own))
    assert response.status_code == 400
    response = seen.add("409 duplicate clientReference", client.post(
        "/v1/incidents", headers=own, json=visitor_incident(location_id, "canary-single")))
    assert response.status_code == 409
    response = seen.add("422 key reused", client.post(
        "/v1/incidents", headers=own | {"Idempotency-Key": "canary-key-1"},
        json=visitor_incident(location_id, "canary-other", note=NOTE_2)))
    assert response.status_code == 422
    response = seen.add("412 stale correction", client.patch(
        f"/v1/incidents/{batch_ids[0]}", headers=own | {"If-Match": '"7"'},
        json={"reason": "Correctie", "residentRef": RESIDENT_2, "note": NOTE_2,
              "visitor": {"vehiclePlate": PLATE_2, "phoneNumber": PHONE_2}}))
    assert response.status_code == 412
    response = seen.add("409 correcting a retracted incident", client.patch(
        f"/v1/incidents/{incident_id}", headers=own | {"If-Match": '"3"'},
        json={"reason": "Correctie", "residentRef": RESIDENT_1, "note": NOTE_1}))
    assert response.status_code == 409
    for label, call in (
        ("404 other institution get", lambda: client.get(f"/v1/incidents/{incident_id}", headers=other)),
        ("404 other institution patch", lambda: client.patch(
            f"/v1/incidents/{batch_ids[0]}", headers=other | {"If-Match": '"1"'},
            json={"reason": "Correctie", "residentRef": RESIDENT_1, "note": NOTE_1})),
        ("404 other institution revisions", lambda: client.get(f"/v1/incidents/{incident_id}/revisions",
                                                              headers=other)),
    ):
        assert seen.add(label, call()).status_code == 404
    response = seen.add("other institution search", client.post("/v1/incidents/_search", headers=other,
                                                                json={"residentRef": RESIDENT_1}))
    assert response.json["items"] == []
    response = seen.add("other institution list", client.get("/v1/incidents", headers=other))
    assert response.json["items"] == []
    response = seen.add("400 other institution's location", client.post(
        "/v1/incidents", headers=other, json=visitor_incident(location_id, "canary-foreign")))
    assert response.status_code == 400

    records = list(debug_logs.records)  # before the scans below add their own
    assert records, "no log output was captured, so the log scan would prove nothing"

    # Positive controls: the identities were stored, as pseudonyms, and the note where it belongs.
    master, version = app.extensions["settings"].pseudonym_master_key, app.extensions["settings"].pseudonym_key_version
    stored = {str(row.id).replace("-", ""): row for row in connection.execute(text(
        "SELECT id, resident_pseudonym, visitor_plate_fingerprint, visitor_phone_fingerprint, note FROM incident"))}
    assert len(stored) == 3
    single = stored[incident_id.replace("-", "")]
    assert single.resident_pseudonym == pseudonymise_resident(master, version, institution.id, RESIDENT_2)
    assert single.note == NOTE_2
    for row in stored.values():
        assert HEX64.match(row.resident_pseudonym or ""), row
    for batch_id in batch_ids:
        assert stored[batch_id.replace("-", "")].resident_pseudonym == pseudonymise_resident(
            master, version, institution.id, RESIDENT_1)
    assert stored[batch_ids[0].replace("-", "")].visitor_plate_fingerprint is not None
    assert stored[batch_ids[0].replace("-", "")].visitor_phone_fingerprint is not None
    kept = connection.scalar(text("SELECT response_body FROM idempotency_key WHERE key_hash = :hashed"),
                             {"hashed": key_hash(master, "canary-key-1")})
    assert NOTE_CANARY in (kept or "")

    assert database_leaks(connection) == []
    assert log_leaks(records) == []
    assert seen.leaks() == []


def test_a_note_holding_a_number_the_service_itself_accepts_as_a_phone_number_is_refused(
        client: FlaskClient, session: Session, token_for: Any) -> None:
    institution = make_institution(session)
    location_id = str(make_location(session, institution).id)
    own = token_for(Role.INSTITUTION, institution_id=institution.id)
    note = "CANARYNOTE belde vanaf 06 7731 9999"
    assert screen_text("belde vanaf 06 1277 9999") == ["phone number"]  # control: an issued range is caught

    response = client.post("/v1/incidents", headers=own, json=visitor_incident(location_id, "canary-067", note=note))

    assert response.status_code == 400, f"stored with the note {response.json.get('note')!r}"
    assert [e["pointer"] for e in response.json["errors"]] == ["/note"]
    assert NOTE_CANARY not in response.get_data(as_text=True)


# Found by the correction above: it patches visitor.vehiclePlate and visitor.phoneNumber only, and the revision
# showed visitor/estimatedAgeBand and visitor/relationClaimed reset to "unknown". Each case: created fields, a merge
# patch of one nested field, what to read back, and the value the patch must have left alone.
MERGE_CASES = {
    "visitor": (
        {"kind": "suspiciousVisitor", "indicators": ["unknownAdultWaiting"],
         "visitor": {"estimatedAgeBand": "23plus", "relationClaimed": "friend", "vehiclePlate": PLATE_1}},
        {"visitor": {"phoneNumber": PHONE_1}},
        lambda body: (body["visitor"]["estimatedAgeBand"], body["visitor"]["relationClaimed"]),
        ("23plus", "friend"),
    ),
    "absence": (
        {"kind": "absence", "indicators": ["awayWithoutPermission"],
         "absence": {"whereaboutsKnown": False, "riskLevel": "red", "reportedMissingToPolice": True}},
        {"absence": {"endedAt": _when(1)}},
        lambda body: body["absence"]["reportedMissingToPolice"],
        True,
    ),
    "followUp": (
        {"kind": "recruitmentAttempt", "indicators": ["approachedAtEntrance"],
         "followUp": {"meldcodeStep": 2, "reportedTo": ["police"], "reportedAt": _when(2)}},
        {"followUp": {"meldcodeStep": 3}},
        lambda body: body["followUp"]["reportedTo"],
        ["police"],
    ),
}


@pytest.mark.parametrize("case", MERGE_CASES)
def test_a_correction_of_one_nested_field_keeps_its_siblings(
        case: str, client: FlaskClient, session: Session, token_for: Any) -> None:
    institution = make_institution(session)
    location_id = str(make_location(session, institution).id)
    own = token_for(Role.INSTITUTION, institution_id=institution.id)
    fields, patch, kept, expected = MERGE_CASES[case]
    body = {"clientReference": f"merge-{case}", "locationId": location_id, "exploitationType": "criminal",
            "occurredAt": _when(3)} | fields
    created = client.post("/v1/incidents", headers=own, json=body)
    assert created.status_code == 201, created.json

    corrected = client.patch(f"/v1/incidents/{created.json['id']}", headers=own | {"If-Match": '"1"'},
                             json={"reason": "Aanvulling"} | patch)

    assert corrected.status_code == 200, corrected.json
    assert kept(corrected.json) == expected


# Identifiers an integrator might put where the register does not look for them: in a reference, a name,
# a request id or an idempotency key. Each is refused, replaced or kept only as a keyed hash, and none reaches a log,
# an export, a statistic, the access log or a table.
PLANTED = {
    "BSN": ("111222333", "111-222-333", "123-456-782"),
    "phone number": ("0612345678", "06-12345678", "06 4321 8765", "643218765"),
    "e-mail address": ("canary.person@example.nl",),
    "address": ("9711 AB",),
    "date of birth": ("12-03-2010",),
}
SAFE_TRACE = "canary-trace-0001"  # a request id in a safe shape: kept, which shows the scans would see one


def test_identifiers_planted_in_references_names_request_ids_and_keys_never_come_out(
        debug_logs: pytest.LogCaptureFixture, app: Flask, client: FlaskClient, session: Session,
        connection: Connection, token_for: Any) -> None:
    admin, seen = token_for(Role.ADMIN), Seen()

    # Names shown to analysts (locations, institutions) and to admins (clients): refused with the identifier.
    for name in ("Instelling 06-12345678", "Stichting canary.person@example.nl"):
        response = seen.add(f"institution {name!r}", client.post("/v1/institutions", headers=admin, json={
            "name": name, "sector": "youthCare", "municipalityCode": "GM0014"}))
        assert [e["pointer"] for e in response.json["errors"]] == ["/name"], response.json
    institution = seen.add("institution", client.post("/v1/institutions", headers=admin, json={
        "name": "Canary Jeugdzorg", "sector": "youthCare", "municipalityCode": "GM0014"})).json
    location_body = {"postcode4": "9711", "municipalityCode": "GM0014", "setting": "open",
                     "capacities": [{"validFrom": "2024-01-01", "places": 12}]}
    for name in ("Kerkstraat 12, 9711 AB", "Locatie BSN 111-222-333"):
        response = seen.add(f"location {name!r}", client.post(
            f"/v1/institutions/{institution['id']}/locations", headers=admin, json=location_body | {"name": name}))
        assert [e["pointer"] for e in response.json["errors"]] == ["/name"], response.json
    location = seen.add("location", client.post(f"/v1/institutions/{institution['id']}/locations", headers=admin,
                                                json=location_body | {"name": "Canary Hoeve"})).json
    response = seen.add("client name", client.post("/v1/clients", headers=admin, json={
        "name": "Laptop van 06 4321 8765", "role": "institution", "institutionId": institution["id"]}))
    assert [e["pointer"] for e in response.json["errors"]] == ["/name"], response.json
    registered = seen.add("client", client.post("/v1/clients", headers=admin, json={
        "name": "Canary ECD", "role": "institution", "institutionId": institution["id"]})).json
    token = seen.add("token", client.post("/v1/oauth/token", headers={"X-Request-ID": "123-456-782"}, data={
        "grant_type": "client_credentials", "client_id": registered["clientId"],
        "client_secret": registered["clientSecret"]})).json["access_token"]
    own = {"Authorization": f"Bearer {token}"}

    # References: refused, without an echo.
    for reference in ("111-222-333", "0612345678", "12-03-2010", "canary.person@example.nl", "9711 AB 12"):
        response = seen.add(f"clientReference {reference!r}", client.post("/v1/incidents", headers=own, json=(
            visitor_incident(location["id"], reference))))
        assert response.status_code == 400, response.json
        assert "/clientReference" in [e["pointer"] for e in response.json["errors"]]
    # A request id that holds an identifier is replaced; an idempotency key is kept as a keyed hash only.
    planted = visitor_incident(location["id"], "canary-planted")  # one body: a replay must be the same request
    recorded = seen.add("create with planted headers", client.post("/v1/incidents", json=planted, headers=own | {
        "X-Request-ID": "111222333", "Idempotency-Key": "CL-0042-111222333"}), may_show_note=True)
    assert recorded.status_code == 201, recorded.json
    replay = seen.add("replay with planted headers", client.post("/v1/incidents", json=planted, headers=own | {
        "X-Request-ID": "0612345678", "Idempotency-Key": "CL-0042-111222333"}), may_show_note=True)
    assert replay.headers["Idempotent-Replayed"] == "true"
    seen.add("list with a safe request id", client.get("/v1/incidents", headers=own | {"X-Request-ID": SAFE_TRACE}),
             may_show_note=True)

    # What other parties read: the auditor's exports and access log, the analyst's statistics.
    auditor = token_for(Role.AUDITOR, municipality_codes=["GM0014"]) | {"X-Request-ID": "06-12345678"}
    analyst = token_for(Role.ANALYST, municipality_codes=["GM0014"]) | {"X-Request-ID": "12-03-2010"}
    # The month the incidents occurred in (three hours ago: on the first of a month that may be the one before).
    month = (clock.now() - dt.timedelta(hours=3)).astimezone(clock.AMSTERDAM).strftime("%Y-%m")
    exported_csv = seen.add("export csv", client.get("/v1/exports/incidents", headers=auditor | {
        "Accept": "text/csv"}, query_string={"from": month, "to": month}))
    exported_csv.get_data()  # read the stream now: the next request may not start before it ends
    exported_ndjson = seen.add("export ndjson", client.get("/v1/exports/incidents", headers=auditor | {
        "Accept": "application/x-ndjson"}, query_string={"from": month, "to": month}))
    exported_ndjson.get_data()
    events = seen.add("access log", client.get("/v1/audit-events", headers=auditor, query_string={"limit": 200}))
    hotspots = seen.add("hotspots", client.get("/v1/stats/hotspots", headers=analyst, query_string={
        "period": month, "groupBy": "location"}))
    # Positive controls: each of them would show a planted value if one had got in.
    assert "canary-planted" in exported_csv.get_data(as_text=True)
    assert "canary-planted" in exported_ndjson.get_data(as_text=True)
    assert SAFE_TRACE in events.get_data(as_text=True)
    assert "Canary Hoeve" in hotspots.get_data(as_text=True), hotspots.json

    records = list(debug_logs.records)
    assert records, "no log output was captured, so the log scan would prove nothing"
    assert database_leaks(connection, PLANTED) == []
    assert log_leaks(records, PLANTED) == []
    assert seen.leaks(PLANTED) == []
